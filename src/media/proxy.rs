//! The ng proxy: a UDP ng listener that Kamailio's `rtpengine` module points its `rtpengine_sock`
//! at. Each datagram is decoded, handed to the [`MediaController`] (policy, node choice) and
//! answered with the sender's own cookie.
//!
//! Kamailio retransmits a command with the same cookie when an answer is slow. The proxy keeps,
//! per (sender, cookie), the answer for [`COOKIE_TTL`]: a repeat that arrives while the command is
//! in flight is absorbed (the answer goes out once it is ready), a repeat after that gets the
//! cached answer — the node never sees the command twice.
//!
//! Bad input (no cookie, not bencode, no `command`, unknown command) is answered with an ng
//! `error` when there is a cookie to answer to, counted in `warpd_media_errors_total`, and never
//! reaches a node.
//!
//! Owns: the listening socket and the cookie cache. Must not touch: policy or nodes directly.

use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use tokio::net::UdpSocket;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

use super::client::MAX_DATAGRAM;
use super::codec::{cookie_of, CodecError, NgRequest, NgResponse};
use super::MediaController;

/// How long an answer is kept for retransmits of its cookie. Kamailio retransmits only until it
/// has an answer, within `rtpengine_tout_ms × rtpengine_retr` (1 s × 5 by default), so a repeat
/// later than that cannot come; a short TTL keeps memory small (2,000 commands/s × 10 s ≈ 20k
/// answers, ~1 KB each).
pub const COOKIE_TTL: Duration = Duration::from_secs(10);
/// Most answers kept for retransmits.
pub const COOKIE_CACHE_MAX: u64 = 100_000;
/// Most commands processed at once; datagrams beyond that are dropped (Kamailio retransmits).
pub const MAX_IN_FLIGHT: usize = 4096;

type Key = (SocketAddr, Vec<u8>);

/// Runs the proxy on `sock` until shutdown.
pub async fn run(sock: UdpSocket, ctl: Arc<MediaController>, shutdown: CancellationToken) {
    let sock = Arc::new(sock);
    let answers: moka::sync::Cache<Key, Arc<OnceLock<Vec<u8>>>> = moka::sync::Cache::builder()
        .max_capacity(COOKIE_CACHE_MAX)
        .time_to_live(COOKIE_TTL)
        .build();
    let permits = Arc::new(Semaphore::new(MAX_IN_FLIGHT));
    let mut buf = vec![0u8; MAX_DATAGRAM];
    tracing::info!(listen = ?sock.local_addr().ok(), "ng proxy listening");
    loop {
        let (n, peer) = tokio::select! {
            r = sock.recv_from(&mut buf) => match r {
                Ok(x) => x,
                Err(e) => {
                    tracing::debug!(error = %e, "ng proxy receive error");
                    continue;
                }
            },
            _ = shutdown.cancelled() => break,
        };
        let t0 = Instant::now();
        let data = &buf[..n];
        let Some(cookie) = cookie_of(data) else {
            ctl.metrics.error("no_cookie");
            tracing::debug!(%peer, len = n, "ng datagram without a cookie dropped");
            continue;
        };
        let entry = answers
            .entry((peer, cookie.to_vec()))
            .or_insert_with(|| Arc::new(OnceLock::new()));
        if !entry.is_fresh() {
            ctl.metrics.proxy_retransmits.inc();
            if let Some(answer) = entry.value().get() {
                let _ = sock.send_to(answer, peer).await;
            }
            // else: still in flight; the answer goes out when it is ready
            continue;
        }
        let slot = entry.into_value();
        let Ok(permit) = permits.clone().try_acquire_owned() else {
            ctl.metrics.error("overload");
            answers.invalidate(&(peer, cookie.to_vec()));
            continue;
        };
        let datagram = data.to_vec();
        let sock = sock.clone();
        let ctl = ctl.clone();
        tokio::spawn(async move {
            let _permit = permit;
            let mut node_time = Duration::ZERO;
            let (cookie, resp) = handle(&ctl, &datagram, &mut node_time).await;
            let out = resp.encode(&cookie);
            let _ = slot.set(out.clone());
            if let Err(e) = sock.send_to(&out, peer).await {
                tracing::debug!(%peer, error = %e, "ng proxy send failed");
            }
            let total = t0.elapsed();
            ctl.metrics.command_duration.observe(total.as_secs_f64());
            ctl.metrics
                .proxy_overhead
                .observe(total.saturating_sub(node_time).as_secs_f64());
        });
    }
}

async fn handle(
    ctl: &MediaController,
    datagram: &[u8],
    node_time: &mut Duration,
) -> (Vec<u8>, NgResponse) {
    let cookie = cookie_of(datagram).unwrap_or_default().to_vec();
    match NgRequest::decode(datagram) {
        Ok((_, req)) => (cookie, ctl.handle_timed(req, node_time).await),
        Err(e) => {
            let kind = match e {
                CodecError::UnknownCommand(_) => "unknown_command",
                CodecError::Missing(_) | CodecError::NotString(_) => "bad_command",
                _ => "decode",
            };
            ctl.metrics.error(kind);
            tracing::debug!(error = %e, "ng proxy: bad request");
            let reason = match &e {
                CodecError::UnknownCommand(_) => "Unrecognized command".to_string(),
                other => format!("warpd: {other}"),
            };
            (cookie, NgResponse::error(&reason))
        }
    }
}
