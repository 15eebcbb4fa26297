//! PostgreSQL side of calls and CDRs: one transaction per batch (event rows, CDRs through a COPY
//! into a temporary staging table then `INSERT … ON CONFLICT DO NOTHING`, deletion of the finished
//! calls' event rows), monthly partitions created on demand, and loading the unfinished calls.

use std::collections::HashSet;

use bytes::Bytes;
use chrono::{Datelike, TimeZone, Utc};
use futures_util::SinkExt;
use tokio_postgres::Client;

use super::{Cdr, COPY_COLUMNS};
use warpd_core::calls::events::Event;

/// Prepares a writer session (call once per connection): commits wait for the WAL write even
/// when the server runs with `synchronous_commit = off` (an acknowledged event must survive a
/// database crash), and the staging table for COPY exists.
pub async fn prepare(client: &Client) -> Result<(), tokio_postgres::Error> {
    client
        .batch_execute(
            "SET synchronous_commit = on; CREATE TEMP TABLE IF NOT EXISTS cdr_stage (LIKE cdrs INCLUDING DEFAULTS, \
             orphan boolean NOT NULL DEFAULT false) ON COMMIT DELETE ROWS",
        )
        .await
}

/// Month index (year * 12 + month0) of a unix-microsecond time.
fn month_of(us: i64) -> i64 {
    match chrono::DateTime::from_timestamp_micros(us) {
        Some(t) => t.year() as i64 * 12 + t.month0() as i64,
        None => 0,
    }
}

fn month_start(m: i64) -> String {
    let (y, mo) = (m.div_euclid(12) as i32, m.rem_euclid(12) as u32 + 1);
    match Utc.with_ymd_and_hms(y, mo, 1, 0, 0, 0).single() {
        Some(t) => t.format("%Y-%m-%d 00:00:00+00").to_string(),
        None => "1970-01-01 00:00:00+00".into(),
    }
}

/// Makes sure the monthly partitions for these CDRs exist (`known` caches what was created).
pub async fn ensure_partitions(
    client: &Client,
    cdrs: &[Cdr],
    known: &mut HashSet<i64>,
) -> Result<(), tokio_postgres::Error> {
    let months: HashSet<i64> = cdrs.iter().map(|c| month_of(c.started_us)).collect();
    for m in months {
        if known.contains(&m) {
            continue;
        }
        let (y, mo) = (m.div_euclid(12), m.rem_euclid(12) + 1);
        let sql = format!(
            "CREATE TABLE IF NOT EXISTS cdrs_y{y:04}m{mo:02} PARTITION OF cdrs FOR VALUES FROM ('{}') TO ('{}')",
            month_start(m),
            month_start(m + 1)
        );
        client.batch_execute(&sql).await?;
        known.insert(m);
    }
    Ok(())
}

/// Counts of one committed batch.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Committed {
    pub events: u64,
    pub cdrs: u64,
    /// standings of the credit accounts charged in the batch (`crate::credit::store::charge`)
    pub standings: Vec<(String, warpd_core::credit::Standing)>,
}

/// True for a unique violation (the fast path met a row that already exists).
pub fn is_unique_violation(e: &tokio_postgres::Error) -> bool {
    e.code() == Some(&tokio_postgres::error::SqlState::UNIQUE_VIOLATION)
}

async fn copy(
    tx: &tokio_postgres::Transaction<'_>,
    sql: &str,
    buf: String,
) -> Result<u64, tokio_postgres::Error> {
    let sink = tx.copy_in(sql).await?;
    futures_util::pin_mut!(sink);
    sink.send(Bytes::from(buf)).await?;
    sink.as_mut().finish().await
}

