//! [`DbReloader`]: rebuilds the routing snapshot from PostgreSQL when routing data changes
//! (`LISTEN warpd_routing`, debounced) or when asked ([`Reloader::reload`], coalesced), and swaps
//! it into the [`Engine`].
//!
//! Owns: the listener connection, the reload schedule, one build at a time.
//! Must not touch: the dip path (builds run in their own task, the compile on the blocking pool),
//! routing policy, the database beyond reading it (see `db::loader`).
//!
//! Tasks: a *listener* keeps a dedicated connection in `LISTEN warpd_routing`, reconnecting with
//! backoff; each time LISTEN is (re-)established it reports that, since notifications may have
//! been missed while it was down. A *worker* owns the schedule: the first notification after a
//! quiet `debounce` (no build started within it) is due at once; later ones of a burst are due
//! `debounce` after the last, but no later than `5 × debounce` after the first; explicit
//! requests start a build at once (or right after the running one: every request that arrives
//! during a build is answered by the ONE next build); requests whose caller has gone away are
//! dropped before a build starts. Starting a build clears what is pending, because its
//! transaction sees every change notified before it began.
//!
//! Every refresh (request, SIGHUP, notification) first reads the routing data version
//! (`routing_data_version`, sql/0011, bumped in the same transaction by every change to a table
//! the snapshot reads) over the LISTEN connection: one cheap query, no new connection. Equal to
//! the live snapshot's version (read in the same transaction as its rows) means nothing was
//! committed since, and the refresh answers the live snapshot's report marked `unchanged`
//! without building. A forced refresh (`reload_full`: `warpd reload --full`, `warpd.reload
//! {"force": true}`; a NOTIFY with payload [`FULL_RELOAD`]) always builds in full.
//!
//! A refresh that must build first tries an incremental one (issue 23): over the same LISTEN
//! connection, in one REPEATABLE READ transaction, it reads the change log (sql/0017) for the
//! tables changed since the live snapshot's database snapshot, re-reads only the parts they
//! feed, shares the others, and swaps the result in (one transaction, one swap). The change log,
//! not the notifications, says what changed, so a notification missed during a reconnect costs
//! nothing but its latency. A full build (two streams over fresh connections) runs instead when
//! the log cannot say (pruned past the live snapshot, a table no part knows, new routes) or the
//! vendor rates changed.

use std::future::poll_fn;
use std::sync::{Arc, Mutex};
use std::task::Poll;
use std::time::Duration;

use futures_util::future::BoxFuture;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_postgres::AsyncMessage;
use tokio_util::sync::CancellationToken;

use super::{loader, DbError, PgTarget};
use crate::metrics::Metrics;
use crate::reload::{ReloadError, ReloadReport, Reloader};
use crate::routing::{Engine, Part, PartSet};
use loader::Incremental;

/// The NOTIFY channel of the schema's change triggers.
pub const CHANNEL: &str = "warpd_routing";
/// NOTIFY payload asking every warpd on the database for a full build (`warpd reload --full`).
pub const FULL_RELOAD: &str = "full reload";
/// How long the data version check may take before the refresh builds anyway.
const VERSION_CHECK_TIMEOUT: Duration = Duration::from_secs(2);

/// A burst of notifications delays a reload by at most this many debounce periods.
const MAX_DELAY_FACTOR: u32 = 5;
/// Connections streaming vendor_rates per build: one main, the rest helpers sharing its
/// snapshot (see `db::loader`). Measured with 20M rows and the database on the same 2-core box:
/// 2 streams load in ~11 s where 1 takes ~12.5-14 s (the single backend is the bottleneck).
const LOAD_STREAMS: usize = 2;
// `select_all` over the build's connections needs at least one
const _: () = assert!(LOAD_STREAMS >= 1);
const BACKOFF_MIN: Duration = Duration::from_millis(200);
const BACKOFF_MAX: Duration = Duration::from_secs(30);

type Outcome = Result<ReloadReport, ReloadError>;
type Waiter = oneshot::Sender<Outcome>;

/// A `reload()` (force false) or `reload_full()` (force true) call.
struct Request {
    waiter: Waiter,
    force: bool,
}

/// The LISTEN connection's client while LISTEN is in effect: the data version check's
/// connection.
type Probe = Arc<Mutex<Option<Arc<tokio_postgres::Client>>>>;

/// What the listener tells the worker.
#[derive(Debug)]
enum Event {
    /// a NOTIFY on the routing channel (`force`: payload [`FULL_RELOAD`])
    Changed { force: bool },
    /// LISTEN is (again) in effect; anything before may have been missed
    Listening,
}

