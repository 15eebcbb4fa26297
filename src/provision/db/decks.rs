//! Decks of `warpd apply`: the row count and fingerprint of a deck's current target rows
//! ([`deck_digest`], to skip unchanged decks), the owner of a deck at write time
//! ([`deck_owner`]) and the replacement of its rows by DELETE + `COPY FROM STDIN`
//! ([`load_deck`]).
//!
//! Owns: the deck SQL of `warpd apply`. Must not touch: the row operations (see `execute`).

use std::pin::pin;

use bytes::Bytes;
use futures_util::{SinkExt, TryStreamExt};
use tokio_postgres::types::ToSql;
use tokio_postgres::Transaction;

use super::execute::{lookup, Ids};
use crate::provision::deck::{self, ColType, DeckKind, DeckSource};
use crate::provision::error::ProvisionError;
use crate::provision::values::*;

/// Row count and fingerprint of a deck's target rows (one route / customer, or a whole table).
/// The fingerprint is only computed when the count equals `expected_rows`.
pub(crate) async fn deck_digest(
    tx: &Transaction<'_>,
    kind: DeckKind,
    owner: Option<i64>,
    expected_rows: u64,
) -> Result<(u64, Option<Digest>), ProvisionError> {
    let table = kind.table();
    let filter = match (kind.owner_column(), owner) {
        (Some(c), Some(_)) => format!(" WHERE {c} = $1"),
        _ => String::new(),
    };
    let params: Vec<&(dyn ToSql + Sync)> = match (kind.owner_column(), &owner) {
        (Some(_), Some(id)) => vec![id],
        _ => vec![],
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
    let cols = kind.columns();
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
pub(crate) async fn load_deck(
    tx: &Transaction<'_>,
    src: &DeckSource,
    owner: Option<i64>,
) -> Result<u64, ProvisionError> {
    let kind = src.kind;
    let table = kind.table();
    let ctx = || format!("loading {} into {table}", src.label);
    match (kind.owner_column(), owner) {
        (Some(c), Some(id)) => {
            tx.execute(&format!("DELETE FROM {table} WHERE {c} = $1"), &[&id])
                .await
        }
        (None, _) => tx.execute(&format!("DELETE FROM {table}"), &[]).await,
        (Some(_), None) => {
            return Err(ProvisionError::Internal(format!(
                "{table} deck without an owner id"
            )))
        }
    }
    .map_err(|e| ProvisionError::db(ctx(), e))?;
    let mut cols: Vec<&str> = kind.owner_column().into_iter().collect();
    cols.extend(kind.columns().iter().map(|(c, _)| *c));
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
    Ok(n)
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
