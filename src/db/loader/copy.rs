//! Streaming binary COPY: `COPY (query) TO STDOUT (FORMAT binary)` on one or more connections,
//! merged round-robin and fed chunk by chunk to `warpd_core::pgcopy::BinaryCopy`, plus the
//! field readers whose errors are the loader's ([`DbError`]).
//!
//! Owns: the COPY streams, yielding to the runtime while parsing, the mapping of
//! [`CopyError`] into [`DbError`].
//! Must not touch: the binary format itself (the core's `pgcopy`), which tables are read.

use std::pin::Pin;
use std::task::{Context, Poll};

use futures_util::Stream;
use tokio_postgres::{Client, CopyOutStream};
use warpd_core::pgcopy::{pg_numeric_scaled, BinaryCopy, CopyError, PackedRate};

use super::columns::rate_col;
use super::DbError;
use crate::routing::Rate;

/// Rows between voluntary yields to the runtime while streaming (a few ms of parsing).
const YIELD_EVERY: u64 = 32 * 1024;

impl From<CopyError> for DbError {
    /// A malformed stream is a bad row of its table, named by its position in the stream.
    fn from(e: CopyError) -> Self {
        DbError::bad_row(
            e.table,
            format!("row {} of the stream", e.row),
            format!("binary COPY: {}", e.malformed),
        )
    }
}

/// Round-robin merge of COPY streams, tagging chunks with their stream's index. (Cheaper per
/// chunk than `select_all`, which re-queues a boxed task for every item.)
struct Merge {
    streams: Vec<Pin<Box<CopyOutStream>>>,
    done: Vec<bool>,
    next: usize,
}

impl Merge {
    fn new(streams: Vec<CopyOutStream>) -> Self {
        let done = vec![false; streams.len()];
        Merge {
            streams: streams.into_iter().map(Box::pin).collect(),
            done,
            next: 0,
        }
    }

    fn poll_next(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<Option<(usize, Result<bytes::Bytes, tokio_postgres::Error>)>> {
        let n = self.streams.len();
        let mut live = false;
        for k in 0..n {
            let i = (self.next + k) % n;
            if self.done[i] {
                continue;
            }
            match self.streams[i].as_mut().poll_next(cx) {
                Poll::Ready(Some(item)) => {
                    self.next = (i + 1) % n;
                    return Poll::Ready(Some((i, item)));
                }
                Poll::Ready(None) => self.done[i] = true,
                Poll::Pending => live = true,
            }
        }
        if live {
            Poll::Pending
        } else {
            Poll::Ready(None)
        }
    }

    async fn next(&mut self) -> Option<(usize, Result<bytes::Bytes, tokio_postgres::Error>)> {
        std::future::poll_fn(|cx| self.poll_next(cx)).await
    }
}

/// `COPY (query) TO STDOUT (FORMAT binary)` on each (client, query), streamed concurrently;
/// `f` gets every row's `N` fields as they arrive (rows of different sources interleave).
pub(super) async fn copy_binary<const N: usize>(
    sources: &[(&Client, String)],
    table: &'static str,
    mut f: impl FnMut(&[Option<&[u8]>; N]) -> Result<(), DbError>,
) -> Result<u64, DbError> {
    let ctx = || format!("reading {table}");
    let streams = futures_util::future::try_join_all(sources.iter().map(|(c, q)| {
        let sql = format!("COPY ({q}) TO STDOUT (FORMAT binary)");
        async move { c.copy_out(sql.as_str()).await }
    }))
    .await
    .map_err(DbError::query(ctx()))?;
    let mut merged = Merge::new(streams);
    let mut parsers: Vec<(BinaryCopy<N>, Vec<u8>)> = sources
        .iter()
        .map(|_| (BinaryCopy::new(table), Vec::new()))
        .collect();
    let mut rows = 0u64;
    let mut next_yield = YIELD_EVERY;
    while let Some((i, chunk)) = merged.next().await {
        let chunk = chunk.map_err(|e| DbError::query(ctx())(e))?;
        let Some((parser, carry)) = parsers.get_mut(i) else {
            continue;
        };
        let before = parser.rows();
        if carry.is_empty() {
            // the usual case: a CopyData message holds whole tuples
            let used = parser.parse(&chunk, &mut f)?;
            carry.extend_from_slice(&chunk[used..]);
        } else {
            carry.extend_from_slice(&chunk);
            let used = parser.parse(carry, &mut f)?;
            carry.drain(..used);
        }
        rows += parser.rows() - before;
        if rows >= next_yield {
            next_yield = rows + YIELD_EVERY;
            // parsing is CPU work on a runtime worker: let other tasks (dips) run regularly
            tokio::task::yield_now().await;
        }
    }
    for (parser, carry) in &parsers {
        parser.finish(carry)?;
    }
    Ok(rows)
}

/// A required field, or a bad-row error naming `what`.
pub(super) fn need<T>(
    v: Option<T>,
    table: &'static str,
    key: &dyn Fn() -> String,
    what: &str,
) -> Result<T, DbError> {
    v.ok_or_else(|| DbError::bad_row(table, key(), format!("missing or unreadable {what}")))
}

/// A rate as the model needs it: NULL is no rate, a value must be readable and in range.
pub(super) fn packed_rate(
    r: PackedRate,
    table: &'static str,
    key: &dyn Fn() -> String,
    what: &str,
) -> Result<Option<Rate>, DbError> {
    match r {
        PackedRate::Null => Ok(None),
        PackedRate::Scaled(v) => rate_col(Some(v), table, key, what),
        PackedRate::Unreadable => Err(DbError::bad_row(
            table,
            key(),
            format!("missing or unreadable {what}"),
        )),
    }
}

/// A binary `numeric` rate field, checked by [`packed_rate`].
pub(super) fn field_rate(
    f: Option<&[u8]>,
    table: &'static str,
    key: &dyn Fn() -> String,
    what: &str,
) -> Result<Option<Rate>, DbError> {
    let r = match f {
        None => PackedRate::Null,
        Some(v) => pg_numeric_scaled(v).map_or(PackedRate::Unreadable, PackedRate::Scaled),
    };
    packed_rate(r, table, key, what)
}
