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

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use tokio::net::UdpSocket;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

use super::client::MAX_DATAGRAM;
use super::codec::{cookie_of, CodecError, NgAnswer, NgRequest, NgResponse};
use super::MediaController;

/// How long an answer is kept for retransmits of its cookie. Kamailio retransmits only until it
/// has an answer, within `rtpengine_tout_ms × rtpengine_retr` (1 s × 5 by default), so a repeat
/// later than that cannot come; a short TTL keeps memory small (2,000 commands/s × 10 s ≈ 20k
/// answers, ~1 KB each).
pub const COOKIE_TTL: Duration = Duration::from_secs(10);
/// Most answers kept for retransmits.
pub const COOKIE_CACHE_MAX: usize = 100_000;
/// Most commands processed at once; datagrams beyond that are dropped (Kamailio retransmits).
pub const MAX_IN_FLIGHT: usize = 4096;

/// Most expired answers dropped per command (see [`CookieCache::expire`]).
const EXPIRE_PER_COMMAND: usize = 16;

type Key = (SocketAddr, Vec<u8>);
type Slot = Arc<OnceLock<Vec<u8>>>;

/// The answers kept per (sender, cookie) for retransmits. Hand-rolled rather than moka: every
/// entry lives exactly [`COOKIE_TTL`], so expiry is a FIFO pop, O(1) per command, on the proxy's
/// own thread. moka ran its housekeeping on this thread too, and once entries began to expire it
/// stalled the proxy for milliseconds (measured: p99.9 32 ms over a 30 s run at 2,000/s).
struct CookieCache {
    map: HashMap<Key, (Instant, Slot)>,
    /// insertion order; an entry whose time no longer matches the map's was replaced
    order: VecDeque<(Instant, Key)>,
    ttl: Duration,
    max: usize,
}

impl CookieCache {
    fn new(ttl: Duration, max: usize) -> CookieCache {
        CookieCache {
            map: HashMap::new(),
            order: VecDeque::new(),
            ttl,
            max,
        }
    }

    /// Drops entries older than the TTL, at most [`EXPIRE_PER_COMMAND`] per call (each command
    /// adds one, so expiry keeps up, and the first command after an idle spell does not pay for
    /// all of them at once: measured, a 10 s pause then cost that command 16 ms), and the oldest
    /// until there is room for one more.
    fn expire(&mut self, now: Instant) {
        let mut expired = 0;
        while let Some((t, _)) = self.order.front() {
            let full = self.order.len() >= self.max;
            if !full
                && (expired == EXPIRE_PER_COMMAND || now.saturating_duration_since(*t) < self.ttl)
            {
                break;
            }
            expired += 1;
            if let Some((t, key)) = self.order.pop_front() {
                if self.map.get(&key).is_some_and(|(at, _)| *at == t) {
                    self.map.remove(&key);
                }
            }
        }
    }

    /// The slot of `key`: `(true, slot)` when it was just created (a new command), `(false,
    /// slot)` for a repeat within the TTL.
    fn slot(&mut self, key: Key, now: Instant) -> (bool, Slot) {
        self.expire(now);
        if let Some((_, slot)) = self.map.get(&key) {
            return (false, slot.clone());
        }
        let slot: Slot = Arc::new(OnceLock::new());
        self.order.push_back((now, key.clone()));
        self.map.insert(key, (now, slot.clone()));
        (true, slot)
    }

    fn remove(&mut self, key: &Key) {
        self.map.remove(key);
    }
}

