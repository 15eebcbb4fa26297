//! The writer task: the single consumer of call events. For each batch it applies the events to
//! the live call table in queue order, rates the calls that finished, and makes everything durable
//! in ONE step: a PostgreSQL transaction (event rows, CDRs, deletion of finished calls' rows) or,
//! when the database is unreachable, an fsync'd append to the spool. Only then are the events
//! acknowledged. While the spool holds records, every database commit replays it first, and the
//! file is removed after that commit.
//!
//! Recovery ([`Writer::recover`]) at start: replay the spool into the database, then rebuild the
//! live calls from `call_events`, writing the CDRs of calls that had already ended.

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::events::Event;
use super::state::{Applied, CallRecord, ReapLimits};
use super::{now_us, CallsError, Job, NotDurable, Shared, SpoolFailure};
use crate::cdr::spool::Spool;
use crate::cdr::store::{self, Committed};
use crate::cdr::{build, Cdr};
use crate::config::Config;
use crate::db::DbError;

/// Time between reconnection attempts while the database is down.
const RECONNECT_EVERY: Duration = Duration::from_millis(500);

pub struct Writer {
    shared: Arc<Shared>,
    url: String,
    client: Option<tokio_postgres::Client>,
    last_connect: Option<Instant>,
    spool: Option<Spool>,
    partitions: HashSet<i64>,
    batch_size: usize,
    quality_prefix_digits: usize,
    flush_interval: Duration,
    db_timeout: Duration,
    /// CDRs and finished call-ids rated while the database was down (their events are spooled)
    pending_cdrs: Vec<Cdr>,
    pending_done: Vec<String>,
    /// events neither committed nor spooled (both failed): retried with the next batch
    unpersisted: Vec<Event>,
}

impl Writer {
    /// Opens the spool, connects, replays the spool and rebuilds the live calls.
    pub async fn recover(config: &Config, shared: Arc<Shared>) -> Result<Writer, CallsError> {
        let dir = PathBuf::from(&config.cdr.spool_dir);
        let spool = Spool::open(&dir).map_err(|source| CallsError::Spool {
            path: dir.clone(),
            source,
        })?;
        let mut w = Writer {
            shared,
            url: config.database.url.clone(),
            client: None,
            last_connect: None,
            spool: Some(spool),
            partitions: HashSet::new(),
            batch_size: config.cdr.batch_size,
            quality_prefix_digits: config.calls.quality_prefix_digits,
            flush_interval: Duration::from_millis(config.cdr.flush_interval_ms),
            db_timeout: Duration::from_millis(config.cdr.db_timeout_ms),
            pending_cdrs: vec![],
            pending_done: vec![],
            unpersisted: vec![],
        };
        w.connect().await?;
        // 1. spool → database
        w.commit(&[], vec![], vec![], true).await?;
        // 2. database → live table; calls that already ended get their CDR now
        let Some(client) = w.client.as_ref() else {
            return Err(CallsError::NotConnected);
        };
        let (events, bad) = store::load_unfinished(client)
            .await
            .map_err(DbError::query("loading unfinished calls"))?;
        for b in bad {
            tracing::error!(row = %b, "unreadable call event row skipped");
        }
        let now = now_us();
        let mut cdrs = vec![];
        let mut done = vec![];
        {
            let mut t = w.shared.table();
            for e in &events {
                if let Applied::New {
                    finished: Some(c), ..
                } = t.apply(e, now)
                {
                    done.push(c.call_id.clone());
                    cdrs.push(w.rate(&c));
                }
            }
            w.shared.metrics.active.set(t.live() as i64);
        }
        let live = w.shared.table().live();
        tracing::info!(
            events = events.len(),
            live_calls = live,
            cdrs = cdrs.len(),
            "call state rebuilt from the database"
        );
        // rebuilt CDRs may have been committed before the crash: idempotent path
        w.commit(&[], cdrs, done, true).await?;
        Ok(w)
    }

    fn rate(&self, c: &CallRecord) -> Cdr {
        let cdr = build(c);
        self.shared
            .quality()
            .record(c, cdr.duration_ms, now_us(), self.quality_prefix_digits);
        cdr
    }