/// Most `reload()` calls queued for the worker at once.
const REQUEST_QUEUE: usize = 64;

/// Database-backed [`Reloader`]. Create with [`DbReloader::start`]; stops when the cancellation
/// token fires (pending and later `reload()` calls then fail with [`ReloadError::Stopped`]).
pub struct DbReloader {
    requests: mpsc::Sender<Request>,
    shutdown: CancellationToken,
    worker: Mutex<Option<JoinHandle<()>>>,
}

impl DbReloader {
    /// Spawns the listener and worker tasks (needs a Tokio runtime). The first snapshot is built
    /// `debounce` after LISTEN is first established, or at once on an explicit `reload()`.
    pub fn start(
        url: String,
        engine: Arc<Engine>,
        metrics: Arc<Metrics>,
        debounce: Duration,
        shutdown: CancellationToken,
    ) -> Arc<DbReloader> {
        // Bounded: callers of `reload()` wait for room (every waiter of a build shares its result,
        // so a full queue only means callers are already covered by the next build).
        let (req_tx, req_rx) = mpsc::channel(REQUEST_QUEUE);
        // Bounded; when full, dropping a `Changed` loses nothing: the worker will still see a
        // queued event and (re)arm the debounce no earlier than it would have.
        let (ev_tx, ev_rx) = mpsc::channel(256);
        let probe = Probe::default();
        tokio::spawn(listen_loop(
            url.clone(),
            ev_tx,
            probe.clone(),
            shutdown.clone(),
        ));
        let worker = Worker {
            url,
            engine,
            metrics,
            debounce,
            probe,
            shutdown: shutdown.clone(),
        };
        let handle = tokio::spawn(worker.run(req_rx, ev_rx));
        Arc::new(DbReloader {
            requests: req_tx,
            shutdown,
            worker: Mutex::new(Some(handle)),
        })
    }

    /// Waits until the worker has stopped (after the cancellation token fired).
    pub async fn join(&self) {
        let handle = self.worker.lock().ok().and_then(|mut h| h.take());
        if let Some(h) = handle {
            let _ = h.await;
        }
    }
}

impl DbReloader {
    async fn request(&self, force: bool) -> Outcome {
        if self.shutdown.is_cancelled() {
            return Err(ReloadError::Stopped);
        }
        let (waiter, rx) = oneshot::channel();
        self.requests
            .send(Request { waiter, force })
            .await
            .map_err(|_| ReloadError::Stopped)?;
        rx.await.unwrap_or(Err(ReloadError::Stopped))
    }
}

impl Reloader for DbReloader {
    fn reload(&self) -> BoxFuture<'_, Result<ReloadReport, ReloadError>> {
        Box::pin(self.request(false))
    }

    fn reload_full(&self) -> BoxFuture<'_, Result<ReloadReport, ReloadError>> {
        Box::pin(self.request(true))
    }
}

struct Worker {
    url: String,
    engine: Arc<Engine>,
    metrics: Arc<Metrics>,
    debounce: Duration,
    probe: Probe,
    shutdown: CancellationToken,
}

/// First and last notification of the burst not yet covered by a build.
#[derive(Clone, Copy)]
struct Pending {
    first: Instant,
    last: Instant,
    /// one of them asked for a full build
    force: bool,
}

struct Running {
    task: JoinHandle<Outcome>,
    waiters: Vec<Waiter>,
}

impl Worker {
    /// When the pending notifications are due: at once for the first change after a quiet
    /// `debounce` (no build started in it: a single change, e.g. one customer, goes live in
    /// the time of an incremental build), else `debounce` after the last one of the burst, but
    /// no later than `MAX_DELAY_FACTOR × debounce` after its first.
    fn due_at(&self, p: Pending, last_start: Option<Instant>) -> Instant {
        if last_start.is_none_or(|s| p.first >= s + self.debounce) {
            return p.first;
        }
        (p.last + self.debounce).min(p.first + self.debounce * MAX_DELAY_FACTOR)
    }

