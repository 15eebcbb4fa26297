//! The ng client: one UDP socket shared by every request to every node.
//!
//! Each request gets a cookie unique to this process (a random prefix fixed at start + a counter:
//! RTPEngine caches answers by cookie alone, so cookies must never repeat across warpd restarts
//! or between warpd instances). Responses are matched by cookie and source address, so any number
//! of requests can be in flight. A request is retransmitted with the SAME cookie after `timeout`
//! (RTPEngine answers a repeated cookie from its cache, so a retransmit never runs a command
//! twice), at most `retries` times. Responses are read into a 64 KiB buffer: RTPEngine sends an
//! answer of any size as one UDP datagram (up to 65,507 bytes), and so do we.
//!
//! Owns: the socket, cookies, the in-flight table. Must not touch: node choice, policy.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::net::UdpSocket;
use tokio::sync::oneshot;
use tokio_util::sync::CancellationToken;

use super::codec::{cookie_of, CodecError, NgAnswer, NgRequest};
use super::metrics::MediaMetrics;
use super::MediaError;

/// Largest UDP payload.
pub const MAX_DATAGRAM: usize = 65_535;

type Waiter = oneshot::Sender<Result<NgAnswer, CodecError>>;

struct Pending {
    node: SocketAddr,
    tx: Waiter,
}

/// Retransmit settings.
#[derive(Clone, Copy, Debug)]
pub struct ClientConfig {
    pub timeout: Duration,
    pub retries: u32,
}

/// The ng client. Cheap to share (`Arc`).
pub struct NgClient {
    sock: Arc<UdpSocket>,
    pending: Arc<Mutex<HashMap<Vec<u8>, Pending>>>,
    prefix: String,
    counter: AtomicU64,
    cfg: ClientConfig,
    metrics: Arc<MediaMetrics>,
}

/// Removes a request's entry from the in-flight table however the request ends.
struct PendingGuard<'a> {
    map: &'a Mutex<HashMap<Vec<u8>, Pending>>,
    cookie: Vec<u8>,
}

impl Drop for PendingGuard<'_> {
    fn drop(&mut self) {
        if let Ok(mut m) = self.map.lock() {
            m.remove(&self.cookie);
        }
    }
}

fn random_prefix() -> String {
    // RandomState is seeded from the OS per process; good enough to keep cookies distinct
    // between processes (not a secret).
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0),
    );
    h.write_u32(std::process::id());
    format!("w{:012x}", h.finish() & 0xffff_ffff_ffff)
}

impl NgClient {
    /// Binds a socket on 127.0.0.1 (or `bind`) and starts the receive task.
    pub async fn start(
        bind: SocketAddr,
        cfg: ClientConfig,
        metrics: Arc<MediaMetrics>,
        shutdown: CancellationToken,
    ) -> Result<Arc<NgClient>, MediaError> {
        let sock = UdpSocket::bind(bind)
            .await
            .map_err(|e| MediaError::Io(format!("binding the ng client socket {bind}: {e}")))?;
        let client = Arc::new(NgClient {
            sock: Arc::new(sock),
            pending: Arc::new(Mutex::new(HashMap::new())),
            prefix: random_prefix(),
            counter: AtomicU64::new(1),
            cfg,
            metrics,
        });
        tokio::spawn(recv_loop(
            client.sock.clone(),
            client.pending.clone(),
            client.metrics.clone(),
            shutdown,
        ));
        Ok(client)
    }

    pub fn config(&self) -> ClientConfig {
        self.cfg
    }

    /// Requests currently waiting for an answer.
    pub fn in_flight(&self) -> usize {
        self.pending.lock().map(|m| m.len()).unwrap_or(0)
    }

    fn next_cookie(&self) -> Vec<u8> {
        let n = self.counter.fetch_add(1, Ordering::Relaxed);
        format!("{}_{n}", self.prefix).into_bytes()
    }

    /// Sends `req` to `node` and returns its answer, whatever its `result` (an error answer is a
    /// valid answer; see [`NgClient::request_ok`]). The answer is checked and its result read;
    /// [`NgAnswer::response`] decodes the rest where needed.
    pub async fn request(&self, node: SocketAddr, req: &NgRequest) -> Result<NgAnswer, MediaError> {
        self.request_with(node, req, self.cfg.timeout, self.cfg.retries)
            .await
    }

