//! The one accept loop every listener runs (the two HTTP listeners and the RESP listeners): at
//! most `max_connections` open (a semaphore, as in mini-redis: the loop waits for a permit before
//! it accepts, so connections over the cap wait in the kernel's accept queue holding no
//! descriptor of ours), at most `max_connections_per_source` from one address (further ones are
//! closed at once and counted), a failed accept (e.g. out of file descriptors) retried after a
//! pause, and on shutdown: stop accepting, let connections finish within
//! `server.shutdown_grace_ms`, then cancel the hard-stop token handed to every connection.
//!
//! Owns: accepting and the connection caps. Must not touch: what a connection speaks (the caller
//! passes a function that serves one accepted connection).

use std::future::Future;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use prometheus::IntCounter;
use tokio::net::{TcpListener, TcpStream, UnixListener, UnixStream};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::context::Api;
use super::guard::{ConnLimits, ConnPermit};

/// Pause after a failed accept (e.g. out of file descriptors) before trying again.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(50);

/// How long connections still open after the grace period get to notice the hard stop.
const HARD_STOP_WAIT: Duration = Duration::from_secs(1);

/// File descriptors kept free of client connections, whatever the caps say: database
/// connections (pools, the reloader and its COPY streams, LISTEN), the spool, ng sockets, logs.
/// Without it, idle clients up to the open-file limit made dips time out and reloads fail
/// ("Too many open files").
const FD_RESERVE: u64 = 256;

/// A listening socket the loop accepts from.
pub(super) trait Accept: Send + Sync {
    /// An accepted connection (the stream and whatever the server needs of its peer).
    type Conn: Send + 'static;
    fn accept(&self) -> impl Future<Output = std::io::Result<Self::Conn>> + Send;
    /// The address the per-source cap counts the connection against.
    fn source(conn: &Self::Conn) -> IpAddr;
}

impl Accept for TcpListener {
    type Conn = (TcpStream, SocketAddr);

    async fn accept(&self) -> std::io::Result<Self::Conn> {
        let (stream, peer) = TcpListener::accept(self).await?;
        // dips are small request/answer exchanges: never wait for Nagle
        let _ = stream.set_nodelay(true);
        Ok((stream, peer))
    }

    fn source(conn: &Self::Conn) -> IpAddr {
        conn.1.ip()
    }
}

impl Accept for UnixListener {
    type Conn = UnixStream;

    async fn accept(&self) -> std::io::Result<Self::Conn> {
        Ok(UnixListener::accept(self).await?.0)
    }

    /// A unix socket has no source address: its connections share one bucket.
    fn source(_: &Self::Conn) -> IpAddr {
        IpAddr::V4(Ipv4Addr::UNSPECIFIED)
    }
}

/// One listener's accept loop and its caps.
pub(super) struct AcceptLoop {
    /// the `listener` label of logs and metrics
    listener: &'static str,
    /// the cap after [`connection_cap`]
    max_connections: usize,
    max_connections_per_source: usize,
    shutdown_grace: Duration,
    /// counts connections closed because their source was at its cap
    over_source_limit: IntCounter,
}

impl AcceptLoop {
    /// The loop of listener `listener` (one of `listeners` sharing the open-file limit) with
    /// the caps of `[server]`.
    pub(super) fn new(listener: &'static str, api: &Api, listeners: usize) -> AcceptLoop {
        let limits = api.state.limits;
        let max_connections = connection_cap(limits.max_connections, open_files_limit(), listeners);
        if max_connections < limits.max_connections {
            tracing::warn!(
                listener,
                configured = limits.max_connections,
                used = max_connections,
                "server.max_connections lowered to fit the open-file limit (RLIMIT_NOFILE): raise \
                 the limit (LimitNOFILE= in the unit) to allow more"
            );
        }
        AcceptLoop {
            listener,
            max_connections,
            max_connections_per_source: limits.max_connections_per_source,
            shutdown_grace: limits.shutdown_grace,
            over_source_limit: api
                .state
                .metrics
                .refused
                .with_label_values(&[listener, "connections_per_source"]),
        }
    }

