//! Decks of `warpd apply`: the row count and fingerprint of a deck's current target rows
//! ([`deck_digest`], to skip unchanged decks), the owner of a deck at write time
//! ([`deck_owner`]), the replacement of its rows by DELETE + `COPY FROM STDIN`
//! ([`load_deck`]), and a route's `rates` as a new deck version ([`load_route_version`], through
//! the code of `warpd deck import`: `crate::deck::store::version`).
//!
//! Owns: the deck SQL of `warpd apply`. Must not touch: the row operations (see `execute`).

use std::pin::pin;

use bytes::Bytes;
use futures_util::{SinkExt, TryStreamExt};
use tokio_postgres::types::ToSql;
use tokio_postgres::Transaction;

use super::execute::{lookup, Ids};
use crate::deck::store::version::{
    go_live, new_version, record_layout, version_at, InForce, VersionAudit, VersionLayout,
    CANONICAL_LAYOUT,
};
use crate::deck::store::{lock_route, Since};
use crate::provision::deck::{self, ColType, DeckKind, DeckSource};
use crate::provision::error::ProvisionError;
use crate::provision::values::*;

/// Which rows of which table a deck is compared with or written to.
pub(crate) struct Rows {
    pub table: &'static str,
    /// `column = id` selecting the owner's rows; None: the whole table
    pub owner: Option<(&'static str, i64)>,
    pub columns: &'static [(&'static str, ColType)],
}

impl Rows {
    /// The rows a deck of `kind` replaces directly (customer sell rates, numbering tables, the
    /// `vendor_rates` of a route that has no deck versions).
    pub fn of(kind: DeckKind, owner: Option<i64>) -> Result<Rows, ProvisionError> {
        let owner = match (kind.owner_column(), owner) {
            (Some(c), Some(id)) => Some((c, id)),
            (None, _) => None,
            (Some(_), None) => {
                return Err(ProvisionError::Internal(format!(
                    "{} deck without an owner id",
                    kind.table()
                )))
            }
        };
        Ok(Rows {
            table: kind.table(),
            owner,
            columns: kind.columns(),
        })
    }

    /// The rows of one deck version (`deck_rates`).
    pub fn version(version_id: i64) -> Rows {
        Rows {
            table: "deck_rates",
            owner: Some(("version_id", version_id)),
            columns: DeckKind::VendorRates.columns(),
        }
    }
}

/// Row count and fingerprint of a deck's target rows (one route / customer / version, or a whole
/// table). The fingerprint is only computed when the count equals `expected_rows`.
pub(crate) async fn deck_digest(
    tx: &Transaction<'_>,
    target: &Rows,
    expected_rows: u64,
) -> Result<(u64, Option<Digest>), ProvisionError> {
    let table = target.table;
    let filter = match target.owner {
        Some((c, _)) => format!(" WHERE {c} = $1"),
        None => String::new(),
    };
    let params: Vec<&(dyn ToSql + Sync)> = match &target.owner {
        Some((_, id)) => vec![id],
        None => vec![],
    };
    let ctx = || format!("reading {table}");
    let count: i64 = tx
        .query_one(&format!("SELECT count(*) FROM {table}{filter}"), &params)
        .await
        .and_then(|r| r.try_get(0))
        .map_err(|e| ProvisionError::db(ctx(), e))?;
    let count = u64::try_from(count).unwrap_or(0);
    if count != expected_rows {
        return Ok((count, None));
    }
    let cols = target.columns;
    let exprs: Vec<String> = cols
        .iter()
        .map(|(c, t)| match t {
            ColType::Text => c.to_string(),
            ColType::Int => format!("{c}::bigint"),
            ColType::Money => format!("round({c} * 10000000)::bigint"),
            ColType::Ts => sql_micros(c),
        })
        .collect();
    let sql = format!("SELECT {} FROM {table}{filter}", exprs.join(", "));
    let stream = tx
        .query_raw(&sql, params.iter().copied())
        .await
        .map_err(|e| ProvisionError::db(ctx(), e))?;
    let mut stream = pin!(stream);
    let mut digest = Digest::default();
    while let Some(row) = stream
        .try_next()
        .await
        .map_err(|e| ProvisionError::db(ctx(), e))?
    {
        let mut cells: Vec<Cell<'_>> = Vec::with_capacity(cols.len());
        for (i, (_, t)) in cols.iter().enumerate() {
            let c = match t {
                ColType::Text => match row.try_get::<_, Option<&str>>(i) {
                    Ok(Some(s)) => Cell::Text(s),
                    Ok(None) => Cell::Null,
                    Err(e) => return Err(ProvisionError::db(ctx(), e)),
                },
                _ => match row.try_get::<_, Option<i64>>(i) {
                    Ok(Some(v)) => Cell::Int(v),
                    Ok(None) => Cell::Null,
                    Err(e) => return Err(ProvisionError::db(ctx(), e)),
                },
            };
            cells.push(c);
        }
        digest.add(&cells);
    }
    Ok((count, Some(digest)))
}

const COPY_CHUNK: usize = 256 * 1024;

