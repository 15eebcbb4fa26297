//! The deck diff (issue 22: the console's first diff of two 100k-row versions took 0.9–1.5 s):
//! its counts and rows equal those of the statement it replaced (kept below as the reference),
//! on two versions with every kind of change (added, removed, up, down, mixed, a zone rate
//! appearing or vanishing, zero old rates, OCN/LATA keys, unchanged rows), for several
//! thresholds; and its keyset pages, in each order, add up to every changed row exactly once in
//! that order. Bad cursors are refused naming `after`.

use crate::support;

use tokio_postgres::Client;
use warpd::deck::{self, DiffPage, DiffReport, DiffSort};

/// The diff statement before issue 22's change (one FULL JOIN on a computed key).
const REFERENCE: &str = "\
    WITH a AS (SELECT coalesce(prefix, ocn || '/' || lata) k, rate_inter i, rate_intra j, rate_local l \
               FROM deck_rates WHERE version_id = $1), \
         b AS (SELECT coalesce(prefix, ocn || '/' || lata) k, rate_inter i, rate_intra j, rate_local l \
               FROM deck_rates WHERE version_id = $2), \
         j AS (SELECT coalesce(a.k, b.k) k, a.i ai, b.i bi, a.k IS NULL added, b.k IS NULL removed, \
                 coalesce(b.i > a.i, false) OR coalesce(b.j > a.j, false) OR coalesce(b.l > a.l, false) up, \
                 coalesce(b.i < a.i, false) OR coalesce(b.j < a.j, false) OR coalesce(b.l < a.l, false) down, \
                 (a.i IS NULL) <> (b.i IS NULL) OR (a.j IS NULL) <> (b.j IS NULL) OR (a.l IS NULL) <> (b.l IS NULL) nullchg, \
                 greatest(abs(b.i - a.i) / nullif(a.i, 0), abs(b.j - a.j) / nullif(a.j, 0), \
                          abs(b.l - a.l) / nullif(a.l, 0)) * 100 AS pct \
               FROM a FULL JOIN b ON a.k = b.k), \
         c AS (SELECT k, ai, bi, pct, CASE WHEN added THEN 'added' WHEN removed THEN 'removed' \
                 WHEN up AND NOT down AND NOT nullchg THEN 'up' \
                 WHEN down AND NOT up AND NOT nullchg THEN 'down' \
                 WHEN up OR down OR nullchg THEN 'changed' ELSE 'unchanged' END AS change FROM j) \
    SELECT change, count(*), count(*) FILTER (WHERE pct > $3::float8), NULL::text, NULL::text, NULL::text, NULL::float8 \
      FROM c GROUP BY change \
    UNION ALL \
    (SELECT 'row', 0, 0, k, change, trim_scale(ai)::text || '|' || coalesce(trim_scale(bi)::text, ''), pct::float8 \
       FROM c WHERE change <> 'unchanged' ORDER BY k LIMIT $4)";

/// (counts by kind, over threshold, rows as "key change old|new pct") of the reference.
async fn reference(c: &Client, warn: f64) -> (Vec<(String, i64)>, i64, Vec<String>) {
    let mut counts = vec![];
    let mut over = 0;
    let mut rows = vec![];
    for r in c
        .query(REFERENCE, &[&1i64, &2i64, &warn, &100_000i64])
        .await
        .unwrap()
    {
        let kind: String = r.get(0);
        if kind == "row" {
            let pct: Option<f64> = r.get(6);
            rows.push(format!(
                "{} {} {} {pct:?}",
                r.get::<_, String>(3),
                r.get::<_, String>(4),
                // NULL (no old interstate rate) reads as no rates at all, as in `diff_page`
                r.get::<_, Option<String>>(5).unwrap_or_else(|| "|".into())
            ));
        } else {
            over += r.get::<_, i64>(2);
            counts.push((kind, r.get(1)));
        }
    }
    counts.sort();
    (counts, over, rows)
}

fn counts(d: &DiffReport) -> Vec<(String, i64)> {
    let mut v: Vec<(String, i64)> = [
        ("added", d.added),
        ("removed", d.removed),
        ("up", d.up),
        ("down", d.down),
        ("changed", d.changed),
        ("unchanged", d.unchanged),
    ]
    .into_iter()
    .filter(|(_, n)| *n > 0)
    .map(|(k, n)| (k.to_string(), n))
    .collect();
    v.sort();
    v
}

fn row_line(r: &deck::DiffRow) -> String {
    format!(
        "{} {} {}|{} {:?}",
        r.key,
        r.change,
        r.old_rate.as_deref().unwrap_or(""),
        r.new_rate.as_deref().unwrap_or(""),
        r.pct
    )
}

fn rate(h: u64, shift: u32) -> Option<String> {
    match (h >> shift) % 9 {
        0 => None,
        1 => Some("0".into()),
        n => Some(format!("0.0{}{}", n, (h >> (shift + 4)) % 10)),
    }
}

