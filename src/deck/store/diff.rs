//! Per-prefix comparison of two deck versions ([`diff_versions`]), and `deck diff`'s choice of
//! the versions to compare ([`diff`]).
//!
//! Owns: reading the two versions and the report. Must not touch: any write, what a pair of
//! rows means (the core's `deck::diff`).

use futures_util::StreamExt;
use serde::Serialize;
use tokio_postgres::{Client, GenericClient};
pub use warpd_core::deck::diff::DiffSort;
use warpd_core::deck::diff::{Change, Cursor, DiffTally, HeldFull, HeldVersion, Rates};
use warpd_core::pgcopy::{pg_numeric_scaled, BinaryCopy, CopyError};

use super::timeline::versions;
use crate::deck::DeckError;

/// Per-prefix comparison of two versions.
#[derive(Clone, Debug, Default, Serialize, utoipa::ToSchema)]
pub struct DiffReport {
    pub from_version: i64,
    pub to_version: i64,
    pub added: i64,
    pub removed: i64,
    pub up: i64,
    pub down: i64,
    /// some zones up, some down, or a zone rate added/removed
    pub changed: i64,
    pub unchanged: i64,
    /// rows with a rate moving by more than the threshold percent
    pub over_threshold: i64,
    /// one page of the changed rows, in the page's order
    pub rows: Vec<DiffRow>,
    /// the cursor of the next page (`after`), when there are more changed rows
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next: Option<String>,
}

#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct DiffRow {
    /// prefix, or OCN/LATA
    pub key: String,
    pub change: String,
    /// interstate rates (or the single rate), old and new
    pub old_rate: Option<String>,
    pub new_rate: Option<String>,
    pub pct: Option<f64>,
}

/// One page of a diff's rows: its order, the cursor it continues after (the `next` of the
/// page before) and its size.
#[derive(Clone, Debug, PartialEq)]
pub struct DiffPage {
    pub sort: DiffSort,
    pub after: Option<String>,
    pub limit: i64,
}

/// A version's rows as the diff reads them: the key (prefix, or OCN/LATA as `ocn/lata`) and the
/// three rates, in the table's order (no sort: the join is a hash join in the daemon).
fn rows_sql(version: i64) -> String {
    // an integer: nothing to quote
    format!(
        "COPY (SELECT coalesce(prefix, ocn || '/' || lata), rate_inter, rate_intra, rate_local \
         FROM deck_rates WHERE version_id = {version}) TO STDOUT (FORMAT binary)"
    )
}

/// Rows parsed between voluntary yields to the runtime (a few ms of work).
const YIELD_EVERY: u64 = 32 * 1024;