/// Replaces the target rows of a deck: DELETE, then stream the CSV through `COPY FROM STDIN`.
/// The CSV is parsed on a blocking thread and handed over in chunks; nothing big is kept in memory.
/// Returns the fingerprint of the rows loaded.
pub(crate) async fn load_deck(
    tx: &Transaction<'_>,
    src: &DeckSource,
    target: &Rows,
) -> Result<Digest, ProvisionError> {
    let table = target.table;
    let ctx = || format!("loading {} into {table}", src.label);
    match target.owner {
        Some((c, id)) => {
            tx.execute(&format!("DELETE FROM {table} WHERE {c} = $1"), &[&id])
                .await
        }
        None => tx.execute(&format!("DELETE FROM {table}"), &[]).await,
    }
    .map_err(|e| ProvisionError::db(ctx(), e))?;
    let owner = target.owner.map(|(_, id)| id);
    let mut cols: Vec<&str> = target.owner.map(|(c, _)| c).into_iter().collect();
    cols.extend(target.columns.iter().map(|(c, _)| *c));
    let sink = tx
        .copy_in::<_, Bytes>(&format!("COPY {table} ({}) FROM STDIN", cols.join(", ")))
        .await
        .map_err(|e| ProvisionError::db(ctx(), e))?;
    let mut sink = pin!(sink);
    let (chunks, mut rx) = tokio::sync::mpsc::channel::<Bytes>(4);
    let src2 = src.clone();
    let reader = tokio::task::spawn_blocking(move || {
        let lead: Vec<Cell<'static>> = owner.map(Cell::Int).into_iter().collect();
        let mut buf = Vec::with_capacity(COPY_CHUNK + 4096);
        let mut open = true;
        let scan = deck::scan(&src2, &mut |cells| {
            write_copy_line(&lead, cells, &mut buf);
            if buf.len() >= COPY_CHUNK {
                let full = std::mem::replace(&mut buf, Vec::with_capacity(COPY_CHUNK + 4096));
                open = chunks.blocking_send(Bytes::from(full)).is_ok();
            }
            open
        });
        if open && !buf.is_empty() {
            let _ = chunks.blocking_send(Bytes::from(buf));
        }
        scan
    });
    while let Some(chunk) = rx.recv().await {
        sink.send(chunk)
            .await
            .map_err(|e| ProvisionError::db(ctx(), e))?;
    }
    let scan = reader
        .await
        .map_err(|e| ProvisionError::Internal(format!("CSV reader for {}: {e}", src.label)))?;
    if let Some(issue) = scan.issues.into_iter().next() {
        // dropping the sink unfinished aborts the COPY; the caller rolls back
        return Err(ProvisionError::Load { issue });
    }
    let n = sink
        .as_mut()
        .finish()
        .await
        .map_err(|e| ProvisionError::db(ctx(), e))?;
    if n != scan.digest.rows {
        return Err(ProvisionError::Internal(format!(
            "{}: COPY stored {n} rows, the CSV has {}",
            src.label, scan.digest.rows
        )));
    }
    tracing::info!(file = %src.label, table, rows = n, "deck loaded");
    Ok(scan.digest)
}

/// Owner id of a deck at write time (after the row operations created any new route / customer).
pub(crate) fn deck_owner(
    ids: &Ids,
    kind: DeckKind,
    target: &str,
) -> Result<Option<i64>, ProvisionError> {
    match kind {
        DeckKind::VendorRates => lookup(&ids.route, "route", target).map(Some),
        DeckKind::CustomerRates => lookup(&ids.customer, "customer", target).map(Some),
        _ => Ok(None),
    }
}

/// When a route's `rates` take over. A route's first rates (no versions, no rows) start at
/// `rates_effective_from` (default: always); later ones take over now, or at
/// `rates_effective_from` if that is later: a new version never starts in the past, which would
/// cut the versions after it.
pub(crate) async fn version_effective(
    tx: &Transaction<'_>,
    route_id: i64,
    rates_from: i64,
) -> Result<Since, ProvisionError> {
    tx.query_one(
        "SELECT CASE WHEN EXISTS (SELECT 1 FROM deck_versions WHERE route_id = $1) \
                       OR EXISTS (SELECT 1 FROM vendor_rates WHERE route_id = $1) \
                     THEN greatest(now(), $2::text::timestamptz) ELSE $2::text::timestamptz END",
        &[&route_id, &fmt_ts(rates_from)],
    )
    .await
    .and_then(|r| r.try_get(0))
    .map_err(|e| ProvisionError::db("reading the clock", e))
}

/// The deck version of a route in force at `at`, if the route has versions.
pub(crate) async fn route_version_at(
    tx: &Transaction<'_>,
    route_id: i64,
    at: Since,
) -> Result<Option<InForce>, ProvisionError> {
    Ok(version_at(tx, route_id, at).await?)
}

/// Loads a route's `rates` as a new deck version, through the code of `warpd deck import`: the
/// route is locked, its rows from before its first version become the baseline version, the
/// CSV's rows are COPYed into `deck_rates`, and the version goes live on the route's timeline
/// (rewriting the route's `vendor_rates`) with its `deck.import` audit row. Returns its id.
pub(crate) async fn load_route_version(
    tx: &Transaction<'_>,
    src: &DeckSource,
    route: &str,
    replaces: Option<(i64, u64)>,
    actor: &str,
) -> Result<i64, ProvisionError> {
    let route_id = lock_route(tx, route).await?.id;
    let effective = version_effective(tx, route_id, src.effective_from).await?;
    let version_id = new_version(tx, route_id, effective, &src.label, actor).await?;
    let digest = load_deck(tx, src, &Rows::version(version_id)).await?;
    let rows = digest.rows;
    let columns: Vec<String> = CANONICAL_LAYOUT.iter().map(|c| c.to_string()).collect();
    let layout = VersionLayout {
        columns: &columns,
        fields: CANONICAL_LAYOUT,
        rows,
        skipped_rows: 0,
        digest: Some(digest.to_text()),
    };
    record_layout(tx, version_id, &layout).await?;
    let a = VersionAudit {
        route,
        version_id,
        state: "live",
        effective,
        rows,
        skipped_rows: 0,
        source: &src.label,
        actor,
        before: replaces,
        via: "apply",
    };
    go_live(tx, route_id, &a).await?;
    Ok(version_id)
}