    async fn run(self, mut requests: mpsc::Receiver<Request>, mut events: mpsc::Receiver<Event>) {
        let mut waiting: Vec<Waiter> = Vec::new();
        // a waiting request (or due notification) asked for a full build
        let mut force = false;
        let mut pending: Option<Pending> = None;
        let mut running: Option<Running> = None;
        // when the last build started (the debounce's quiet period)
        let mut last_start: Option<Instant> = None;
        let mut requests_open = true;
        let mut events_open = true;
        loop {
            if running.is_none() {
                // a caller that gave up (its connection closed, its time-out fired) needs no
                // build: requests sent and abandoned by the hundred cost nothing
                waiting.retain(|w| !w.is_closed());
                let due = pending.is_some_and(|p| Instant::now() >= self.due_at(p, last_start));
                if due || !waiting.is_empty() {
                    let reason = if waiting.is_empty() {
                        "change notification"
                    } else {
                        "request"
                    };
                    let force = std::mem::take(&mut force) || pending.is_some_and(|p| p.force);
                    tracing::debug!(reason, force, "starting routing snapshot refresh");
                    pending = None;
                    last_start = Some(Instant::now());
                    running = Some(Running {
                        task: tokio::spawn(refresh(
                            self.url.clone(),
                            self.engine.clone(),
                            self.metrics.clone(),
                            self.probe.clone(),
                            force,
                        )),
                        waiters: std::mem::take(&mut waiting),
                    });
                }
            }
            let wake = pending.map(|p| self.due_at(p, last_start));
            tokio::select! {
                _ = self.shutdown.cancelled() => break,
                r = requests.recv(), if requests_open => match r {
                    Some(r) => {
                        force |= r.force;
                        waiting.push(r.waiter);
                    }
                    None => requests_open = false,
                },
                e = events.recv(), if events_open => match e {
                    Some(ev) => {
                        tracing::debug!(event = ?ev, "routing data may have changed");
                        let now = Instant::now();
                        let full = matches!(ev, Event::Changed { force: true });
                        pending = Some(match pending {
                            Some(p) => Pending { first: p.first, last: now, force: p.force || full },
                            None => Pending { first: now, last: now, force: full },
                        });
                    }
                    None => events_open = false,
                },
                res = async {
                    match running.as_mut() {
                        Some(r) => (&mut r.task).await,
                        None => std::future::pending().await,
                    }
                }, if running.is_some() => {
                    let outcome = res.unwrap_or_else(|e| Err(ReloadError::Task(Arc::new(e))));
                    if let Some(r) = running.take() {
                        for w in r.waiters {
                            let _ = w.send(outcome.clone());
                        }
                    }
                },
                _ = tokio::time::sleep_until(wake.unwrap_or_else(Instant::now)), if wake.is_some() && running.is_none() => {},
            }
        }
        // Stopping: a build in flight is abandoned (nothing is installed); waiters see Stopped
        // when their senders drop here.
        if let Some(r) = running.take() {
            r.task.abort();
        }
        tracing::info!("routing snapshot reloader stopped");
    }
}

/// Loads a snapshot over `LOAD_STREAMS` fresh connections. The connections are driven inside
/// this task rather than spawned: the stream parser then gets its data without cross-thread
/// wake-ups, and a build occupies one runtime worker at most (plus the blocking compile).
async fn load(url: &str, engine: &Engine) -> Result<crate::routing::Snapshot, DbError> {
    load_over_streams(url, engine.settings().clone(), LOAD_STREAMS).await
}

/// What a reload does, with the number of streams chosen (at least 1): `streams` fresh
/// connections driven inside the calling task, one shared database snapshot. Public for the
/// snapshot benchmark, which must time exactly this path.
pub async fn load_over_streams(
    url: &str,
    settings: crate::routing::RoutingSettings,
    streams: usize,
) -> Result<crate::routing::Snapshot, DbError> {
    let streams = streams.max(1);
    let config = tuned_config(url)?;
    let mut clients = Vec::with_capacity(streams);
    let mut conns = Vec::with_capacity(streams);
    for _ in 0..streams {
        let (client, conn) = config.connect().await?;
        clients.push(client);
        conns.push(Box::pin(conn));
    }
    let result = {
        let (main, helpers) = clients.split_at(1);
        let load = loader::load_snapshot_parallel(&main[0], helpers, settings);
        let drive = futures_util::future::select_all(conns.iter_mut());
        tokio::select! {
            r = load => r,
            (ended, _, _) = drive => Err(match ended {
                Err(e) => DbError::Connect(e),
                Ok(()) => DbError::Closed("the snapshot load"),
            }),
        }
    };
    // Close politely: dropping the clients lets each connection send Terminate and finish.
    drop(clients);
    let _ = tokio::time::timeout(
        Duration::from_secs(2),
        futures_util::future::join_all(conns.iter_mut()),
    )
    .await;
    result
}