    async fn connect(&mut self) -> Result<(), CallsError> {
        self.last_connect = Some(Instant::now());
        let fut = async {
            let c = crate::db::connect(&self.url).await?;
            store::prepare(&c)
                .await
                .map_err(DbError::query("preparing the call event statements"))?;
            Ok::<_, CallsError>(c)
        };
        match tokio::time::timeout(self.db_timeout, fut).await {
            Ok(Ok(c)) => {
                self.client = Some(c);
                Ok(())
            }
            Ok(Err(e)) => Err(e),
            Err(_) => Err(CallsError::DbTimeout("connect")),
        }
    }

    /// Commits `events` (+ spooled ones), `cdrs` (+ pending) and deletes `done` (+ pending) in one
    /// transaction. On success the spool is cleared and pending lists emptied. Fresh batches take
    /// the fast path (plain COPY); anything that may already be in the database (spool, pending
    /// after a failed commit whose outcome is unknown, recovery, orphans) takes the idempotent
    /// path, and so does a fast batch that met an existing row.
    async fn commit(
        &mut self,
        events: &[Event],
        cdrs: Vec<Cdr>,
        done: Vec<String>,
        safe: bool,
    ) -> Result<Committed, CallsError> {
        let spool_events: Vec<Event> = match &self.spool {
            Some(s) if !s.is_empty() => {
                let c = s.read().map_err(|source| CallsError::Spool {
                    path: s.path().to_path_buf(),
                    source,
                })?;
                if let Some(d) = &c.damage {
                    self.shared.metrics.spool_damaged.inc();
                    tracing::warn!(path = %s.path().display(), damage = %d,
                        "spool ends in a cut or corrupt record (never acknowledged); it is dropped");
                }
                let mut v = Vec::with_capacity(c.records.len());
                for r in &c.records {
                    match Event::from_json(r) {
                        Ok(e) => v.push(e),
                        Err(e) => tracing::error!(error = %e, "unreadable spool record skipped"),
                    }
                }
                v
            }
            _ => vec![],
        };
        let mut all_done: HashSet<&str> = self.pending_done.iter().map(String::as_str).collect();
        all_done.extend(done.iter().map(String::as_str));
        let to_insert: Vec<&Event> = spool_events
            .iter()
            .chain(self.unpersisted.iter())
            .chain(events.iter())
            .filter(|e| !all_done.contains(e.call_id.as_str()))
            .collect();
        let mut all_cdrs: Vec<Cdr> = self.pending_cdrs.clone();
        all_cdrs.extend(cdrs.iter().cloned());
        let mut done_ids: Vec<String> = self.pending_done.clone();
        done_ids.extend(done.iter().cloned());
        let safe = safe
            || !spool_events.is_empty()
            || !self.pending_cdrs.is_empty()
            || !self.pending_done.is_empty()
            || !self.unpersisted.is_empty();
        let Some(client) = self.client.as_mut() else {
            return Err(CallsError::NotConnected);
        };
        let parts = &mut self.partitions;
        let mut res = tokio::time::timeout(
            self.db_timeout,
            store::commit_batch(client, &to_insert, &all_cdrs, &done_ids, parts, safe),
        )
        .await;
        if matches!(&res, Ok(Err(e)) if !safe && store::is_unique_violation(e)) {
            tracing::info!("a row of the batch exists already; writing it idempotently");
            res = tokio::time::timeout(
                self.db_timeout,
                store::commit_batch(client, &to_insert, &all_cdrs, &done_ids, parts, true),
            )
            .await;
        }
        let res = match res {
            Ok(Ok(c)) => Ok(c),
            Ok(Err(e)) => Err(DbError::query("writing call events and CDRs")(e).into()),
            Err(_) => Err(CallsError::DbTimeout("write")),
        };
        match res {
            Ok(mut c) => {
                if !spool_events.is_empty() {
                    tracing::info!(
                        events = spool_events.len(),
                        "spool replayed into the database"
                    );
                }
                if let Some(s) = self.spool.as_mut() {
                    if !s.is_empty() {
                        if let Err(e) = s.clear() {
                            tracing::error!(error = %e, "removing the replayed spool failed (replay is idempotent)");
                        }
                    }
                    self.shared.metrics.spool_bytes.set(s.len() as i64);
                }
                // the charged accounts' standings, then the finished calls' reservations
                let standings = std::mem::take(&mut c.standings);
                self.shared.credit.settle(standings, &done_ids);
                self.pending_cdrs.clear();
                self.pending_done.clear();
                self.unpersisted.clear();
                self.shared.metrics.cdrs_written.inc_by(c.cdrs);
                Ok(c)
            }
            Err(e) => {
                // the connection may be broken or the session state unknown: start afresh
                self.client = None;
                Err(e)
            }
        }
    }