    /// [`request`](Self::request) with explicit timeout and retries (health probes use one try).
    pub async fn request_with(
        &self,
        node: SocketAddr,
        req: &NgRequest,
        timeout: Duration,
        retries: u32,
    ) -> Result<NgAnswer, MediaError> {
        let cookie = self.next_cookie();
        let bytes = req.encode(&cookie);
        if bytes.len() > MAX_DATAGRAM - 28 {
            return Err(MediaError::TooLarge(bytes.len()));
        }
        let (tx, mut rx) = oneshot::channel();
        {
            let mut m = self
                .pending
                .lock()
                .map_err(|_| MediaError::Io("in-flight table poisoned".into()))?;
            m.insert(cookie.clone(), Pending { node, tx });
        }
        let _guard = PendingGuard {
            map: &self.pending,
            cookie,
        };
        for attempt in 0..=retries {
            if attempt > 0 {
                self.metrics.retransmits.inc();
            }
            self.sock
                .send_to(&bytes, node)
                .await
                .map_err(|e| MediaError::Io(format!("sending to {node}: {e}")))?;
            match tokio::time::timeout(timeout, &mut rx).await {
                Ok(Ok(Ok(resp))) => return Ok(resp),
                // errors returned to the caller are counted by the caller, once
                // (`MediaController`); this layer counts only datagrams nobody waits for
                Ok(Ok(Err(e))) => {
                    return Err(MediaError::Garbage {
                        node,
                        error: e.to_string(),
                    });
                }
                Ok(Err(_)) => return Err(MediaError::Io("ng receive task stopped".into())),
                Err(_) => continue,
            }
        }
        Err(MediaError::Timeout {
            node,
            attempts: retries + 1,
        })
    }

    /// Like [`request`](Self::request) but an `error` result becomes [`MediaError::Node`].
    pub async fn request_ok(
        &self,
        node: SocketAddr,
        req: &NgRequest,
    ) -> Result<NgAnswer, MediaError> {
        let r = self.request(node, req).await?;
        match &r.result {
            super::codec::NgResult::Error(reason) => Err(MediaError::Node {
                node,
                reason: reason.clone(),
            }),
            _ => Ok(r),
        }
    }
}

