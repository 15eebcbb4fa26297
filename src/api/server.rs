//! The accept loop and per-connection HTTP/1.1 handling (keep-alive), with graceful shutdown:
//! on cancel, stop accepting, let in-flight requests finish (idle keep-alive connections close at
//! once), and give up on stragglers after [`SHUTDOWN_GRACE`].
//!
//! Owns: sockets and connection lifetimes. Must not touch: request semantics (see `http.rs`).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::context::Api;
use super::error::ApiError;
use super::http::handle;
use super::rpc::{self, RpcService};
use super::AppState;

/// How long shutdown waits for in-flight requests before dropping their connections.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// A connection that sends no complete request header for this long is closed. This includes idle
/// keep-alive time, so it is set above common client pool idle limits (libcurl: 118 s) to make
/// the client, not us, close idle connections (a server-side close races the client's next dip).
const IDLE_TIMEOUT: Duration = Duration::from_secs(300);

/// Pause after a failed accept (e.g. out of file descriptors) before trying again.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(50);

/// Serves the API on `listener` until `shutdown` is cancelled, then shuts down gracefully.
///
/// Errors only if the JSON-RPC methods cannot be registered (a programming error); accept
/// failures are logged and retried.
pub async fn serve(
    listener: TcpListener,
    state: Arc<AppState>,
    shutdown: CancellationToken,
) -> Result<(), ApiError> {
    let api = Arc::new(Api::new(state));
    let methods = rpc::methods(api.clone())?;
    let factory = rpc::service_factory(&api);
    // jsonrpsee wants a stop handle per service (it only uses it for WebSocket sessions, which
    // are disabled); the server handle must outlive the services.
    let (stop_handle, server_handle) = jsonrpsee::server::stop_channel();
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .keep_alive(true)
        .header_read_timeout(IDLE_TIMEOUT);
    let builder = Arc::new(builder);
    let tracker = TaskTracker::new();
    // cancelled when the grace period is over: connections still open are dropped
    let hard_stop = CancellationToken::new();
    tracing::info!(addr = ?listener.local_addr().ok(), "API listening");

    loop {
        let accepted = tokio::select! {
            biased;
            _ = shutdown.cancelled() => break,
            r = listener.accept() => r,
        };
        match accepted {
            Ok((stream, peer)) => {
                let _ = stream.set_nodelay(true);
                let rpc_svc = factory.clone().build(methods.clone(), stop_handle.clone());
                tracker.spawn(connection(
                    stream,
                    peer,
                    builder.clone(),
                    api.clone(),
                    rpc_svc,
                    shutdown.clone(),
                    hard_stop.clone(),
                ));
            }
            Err(e) => {
                tracing::warn!(error = %e, "API accept failed");
                tokio::select! {
                    _ = shutdown.cancelled() => break,
                    _ = tokio::time::sleep(ACCEPT_BACKOFF) => {}
                }
            }
        }
    }

    drop(listener);
    tracker.close();
    if tokio::time::timeout(SHUTDOWN_GRACE, tracker.wait())
        .await
        .is_err()
    {
        tracing::warn!(
            connections = tracker.len(),
            "API shutdown grace period over; dropping connections with requests in flight"
        );
        hard_stop.cancel();
        let _ = tokio::time::timeout(Duration::from_secs(1), tracker.wait()).await;
    }
    let _ = server_handle.stop();
    tracing::info!("API stopped");
    Ok(())
}

async fn connection(
    stream: TcpStream,
    peer: SocketAddr,
    builder: Arc<http1::Builder>,
    api: Arc<Api>,
    rpc_svc: RpcService,
    shutdown: CancellationToken,
    hard_stop: CancellationToken,
) {
    let service = service_fn(move |req| handle(api.clone(), rpc_svc.clone(), req));
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