/// Writes one batch in one transaction: events of unfinished calls, CDRs, and removes the event
/// rows of the calls in `done`.
///
/// `safe = false` is the fast path: plain COPY of events and CDRs; it fails with a unique
/// violation if any row exists already (the caller then retries with `safe = true`). The safe
/// path is idempotent: events `ON CONFLICT DO NOTHING`, CDRs COPY'd into a staging table then
/// `INSERT … ON CONFLICT DO NOTHING` on `(call_id, started_at)`, orphans only when their call-id
/// has no CDR. Batches holding orphans always take the safe path.
pub async fn commit_batch(
    client: &mut Client,
    events: &[&Event],
    cdrs: &[Cdr],
    done: &[String],
    partitions: &mut HashSet<i64>,
    safe: bool,
) -> Result<Committed, tokio_postgres::Error> {
    let safe = safe || cdrs.iter().any(|c| c.orphan);
    ensure_partitions(client, cdrs, partitions).await?;
    let tx = client.transaction().await?;
    let mut out = Committed::default();
    if !events.is_empty() && !safe {
        let mut buf = String::with_capacity(events.len() * 200);
        for e in events {
            super::esc(&mut buf, &e.call_id);
            buf.push('\t');
            buf.push_str(e.kind());
            buf.push('\t');
            buf.push_str(&e.attempt_key().to_string());
            buf.push('\t');
            super::esc(&mut buf, &e.to_json());
            buf.push('\n');
        }
        out.events = copy(
            &tx,
            "COPY call_events (call_id, kind, attempt, body) FROM STDIN",
            buf,
        )
        .await?;
    } else if !events.is_empty() {
        let mut ids = Vec::with_capacity(events.len());
        let mut kinds = Vec::with_capacity(events.len());
        let mut attempts = Vec::with_capacity(events.len());
        let mut bodies = Vec::with_capacity(events.len());
        for e in events {
            ids.push(e.call_id.as_str());
            kinds.push(e.kind());
            attempts.push(e.attempt_key());
            bodies.push(e.to_json());
        }
        out.events = tx
            .execute(
                "INSERT INTO call_events (call_id, kind, attempt, body) \
                 SELECT * FROM unnest($1::text[], $2::text[], $3::int4[], $4::text[]) \
                 ON CONFLICT DO NOTHING",
                &[&ids, &kinds, &attempts, &bodies],
            )
            .await?;
    }
    if !cdrs.is_empty() {
        let mut buf = String::with_capacity(cdrs.len() * 512);
        for c in cdrs {
            c.copy_line(&mut buf, safe);
        }
        if safe {
            copy(
                &tx,
                &format!("COPY cdr_stage ({COPY_COLUMNS}, orphan) FROM STDIN"),
                buf,
            )
            .await?;
            // the CDRs actually inserted (a replayed one exists already, and so does its charge)
            let rows = tx
                .query(
                    &format!(
                        "INSERT INTO cdrs ({COPY_COLUMNS}) SELECT {COPY_COLUMNS} FROM cdr_stage s \
                         WHERE NOT (s.orphan AND EXISTS (SELECT 1 FROM cdrs c WHERE c.call_id = s.call_id)) \
                         ON CONFLICT DO NOTHING RETURNING call_id"
                    ),
                    &[],
                )
                .await?;
            out.cdrs = rows.len() as u64;
            let inserted: HashSet<String> = rows.iter().filter_map(|r| r.try_get(0).ok()).collect();
            let charges = charges(cdrs.iter().filter(|c| inserted.contains(&c.call_id)));
            out.standings = crate::credit::store::charge(&tx, &charges).await?;
        } else {
            out.cdrs = copy(&tx, &format!("COPY cdrs ({COPY_COLUMNS}) FROM STDIN"), buf).await?;
            out.standings = crate::credit::store::charge(&tx, &charges(cdrs.iter())).await?;
        }
    }
    if !done.is_empty() {
        tx.execute("DELETE FROM call_events WHERE call_id = ANY($1)", &[&done])
            .await?;
    }
    tx.commit().await?;
    Ok(out)
}

/// The credit charges of CDRs (those of a customer; the ledger keeps those with an account).
fn charges<'a>(cdrs: impl Iterator<Item = &'a Cdr>) -> Vec<crate::credit::store::Charge<'a>> {
    cdrs.filter_map(|c| {
        Some(crate::credit::store::Charge {
            ban: c.customer_ban.as_deref()?,
            price_e7: c.price_e7,
            call_id: &c.call_id,
            started_us: c.started_us,
            billed_s: c.customer_billed_s,
        })
    })
    .collect()
}

/// Every stored event of unfinished calls, sorted by call and replay order; rows whose body does
/// not parse are returned as (call_id, kind, attempt, error) for the log.
pub async fn load_unfinished(
    client: &Client,
) -> Result<(Vec<Event>, Vec<String>), tokio_postgres::Error> {
    let rows = client
        .query("SELECT call_id, kind, attempt, body FROM call_events", &[])
        .await?;
    let mut events = Vec::with_capacity(rows.len());
    let mut bad = vec![];
    for r in rows {
        let body: String = r.try_get(3)?;
        match Event::from_json(body.as_bytes()) {
            Ok(e) => events.push(e),
            Err(e) => {
                let id: String = r.try_get(0)?;
                let kind: String = r.try_get(1)?;
                let attempt: i32 = r.try_get(2)?;
                bad.push(format!("call_events ({id:?}, {kind}, {attempt}): {e}"));
            }
        }
    }
    events.sort_by(|a, b| a.call_id.cmp(&b.call_id).then(a.rank().cmp(&b.rank())));
    Ok((events, bad))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn months() {
        let m = month_of(1_700_000_000_000_000); // 2023-11-14
        assert_eq!(month_start(m), "2023-11-01 00:00:00+00");
        assert_eq!(month_start(m + 2), "2024-01-01 00:00:00+00");
    }
}