    /// Accepts until `shutdown`, handing each admitted connection to `serve` together with its
    /// permit (hold it until the connection closes) and the hard-stop token (cancelled when the
    /// grace period after `shutdown` is over). Returns when every connection has finished or
    /// the grace period and [`HARD_STOP_WAIT`] are over.
    pub(super) async fn run<A, F, Fut>(
        self,
        listener: &A,
        shutdown: &CancellationToken,
        mut serve: F,
    ) where
        A: Accept,
        F: FnMut(A::Conn, ConnPermit, CancellationToken) -> Fut,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let conns = ConnLimits::new(self.max_connections, self.max_connections_per_source);
        let tracker = TaskTracker::new();
        let hard_stop = CancellationToken::new();
        loop {
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
                Ok(conn) => {
                    let source = A::source(&conn);
                    let Some(permit) = conns.admit(slot, source) else {
                        self.over_source_limit.inc();
                        tracing::debug!(listener = self.listener, %source, "connection refused: too many from this source");
                        continue;
                    };
                    tracker.spawn(serve(conn, permit, hard_stop.clone()));
                }
                Err(e) => {
                    tracing::warn!(listener = self.listener, error = %e, "accept failed");
                    tokio::select! {
                        _ = shutdown.cancelled() => break,
                        _ = tokio::time::sleep(ACCEPT_BACKOFF) => {}
                    }
                }
            }
        }
        tracker.close();
        if tokio::time::timeout(self.shutdown_grace, tracker.wait())
            .await
            .is_err()
        {
            tracing::warn!(
                listener = self.listener,
                connections = tracker.len(),
                grace_ms = self.shutdown_grace.as_millis() as u64,
                "shutdown grace period over; dropping connections with requests in flight"
            );
            hard_stop.cancel();
            let _ = tokio::time::timeout(HARD_STOP_WAIT, tracker.wait()).await;
        }
    }
}

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

/// Connections one of `listeners` listeners may hold: the configured cap, lowered so that all
/// listeners' connections and [`FD_RESERVE`] fit the open-file limit.
pub(super) fn connection_cap(
    configured: usize,
    open_files: Option<u64>,
    listeners: usize,
) -> usize {
    match open_files {
        Some(n) => {
            let listeners = u64::try_from(listeners.max(1)).unwrap_or(u64::MAX);
            let per_listener = (n.saturating_sub(FD_RESERVE) / listeners).max(1);
            configured.min(usize::try_from(per_listener).unwrap_or(usize::MAX))
        }
        None => configured,
    }
}

#[cfg(test)]
mod tests {
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
    fn every_listener_and_the_reserve_fit_the_open_file_limit() {
        // ulimit -n 1024 and the default cap of 4096 per listener
        for listeners in 1..=4usize {
            let cap = connection_cap(4096, Some(1024), listeners);
            assert!(
                listeners as u64 * cap as u64 + FD_RESERVE <= 1024,
                "{listeners} listeners: {cap}"
            );
        }
        assert_eq!(connection_cap(4096, Some(1024), 2), 384);
        assert_eq!(connection_cap(4096, Some(1024), 3), 256);
        // a unit's LimitNOFILE=65536 leaves the configured cap alone
        assert_eq!(connection_cap(4096, Some(65_536), 3), 4096);
        assert_eq!(connection_cap(4096, None, 3), 4096);
        // absurdly low limits still serve one connection
        assert_eq!(connection_cap(4096, Some(10), 2), 1);
        assert_eq!(connection_cap(4096, Some(1024), 0), 768, "0 counts as 1");
    }

    #[test]
    fn this_process_limit_is_readable_on_linux() {
        // the tests run on Linux: the helper must find the limit (or "unlimited")
        let text = std::fs::read_to_string("/proc/self/limits").unwrap_or_default();
        assert!(text.contains("Max open files"), "{text}");
    }
}