async fn recv_loop(
    sock: Arc<UdpSocket>,
    pending: Arc<Mutex<HashMap<Vec<u8>, Pending>>>,
    metrics: Arc<MediaMetrics>,
    shutdown: CancellationToken,
) {
    let mut buf = vec![0u8; MAX_DATAGRAM];
    loop {
        let (n, from) = tokio::select! {
            r = sock.recv_from(&mut buf) => match r {
                Ok(x) => x,
                Err(e) => {
                    // ICMP port unreachable surfaces here on some systems; keep receiving
                    tracing::debug!(error = %e, "ng client receive error");
                    continue;
                }
            },
            _ = shutdown.cancelled() => break,
        };
        let data = &buf[..n];
        let Some(cookie) = cookie_of(data) else {
            metrics.error("garbage_reply");
            tracing::debug!(%from, len = n, "ng reply without cookie dropped");
            continue;
        };
        let waiter = match pending.lock() {
            Ok(mut m) => match m.get(cookie) {
                Some(p) if p.node == from => m.remove(cookie),
                Some(_) => {
                    metrics.error("reply_from_wrong_node");
                    None
                }
                None => {
                    metrics.error("unknown_cookie");
                    None
                }
            },
            Err(_) => None,
        };
        let Some(p) = waiter else {
            tracing::debug!(%from, "ng reply with an unknown cookie dropped (late or foreign)");
            continue;
        };
        let _ = p.tx.send(NgAnswer::decode(data).map(|(_, a)| a));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::codec::{Command, NgResult};

    async fn client(timeout_ms: u64, retries: u32) -> (Arc<NgClient>, CancellationToken) {
        let sd = CancellationToken::new();
        let c = NgClient::start(
            "127.0.0.1:0".parse().unwrap(),
            ClientConfig {
                timeout: Duration::from_millis(timeout_ms),
                retries,
            },
            Arc::new(MediaMetrics::new(None)),
            sd.clone(),
        )
        .await
        .unwrap();
        (c, sd)
    }

    /// A fake node: answers each datagram with `reply(cookie, n)` (None = silence).
    async fn fake_node(
        reply: impl Fn(&[u8], usize) -> Vec<Vec<u8>> + Send + 'static,
    ) -> (SocketAddr, Arc<std::sync::atomic::AtomicUsize>) {
        let sock = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let addr = sock.local_addr().unwrap();
        let seen = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let seen2 = seen.clone();
        tokio::spawn(async move {
            let mut buf = vec![0u8; MAX_DATAGRAM];
            while let Ok((n, from)) = sock.recv_from(&mut buf).await {
                let k = seen2.fetch_add(1, Ordering::Relaxed);
                let cookie = cookie_of(&buf[..n]).unwrap_or_default().to_vec();
                for r in reply(&cookie, k) {
                    let _ = sock.send_to(&r, from).await;
                }
            }
        });
        (addr, seen)
    }

    fn with_cookie(cookie: &[u8], rest: &[u8]) -> Vec<u8> {
        let mut v = cookie.to_vec();
        v.push(b' ');
        v.extend_from_slice(rest);
        v
    }

    #[tokio::test]
    async fn silence_is_a_timeout_after_retries_with_the_same_cookie() {
        let cookies = Arc::new(Mutex::new(Vec::new()));
        let c2 = cookies.clone();
        let (node, seen) = fake_node(move |c, _| {
            c2.lock().unwrap().push(c.to_vec());
            vec![]
        })
        .await;
        let (client, _sd) = client(30, 2).await;
        let e = client
            .request(node, &NgRequest::new(Command::Ping))
            .await
            .unwrap_err();
        assert!(matches!(e, MediaError::Timeout { attempts: 3, .. }), "{e}");
        assert_eq!(seen.load(Ordering::Relaxed), 3);
        let c = cookies.lock().unwrap();
        assert!(c.iter().all(|x| x == &c[0]), "retransmits reuse the cookie");
        assert_eq!(client.metrics.retransmits.get(), 2);
        assert_eq!(client.in_flight(), 0, "nothing left in flight");
    }

    #[tokio::test]
    async fn garbage_foreign_cookies_and_error_results_are_typed() {
        let (node, _) = fake_node(|c, k| match k {
            0 => vec![with_cookie(c, b"d6:resu")],
            1 => vec![
                with_cookie(b"someone-else", b"d6:result4:ponge"),
                b"no-cookie-at-all".to_vec(),
                with_cookie(c, b"d6:result4:ponge"),
            ],
            _ => vec![with_cookie(
                c,
                b"d6:result5:error12:error-reason15:Unknown call-ide",
            )],
        })
        .await;
        let (client, _sd) = client(200, 0).await;
        let ping = NgRequest::new(Command::Ping);
        let e = client.request(node, &ping).await.unwrap_err();
        assert!(matches!(e, MediaError::Garbage { .. }), "{e}");
        let ok = client.request(node, &ping).await.unwrap();
        assert_eq!(ok.result, NgResult::Pong);
        let q = NgRequest::new(Command::Query).with("call-id", "x");
        let e = client.request_ok(node, &q).await.unwrap_err();
        assert!(
            matches!(&e, MediaError::Node { reason, .. } if reason == "Unknown call-id"),
            "{e}"
        );
        // the client counts the datagrams nobody waits for (the one without a cookie, the
        // foreign cookie); the garbage answer to a request is the caller's error to count
        let m = &client.metrics.errors;
        assert_eq!(m.with_label_values(&["garbage_reply"]).get(), 1);
        assert_eq!(m.with_label_values(&["unknown_cookie"]).get(), 1);
    }

    #[tokio::test]
    async fn an_answer_of_60_kb_arrives_whole_in_one_datagram() {
        // RTPEngine answers e.g. `list` or `statistics` of a busy node as one datagram of any
        // size up to the UDP limit; the client reads it whole
        let ids: String = (0..2_800).map(|i| format!("19:call-{i:014}")).collect();
        let body = format!("d5:callsl{ids}e6:result2:oke");
        assert!(body.len() > 60_000, "{}", body.len());
        let (node, _) = fake_node(move |c, _| vec![with_cookie(c, body.as_bytes())]).await;
        let (client, _sd) = client(500, 0).await;
        let a = client
            .request(node, &NgRequest::new(Command::List))
            .await
            .unwrap();
        assert_eq!(a.result, NgResult::Ok);
        let (_, d) = crate::media::codec::parse_datagram(&a.encode(b"k")).unwrap();
        match d.get("calls") {
            Some(crate::media::codec::Bencode::List(l)) => assert_eq!(l.len(), 2_800),
            other => panic!("calls: {other:?}"),
        }
    }

    #[tokio::test]
    async fn many_requests_in_flight_are_matched_by_cookie() {
        // the fake answers each request twice late and out of order (after the next arrives)
        let pending: Arc<Mutex<Vec<Vec<u8>>>> = Arc::default();
        let p2 = pending.clone();
        let (node, _) = fake_node(move |c, _| {
            let mut p = p2.lock().unwrap();
            p.push(c.to_vec());
            if p.len() < 50 {
                return vec![];
            }
            p.drain(..)
                .rev()
                .map(|c| {
                    let id = String::from_utf8_lossy(&c).into_owned();
                    with_cookie(
                        &c,
                        format!("d6:result2:ok4:echo{}:{id}e", id.len()).as_bytes(),
                    )
                })
                .collect()
        })
        .await;
        let (client, _sd) = client(2000, 0).await;
        let futs = (0..50).map(|_| {
            let client = client.clone();
            async move { client.request(node, &NgRequest::new(Command::List)).await }
        });
        let results = futures_util::future::join_all(futs).await;
        let mut echoes: Vec<String> = results
            .into_iter()
            .map(|r| {
                r.unwrap()
                    .response()
                    .unwrap()
                    .dict
                    .str("echo")
                    .unwrap()
                    .to_string()
            })
            .collect();
        echoes.sort();
        echoes.dedup();
        assert_eq!(echoes.len(), 50, "every request got its own answer");
    }
}