/// Versions 1 and 2: 600 keys, each in one or both, with rates drawn so that every kind of
/// change occurs (rates repeat often, so many rows are unchanged).
async fn two_versions(c: &Client) {
    let mut rows = String::new();
    for n in 0..600u64 {
        let h = n.wrapping_mul(0x9e37_79b9_7f4a_7c15).rotate_left(17) ^ n;
        let key = if n % 10 == 9 {
            format!("\\N\tOCN{}\t{}", n % 7, n)
        } else {
            format!("44{n:04}\t\\N\t\\N")
        };
        let a = [rate(h, 0), rate(h, 8), rate(h, 16)];
        let b = match h % 5 {
            0 => a.clone(),
            1 => [rate(h, 24), a[1].clone(), a[2].clone()],
            _ => [rate(h, 24), rate(h, 32), rate(h, 40)],
        };
        let show = |r: &Option<String>| r.clone().unwrap_or_else(|| "\\N".into());
        if h % 11 != 0 {
            rows.push_str(&format!(
                "1\t{key}\t{}\t{}\t{}\t6\t6\t-infinity\tinfinity\n",
                show(&a[0]),
                show(&a[1]),
                show(&a[2])
            ));
        }
        if h % 13 != 0 {
            rows.push_str(&format!(
                "2\t{key}\t{}\t{}\t{}\t6\t6\t-infinity\tinfinity\n",
                show(&b[0]),
                show(&b[1]),
                show(&b[2])
            ));
        }
    }
    let sink = c
        .copy_in(
            "COPY deck_rates (version_id, prefix, ocn, lata, rate_inter, rate_intra, rate_local, \
             min_seconds, inc_seconds, effective_from, effective_until) FROM STDIN",
        )
        .await
        .unwrap();
    use futures_util::SinkExt;
    let mut sink = Box::pin(sink);
    sink.send(bytes::Bytes::from(rows)).await.unwrap();
    sink.as_mut().finish().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn diff_equals_the_reference_and_pages_cover_every_changed_row_once() {
    let pg = support::TestPg::start();
    let c = support::demo::deck_network_db(&pg).await;
    two_versions(&c).await;
    for warn in [25.0, 0.0, 100.0, 12.5] {
        let (want_counts, want_over, want_rows) = reference(&c, warn).await;
        let d = deck::store::diff_versions(&c, 1, 2, warn, 100_000)
            .await
            .unwrap();
        assert_eq!(counts(&d), want_counts, "counts at {warn}%");
        assert_eq!(d.over_threshold, want_over, "over {warn}%");
        let got: Vec<String> = d.rows.iter().map(row_line).collect();
        assert_eq!(got, want_rows, "rows at {warn}%");
        assert!(d.next.is_none());
    }
    let (kinds, _, all) = reference(&c, 25.0).await;
    for k in ["added", "removed", "up", "down", "changed", "unchanged"] {
        assert!(kinds.iter().any(|(n, _)| n == k), "no {k} rows: {kinds:?}");
    }
    assert!(all.iter().any(|r| r.contains("OCN")), "OCN/LATA rows");

    // pages of 37 in each order: every changed row once, in that order
    for sort in [DiffSort::Key, DiffSort::Change, DiffSort::Pct] {
        let mut seen = vec![];
        let mut after = None;
        let mut pages = 0;
        loop {
            let page = DiffPage {
                sort,
                after: after.clone(),
                limit: 37,
            };
            let d = deck::store::diff_page(&c, 1, 2, 25.0, &page).await.unwrap();
            assert!(d.rows.len() <= 37);
            seen.extend(d.rows.iter().cloned());
            pages += 1;
            match d.next {
                Some(n) => after = Some(n),
                None => break,
            }
            assert!(pages < 100, "{sort:?}: pages never end");
        }
        let lines: Vec<String> = seen.iter().map(row_line).collect();
        let mut want = all.clone();
        let mut sorted_seen = lines.clone();
        sorted_seen.sort();
        want.sort();
        assert_eq!(sorted_seen, want, "{sort:?}: every changed row once");
        let ordered = seen.windows(2).all(|w| match sort {
            DiffSort::Key => w[0].key < w[1].key,
            DiffSort::Change => (&w[0].change, &w[0].key) < (&w[1].change, &w[1].key),
            DiffSort::Pct => match (w[0].pct, w[1].pct) {
                (Some(a), Some(b)) => a > b || (a == b && w[0].key < w[1].key),
                (Some(_), None) => true,
                (None, Some(_)) => false,
                (None, None) => w[0].key < w[1].key,
            },
        });
        assert!(ordered, "{sort:?}: order {lines:#?}");
    }

    // a cursor that is not one of the order's is refused, naming `after`
    for (sort, after) in [
        (DiffSort::Pct, "4400"),
        (DiffSort::Pct, "abc|4400"),
        (DiffSort::Pct, "inf|4400"),
        (DiffSort::Change, "4400"),
    ] {
        let page = DiffPage {
            sort,
            after: Some(after.into()),
            limit: 10,
        };
        let e = deck::store::diff_page(&c, 1, 2, 25.0, &page)
            .await
            .unwrap_err();
        assert!(e.to_string().starts_with("after:"), "{sort:?} {after}: {e}");
    }
}