    /// Makes one batch durable: database, else spool. `Err` only when both failed.
    async fn persist(
        &mut self,
        events: Vec<Event>,
        cdrs: Vec<Cdr>,
        done: Vec<String>,
    ) -> Result<(), Arc<NotDurable>> {
        if self.client.as_ref().is_some_and(|c| c.is_closed()) {
            self.client = None;
        }
        if self.client.is_none()
            && self
                .last_connect
                .is_none_or(|t| t.elapsed() >= RECONNECT_EVERY)
        {
            match self.connect().await {
                Ok(()) => tracing::info!("database connection for call events (re)established"),
                Err(e) => tracing::debug!(error = %e, "database still unreachable"),
            }
        }
        let t0 = Instant::now();
        if self.client.is_some() {
            match self
                .commit(&events, cdrs.clone(), done.clone(), false)
                .await
            {
                Ok(_) => {
                    self.shared
                        .metrics
                        .batches
                        .with_label_values(&["db", "ok"])
                        .inc();
                    self.shared
                        .metrics
                        .batch_seconds
                        .observe(t0.elapsed().as_secs_f64());
                    return Ok(());
                }
                Err(e) => {
                    self.shared
                        .metrics
                        .batches
                        .with_label_values(&["db", "error"])
                        .inc();
                    tracing::warn!(error = %e, "database write failed; spooling");
                }
            }
        }
        // spool: every event of the batch (also those of finished calls: a crash must be able
        // to rebuild their CDRs), plus events that failed before
        let mut all: Vec<Event> = std::mem::take(&mut self.unpersisted);
        all.extend(events);
        let payloads: Vec<Vec<u8>> = all.iter().map(|e| e.to_json().into_bytes()).collect();
        let res = match self.spool.take() {
            Some(mut s) => {
                let (s, r) = tokio::task::spawn_blocking(move || {
                    let r = s.append(payloads.iter().map(Vec::as_slice));
                    (s, r)
                })
                .await
                .map_err(|e| Arc::new(NotDurable(SpoolFailure::Task(e))))?;
                self.shared.metrics.spool_bytes.set(s.len() as i64);
                self.spool = Some(s);
                r.map_err(SpoolFailure::Write)
            }
            None => Err(SpoolFailure::Unavailable),
        };
        self.pending_cdrs.extend(cdrs);
        self.pending_done.extend(done);
        match res {
            Ok(()) => {
                self.shared
                    .metrics
                    .batches
                    .with_label_values(&["spool", "ok"])
                    .inc();
                self.shared
                    .metrics
                    .batch_seconds
                    .observe(t0.elapsed().as_secs_f64());
                Ok(())
            }
            Err(e) => {
                self.shared
                    .metrics
                    .batches
                    .with_label_values(&["spool", "error"])
                    .inc();
                tracing::error!(error = %e, "spool write failed too; events are held in memory and retried");
                self.unpersisted = all;
                Err(Arc::new(NotDurable(e)))
            }
        }
    }