/// Keepalives so a silently dead peer is noticed in about a minute rather than hours.
fn tuned_config(url: &str) -> Result<PgTarget, DbError> {
    let mut t = super::target(url)?;
    t.config
        .connect_timeout(Duration::from_secs(10))
        .keepalives(true)
        .keepalives_idle(Duration::from_secs(30))
        .keepalives_interval(Duration::from_secs(10))
        .keepalives_retries(3);
    Ok(t)
}

/// The routing data version now (latest committed), over the LISTEN connection; None when it
/// is down, slow or the query fails (the refresh then builds).
async fn current_version(probe: &Probe) -> Option<i64> {
    let client = probe.lock().ok()?.clone()?;
    let q = client.query_one("SELECT version FROM routing_data_version", &[]);
    match tokio::time::timeout(VERSION_CHECK_TIMEOUT, q).await {
        Ok(Ok(row)) => row.try_get(0).ok(),
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "reading the routing data version failed; building");
            None
        }
        Err(_) => None,
    }
}

/// One refresh: unless `force`, answers the live snapshot's report (`unchanged`) when the
/// routing data version has not moved since it was read; otherwise builds.
async fn refresh(
    url: String,
    engine: Arc<Engine>,
    metrics: Arc<Metrics>,
    probe: Probe,
    force: bool,
) -> Outcome {
    if !force && engine.is_ready() {
        let started = std::time::Instant::now();
        let live = engine.load();
        if let Some(have) = live.data_version() {
            if current_version(&probe).await == Some(have) {
                metrics.reloads.with_label_values(&["unchanged"]).inc();
                tracing::debug!(
                    data_version = have,
                    generation = live.generation(),
                    "routing data unchanged; no build"
                );
                return Ok(ReloadReport {
                    generation: live.generation(),
                    duration_ms: started.elapsed().as_secs_f64() * 1000.0,
                    stats: live.stats(),
                    unchanged: true,
                    data_version: Some(have),
                    rebuilt: vec![],
                    rate_routes: vec![],
                });
            }
        }
        if let Some(report) = incremental(&engine, &metrics, &probe).await {
            return Ok(report);
        }
    }
    build_and_install(url, engine, metrics).await
}

/// Builds only the parts whose tables changed since the live snapshot (`db::loader::
/// load_incremental`) over the LISTEN connection (no connection set-up on the path of a small
/// change) and installs the result; None when that cannot be done (no LISTEN connection, the
/// change log cannot say, the vendor rates changed: those stream faster over the full build's
/// parallel connections, or a failure): the caller then builds in full.
async fn incremental(engine: &Engine, metrics: &Metrics, probe: &Probe) -> Option<ReloadReport> {
    let client = probe.lock().ok()?.clone()?;
    let started = std::time::Instant::now();
    let live = engine.load();
    let small = PartSet::all()
        .iter()
        .filter(|p| *p != Part::Rates)
        .collect();
    match loader::load_incremental(&client, &live, small).await {
        Ok(Incremental::Built {
            snapshot,
            rebuilt,
            rate_routes,
        }) => {
            let stats = snapshot.stats();
            let data_version = snapshot.data_version();
            // counted before the swap: whoever sees the new snapshot sees its routes counted
            metrics
                .snapshot_rate_routes_rebuilt
                .inc_by(rate_routes.len() as u64);
            let generation = engine.install(*snapshot);
            let took = started.elapsed();
            metrics.set_snapshot(generation, &stats);
            metrics.snapshot_data_version.set(data_version.unwrap_or(0));
            metrics.observe_reload(took, true);
            metrics.observe_parts(rebuilt, true);
            tracing::info!(
                generation,
                data_version,
                parts = ?rebuilt.names(),
                rate_routes = ?rate_routes,
                took_ms = took.as_secs_f64() * 1000.0,
                "routing snapshot installed (incremental)"
            );
            Some(ReloadReport {
                generation,
                duration_ms: took.as_secs_f64() * 1000.0,
                stats,
                unchanged: false,
                data_version,
                rebuilt: rebuilt.names(),
                rate_routes,
            })
        }
        Ok(Incremental::NeedFull(why)) => {
            tracing::info!(reason = %why, "routing snapshot: full build");
            None
        }
        Err(e) => {
            tracing::warn!(error = %e, "incremental routing snapshot build failed; building in full");
            None
        }
    }
}

