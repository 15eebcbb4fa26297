//! The diff statement of issue 22's first change (one SQL statement: counts and one keyset page,
//! prefix rows and OCN/LATA rows joined on their own columns), kept verbatim as the reference
//! of the streaming diff that replaced it: `deck::store::diff_page` must answer exactly what
//! [`sql_page`] answers, counts, rows and cursors, on any versions. scripts/bench-console-sql.py
//! times this statement too (it reads the constants below).

use tokio_postgres::GenericClient;
use warpd::deck::{DeckError, DiffPage, DiffReport, DiffRow, DiffSort};

/// The joined rows of versions $1 and $2 with each row's change, as CTEs `j` and `c`. Prefix
/// rows and OCN/LATA rows are joined on their own columns (not on one computed key): the
/// planner then knows the join's size (~ the versions' rows; on a computed key it guessed
/// ~500× that, chose sorted merge joins spilling to disk and compiled the query with JIT: ~0.6 s
/// of a 1.4 s diff of two 100k-row versions). A rate that did not move makes a row
/// `unchanged` at the first test.
const DIFF_ROWS: &str = "\
    j AS (SELECT coalesce(a.prefix, b.prefix) k, a.rate_inter ai, a.rate_intra aj, a.rate_local al, \
            b.rate_inter bi, b.rate_intra bj, b.rate_local bl, a.prefix IS NULL added, b.prefix IS NULL removed \
          FROM (SELECT prefix, rate_inter, rate_intra, rate_local FROM deck_rates \
                WHERE version_id = $1 AND prefix IS NOT NULL) a \
          FULL JOIN (SELECT prefix, rate_inter, rate_intra, rate_local FROM deck_rates \
                WHERE version_id = $2 AND prefix IS NOT NULL) b ON a.prefix = b.prefix \
          UNION ALL \
          SELECT coalesce(a.k, b.k), a.rate_inter, a.rate_intra, a.rate_local, \
            b.rate_inter, b.rate_intra, b.rate_local, a.k IS NULL, b.k IS NULL \
          FROM (SELECT ocn, lata, ocn || '/' || lata k, rate_inter, rate_intra, rate_local FROM deck_rates \
                WHERE version_id = $1 AND prefix IS NULL) a \
          FULL JOIN (SELECT ocn, lata, ocn || '/' || lata k, rate_inter, rate_intra, rate_local FROM deck_rates \
                WHERE version_id = $2 AND prefix IS NULL) b ON a.ocn = b.ocn AND a.lata = b.lata), \
    c AS (SELECT k, ai, aj, al, bi, bj, bl, CASE WHEN added THEN 'added' WHEN removed THEN 'removed' \
            WHEN (ai, aj, al) IS NOT DISTINCT FROM (bi, bj, bl) THEN 'unchanged' \
            WHEN (ai IS NULL) <> (bi IS NULL) OR (aj IS NULL) <> (bj IS NULL) OR (al IS NULL) <> (bl IS NULL) THEN 'changed' \
            WHEN bi > ai OR bj > aj OR bl > al THEN \
              CASE WHEN bi < ai OR bj < aj OR bl < al THEN 'changed' ELSE 'up' END \
            ELSE 'down' END AS change \
          FROM j)";

/// The largest move of a row's zone rates, percent of the old rate (NULL when no zone has an
/// old rate above 0 and a new one).
const PCT: &str = "greatest(abs(bi - ai) / nullif(ai, 0), abs(bj - aj) / nullif(aj, 0), \
                   abs(bl - al) / nullif(al, 0)) * 100";

/// Some zone moved by more than $3 percent of its old rate (> 0): `PCT > $3` without a
/// division per zone and row (exact: rates have 7 decimals).
const OVER: &str = "(abs(bi - ai) * 100 > $3::float8::numeric * ai AND ai <> 0) \
                    OR (abs(bj - aj) * 100 > $3::float8::numeric * aj AND aj <> 0) \
                    OR (abs(bl - al) * 100 > $3::float8::numeric * al AND al <> 0)";

/// The page statement for `sort`: counts per change, then the page's rows. Parameters: $1 from,
/// $2 to, $3 threshold, $4 rows, $5 cursor key, $6 cursor change, $7 cursor pct, $8 "the
/// cursor's pct is NULL".
fn page_sql(sort: DiffSort) -> String {
    let (pct_col, filter, order) = match sort {
        DiffSort::Key => ("NULL::float8", "(ck IS NULL OR k > ck)", "k"),
        DiffSort::Change => (
            "NULL::float8",
            "(ck IS NULL OR (change, k) > (cc, ck))",
            "change, k",
        ),
        DiffSort::Pct => (
            "pct",
            "(ck IS NULL OR (NOT cn AND (pct < cp OR (pct = cp AND k > ck) OR pct IS NULL)) \
              OR (cn AND pct IS NULL AND k > ck))",
            "pct DESC NULLS LAST, k",
        ),
    };
    let pct_col = pct_col.replace("pct", &format!("({PCT})::float8"));
    format!(
        "WITH {DIFF_ROWS}, \
         cur AS (SELECT $5::text ck, $6::text cc, $7::float8 cp, $8::bool cn), \
         p AS (SELECT * FROM (SELECT *, {pct_col} AS pct FROM c WHERE change <> 'unchanged') x, cur \
               WHERE {filter} ORDER BY {order} LIMIT $4) \
         SELECT change, count(*), count(*) FILTER (WHERE (change <> 'unchanged' OR $3::float8 < 0) AND ({OVER})), \
                NULL::text, NULL::text, NULL::text, NULL::float8 \
           FROM c GROUP BY change \
         UNION ALL \
         SELECT 'row', row_number() OVER (ORDER BY {order}), 0, k, change, \
                trim_scale(ai)::text || '|' || coalesce(trim_scale(bi)::text, ''), ({PCT})::float8 FROM p"
    )
}