    /// Applies events in order; returns (events to persist, CDRs, finished ids).
    fn apply(&self, events: Vec<Event>) -> (Vec<Event>, Vec<Cdr>, Vec<String>) {
        let now = now_us();
        let mut persist = Vec::with_capacity(events.len());
        let mut cdrs = vec![];
        let mut done = vec![];
        let m = &self.shared.metrics;
        for ev in events {
            let r = self.shared.table().apply(&ev, now);
            let kind = ev.kind();
            match r {
                Applied::New {
                    inject_start,
                    finished,
                } => {
                    m.events.with_label_values(&[kind, "new"]).inc();
                    if let Some(s) = inject_start {
                        persist.push(*s);
                    }
                    persist.push(ev);
                    if let Some(c) = finished {
                        done.push(c.call_id.clone());
                        cdrs.push(self.rate(&c));
                    }
                }
                Applied::Duplicate => m.events.with_label_values(&[kind, "duplicate"]).inc(),
                Applied::AfterFinish => {
                    m.events.with_label_values(&[kind, "after_finish"]).inc();
                    tracing::info!(call_id = %ev.call_id, kind, "event for a call that already has its CDR; dropped");
                }
            }
        }
        (persist, cdrs, done)
    }

    /// The task: batches jobs, runs the reaper, stops after draining when `shutdown` fires.
    pub async fn run(
        mut self,
        mut rx: mpsc::Receiver<Job>,
        reap: ReapLimits,
        reap_every: Duration,
        shutdown: CancellationToken,
    ) {
        let mut tick = tokio::time::interval(reap_every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut stopping = false;
        loop {
            let mut jobs: Vec<Job> = vec![];
            let mut reaped_orphans: Vec<CallRecord> = vec![];
            tokio::select! {
                j = rx.recv() => match j {
                    Some(j) => jobs.push(j),
                    None => stopping = true,
                },
                _ = tick.tick() => {
                    let r = self.shared.table().reap(now_us(), reap);
                    for e in &r.ends {
                        if let super::events::EventData::End(x) = &e.data {
                            let reason = x.reaped.as_deref().unwrap_or("reaped");
                            self.shared.metrics.reaped.with_label_values(&[reason]).inc();
                            tracing::info!(call_id = %e.call_id, reason, "call closed by the reaper");
                        }
                    }
                    if !r.orphans.is_empty() {
                        self.shared.metrics.reaped.with_label_values(&["orphan"]).inc_by(r.orphans.len() as u64);
                    }
                    reaped_orphans = r.orphans;
                    if !r.ends.is_empty() {
                        jobs.push(Job { events: r.ends, ack: None });
                    }
                    // a pending spool is retried even without traffic
                    let spooled = self.spool.as_ref().is_some_and(|s| !s.is_empty())
                        || !self.pending_cdrs.is_empty() || !self.unpersisted.is_empty();
                    if jobs.is_empty() && reaped_orphans.is_empty() && !spooled {
                        continue;
                    }
                },
                _ = shutdown.cancelled(), if !stopping => {
                    stopping = true;
                    rx.close();
                },
            }
            let n = fill_batch(
                &mut rx,
                &mut jobs,
                self.batch_size,
                self.flush_interval,
                stopping,
            )
            .await;
            let mut acks = Vec::with_capacity(jobs.len());
            let mut events = Vec::with_capacity(n);
            for j in jobs {
                events.extend(j.events);
                if let Some(a) = j.ack {
                    acks.push(a);
                }
            }
            let (persist, mut cdrs, mut done) = self.apply(events);
            for o in reaped_orphans {
                tracing::info!(call_id = %o.call_id, "orphan call (events but no dip) closed");
                done.push(o.call_id.clone());
                cdrs.push(self.rate(&o));
            }
            self.shared
                .metrics
                .active
                .set(self.shared.table().live() as i64);
            let res = self.persist(persist, cdrs, done).await;
            for a in acks {
                let _ = a.send(res.clone());
            }
            if stopping && rx.is_empty() {
                // one last try to flush what is pending to the database
                if !self.pending_cdrs.is_empty() || !self.unpersisted.is_empty() {
                    let _ = self.persist(vec![], vec![], vec![]).await;
                }
                break;
            }
        }
        tracing::info!("call writer stopped");
    }
}

/// Adds queued jobs to `jobs` until the batch holds `batch_size` events or the queue is empty.
/// A batch that nobody waits on (only the dips' call starts, which carry no ack) then waits for
/// more jobs up to `flush_interval` after the call: bigger batches, fewer transactions. A batch
/// with an ack closes as soon as the queue is empty, so an event's acknowledgement never waits
/// for company; nor does anything when stopping or when the batch is empty. The deadline is
/// fixed when the batch opens, so a steady stream cannot hold it open longer. Returns the
/// number of events in the batch.
async fn fill_batch(
    rx: &mut mpsc::Receiver<Job>,
    jobs: &mut Vec<Job>,
    batch_size: usize,
    flush_interval: Duration,
    stopping: bool,
) -> usize {
    let mut n: usize = jobs.iter().map(|j| j.events.len()).sum();
    let deadline = tokio::time::Instant::now() + flush_interval;
    while n < batch_size {
        let j = match rx.try_recv() {
            Ok(j) => j,
            Err(_)
                if flush_interval.is_zero()
                    || stopping
                    || jobs.is_empty()
                    || jobs.iter().any(|j| j.ack.is_some()) =>
            {
                break
            }
            Err(_) => match tokio::time::timeout_at(deadline, rx.recv()).await {
                Ok(Some(j)) => j,
                _ => break,
            },
        };
        n += j.events.len();
        jobs.push(j);
    }
    n
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::calls::events::{Event, EventData};

    fn job() -> Job {
        Job {
            events: vec![Event {
                call_id: "c".into(),
                ts_us: 0,
                data: EventData::Answer(Default::default()),
            }],
            ack: None,
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_steady_stream_closes_the_batch_at_the_flush_interval() {
        let (tx, mut rx) = mpsc::channel(1024);
        // one job every millisecond, for a second
        let producer = tokio::spawn(async move {
            for _ in 0..1000 {
                if tx.send(job()).await.is_err() {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        });
        tokio::time::sleep(Duration::from_micros(500)).await;
        let start = tokio::time::Instant::now();
        let mut jobs = vec![rx.recv().await.unwrap()];
        let n = fill_batch(&mut rx, &mut jobs, 5000, Duration::from_millis(5), false).await;
        let took = start.elapsed();
        assert_eq!(n, jobs.len());
        assert!((5..=7).contains(&n), "{n} events in the batch");
        assert!(took <= Duration::from_millis(6), "batch held open {took:?}");
        producer.abort();
    }

    #[tokio::test(start_paused = true)]
    async fn a_batch_somebody_waits_on_closes_when_the_queue_is_empty() {
        let (tx, mut rx) = mpsc::channel(1024);
        tx.send(job()).await.unwrap();
        let (ack, _wait) = tokio::sync::oneshot::channel();
        tx.send(Job {
            ack: Some(ack),
            ..job()
        })
        .await
        .unwrap();
        let producer = tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_millis(1)).await;
                if tx.send(job()).await.is_err() {
                    break;
                }
            }
        });
        let start = tokio::time::Instant::now();
        let mut jobs = vec![rx.recv().await.unwrap()];
        assert_eq!(
            fill_batch(&mut rx, &mut jobs, 5000, Duration::from_millis(50), false).await,
            2
        );
        assert_eq!(start.elapsed(), Duration::ZERO);
        producer.abort();
    }

    #[tokio::test(start_paused = true)]
    async fn batch_size_and_a_zero_interval_close_at_once() {
        let (tx, mut rx) = mpsc::channel(1024);
        for _ in 0..10 {
            tx.send(job()).await.unwrap();
        }
        let mut jobs = vec![];
        // an empty batch never waits
        assert_eq!(
            fill_batch(&mut rx, &mut jobs, 4, Duration::from_secs(1), false).await,
            4
        );
        assert_eq!(jobs.len(), 4);
        let start = tokio::time::Instant::now();
        assert_eq!(
            fill_batch(&mut rx, &mut jobs, 100, Duration::ZERO, false).await,
            10
        );
        assert_eq!(start.elapsed(), Duration::ZERO);
        // queue empty, stopping: no wait either
        assert_eq!(
            fill_batch(&mut rx, &mut jobs, 100, Duration::from_secs(1), true).await,
            10
        );
        assert_eq!(start.elapsed(), Duration::ZERO);
    }
}
