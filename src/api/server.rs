//! The accept loops of the two listeners and per-connection HTTP/1.1 handling (keep-alive), with
//! connection limits and graceful shutdown: on cancel, stop accepting, let in-flight requests
//! finish (idle keep-alive connections close at once), and give up on stragglers after
//! `server.shutdown_grace_ms`.
//!
//! Owns: sockets and connection lifetimes. Must not touch: request semantics (see `http.rs`).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use jsonrpsee::server::{Methods, StopHandle};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::context::Api;
use super::error::ApiError;
use super::guard::{ConnLimits, ConnPermit};
use super::http::handle;
use super::rpc::{self, RpcService, RpcServiceFactory};
use super::{AppState, Side};

/// Pause after a failed accept (e.g. out of file descriptors) before trying again.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(50);

/// The two bound listeners.
pub struct Listeners {
    /// `server.kamailio_listen`
    pub kamailio: TcpListener,
    /// `server.admin_listen`
    pub admin: TcpListener,
}

/// Serves both surfaces until `shutdown` is cancelled, then shuts down gracefully.
///
/// Errors only if the JSON-RPC methods cannot be registered (a programming error); accept
/// failures are logged and retried.
pub async fn serve(
    listeners: Listeners,
    state: Arc<AppState>,
    shutdown: CancellationToken,
) -> Result<(), ApiError> {
    let api = Arc::new(Api::new(state));
    let factory = rpc::service_factory(&api);
    // jsonrpsee wants a stop handle per service (it only uses it for WebSocket sessions, which
    // are disabled); the server handle must outlive the services.
    let (stop_handle, server_handle) = jsonrpsee::server::stop_channel();
    let kamailio = Loop {
        side: Side::Kamailio,
        methods: rpc::methods(api.clone(), Side::Kamailio)?,
        factory: factory.clone(),
        stop_handle: stop_handle.clone(),
        api: api.clone(),
    };
    let admin = Loop {
        side: Side::Admin,
        methods: rpc::methods(api.clone(), Side::Admin)?,
        factory,
        stop_handle,
        api,
    };
    tokio::join!(
        kamailio.run(listeners.kamailio, shutdown.clone()),
        admin.run(listeners.admin, shutdown.clone()),
    );
    let _ = server_handle.stop();
    tracing::info!("API stopped");
    Ok(())
}

/// One listener's accept loop.
struct Loop {
    side: Side,
    methods: Methods,
    factory: RpcServiceFactory,
    stop_handle: StopHandle,
    api: Arc<Api>,
}

impl Loop {
    async fn run(self, listener: TcpListener, shutdown: CancellationToken) {
        let limits = self.api.state.limits;
        let mut builder = http1::Builder::new();
        builder
            .timer(TokioTimer::new())
            .keep_alive(true)
            .header_read_timeout(limits.header_read_timeout);
        let builder = Arc::new(builder);
        let conns = ConnLimits::new(limits.max_connections, limits.max_connections_per_source);
        let tracker = TaskTracker::new();
        // cancelled when the grace period is over: connections still open are dropped
        let hard_stop = CancellationToken::new();
        let side = self.side.as_str();
        tracing::info!(listener = side, addr = ?listener.local_addr().ok(), "API listening");
        let over_limit = self
            .api
            .state
            .metrics
            .refused
            .with_label_values(&[side, "connections_per_source"]);

        loop {
            // at most max_connections open: wait for one to close before accepting another
            let slot = tokio::select! {
                biased;
                _ = shutdown.cancelled() => break,
                s = conns.slot() => s,
            };
            let Some(slot) = slot else { break };
            let accepted = tokio::select! {
                biased;
                _ = shutdown.cancelled() => break,
                r = listener.accept() => r,
            };
            match accepted {
                Ok((stream, peer)) => {
                    let Some(permit) = conns.admit(slot, peer.ip()) else {
                        over_limit.inc();
                        tracing::debug!(listener = side, source = %peer.ip(), "connection refused: too many from this source");
                        continue;
                    };
                    let _ = stream.set_nodelay(true);
                    let rpc_svc = self
                        .factory
                        .clone()
                        .build(self.methods.clone(), self.stop_handle.clone());
                    tracker.spawn(connection(
                        Conn {
                            stream,
                            peer,
                            side: self.side,
                            _permit: permit,
                        },
                        builder.clone(),
                        self.api.clone(),
                        rpc_svc,
                        shutdown.clone(),
                        hard_stop.clone(),
                    ));
                }
                Err(e) => {
                    tracing::warn!(listener = side, error = %e, "API accept failed");
                    tokio::select! {
                        _ = shutdown.cancelled() => break,
                        _ = tokio::time::sleep(ACCEPT_BACKOFF) => {}
                    }
                }
            }
        }

        drop(listener);
        tracker.close();
        if tokio::time::timeout(limits.shutdown_grace, tracker.wait())
            .await
            .is_err()
        {
            tracing::warn!(
                listener = side,
                connections = tracker.len(),
                grace_ms = limits.shutdown_grace.as_millis() as u64,
                "API shutdown grace period over; dropping connections with requests in flight"
            );
            hard_stop.cancel();
            let _ = tokio::time::timeout(Duration::from_secs(1), tracker.wait()).await;
        }
    }
}

/// An accepted connection and its share of the connection limits (released when it closes).
struct Conn {
    stream: TcpStream,
    peer: SocketAddr,
    side: Side,
    _permit: ConnPermit,
}

async fn connection(
    conn: Conn,
    builder: Arc<http1::Builder>,
    api: Arc<Api>,
    rpc_svc: RpcService,
    shutdown: CancellationToken,
    hard_stop: CancellationToken,
) {
    let Conn {
        stream,
        peer,
        side,
        _permit,
    } = conn;
    let service = service_fn(move |req| handle(api.clone(), rpc_svc.clone(), side, peer, req));
    let conn = builder.serve_connection(TokioIo::new(stream), service);
    let mut conn = std::pin::pin!(conn);
    let result = tokio::select! {
        r = conn.as_mut() => r,
        _ = shutdown.cancelled() => {
            // finish the request in flight (if any), then close; idle connections close now
            conn.as_mut().graceful_shutdown();
            tokio::select! {
                r = conn.as_mut() => r,
                _ = hard_stop.cancelled() => return,
            }
        }
    };
    if let Err(e) = result {
        tracing::debug!(%peer, error = %e, "API connection ended with an error");
    }
}