/// Runs the proxy on `sock` until shutdown.
pub async fn run(sock: UdpSocket, ctl: Arc<MediaController>, shutdown: CancellationToken) {
    let sock = Arc::new(sock);
    let mut answers = CookieCache::new(COOKIE_TTL, COOKIE_CACHE_MAX);
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
        let (fresh, slot) = answers.slot((peer, cookie.to_vec()), t0);
        if !fresh {
            ctl.metrics.proxy_retransmits.inc();
            if let Some(answer) = slot.get() {
                let _ = sock.send_to(answer, peer).await;
            }
            // else: still in flight; the answer goes out when it is ready
            continue;
        }
        let Ok(permit) = permits.clone().try_acquire_owned() else {
            ctl.metrics.error("overload");
            answers.remove(&(peer, cookie.to_vec()));
            continue;
        };
        let datagram = data.to_vec();
        let sock = sock.clone();
        let ctl = ctl.clone();
        tokio::spawn(async move {
            let _permit = permit;
            let mut node_time = Duration::ZERO;
            let (cookie, resp) = handle(&ctl, &datagram, &mut node_time).await;
            // kept for retransmits of this cookie, then sent
            let out = slot.get_or_init(|| resp.encode(&cookie));
            if let Err(e) = sock.send_to(out, peer).await {
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
) -> (Vec<u8>, NgAnswer) {
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
            (cookie, NgResponse::error(&reason).into())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(c: &str) -> Key {
        (
            SocketAddr::from(([127, 0, 0, 1], 5060)),
            c.as_bytes().to_vec(),
        )
    }

    #[test]
    fn a_repeat_within_the_ttl_gets_the_same_slot() {
        let mut c = CookieCache::new(Duration::from_secs(10), 100);
        let t = Instant::now();
        let (fresh, slot) = c.slot(key("a"), t);
        assert!(fresh);
        let _ = slot.set(b"answer".to_vec());
        let (fresh, again) = c.slot(key("a"), t + Duration::from_secs(9));
        assert!(!fresh);
        assert_eq!(again.get().map(Vec::as_slice), Some(&b"answer"[..]));
        // another sender with the same cookie is another command
        let other = (SocketAddr::from(([127, 0, 0, 1], 5061)), b"a".to_vec());
        assert!(c.slot(other, t).0);
    }

    #[test]
    fn entries_expire_after_the_ttl_and_beyond_the_bound() {
        let mut c = CookieCache::new(Duration::from_secs(10), 3);
        let t = Instant::now();
        c.slot(key("a"), t);
        c.slot(key("b"), t + Duration::from_secs(5));
        // a is 10 s old: gone; b is not
        assert!(c.slot(key("a"), t + Duration::from_secs(10)).0);
        assert!(!c.slot(key("b"), t + Duration::from_secs(10)).0);
        assert_eq!(c.map.len(), 2);
        // bound of 3: the oldest goes first
        let t2 = t + Duration::from_secs(11);
        c.slot(key("c"), t2);
        c.slot(key("d"), t2);
        assert_eq!(c.map.len(), 3);
        assert!(!c.map.contains_key(&key("b")));
    }

    #[test]
    fn expiry_is_spread_over_commands() {
        let mut c = CookieCache::new(Duration::from_secs(10), 1000);
        let t = Instant::now();
        for i in 0..100 {
            c.slot(key(&format!("k{i}")), t);
        }
        // all 100 are stale now; one command drops at most EXPIRE_PER_COMMAND of them
        c.slot(key("new"), t + Duration::from_secs(60));
        assert_eq!(c.map.len(), 100 - EXPIRE_PER_COMMAND + 1);
        for i in 0..10 {
            c.slot(key(&format!("n{i}")), t + Duration::from_secs(60));
        }
        assert_eq!(c.map.len(), 11, "the backlog is gone after a few commands");
    }

    #[test]
    fn a_removed_and_recreated_key_is_not_expired_by_its_old_entry() {
        let mut c = CookieCache::new(Duration::from_secs(10), 100);
        let t = Instant::now();
        c.slot(key("a"), t);
        c.remove(&key("a"));
        assert!(c.slot(key("a"), t + Duration::from_secs(8)).0);
        // the first insertion's queue entry expires at t + 10 s; the second lives to t + 18 s
        assert!(!c.slot(key("a"), t + Duration::from_secs(12)).0);
        assert!(c.slot(key("a"), t + Duration::from_secs(18)).0);
    }
}
