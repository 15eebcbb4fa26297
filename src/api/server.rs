//! The accept loops of the two listeners and per-connection HTTP/1.1 handling (keep-alive), with
//! connection limits and graceful shutdown: on cancel, stop accepting, let in-flight requests
//! finish (idle keep-alive connections close at once), and give up on stragglers after
//! `server.shutdown_grace_ms`.
//!
//! Owns: sockets and connection lifetimes. Must not touch: request semantics (see `http.rs`).

use std::net::SocketAddr;
use std::sync::Arc;

use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use jsonrpsee::server::{Methods, StopHandle};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;

use super::accept;
use super::context::Api;
use super::error::ApiError;
use super::guard::ConnPermit;
use super::http::handle;
use super::rpc::{self, RpcService, RpcServiceFactory};
use super::tls::{ListenerTls, ListenersTls};
use super::{AppState, Side};

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
    // the HTTP listeners and the RESP ones share the open-file limit
    let count = 2 + listeners.kamailio_resp.len();
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
        listeners: count,
    };
    let resp = futures_util::future::join_all(
        listeners
            .kamailio_resp
            .into_iter()
            .map(|l| super::resp::serve(l, api.clone(), shutdown.clone(), count)),
    );
    let admin = Loop {
        side: Side::Admin,
        methods: rpc::methods(api.clone(), Side::Admin)?,
        factory,
        stop_handle,
        api,
        tls: tls.side(Side::Admin),
        listeners: count,
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
    /// how many listeners share the open-file limit
    listeners: usize,
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
        let side = self.side.as_str();
        tracing::info!(listener = side, addr = ?listener.local_addr().ok(), tls = self.tls.is_some(), "API listening");
        let accept = accept::AcceptLoop::new(side, &self.api, self.listeners);
        accept
            .run(&listener, &shutdown, |(stream, peer), permit, hard_stop| {
                let rpc_svc = self
                    .factory
                    .clone()
                    .build(self.methods.clone(), self.stop_handle.clone());
                connection(
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
                    hard_stop,
                )
            })
            .await;
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