/// One build: connect, load, compile, install. The old snapshot stays on any failure.
async fn build_and_install(url: String, engine: Arc<Engine>, metrics: Arc<Metrics>) -> Outcome {
    let started = std::time::Instant::now();
    let loaded = load(&url, &engine).await;
    let took = started.elapsed();
    match loaded {
        Ok(snapshot) => {
            let stats = snapshot.stats();
            let data_version = snapshot.data_version();
            let generation = engine.install(snapshot);
            metrics.set_snapshot(generation, &stats);
            metrics.snapshot_data_version.set(data_version.unwrap_or(0));
            metrics.observe_reload(took, true);
            metrics.observe_parts(PartSet::all(), false);
            tracing::info!(
                generation,
                data_version,
                took_ms = took.as_millis() as u64,
                rate_entries = stats.rate_entries,
                "routing snapshot installed"
            );
            Ok(ReloadReport {
                generation,
                duration_ms: took.as_secs_f64() * 1000.0,
                stats,
                unchanged: false,
                data_version,
                rebuilt: PartSet::all().names(),
                rate_routes: vec![],
            })
        }
        Err(e) => {
            metrics.observe_reload(took, false);
            tracing::error!(error = %e, took_ms = took.as_millis() as u64, "routing snapshot reload failed; keeping the current snapshot");
            Err(ReloadError::Build(Arc::new(e)))
        }
    }
}

/// Keeps a connection LISTENing until shutdown, reconnecting with exponential backoff.
async fn listen_loop(
    url: String,
    events: mpsc::Sender<Event>,
    probe: Probe,
    shutdown: CancellationToken,
) {
    let mut backoff = BACKOFF_MIN;
    loop {
        let (was_listening, res) = tokio::select! {
            _ = shutdown.cancelled() => return,
            r = listen_once(&url, &events, &probe) => r,
        };
        if let Ok(mut p) = probe.lock() {
            *p = None;
        }
        if was_listening {
            backoff = BACKOFF_MIN;
        }
        match res {
            Ok(()) => tracing::warn!(
                retry_ms = backoff.as_millis() as u64,
                "LISTEN connection closed; reconnecting"
            ),
            Err(e) => {
                tracing::warn!(error = %e, retry_ms = backoff.as_millis() as u64, "LISTEN connection failed; reconnecting")
            }
        }
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(backoff) => {}
        }
        backoff = (backoff * 2).min(BACKOFF_MAX);
    }
}

/// One listener connection's life. Returns whether LISTEN got established, and why it ended.
async fn listen_once(
    url: &str,
    events: &mpsc::Sender<Event>,
    probe: &Probe,
) -> (bool, Result<(), DbError>) {
    let config = match tuned_config(url) {
        Ok(c) => c,
        Err(e) => return (false, Err(e)),
    };
    let (client, mut conn) = match config.connect().await {
        Ok(x) => x,
        Err(e) => return (false, Err(e)),
    };
    // Drive the connection ourselves to see notifications; ends when the connection does.
    let driver = poll_fn(|cx| loop {
        match conn.poll_message(cx) {
            Poll::Pending => return Poll::Pending,
            Poll::Ready(Some(Ok(AsyncMessage::Notification(n)))) => {
                tracing::trace!(table = n.payload(), "routing change notification");
                let force = n.payload() == FULL_RELOAD;
                let _ = events.try_send(Event::Changed { force });
            }
            Poll::Ready(Some(Ok(_notice))) => {}
            Poll::Ready(Some(Err(e))) => return Poll::Ready(Err(e)),
            Poll::Ready(None) => return Poll::Ready(Ok(())),
        }
    });
    tokio::pin!(driver);
    let listen = client.batch_execute("LISTEN warpd_routing");
    tokio::select! {
        r = &mut driver => {
            let e = match r {
                Ok(()) => DbError::Closed("LISTEN warpd_routing"),
                Err(e) => DbError::Connect(e),
            };
            return (false, Err(e));
        }
        r = listen => {
            if let Err(e) = r {
                return (false, Err(DbError::query("LISTEN warpd_routing")(e)));
            }
        }
    }
    tracing::info!(channel = CHANNEL, "listening for routing changes");
    let client = Arc::new(client);
    if let Ok(mut p) = probe.lock() {
        *p = Some(client.clone());
    }
    let _ = events.try_send(Event::Listening);
    let ended = driver.await.map_err(DbError::query("LISTEN connection"));
    if let Ok(mut p) = probe.lock() {
        *p = None;
    }
    drop(client);
    (true, ended)
}
