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
//! been missed while it was down. A *worker* owns the schedule: a reload is due `debounce` after
//! the last notification, but no later than `5 × debounce` after the first of a burst; explicit
//! requests start a build at once (or right after the running one: every request that arrives
//! during a build is answered by the ONE next build); requests whose caller has gone away are
//! dropped before a build starts. Starting a build clears what is pending, because its
//! transaction sees every change notified before it began.

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
use crate::routing::Engine;

/// The NOTIFY channel of the schema's change triggers.
pub const CHANNEL: &str = "warpd_routing";

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

/// What the listener tells the worker.
#[derive(Debug)]
enum Event {
    /// a NOTIFY on the routing channel
    Changed,
    /// LISTEN is (again) in effect; anything before may have been missed
    Listening,
}

/// Most `reload()` calls queued for the worker at once.
const REQUEST_QUEUE: usize = 64;

/// Database-backed [`Reloader`]. Create with [`DbReloader::start`]; stops when the cancellation
/// token fires (pending and later `reload()` calls then fail with [`ReloadError::Stopped`]).
pub struct DbReloader {
    requests: mpsc::Sender<Waiter>,
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
        tokio::spawn(listen_loop(url.clone(), ev_tx, shutdown.clone()));
        let worker = Worker {
            url,
            engine,
            metrics,
            debounce,
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

impl Reloader for DbReloader {
    fn reload(&self) -> BoxFuture<'_, Result<ReloadReport, ReloadError>> {
        Box::pin(async move {
            if self.shutdown.is_cancelled() {
                return Err(ReloadError::Stopped);
            }
            let (tx, rx) = oneshot::channel();
            self.requests
                .send(tx)
                .await
                .map_err(|_| ReloadError::Stopped)?;
            rx.await.unwrap_or(Err(ReloadError::Stopped))
        })
    }
}

struct Worker {
    url: String,
    engine: Arc<Engine>,
    metrics: Arc<Metrics>,
    debounce: Duration,
    shutdown: CancellationToken,
}

/// First and last notification of the burst not yet covered by a build.
#[derive(Clone, Copy)]
struct Pending {
    first: Instant,
    last: Instant,
}

struct Running {
    task: JoinHandle<Outcome>,
    waiters: Vec<Waiter>,
}

impl Worker {
    fn due_at(&self, p: Pending) -> Instant {
        (p.last + self.debounce).min(p.first + self.debounce * MAX_DELAY_FACTOR)
    }

    async fn run(self, mut requests: mpsc::Receiver<Waiter>, mut events: mpsc::Receiver<Event>) {
        let mut waiting: Vec<Waiter> = Vec::new();
        let mut pending: Option<Pending> = None;
        let mut running: Option<Running> = None;
        let mut requests_open = true;
        let mut events_open = true;
        loop {
            if running.is_none() {
                // a caller that gave up (its connection closed, its time-out fired) needs no
                // build: requests sent and abandoned by the hundred cost nothing
                waiting.retain(|w| !w.is_closed());
                let due = pending.is_some_and(|p| Instant::now() >= self.due_at(p));
                if due || !waiting.is_empty() {
                    let reason = if waiting.is_empty() {
                        "change notification"
                    } else {
                        "request"
                    };
                    tracing::debug!(reason, "starting routing snapshot build");
                    pending = None;
                    running = Some(Running {
                        task: tokio::spawn(build_and_install(
                            self.url.clone(),
                            self.engine.clone(),
                            self.metrics.clone(),
                        )),
                        waiters: std::mem::take(&mut waiting),
                    });
                }
            }
            let wake = pending.map(|p| self.due_at(p));
            tokio::select! {
                _ = self.shutdown.cancelled() => break,
                r = requests.recv(), if requests_open => match r {
                    Some(w) => waiting.push(w),
                    None => requests_open = false,
                },
                e = events.recv(), if events_open => match e {
                    Some(ev) => {
                        tracing::debug!(event = ?ev, "routing data may have changed");
                        let now = Instant::now();
                        pending = Some(match pending {
                            Some(p) => Pending { first: p.first, last: now },
                            None => Pending { first: now, last: now },
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

/// One build: connect, load, compile, install. The old snapshot stays on any failure.
async fn build_and_install(url: String, engine: Arc<Engine>, metrics: Arc<Metrics>) -> Outcome {
    let started = std::time::Instant::now();
    let loaded = load(&url, &engine).await;
    let took = started.elapsed();
    match loaded {
        Ok(snapshot) => {
            let stats = snapshot.stats();
            let generation = engine.install(snapshot);
            metrics.set_snapshot(generation, &stats);
            metrics.observe_reload(took, true);
            tracing::info!(
                generation,
                took_ms = took.as_millis() as u64,
                rate_entries = stats.rate_entries,
                "routing snapshot installed"
            );
            Ok(ReloadReport {
                generation,
                duration_ms: took.as_secs_f64() * 1000.0,
                stats,
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
async fn listen_loop(url: String, events: mpsc::Sender<Event>, shutdown: CancellationToken) {
    let mut backoff = BACKOFF_MIN;
    loop {
        let (was_listening, res) = tokio::select! {
            _ = shutdown.cancelled() => return,
            r = listen_once(&url, &events) => r,
        };
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
async fn listen_once(url: &str, events: &mpsc::Sender<Event>) -> (bool, Result<(), DbError>) {
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
                let _ = events.try_send(Event::Changed);
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
    let _ = events.try_send(Event::Listening);
    let ended = driver.await.map_err(DbError::query("LISTEN connection"));
    drop(client);
    (true, ended)
}
