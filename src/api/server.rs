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
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::context::Api;
use super::error::ApiError;
use super::guard::{ConnLimits, ConnPermit};
use super::http::handle;
use super::rpc::{self, RpcService, RpcServiceFactory};
use super::tls::{ListenerTls, ListenersTls};
use super::{AppState, Side};

/// Pause after a failed accept (e.g. out of file descriptors) before trying again.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(50);

/// File descriptors kept free of client connections, whatever the caps say: database
/// connections (pools, the reloader and its COPY streams, LISTEN), the spool, ng sockets, logs.
/// Without it, idle clients up to the open-file limit made dips time out and reloads fail
/// ("Too many open files").
const FD_RESERVE: u64 = 256;

/// The soft open-file limit (`RLIMIT_NOFILE`) of this process; None when unknown or unlimited.
fn open_files_limit() -> Option<u64> {
    soft_open_files(&std::fs::read_to_string("/proc/self/limits").ok()?)
}

/// The soft limit from the text of `/proc/<pid>/limits`.
fn soft_open_files(limits: &str) -> Option<u64> {
    let rest = limits
        .lines()
        .find_map(|l| l.strip_prefix("Max open files"))?;
    rest.split_whitespace().next()?.parse().ok()
}

/// Connections one listener may hold: the configured cap, lowered so that both listeners'
/// connections and [`FD_RESERVE`] fit the open-file limit. Connections over the cap wait in
/// the kernel's accept queue, holding no descriptor of ours.
fn connection_cap(configured: usize, open_files: Option<u64>) -> usize {
    match open_files {
        Some(n) => {
            let per_listener = (n.saturating_sub(FD_RESERVE) / 2).max(1);
            configured.min(usize::try_from(per_listener).unwrap_or(usize::MAX))
        }
        None => configured,
    }
}

/// The two bound listeners.
pub struct Listeners {
    /// `server.kamailio_listen`
    pub kamailio: TcpListener,
    /// `server.admin_listen`
    pub admin: TcpListener,
    /// `server.kamailio_resp_listen` / `server.kamailio_resp_socket` (none: off)
    pub kamailio_resp: Vec<super::resp::RespListener>,
}

/// Serves both surfaces over plain HTTP until `shutdown` is cancelled, then shuts down
/// gracefully. See [`serve_tls`].
pub async fn serve(
    listeners: Listeners,
    state: Arc<AppState>,
    shutdown: CancellationToken,
) -> Result<(), ApiError> {
    serve_tls(listeners, ListenersTls::default(), state, shutdown).await
}

/// Serves both surfaces (each over TLS when `tls` has it) until `shutdown` is cancelled, then
/// shuts down gracefully.
///
/// Errors only if the JSON-RPC methods cannot be registered (a programming error); accept
/// failures are logged and retried.
pub async fn serve_tls(
    listeners: Listeners,
    tls: ListenersTls,
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
        tls: tls.side(Side::Kamailio),
    };
    let resp = futures_util::future::join_all(
        listeners
            .kamailio_resp
            .into_iter()
            .map(|l| super::resp::serve(l, api.clone(), shutdown.clone())),
    );
    let admin = Loop {
        side: Side::Admin,
        methods: rpc::methods(api.clone(), Side::Admin)?,
        factory,
        stop_handle,
        api,
        tls: tls.side(Side::Admin),
    };
    tokio::join!(
        kamailio.run(listeners.kamailio, shutdown.clone()),
        admin.run(listeners.admin, shutdown.clone()),
        resp,
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
    /// None: plain HTTP
    tls: Option<Arc<ListenerTls>>,
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
        let max_connections = connection_cap(limits.max_connections, open_files_limit());
        if max_connections < limits.max_connections {
            tracing::warn!(
                listener = self.side.as_str(),
                configured = limits.max_connections,
                used = max_connections,
                "server.max_connections lowered to fit the open-file limit (RLIMIT_NOFILE): raise \
                 the limit (LimitNOFILE= in the unit) to allow more"
            );
        }
        let conns = ConnLimits::new(max_connections, limits.max_connections_per_source);
        let tracker = TaskTracker::new();
        // cancelled when the grace period is over: connections still open are dropped
        let hard_stop = CancellationToken::new();
        let side = self.side.as_str();
        tracing::info!(listener = side, addr = ?listener.local_addr().ok(), tls = self.tls.is_some(), "API listening");
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
                            // the certificate current at accept time
                            tls: self.tls.as_ref().map(|t| t.acceptor()),
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
    tls: Option<tokio_rustls::TlsAcceptor>,
    _permit: ConnPermit,
}

