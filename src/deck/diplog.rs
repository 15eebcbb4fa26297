//! A bounded log of recent real dip inputs, for shadow evaluation of candidate deck versions
//! (until CDRs keep dip inputs). The dip handler records into memory without ever waiting
//! (`try_lock`; a contended sample is dropped); a background task copies new samples into
//! `dip_samples` and trims that table to a fixed size, so the CLI can replay them too.
//!
//! Owns: `dip_samples`. Must not touch: the dip answer, routing.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use tokio_postgres::GenericClient;
use tokio_util::sync::CancellationToken;

use crate::routing::DipRequest;

/// Samples kept in memory and in `dip_samples`.
pub const DEFAULT_CAPACITY: usize = 10_000;
/// How often new samples are written to the database.
pub const FLUSH_EVERY: Duration = Duration::from_secs(5);

pub struct DipLog {
    inner: Mutex<Ring>,
    capacity: usize,
    dropped: AtomicU64,
}

struct Ring {
    items: VecDeque<(u64, DipRequest)>,
    next_seq: u64,
    flushed_seq: u64,
}

impl DipLog {
    pub fn new(capacity: usize) -> DipLog {
        DipLog {
            inner: Mutex::new(Ring {
                items: VecDeque::with_capacity(capacity.min(1 << 16)),
                next_seq: 0,
                flushed_seq: 0,
            }),
            capacity: capacity.max(1),
            dropped: AtomicU64::new(0),
        }
    }

    /// Records one dip input. Never blocks: if the log is busy the sample is dropped.
    pub fn record(&self, req: &DipRequest) {
        match self.inner.try_lock() {
            Ok(mut r) => {
                if r.items.len() >= self.capacity {
                    r.items.pop_front();
                }
                let seq = r.next_seq;
                r.next_seq += 1;
                r.items.push_back((seq, req.clone()));
            }
            Err(_) => {
                self.dropped.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// The samples in memory, oldest first.
    pub fn samples(&self) -> Vec<DipRequest> {
        match self.inner.lock() {
            Ok(r) => r.items.iter().map(|(_, d)| d.clone()).collect(),
            Err(p) => p
                .into_inner()
                .items
                .iter()
                .map(|(_, d)| d.clone())
                .collect(),
        }
    }

    /// Samples recorded since the last call (marks them as taken).
    fn take_new(&self) -> Vec<DipRequest> {
        let mut r = match self.inner.lock() {
            Ok(r) => r,
            Err(p) => p.into_inner(),
        };
        let from = r.flushed_seq;
        r.flushed_seq = r.next_seq;
        r.items
            .iter()
            .filter(|(s, _)| *s >= from)
            .map(|(_, d)| d.clone())
            .collect()
    }

    /// Writes new samples to `dip_samples` and trims the table to the capacity.
    pub async fn flush<C: GenericClient>(&self, c: &C) -> Result<u64, tokio_postgres::Error> {
        let new = self.take_new();
        if new.is_empty() {
            return Ok(0);
        }
        let json = serde_json::to_value(&new).unwrap_or(serde_json::Value::Null);
        let n = c
            .execute(
                "INSERT INTO dip_samples (request) SELECT x FROM jsonb_array_elements($1::jsonb) x",
                &[&json],
            )
            .await?;
        c.execute(
            "DELETE FROM dip_samples WHERE id <= (SELECT max(id) FROM dip_samples) - $1",
            &[&(self.capacity as i64)],
        )
        .await?;
        Ok(n)
    }

    /// Flushes every [`FLUSH_EVERY`] until `shutdown`, reconnecting as needed.
    pub fn spawn_flusher(
        self: std::sync::Arc<Self>,
        url: String,
        shutdown: CancellationToken,
    ) -> tokio::task::JoinHandle<()> {
        tokio::spawn(async move {
            let mut client = None;
            loop {
                tokio::select! {
                    _ = shutdown.cancelled() => break,
                    _ = tokio::time::sleep(FLUSH_EVERY) => {}
                }
                if client.is_none() {
                    client = crate::db::connect(&url).await.ok();
                }
                if let Some(c) = &client {
                    if let Err(e) = self.flush(c).await {
                        tracing::warn!(error = %e, "writing dip samples failed");
                        client = None;
                    }
                }
            }
        })
    }
}

/// The newest `limit` samples from `dip_samples`, oldest first.
pub async fn load_samples<C: GenericClient>(
    c: &C,
    limit: i64,
) -> Result<Vec<DipRequest>, tokio_postgres::Error> {
    let rows = c
        .query(
            "SELECT request FROM (SELECT id, request FROM dip_samples ORDER BY id DESC LIMIT $1) s ORDER BY id",
            &[&limit],
        )
        .await?;
    Ok(rows
        .iter()
        .filter_map(|r| serde_json::from_value(r.get::<_, serde_json::Value>(0)).ok())
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(n: u32) -> DipRequest {
        DipRequest {
            ban: Some("1".into()),
            src_ip: None,
            trunk: None,
            ani: "+12125550100".into(),
            dnis: format!("+1312555{n:04}"),
            lrn: None,
            call_id: None,
            max_results: None,
            identity: None,
        }
    }

    #[test]
    fn bounded_and_takes_only_new() {
        let log = DipLog::new(3);
        for i in 0..5 {
            log.record(&req(i));
        }
        let s = log.samples();
        assert_eq!(s.len(), 3);
        assert_eq!(s[0].dnis, "+13125550002");
        assert_eq!(log.take_new().len(), 3);
        assert!(log.take_new().is_empty());
        log.record(&req(9));
        assert_eq!(log.take_new(), vec![req(9)]);
    }
}
