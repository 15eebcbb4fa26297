//! The Kamailio surface over RESP2 (the Redis protocol), for Kamailio's `ndb_redis` module: a
//! synchronous dip over one persistent connection per Kamailio process, answered as a flat array
//! the script indexes directly (no JSON to parse). TCP (`server.kamailio_resp_listen`) and/or a
//! unix socket (`server.kamailio_resp_socket`).
//!
//! The guard is the HTTP Kamailio surface's ([`KamailioAuth`]): a TCP source off the allow-list
//! gets `-NOPERM` and is closed; with a secret configured, a connection must `AUTH <secret>`
//! first (anything but `AUTH`/`PING`/`QUIT` gets `-NOAUTH`; a wrong secret gets `-WRONGPASS` and
//! the connection is closed), unless `server.kamailio_resp_require_secret = false` (then the
//! allow-list and the socket permissions are the guard; see that key for why). A unix socket has no source address: its file permissions are its
//! allow-list. Connection caps are the HTTP listeners' ([`ConnLimits`]: `server.max_connections`,
//! `server.max_connections_per_source`); a connection idle for
//! `server.kamailio_resp_idle_timeout_ms` is closed, and a command started must complete within
//! `server.body_read_timeout_ms`. Pipelined commands are answered in order. Input that breaks the
//! framing (a bad length, a value over the codec's [`Limits`]) gets `-ERR Protocol error: …` and
//! the connection is closed; nothing a peer sends can make it panic.
//!
//! Owns: the RESP sockets and connection lifetimes. Must not touch: command semantics (see
//! `command.rs`), the dip itself ([`Api::dip`]).

mod command;
mod inbound;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, UnixListener};
use tokio_util::sync::CancellationToken;
use warpd_resp::{Limits, Value};

use super::accept::AcceptLoop;
use super::context::Api;
use command::{Session, Step};

pub use command::answer_array;

/// The `listener` label of this surface's metrics.
const LISTENER: &str = "kamailio_resp";

/// A bound RESP listener.
pub enum RespListener {
    /// `server.kamailio_resp_listen`
    Tcp(TcpListener),
    /// `server.kamailio_resp_socket` (its path is removed at shutdown)
    Unix(UnixListener, PathBuf),
}

/// Why a RESP listener could not be bound.
#[derive(Debug, thiserror::Error)]
pub enum RespBindError {
    #[error("bind {addr} (server.kamailio_resp_listen)")]
    Tcp {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("unix socket {} (server.kamailio_resp_socket)", path.display())]
    Unix {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
}

impl RespListener {
    /// Binds what `[server]` configures: none, the TCP listener, the unix socket, or both.
    pub async fn bind(c: &crate::config::ServerConfig) -> Result<Vec<RespListener>, RespBindError> {
        let mut out = Vec::new();
        if let Some(addr) = c.kamailio_resp_addr()? {
            let l = TcpListener::bind(addr)
                .await
                .map_err(|source| RespBindError::Tcp { addr, source })?;
            out.push(RespListener::Tcp(l));
        }
        if let Some(path) = &c.kamailio_resp_socket {
            out.push(Self::bind_unix(path, c.kamailio_resp_socket_mode)?);
        }
        Ok(out)
    }

    /// A unix socket at `path` with permissions `mode`; a stale socket file there is replaced
    /// (any other file is not: that is an error).
    pub fn bind_unix(path: &Path, mode: u32) -> Result<RespListener, RespBindError> {
        use std::os::unix::fs::{FileTypeExt, PermissionsExt};
        let err = |source| RespBindError::Unix {
            path: path.to_path_buf(),
            source,
        };
        if let Ok(m) = std::fs::symlink_metadata(path) {
            if m.file_type().is_socket() {
                std::fs::remove_file(path).map_err(err)?;
            }
        }
        let l = UnixListener::bind(path).map_err(err)?;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).map_err(err)?;
        Ok(RespListener::Unix(l, path.to_path_buf()))
    }

    /// The TCP address, if this is the TCP listener.
    pub fn local_addr(&self) -> Option<SocketAddr> {
        match self {
            RespListener::Tcp(l) => l.local_addr().ok(),
            RespListener::Unix(..) => None,
        }
    }
}

