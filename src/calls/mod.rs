//! Calls: live call state, limits at the dip, the reaper's rules, route quality, call-event
//! validation. [`CallService`] is the glue the API calls: [`CallService::on_dip`] (limits,
//! capacity, ASR policy; registers the call) and [`CallService::submit`] (an event, acknowledged
//! once durable through the [`writer`]).
//!
//! Owns: the live call table ([`state`]), the limits view ([`limits`]), route quality
//! ([`quality`]), event validation ([`events`]), the calls/CDR metrics. Must not touch: routing
//! decisions (it only filters/reorders a finished dip answer), SQL beyond [`limits::load`]
//! (persistence is `crate::cdr`), HTTP.

mod alarm;
pub mod cut;
pub mod hangup;
mod inbound;
pub mod limits;
mod metrics;
pub mod writer;

pub use warpd_core::calls::{auth_failure, events, quality, state};

use std::collections::HashSet;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use arc_swap::ArcSwap;
use prometheus::Registry;
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use crate::config::Config;
use crate::db::DbError;
use crate::routing::{DipAnswer, DipRequest, RejectAnswer, RejectReason, Snapshot};
use events::{Event, EventData, RouteOffer, StartInfo};
use limits::LimitsView;
pub use metrics::CallMetrics;
use quality::{Quality, RouteStats};
use state::{Admit, CallPriority, CallTable, ReapLimits};
use warpd_core::credit::Tariff;