/// What was wrong with a version's rows as read for a diff.
#[derive(Debug, thiserror::Error)]
pub enum VersionRowsError {
    #[error(transparent)]
    Copy(#[from] CopyError),
    #[error("row {row} of the stream: {zone} rate is not a plain number")]
    Rate { row: u64, zone: &'static str },
    #[error(transparent)]
    Held(#[from] HeldFull),
}

/// Streams version `version`'s rows through `f` (key, rates) with binary COPY.
async fn read_version(
    c: &Client,
    version: i64,
    mut f: impl FnMut(Option<&[u8]>, &Rates) -> Result<(), VersionRowsError>,
) -> Result<u64, DeckError> {
    let bad = |source| DeckError::VersionRows { version, source };
    let stream = c
        .copy_out(rows_sql(version).as_str())
        .await
        .map_err(DeckError::db("reading a version's rows"))?;
    futures_util::pin_mut!(stream);
    let mut parser = BinaryCopy::<4>::new("deck_rates");
    let mut carry: Vec<u8> = Vec::new();
    let mut next_yield = YIELD_EVERY;
    let mut each = |fields: &[Option<&[u8]>; 4], row: u64| -> Result<(), VersionRowsError> {
        let mut rates: Rates = [None; 3];
        for (z, zone) in ["interstate", "intrastate", "local"]
            .into_iter()
            .enumerate()
        {
            if let Some(v) = fields[z + 1] {
                rates[z] = Some(pg_numeric_scaled(v).ok_or(VersionRowsError::Rate { row, zone })?);
            }
        }
        f(fields[0], &rates)
    };
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(DeckError::db("reading a version's rows"))?;
        let row = parser.rows() + 1;
        let mut n = row;
        let mut g = |fields: &[Option<&[u8]>; 4]| {
            let r = each(fields, n);
            n += 1;
            r
        };
        if carry.is_empty() {
            // the usual case: a CopyData message holds whole tuples
            let used = parser.parse(&chunk, &mut g).map_err(bad)?;
            carry.extend_from_slice(&chunk[used..]);
        } else {
            carry.extend_from_slice(&chunk);
            let used = parser.parse(&carry, &mut g).map_err(bad)?;
            carry.drain(..used);
        }
        if parser.rows() >= next_yield {
            next_yield = parser.rows() + YIELD_EVERY;
            // CPU work on a runtime worker: let other tasks (dips) run
            tokio::task::yield_now().await;
        }
    }
    parser
        .finish(&carry)
        .map_err(|e| bad(VersionRowsError::Copy(e)))?;
    Ok(parser.rows())
}

/// Compares two versions prefix by prefix: the counts, and the first `limit` changed rows by
/// key.
pub async fn diff_versions<C: GenericClient>(
    c: &C,
    from: i64,
    to: i64,
    warn_pct: f64,
    limit: i64,
) -> Result<DiffReport, DeckError> {
    let page = DiffPage {
        sort: DiffSort::Key,
        after: None,
        limit,
    };
    diff_page(c, from, to, warn_pct, &page).await
}

/// Compares two versions prefix by prefix: the counts, and one page of the changed rows in
/// `page.sort` order after `page.after` (a `next` cursor of the same sort; a cursor that is
/// not one is [`DeckError::BadRequest`] naming `after`).
///
/// The most rows of the older version a diff holds in memory (~60 bytes a row: ~600 MB). A deck
/// of 1 GiB (the import's limit) could have ~35M rows; a larger diff is refused with a 4xx that
/// says so instead of growing the daemon without bound.
pub const MAX_HELD_ROWS: usize = 10_000_000;

/// Both versions are read with binary COPY (no sort, no join in PostgreSQL): `from`'s rows are
/// held in a [`HeldVersion`] (~60 bytes a row), `to`'s stream past them, and the pure
/// [`DiffTally`] counts every pair and keeps the page's `limit` rows. Issue 22: the SQL join
/// this replaced took ~0.35 s of PostgreSQL for two 100k-row versions (docs/BENCHMARKS.md).
pub async fn diff_page<C: GenericClient>(
    c: &C,
    from: i64,
    to: i64,
    warn_pct: f64,
    page: &DiffPage,
) -> Result<DiffReport, DeckError> {
    let cursor = page
        .after
        .as_deref()
        .map(|a| Cursor::parse(page.sort, a))
        .transpose()
        .map_err(|e| DeckError::BadRequest(e.to_string()))?;
    let limit = usize::try_from(page.limit.max(0)).unwrap_or(usize::MAX);
    let client = c.client();
    // the held version's size, to allocate once (a hint: 0 when unknown)
    let rows: i64 = c
        .query_opt(
            "SELECT row_count FROM deck_versions WHERE id = $1",
            &[&from],
        )
        .await
        .map_err(DeckError::db("comparing versions"))?
        .map_or(0, |r| r.get(0));
    let too_big = || {
        DeckError::BadRequest(format!(
            "version {from} has more than {MAX_HELD_ROWS} rows: a diff holds the older version \
             in memory (~60 bytes a row) and refuses larger ones; compare smaller versions"
        ))
    };
    if rows > MAX_HELD_ROWS as i64 {
        return Err(too_big());
    }
    let rows = usize::try_from(rows.max(0)).unwrap_or(0);
    let mut held = HeldVersion::with_capacity(rows, rows * 12);
    let mut over = false;
    read_version(client, from, |key, rates| {
        if held.len() >= MAX_HELD_ROWS {
            // the recorded row count was short: stop reading, refuse below
            over = true;
            return Ok(());
        }
        Ok(held.push(key, rates)?)
    })
    .await?;
    if over {
        return Err(too_big());
    }
    let mut tally = DiffTally::new(warn_pct, page.sort, cursor, limit);
    read_version(client, to, |key, rates| {
        tally.streamed(&mut held, key, rates);
        Ok(())
    })
    .await?;
    tally.removed_rest(&held);
    drop(held);
    let out = tally.finish();
    let n = |ch: Change| out.counts.get(ch);
    Ok(DiffReport {
        from_version: from,
        to_version: to,
        added: n(Change::Added),
        removed: n(Change::Removed),
        up: n(Change::Up),
        down: n(Change::Down),
        changed: n(Change::Changed),
        unchanged: n(Change::Unchanged),
        over_threshold: out.counts.over_threshold,
        rows: out
            .rows
            .into_iter()
            .map(|r| DiffRow {
                key: r.key,
                change: r.change.as_str().to_string(),
                old_rate: r.old_rate,
                new_rate: r.new_rate,
                pct: r.pct,
            })
            .collect(),
        next: out.next,
    })
}

/// `deck diff`: `to` defaults to the route's newest version, `from` to the live version before
/// `to` on the timeline; `page` says which changed rows.
pub async fn diff(
    client: &mut Client,
    route: &str,
    from: Option<i64>,
    to: Option<i64>,
    warn_pct: f64,
    page: &DiffPage,
) -> Result<DiffReport, DeckError> {
    let vs = versions(&*client, route).await?;
    let to = match to {
        Some(t) => t,
        None => vs
            .iter()
            .rev()
            .find(|v| v.state != "rolled_back")
            .map(|v| v.id)
            .ok_or_else(|| DeckError::Conflict(format!("route {route:?} has no deck versions")))?,
    };
    let to_v = vs
        .iter()
        .find(|v| v.id == to)
        .ok_or_else(|| DeckError::UnknownVersion {
            route: route.to_string(),
            version: to,
        })?;
    let from = match from {
        Some(f) => {
            if !vs.iter().any(|v| v.id == f) {
                return Err(DeckError::UnknownVersion {
                    route: route.to_string(),
                    version: f,
                });
            }
            f
        }
        None => {
            let row = client
                .query_opt(
                    "SELECT v.id FROM deck_versions v, deck_versions t WHERE t.id = $1 \
                     AND v.route_id = t.route_id AND v.id <> t.id AND v.state IN ('live','baseline') \
                     AND v.effective_from <= t.effective_from \
                     ORDER BY v.effective_from DESC, v.id DESC LIMIT 1",
                    &[&to_v.id],
                )
                .await
                .map_err(DeckError::db("finding the previous version"))?;
            row.map(|r| r.get(0)).ok_or_else(|| {
                DeckError::Conflict(format!(
                    "version {to} of route {route:?} has no earlier version to compare with (give --from)"
                ))
            })?
        }
    };
    // one read-only transaction: both versions read in one snapshot
    let tx = client
        .build_transaction()
        .read_only(true)
        .start()
        .await
        .map_err(DeckError::db("comparing versions"))?;
    let d = diff_page(&tx, from, to, warn_pct, page).await?;
    tx.commit()
        .await
        .map_err(DeckError::db("comparing versions"))?;
    Ok(d)
}