/// Runs one connection: the TLS handshake (if any; within `server.tls_handshake_timeout_ms`,
/// holding the connection's permit like any open connection), then HTTP/1.1 until it closes.
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
        tls,
        _permit,
    } = conn;
    let Some(acceptor) = tls else {
        return http(
            stream, peer, side, builder, api, rpc_svc, shutdown, hard_stop,
        )
        .await;
    };
    let timeout = api.state.limits.tls_handshake_timeout;
    let refused = |reason: &str| {
        api.state
            .metrics
            .refused
            .with_label_values(&[side.as_str(), reason])
            .inc();
    };
    let handshake = tokio::select! {
        r = tokio::time::timeout(timeout, acceptor.accept(stream)) => r,
        _ = shutdown.cancelled() => return,
    };
    match handshake {
        Ok(Ok(stream)) => {
            http(
                stream, peer, side, builder, api, rpc_svc, shutdown, hard_stop,
            )
            .await
        }
        Ok(Err(e)) => {
            refused("tls_handshake");
            tracing::debug!(listener = side.as_str(), %peer, error = %e, "TLS handshake failed");
        }
        Err(_) => {
            refused("tls_handshake_timeout");
            tracing::debug!(listener = side.as_str(), %peer, "TLS handshake not complete within server.tls_handshake_timeout_ms");
        }
    }
}

/// HTTP/1.1 on an open (plain or TLS) stream, with graceful shutdown.
#[allow(clippy::too_many_arguments)]
async fn http<S>(
    stream: S,
    peer: SocketAddr,
    side: Side,
    builder: Arc<http1::Builder>,
    api: Arc<Api>,
    rpc_svc: RpcService,
    shutdown: CancellationToken,
    hard_stop: CancellationToken,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
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

#[cfg(test)]
mod fd_tests {
    use super::{connection_cap, soft_open_files, FD_RESERVE};

    const LIMITS: &str =
        "Limit                     Soft Limit           Hard Limit           Units     \n\
Max cpu time              unlimited            unlimited            seconds   \n\
Max open files            1024                 524288               files     \n\
Max locked memory         8388608              8388608              bytes     \n";

    #[test]
    fn the_soft_open_file_limit_is_read() {
        assert_eq!(soft_open_files(LIMITS), Some(1024));
        assert_eq!(
            soft_open_files(&LIMITS.replace("1024 ", "unlimited ")),
            None,
            "unlimited"
        );
        assert_eq!(soft_open_files("garbage"), None);
    }

    #[test]
    fn both_listeners_and_the_reserve_fit_the_open_file_limit() {
        // the case: ulimit -n 1024 and the default cap of 4096 per listener
        let cap = connection_cap(4096, Some(1024));
        assert!(2 * cap as u64 + FD_RESERVE <= 1024, "{cap}");
        assert_eq!(cap, 384);
        // a unit's LimitNOFILE=65536 leaves the configured cap alone
        assert_eq!(connection_cap(4096, Some(65_536)), 4096);
        assert_eq!(connection_cap(4096, None), 4096);
        // absurdly low limits still serve one connection
        assert_eq!(connection_cap(4096, Some(10)), 1);
    }

    #[test]
    fn this_process_limit_is_readable_on_linux() {
        // the tests run on Linux: the helper must find the limit (or "unlimited")
        let text = std::fs::read_to_string("/proc/self/limits").unwrap_or_default();
        assert!(text.contains("Max open files"), "{text}");
    }
}