/// Errors of the calls/CDR layer.
#[derive(Debug, thiserror::Error)]
pub enum CallsError {
    #[error(transparent)]
    Invalid(#[from] events::EventError),
    #[error("event queue is full; retry")]
    QueueFull,
    #[error("call writer has stopped")]
    WriterGone,
    #[error("event could not be made durable: {0}")]
    NotDurable(#[source] Arc<NotDurable>),
    #[error("database: {0}")]
    Db(#[from] crate::db::DbError),
    #[error("database: not connected")]
    NotConnected,
    #[error("database: {0} timed out")]
    DbTimeout(&'static str),
    #[error("spool {}: {source}", path.display())]
    Spool {
        path: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// Why `call.hangup` did not end a call.
#[derive(Debug, thiserror::Error)]
pub enum HangupFailed {
    #[error("call_id: no live call with this id")]
    NotLive,
    #[error(transparent)]
    Kamailio(#[from] hangup::HangupError),
    #[error("the call was ended but its end could not be recorded: {0}")]
    Record(#[source] CallsError),
}

/// Neither PostgreSQL nor the spool took a batch of events (the database's failure was logged
/// and counted when it happened; this carries the spool's, the last one).
#[derive(Debug, thiserror::Error)]
#[error("neither the database nor the spool accepted the event: {0}")]
pub struct NotDurable(#[source] pub SpoolFailure);

/// Why the spool did not take a batch.
#[derive(Debug, thiserror::Error)]
pub enum SpoolFailure {
    #[error("spool unavailable")]
    Unavailable,
    #[error("spool write: {0}")]
    Write(#[source] std::io::Error),
    #[error("spool task: {0}")]
    Task(#[source] tokio::task::JoinError),
}

/// Unix time now, microseconds.
pub fn now_us() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_micros() as i64)
        .unwrap_or(0)
}

/// State shared by the API side and the writer task.
pub struct Shared {
    table: Mutex<CallTable>,
    quality: Mutex<Quality>,
    pub metrics: CallMetrics,
    /// credit accounts: reservations of live calls, settled by the writer after each commit
    pub credit: crate::credit::Credit,
}

impl Shared {
    pub fn new(cfg: &crate::config::CallsConfig, reg: &Registry) -> Shared {
        Shared {
            table: Mutex::new(CallTable::new(cfg.finished_memory_s as i64 * 1_000_000)),
            quality: Mutex::new(Quality::new(cfg.quality_window_s, 60)),
            metrics: CallMetrics::new(reg),
            credit: crate::credit::Credit::new(reg),
        }
    }
    /// The call table (a poisoned lock is recovered: the table stays consistent per operation).
    pub fn table(&self) -> MutexGuard<'_, CallTable> {
        self.table.lock().unwrap_or_else(|p| p.into_inner())
    }
    pub fn quality(&self) -> MutexGuard<'_, Quality> {
        self.quality.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// A unit of work for the writer: events to apply and make durable, then acknowledge.
pub struct Job {
    pub events: Vec<Event>,
    pub ack: Option<oneshot::Sender<Result<(), Arc<NotDurable>>>>,
}

/// The calls component as the API sees it.
pub struct CallService {
    shared: Arc<Shared>,
    tx: mpsc::Sender<Job>,
    limits: Arc<ArcSwap<LimitsView>>,
    demoted: Arc<ArcSwap<HashSet<String>>>,
    pool: deadpool_postgres::Pool,
    api_token: Option<String>,
    /// `calls.max_call_duration_s`, recorded in each call's start (the CDR's duration cap)
    max_duration_s: u64,
    /// `calls.kamailio_rpc_url` (call.hangup)
    kamailio_rpc_url: Option<String>,
    writer: Mutex<Option<tokio::task::JoinHandle<()>>>,
}

impl CallService {
    /// Recovers (spool replay, live calls rebuilt from the database), then starts the writer,
    /// the reaper and the limits refresher. Fails when the database or spool is unusable.
    pub async fn start(
        config: &Config,
        registry: &Registry,
        shutdown: CancellationToken,
    ) -> Result<Arc<CallService>, CallsError> {
        let shared = Arc::new(Shared::new(&config.calls, registry));
        let pool = crate::db::pool(&config.database.url, 2)?;
        let limits_client = crate::db::connect(&config.database.url).await?;
        let view = limits::load(&limits_client)
            .await
            .map_err(DbError::query("reading call limits"))?;
        let limits = Arc::new(ArcSwap::from_pointee(view));
        let accounts = crate::credit::store::load(&limits_client)
            .await
            .map_err(DbError::query("reading credit accounts"))?;
        shared.credit.refresh(accounts);
        let (tx, rx) = mpsc::channel(config.cdr.queue_capacity);
        let writer = crate::calls::writer::Writer::recover(config, shared.clone()).await?;
        restore_holds(&shared);
        let c = &config.calls;
        let reap = ReapLimits {
            max_duration_us: c.max_call_duration_s as i64 * 1_000_000,
            max_setup_us: c.max_setup_s as i64 * 1_000_000,
            orphan_ttl_us: c.orphan_ttl_s as i64 * 1_000_000,
        };
        let demoted = Arc::new(ArcSwap::from_pointee(HashSet::new()));
        let handle = tokio::spawn(writer.run(
            rx,
            reap,
            Duration::from_millis(c.reaper_interval_ms),
            shutdown.clone(),
        ));
        let alarm_stop = shutdown.clone();
        // limits refresher + route quality publisher
        {
            let limits = limits.clone();
            let demoted = demoted.clone();
            let shared = shared.clone();
            let url = config.database.url.clone();
            let every = Duration::from_millis(c.limits_refresh_ms);
            let (floor, min_n) = (c.asr_floor, c.asr_min_attempts);
            let tick = Duration::from_millis(c.reaper_interval_ms.min(c.limits_refresh_ms));
            tokio::spawn(async move {
                let mut client = Some(limits_client);
                let mut last = std::time::Instant::now();
                loop {
                    tokio::select! {
                        _ = tokio::time::sleep(tick) => {}
                        _ = shutdown.cancelled() => break,
                    }
                    publish_quality(&shared, &demoted, floor, min_n);
                    if last.elapsed() < every {
                        continue;
                    }
                    last = std::time::Instant::now();
                    if client.as_ref().is_none_or(|c| c.is_closed()) {
                        client = crate::db::connect(&url).await.ok();
                    }
                    if let Some(cl) = &client {
                        match limits::load(cl).await {
                            Ok(v) => limits.store(Arc::new(v)),
                            Err(e) => {
                                tracing::warn!(error = %crate::db::pg_detail(&e), "reading call limits failed; keeping the previous ones");
                                client = None;
                            }
                        }
                    }
                    if let Some(cl) = &client {
                        match crate::credit::store::load(cl).await {
                            Ok(a) => shared.credit.refresh(a),
                            Err(e) => {
                                tracing::warn!(error = %crate::db::pg_detail(&e), "reading credit accounts failed; keeping the previous ones");
                                client = None;
                            }
                        }
                    }
                }
            });
        }
        let svc = Arc::new(CallService {
            shared,
            tx,
            limits,
            demoted,
            pool,
            api_token: config.cdr.api_token.clone(),
            max_duration_s: config.calls.max_call_duration_s,
            kamailio_rpc_url: config.calls.kamailio_rpc_url.clone(),
            writer: Mutex::new(Some(handle)),
        });
        tokio::spawn(alarm::run(
            Arc::downgrade(&svc),
            Duration::from_millis(c.limits_refresh_ms),
            alarm_stop,
        ));
        Ok(svc)
    }

    pub fn shared(&self) -> &Arc<Shared> {
        &self.shared
    }

    /// Connection pool for CDR queries.
    pub fn pool(&self) -> &deadpool_postgres::Pool {
        &self.pool
    }

    pub fn api_token(&self) -> Option<&str> {
        self.api_token.as_deref()
    }

    /// Re-reads limits and credit accounts now (tests, after provisioning changes, after an
    /// admin ledger entry).
    pub async fn refresh_limits(&self) -> Result<(), CallsError> {
        let client = self.pool.get().await.map_err(DbError::Pool)?;
        let v = limits::load(&client)
            .await
            .map_err(DbError::query("reading call limits"))?;
        self.limits.store(Arc::new(v));
        let a = crate::credit::store::load(&**client)
            .await
            .map_err(DbError::query("reading credit accounts"))?;
        self.shared.credit.refresh(a);
        Ok(())
    }

    /// Routes that take no new call right now: their live calls reached their capacity. The dip
    /// leaves them out before it picks the partition and cuts at `max_results`
    /// (`Engine::dip_on`); empty (and free) when no route has a capacity.
    pub fn routes_at_capacity(&self) -> Vec<crate::routing::Name> {
        let limits = self.limits.load();
        if limits.route_capacity.is_empty() {
            return Vec::new();
        }
        let table = self.shared.table();
        limits
            .route_capacity
            .iter()
            .filter(|(route, cap)| table.route_calls(route) >= **cap)
            .map(|(route, _)| crate::routing::Name::from(route.as_str()))
            .collect()
    }

    /// Applies limits, capacity and the ASR policy to a dip answer and, for a routed dip with a
    /// `call_id` and a known customer (`ban`: [`Snapshot::ban_for`]), starts the call. A dip with
    /// a `call_id` that ends rejected (by the dip or by the limits here) is written at once as a
    /// CDR with disposition `rejected` ([`Self::record_rejected`]). `snap` is the snapshot the
    /// dip ran on (the request's one load). Never blocks on I/O.
    pub fn on_dip(
        &self,
        req: &DipRequest,
        ban: Option<String>,
        answer: DipAnswer,
        snap: &Snapshot,
    ) -> DipAnswer {
        let answer = self.admit_dip(req, ban.clone(), answer, snap);
        if let DipAnswer::Reject(r) = &answer {
            // a source that is no customer's is no customer's call: Kamailio goes on with the
            // same Call-ID to the inbound dip or a digest challenge (issue 19), and the path
            // that takes the call writes its CDR; a rejected CDR here would be a second one
            if ban.is_some() || r.reason != RejectReason::UnknownCustomer.to_string() {
                self.record_rejected(req, ban, r);
            }
        }
        answer
    }

    /// A call refused at the dip: its start event carries the refusal, so the writer finishes
    /// it at once (a CDR of its customer with disposition `rejected`, the SIP code and reason);
    /// it is never counted live, and Kamailio's `call.end` for it arrives after the finish and is
    /// dropped (no orphan). Nothing for a dip without a usable `call_id` or for a call already
    /// known (a retransmission, or a re-dip of a live call).
    fn record_rejected(&self, req: &DipRequest, ban: Option<String>, r: &RejectAnswer) {
        let Some(call_id) = req.call_id.as_ref().filter(|c| events::valid_call_id(c)) else {
            return;
        };
        {
            let table = self.shared.table();
            if table.get(call_id).is_some() || table.is_finished(call_id) {
                return;
            }
        }
        let ev = Event {
            call_id: call_id.clone(),
            ts_us: now_us(),
            data: EventData::Start(Box::new(StartInfo {
                ban,
                src_ip: req.src_ip.map(|i| i.to_string()),
                ani: e164_or_raw(&req.ani),
                dnis: e164_or_raw(&req.dnis),
                reject: Some(events::Rejection {
                    sip_code: r.sip_code,
                    reason: r.reason.clone(),
                }),
                ..Default::default()
            })),
        };
        if self
            .tx
            .try_send(Job {
                events: vec![ev],
                ack: None,
            })
            .is_err()
        {
            // the queue is full: this rejected call gets no CDR (its call.end becomes an orphan)
            self.shared.metrics.start_not_queued.inc();
        }
    }

    /// An inbound dip's answer through the live-call layer (issue 19): see `inbound.rs`.
    pub fn on_inbound(
        &self,
        req: &crate::routing::inbound::InboundRequest,
        answer: crate::routing::inbound::InboundAnswer,
    ) -> crate::routing::inbound::InboundAnswer {
        inbound::on_inbound(self, req, answer)
    }

    fn admit_dip(
        &self,
        req: &DipRequest,
        ban: Option<String>,
        answer: DipAnswer,
        snap: &Snapshot,
    ) -> DipAnswer {
        let DipAnswer::Route(mut ra) = answer else {
            return answer;
        };
        let limits = self.limits.load();
        let demoted = self.demoted.load();
        let now = now_us();
        let mut table = self.shared.table();
        // emergency calls bypass every limit: capacity here, concurrency and CPS at `admit`
        let priority = if ra.zone == crate::routing::Zone::Emergency {
            CallPriority::Emergency
        } else {
            CallPriority::Normal
        };
        // the dip left out the routes full when it started (`routes_at_capacity`); this catches
        // a route that filled up since. Routes under the ASR floor go last (forced ones stay).
        let before = ra.routes.len();
        if priority == CallPriority::Normal {
            ra.routes
                .retain(|r| match limits.route_capacity.get(r.route_id.as_str()) {
                    Some(cap) => table.route_calls(&r.route_id) < *cap,
                    None => true,
                });
        }
        if ra.routes.len() < before {
            self.shared
                .metrics
                .limited
                .with_label_values(&["capacity"])
                .inc();
        }
        if !demoted.is_empty() {
            let (keep, low): (Vec<_>, Vec<_>) = ra
                .routes
                .into_iter()
                .partition(|r| r.forced || !demoted.contains(r.route_id.as_str()));
            ra.routes = keep;
            ra.routes.extend(low);
        }
        if ra.routes.is_empty() {
            return RejectReason::AllAtCapacity.into();
        }
        let (Some(call_id), Some(ban)) = (&req.call_id, ban) else {
            return DipAnswer::Route(ra);
        };
        if !events::valid_call_id(call_id) {
            tracing::info!(
                "dip call_id is empty, too long or has control characters: call not tracked"
            );
            return DipAnswer::Route(ra);
        }
        let cl = limits.customers.get(&ban);
        // the customer trunk of the call: named by the dip, or the trunk whose sources hold src_ip
        let trunk = match (&req.trunk, req.src_ip) {
            (Some(t), _) => snap.trunk(t),
            (None, Some(ip)) => snap.trunk_by_source(ip),
            (None, None) => None,
        }
        .filter(|t| t.customer.as_str() == ban);
        let admitted = match table.admit(call_id, &ban, cl, now, priority) {
            Admit::Ok => match &trunk {
                Some(t) => {
                    table.admit_trunk(&t.name, t.limits.max_calls, t.limits.max_cps, now, priority)
                }
                None => Admit::Ok,
            },
            other => other,
        };
        let normal = priority == CallPriority::Normal;
        match admitted {
            Admit::Retransmit => {
                // the same grant as the first dip of this call
                ra.max_duration_s = normal.then(|| {
                    self.shared
                        .credit
                        .held(call_id)
                        .unwrap_or(self.max_duration_cap())
                });
                return DipAnswer::Route(ra);
            }
            Admit::Reject(limit) => {
                self.shared
                    .metrics
                    .limited
                    .with_label_values(&[limit.label()])
                    .inc();
                tracing::info!(ban = %ban, reason = %limit, "dip refused by call limits");
                return DipAnswer::Reject(RejectAnswer {
                    sip_code: 503,
                    reason: limit.to_string(),
                });
            }
            Admit::Ok => {}
        }
        // credit: emergency calls are never refused or cut; others get the duration their
        // customer's account pays for (reserved now, atomically) or a 402
        let mut credit_hold = None;
        let mut max_s = self.max_duration_cap();
        if normal {
            let tariffs: smallvec::SmallVec<[Tariff; 8]> = ra
                .routes
                .iter()
                .map(|r| Tariff {
                    rate_e7: crate::cdr::rating::rate_to_e7(r.customer_rate),
                    min: cl.and_then(|c| c.bill_min).unwrap_or(r.billing.min as u32),
                    inc: cl.and_then(|c| c.bill_inc).unwrap_or(r.billing.inc as u32),
                })
                .collect();
            match self
                .shared
                .credit
                .admit(&ban, Some(call_id), &tariffs, now, max_s)
            {
                None => {}
                Some(Err(refusal)) => {
                    tracing::info!(ban = %ban, reason = %refusal, "dip refused for credit");
                    return DipAnswer::Reject(RejectAnswer {
                        sip_code: refusal.sip_code(),
                        reason: refusal.to_string(),
                    });
                }
                Some(Ok(g)) => {
                    let mut usable = g.usable.iter();
                    ra.routes
                        .retain(|_| usable.next().copied().unwrap_or(false));
                    max_s = g.max_duration_s;
                    credit_hold = Some(events::CreditHold {
                        reserve_e7: g.reserve_e7,
                        reserve_s: g.reserve_s,
                    });
                }
            }
            ra.max_duration_s = Some(max_s);
        }
        let dnis = e164_or_raw(&req.dnis);
        let routing_number = ra
            .lrn
            .clone()
            .or_else(|| dnis.strip_prefix('1').map(str::to_string))
            .filter(|n| n.len() == 10);
        let place = routing_number.and_then(|n| {
            snap.numbering()
                .lookup(n.as_bytes())
                .map(|i| (i.ocn.clone(), i.lata.clone(), i.state.clone()))
        });
        let (ocn, lata, state) = match place {
            Some((o, l, s)) => (Some(o), Some(l), Some(s)),
            None => (None, None, None),
        };
        let ev = Event {
            call_id: call_id.clone(),
            ts_us: now,
            data: EventData::Start(Box::new(StartInfo {
                ban: Some(ban),
                src_ip: req.src_ip.map(|i| i.to_string()),
                // E.164 digits without '+' when the number normalizes, else as sent
                ani: e164_or_raw(&req.ani),
                dnis,
                ocn,
                lata,
                state,
                lrn: ra.lrn.clone(),
                partition: ra.partition.as_ref().map(|p| p.to_string()),
                zone: serde_json::to_value(ra.zone)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_string)),
                routes: ra
                    .routes
                    .iter()
                    .map(|r| RouteOffer {
                        route_id: r.route_id.to_string(),
                        vendor: r.vendor.to_string(),
                        rate_e7: crate::cdr::rating::rate_to_e7(r.rate),
                        customer_rate_e7: crate::cdr::rating::rate_to_e7(r.customer_rate),
                        min: r.billing.min as u32,
                        inc: r.billing.inc as u32,
                        zone: r.zone.map(|z| z.as_str().to_string()),
                    })
                    .collect(),
                customer_min: cl.and_then(|c| c.bill_min),
                customer_inc: cl.and_then(|c| c.bill_inc),
                reject: None,
                max_duration_s: Some(if normal {
                    u64::from(max_s)
                } else {
                    self.max_duration_s
                }),
                credit_hold,
                direction: None,
                trunk: trunk.map(|t| t.name.to_string()),
                number: None,
                // STIR/SHAKEN (issue 20): the attestation this dip gave
                stir_attest: ra.stir.as_ref().map(|a| a.resp_fields().attest.to_string()),
                stir_origid: match &ra.stir {
                    Some(crate::routing::stir::StirAnswer::Sign { origid, .. }) => {
                        Some(origid.to_string())
                    }
                    _ => None,
                },
                stir_verstat: None,
                stir_reason: None,
            })),
        };
        table.start(&ev, now);
        self.shared.metrics.active.set(table.live() as i64);
        drop(table);
        if self
            .tx
            .try_send(Job {
                events: vec![ev],
                ack: None,
            })
            .is_err()
        {
            // persisted with the call's next event (see CallTable::apply)
            self.shared.metrics.start_not_queued.inc();
        }
        DipAnswer::Route(ra)
    }

    /// Queues one event and waits until it is durable (or known already).
    pub async fn submit(&self, ev: Event) -> Result<(), CallsError> {
        self.submit_all(vec![ev]).await
    }

    /// Queues events as one job (applied in this order, made durable in the same batch) and
    /// waits until they are durable (or known already).
    pub async fn submit_all(&self, events: Vec<Event>) -> Result<(), CallsError> {
        let (ack, rx) = oneshot::channel();
        self.tx
            .send(Job {
                events,
                ack: Some(ack),
            })
            .await
            .map_err(|_| CallsError::WriterGone)?;
        match rx.await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(CallsError::NotDurable(e)),
            Err(_) => Err(CallsError::WriterGone),
        }
    }

    /// Ends a live call: Kamailio ends its dialog (BYE to both sides, [`hangup`]), then the
    /// call's end is recorded here (`hangup=system`, `cause`), since Kamailio reports no end for
    /// a BYE it generated. A call warpd does not know live is refused before Kamailio is asked.
    pub async fn hangup(&self, call_id: &str, cause: &str) -> Result<(), HangupFailed> {
        if self.shared.table().get(call_id).is_none() {
            return Err(HangupFailed::NotLive);
        }
        hangup::end_dialog(self.kamailio_rpc_url.as_deref(), call_id)
            .await
            .map_err(HangupFailed::Kamailio)?;
        let raw = serde_json::json!({"call_id": call_id, "hangup": "system", "cause": cause});
        let ev = events::end_event(raw.to_string().as_bytes(), now_us())
            .map_err(|e| HangupFailed::Record(CallsError::Invalid(e)))?;
        self.submit(ev).await.map_err(HangupFailed::Record)
    }

    /// Ends every live call of `ban` that holds a credit reservation (an account blocked with
    /// `at_limit = cut`); returns how many were ended. Failures are logged per call.
    pub async fn hangup_customer(&self, ban: &str, cause: &str) -> usize {
        let mut n = 0;
        for id in self.shared.credit.live_calls(ban) {
            match self.hangup(&id, cause).await {
                Ok(()) => n += 1,
                Err(e) => {
                    tracing::warn!(ban = %ban, error = %e, "live call of a blocked account not ended")
                }
            }
        }
        n
    }

    /// `calls.max_call_duration_s`.
    pub fn max_call_duration_s(&self) -> u64 {
        self.max_duration_s
    }

    /// `calls.max_call_duration_s` as the longest grant (seconds).
    fn max_duration_cap(&self) -> u32 {
        self.max_duration_s.clamp(1, u64::from(u32::MAX)) as u32
    }

    /// Rolling per-route figures (`by_prefix`: per route × destination group).
    pub fn route_quality(&self, by_prefix: bool) -> Vec<RouteStats> {
        let q = self.shared.quality();
        if by_prefix {
            q.stats_by_prefix(now_us())
        } else {
            q.stats(now_us())
        }
    }

    /// Live calls now.
    pub fn live_calls(&self) -> usize {
        self.shared.table().live()
    }

    /// Waits for the writer to finish (after the shutdown token fired).
    pub async fn join(&self) {
        let h = self.writer.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(h) = h {
            let _ = h.await;
        }
    }
}

/// Live calls' credit reservations, back from their start events (after a restart).
fn restore_holds(shared: &Shared) {
    let table = shared.table();
    let mut n = 0;
    for r in table.records() {
        if let Some((s, hold)) = r.start.as_ref().and_then(|s| Some((s, s.credit_hold?))) {
            if let Some(ban) = &s.ban {
                let max = s.max_duration_s.unwrap_or(0).min(u32::MAX as u64) as u32;
                shared.credit.restore(&r.call_id, ban, hold, max);
                n += 1;
            }
        }
    }
    if n > 0 {
        tracing::info!(calls = n, "credit reservations of live calls restored");
    }
}

fn e164_or_raw(s: &str) -> String {
    match crate::numbering::normalize(s) {
        Some(n) => n.as_str().to_string(),
        None => s.chars().filter(|c| !c.is_control()).take(64).collect(),
    }
}

/// Updates the route quality gauges and the set of demoted routes.
fn publish_quality(
    shared: &Shared,
    demoted: &ArcSwap<HashSet<String>>,
    floor: f64,
    min_attempts: u64,
) {
    let stats = shared.quality().stats(now_us());
    let g = &shared.metrics.route_quality;
    let mut low = HashSet::new();
    for s in &stats {
        g.with_label_values(&[&s.route_id, "asr"]).set(s.asr);
        g.with_label_values(&[&s.route_id, "acd_seconds"])
            .set(s.acd_s);
        g.with_label_values(&[&s.route_id, "attempts"])
            .set(s.attempts as f64);
        if let Some(p) = s.pdd_ms {
            g.with_label_values(&[&s.route_id, "pdd_seconds"])
                .set(p / 1000.0);
        }
        if floor > 0.0 && s.attempts >= min_attempts && s.asr < floor {
            low.insert(s.route_id.clone());
        }
    }
    shared.metrics.active.set(shared.table().live() as i64);
    if **demoted.load() != low {
        if !low.is_empty() {
            tracing::info!(routes = ?low, floor, "routes under the ASR floor are demoted at the dip");
        }
        demoted.store(Arc::new(low));
    }
}