/// Serves one RESP listener (one of `listeners` sharing the open-file limit) until
/// `shutdown`, then lets commands in flight finish (bounded by `server.shutdown_grace_ms`).
pub(super) async fn serve(
    listener: RespListener,
    api: Arc<Api>,
    shutdown: CancellationToken,
    listeners: usize,
) {
    tracing::info!(listener = LISTENER, addr = ?listener.local_addr(), "RESP listening");
    let accept = AcceptLoop::new(LISTENER, &api, listeners);
    match &listener {
        RespListener::Tcp(l) => {
            accept
                .run(l, &shutdown, |(stream, peer), permit, hard_stop| {
                    let (api, shutdown) = (api.clone(), shutdown.clone());
                    async move {
                        let _permit = permit;
                        tokio::select! {
                            _ = connection(stream, Some(peer.ip()), api, shutdown) => {}
                            _ = hard_stop.cancelled() => {}
                        }
                    }
                })
                .await
        }
        RespListener::Unix(l, path) => {
            accept
                .run(l, &shutdown, |stream, permit, hard_stop| {
                    let (api, shutdown) = (api.clone(), shutdown.clone());
                    async move {
                        let _permit = permit;
                        tokio::select! {
                            _ = connection(stream, None, api, shutdown) => {}
                            _ = hard_stop.cancelled() => {}
                        }
                    }
                })
                .await;
            let _ = std::fs::remove_file(path);
        }
    }
}

/// One connection: read, answer every complete command in order (pipelining), write, repeat.
async fn connection<S: AsyncRead + AsyncWrite + Unpin>(
    mut stream: S,
    peer: Option<IpAddr>,
    api: Arc<Api>,
    shutdown: CancellationToken,
) {
    let auth = &api.state.kamailio_auth;
    let mut out = Vec::with_capacity(1024);
    if let Some(ip) = peer {
        if !auth.allows(ip) {
            refused(&api, "source_not_allowed");
            tracing::debug!(listener = LISTENER, source = %ip, "RESP connection refused: source not allowed");
            Value::Error(super::ApiError::SourceNotAllowed.resp_error()).encode(&mut out);
            let _ = stream.write_all(&out).await;
            return;
        }
    }
    let codec = Limits::default();
    let idle = api.state.limits.resp_idle_timeout;
    let started = api.state.limits.body_read_timeout;
    let mut session = Session::new(
        !(auth.requires_secret() && api.state.limits.resp_require_secret),
        // the unix socket is a local peer: it dips under the rule of 127.0.0.1
        peer.unwrap_or(IpAddr::V4(Ipv4Addr::LOCALHOST)),
    );
    let mut buf: Vec<u8> = Vec::with_capacity(4096);
    let mut chunk = [0u8; 4096];
    loop {
        // answer every complete command already buffered
        let mut close = false;
        let mut used = 0;
        loop {
            match warpd_resp::decode_command(&buf[used..], &codec) {
                Ok(Some((args, n))) => {
                    used += n;
                    if args.is_empty() {
                        continue;
                    }
                    match session.run(&api, &args, &mut out) {
                        Step::Continue => {}
                        Step::Close => {
                            close = true;
                            break;
                        }
                    }
                }
                Ok(None) => break,
                Err(e) => {
                    api.bad_request(super::Surface::Resp, "protocol");
                    tracing::debug!(listener = LISTENER, error = %e, "RESP protocol error: closing");
                    Value::Error(format!("ERR Protocol error: {e}")).encode(&mut out);
                    close = true;
                    break;
                }
            }
        }
        buf.drain(..used);
        if !out.is_empty() {
            if stream.write_all(&out).await.is_err() {
                return;
            }
            out.clear();
        }
        if close || shutdown.is_cancelled() {
            let _ = stream.shutdown().await;
            return;
        }
        // idle between commands; a command partly received must be completed sooner
        let wait = if buf.is_empty() { idle } else { started };
        let n = tokio::select! {
            _ = shutdown.cancelled() => return,
            r = tokio::time::timeout(wait, stream.read(&mut chunk)) => match r {
                Ok(Ok(n)) => n,
                Ok(Err(_)) => return,
                Err(_) => {
                    tracing::debug!(listener = LISTENER, partial = !buf.is_empty(), "RESP connection timed out");
                    return;
                }
            },
        };
        if n == 0 {
            return;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

/// Counts a connection or command refused by the guard.
fn refused(api: &Api, reason: &str) {
    api.state
        .metrics
        .refused
        .with_label_values(&[LISTENER, reason])
        .inc();
}

/// A reject as the `LCR` and `INBOUND` arrays carry it: `reject`, the SIP code, the reason, four
/// empty fields and 0 entries (the header of [`command::answer_array`]'s layout).
fn reject_array(code: u16, reason: &str) -> Value {
    let empty = || Value::bulk("");
    Value::Array(vec![
        Value::bulk("reject"),
        Value::Integer(i64::from(code)),
        Value::bulk(reason.as_bytes()),
        empty(),
        empty(),
        empty(),
        empty(),
        Value::Integer(0),
    ])
}