/// The cursor after `row` in `sort` order: the key, after the change or the percentage.
fn cursor(sort: DiffSort, row: &DiffRow) -> String {
    match sort {
        DiffSort::Key => row.key.clone(),
        DiffSort::Change => format!("{}|{}", row.change, row.key),
        DiffSort::Pct => match row.pct {
            Some(p) => format!("{p}|{}", row.key),
            None => format!("null|{}", row.key),
        },
    }
}

pub async fn sql_page<C: GenericClient>(
    c: &C,
    from: i64,
    to: i64,
    warn_pct: f64,
    page: &DiffPage,
) -> Result<DiffReport, DeckError> {
    let bad_cursor = || {
        DeckError::BadRequest(
            "after: not a cursor of this diff's order (use the `next` of the page before)".into(),
        )
    };
    let (key, change, pct, pct_null): (Option<String>, Option<String>, Option<f64>, bool) =
        match (&page.after, page.sort) {
            (None, _) => (None, None, None, false),
            (Some(a), DiffSort::Key) => (Some(a.clone()), None, None, false),
            (Some(a), DiffSort::Change) => {
                let (ch, k) = a.split_once('|').ok_or_else(bad_cursor)?;
                (Some(k.to_string()), Some(ch.to_string()), None, false)
            }
            (Some(a), DiffSort::Pct) => {
                let (p, k) = a.split_once('|').ok_or_else(bad_cursor)?;
                let pct = match p {
                    "null" => None,
                    p => Some(
                        p.parse::<f64>()
                            .ok()
                            .filter(|p| p.is_finite())
                            .ok_or_else(bad_cursor)?,
                    ),
                };
                (Some(k.to_string()), None, pct, pct.is_none())
            }
        };
    let limit = page.limit.max(0);
    // the plan's cost crosses PostgreSQL's JIT threshold, and compiling costs more than it
    // saves at these sizes (~0.6 s of a 100k-row diff); back to the default afterwards (the
    // import runs its diff inside its own transaction). Outside a transaction this is a no-op.
    c.batch_execute("SET LOCAL jit = off")
        .await
        .expect("the diff statement before runs");
    let rows = c
        .query(
            &page_sql(page.sort),
            &[
                &from, &to, &warn_pct, &limit, &key, &change, &pct, &pct_null,
            ],
        )
        .await
        .expect("the diff statement before runs");
    c.batch_execute("SET LOCAL jit TO DEFAULT")
        .await
        .expect("the diff statement before runs");
    let mut d = DiffReport {
        from_version: from,
        to_version: to,
        ..DiffReport::default()
    };
    let mut changed_rows = 0;
    let mut page_rows = Vec::new();
    for row in rows {
        let kind: String = row.get(0);
        let n: i64 = row.get(1);
        match kind.as_str() {
            "added" => d.added = n,
            "removed" => d.removed = n,
            "up" => d.up = n,
            "down" => d.down = n,
            "changed" => d.changed = n,
            "unchanged" => d.unchanged = n,
            _ => {}
        }
        if kind != "row" {
            if kind != "unchanged" {
                changed_rows += n;
            }
            d.over_threshold += row.get::<_, i64>(2);
            continue;
        }
        let rates: Option<String> = row.get(5);
        let (old, new) = match rates.as_deref().and_then(|s| s.split_once('|')) {
            Some((o, n)) => (
                (!o.is_empty()).then(|| o.to_string()),
                (!n.is_empty()).then(|| n.to_string()),
            ),
            None => (None, None),
        };
        page_rows.push((
            n,
            DiffRow {
                key: row.get(3),
                change: row.get(4),
                old_rate: old,
                new_rate: new,
                pct: row.get(6),
            },
        ));
    }
    // the UNION keeps no order: the rows come with their place in the page (`ord`)
    page_rows.sort_by_key(|(ord, _)| *ord);
    d.rows = page_rows.into_iter().map(|(_, r)| r).collect();
    if d.rows.len() as i64 == limit && limit > 0 && changed_rows > limit {
        // there may be more; an exhausted cursor gives an empty page
        d.next = d.rows.last().map(|r| cursor(page.sort, r));
    }
    Ok(d)
}
