//! The RTPEngine node pool: nodes from config and/or Consul, weights, health by `ping`, and
//! call stickiness.
//!
//! - A new call (an `offer` whose call-id the pool does not know) goes to the healthy nodes in a
//!   weighted rendezvous order seeded by the call-id (stable for the same call, spread by weight);
//!   if a node times out it is marked down and the next one is tried (failover of new calls).
//! - Every later command of a call goes to the node that took its offer (sticky by call-id). If
//!   that node is down or gone the command fails with a clear error: the call's media state lives
//!   on that node, so sending it elsewhere would be wrong.
//! - A node that times out is taken out at once; the prober pings every node each
//!   `health_interval` and brings it back when it answers.
//!
//! Owns: node list, node health, the call → node map. Must not touch: policy, the wire format.

use std::hash::{BuildHasher, Hasher};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use arc_swap::ArcSwap;
use serde::Serialize;
use tokio_util::sync::CancellationToken;

use super::client::NgClient;
use super::codec::{Command, NgAnswer, NgRequest, NgResult};
use super::metrics::MediaMetrics;
use super::MediaError;

/// Where a node came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum NodeSource {
    Config,
    Consul,
}

/// A node as configured or discovered.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeSpec {
    pub addr: SocketAddr,
    pub weight: u32,
    pub source: NodeSource,
}

/// A node and its health.
pub struct Node {
    pub addr: SocketAddr,
    pub weight: u32,
    pub source: NodeSource,
    healthy: AtomicBool,
    calls: AtomicU64,
    last_error: Mutex<Option<String>>,
}

/// A node as shown by `media.nodes`.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct NodeInfo {
    pub address: String,
    pub weight: u32,
    pub source: NodeSource,
    pub healthy: bool,
    /// calls whose offer this node took (since start)
    pub calls: u64,
    pub last_error: Option<String>,
}

impl Node {
    fn new(s: &NodeSpec) -> Node {
        Node {
            addr: s.addr,
            weight: s.weight.max(1),
            source: s.source,
            // optimistic: a configured node serves until it fails a probe or a request
            healthy: AtomicBool::new(true),
            calls: AtomicU64::new(0),
            last_error: Mutex::new(None),
        }
    }
    pub fn is_healthy(&self) -> bool {
        self.healthy.load(Ordering::Relaxed)
    }
}

/// Pool settings.
#[derive(Clone, Debug)]
pub struct PoolConfig {
    pub health_interval: Duration,
    /// how long the call → node map keeps an idle call
    pub call_ttl: Duration,
    pub max_calls: u64,
}

pub struct NodePool {
    client: Arc<NgClient>,
    static_nodes: Vec<NodeSpec>,
    nodes: ArcSwap<Vec<Arc<Node>>>,
    sticky: moka::sync::Cache<String, SocketAddr>,
    metrics: Arc<MediaMetrics>,
    hasher: std::collections::hash_map::RandomState,
    cfg: PoolConfig,
}

impl NodePool {
    pub fn new(
        client: Arc<NgClient>,
        static_nodes: Vec<NodeSpec>,
        cfg: PoolConfig,
        metrics: Arc<MediaMetrics>,
    ) -> NodePool {
        let nodes: Vec<Arc<Node>> = static_nodes
            .iter()
            .map(|s| Arc::new(Node::new(s)))
            .collect();
        for n in &nodes {
            metrics
                .node_up
                .with_label_values(&[&n.addr.to_string()])
                .set(1);
        }
        NodePool {
            client,
            static_nodes,
            nodes: ArcSwap::from_pointee(nodes),
            sticky: moka::sync::Cache::builder()
                .max_capacity(cfg.max_calls)
                .time_to_idle(cfg.call_ttl)
                .build(),
            metrics,
            hasher: std::collections::hash_map::RandomState::new(),
            cfg,
        }
    }

    pub fn client(&self) -> &Arc<NgClient> {
        &self.client
    }

    /// Replaces the Consul-discovered nodes (configured nodes always stay). Nodes present before
    /// and after keep their health state.
    pub fn set_discovered(&self, discovered: Vec<NodeSpec>) {
        let old = self.nodes.load_full();
        let mut specs = self.static_nodes.clone();
        for d in discovered {
            if !specs.iter().any(|s| s.addr == d.addr) {
                specs.push(d);
            }
        }
        let next: Vec<Arc<Node>> = specs
            .iter()
            .map(|s| {
                match old
                    .iter()
                    .find(|n| n.addr == s.addr && n.weight == s.weight.max(1))
                {
                    Some(n) => n.clone(),
                    None => {
                        self.metrics
                            .node_up
                            .with_label_values(&[&s.addr.to_string()])
                            .set(1);
                        Arc::new(Node::new(s))
                    }
                }
            })
            .collect();
        for n in old.iter() {
            if !next.iter().any(|m| m.addr == n.addr) {
                let _ = self
                    .metrics
                    .node_up
                    .remove_label_values(&[&n.addr.to_string()]);
                tracing::info!(node = %n.addr, "media node left the pool");
            }
        }
        for n in next.iter() {
            if !old.iter().any(|m| m.addr == n.addr) {
                tracing::info!(node = %n.addr, weight = n.weight, source = ?n.source, "media node joined the pool");
            }
        }
        self.nodes.store(Arc::new(next));
    }

    pub fn nodes(&self) -> Vec<NodeInfo> {
        self.nodes
            .load()
            .iter()
            .map(|n| NodeInfo {
                address: n.addr.to_string(),
                weight: n.weight,
                source: n.source,
                healthy: n.is_healthy(),
                calls: n.calls.load(Ordering::Relaxed),
                last_error: n.last_error.lock().ok().and_then(|e| e.clone()),
            })
            .collect()
    }

    pub fn any_healthy(&self) -> bool {
        self.nodes.load().iter().any(|n| n.is_healthy())
    }

    /// The node holding `call_id`, if the pool knows the call.
    pub fn node_of(&self, call_id: &str) -> Option<SocketAddr> {
        self.sticky.get(call_id)
    }

    fn set_health(&self, n: &Node, ok: bool, why: Option<String>) {
        let was = n.healthy.swap(ok, Ordering::Relaxed);
        if was != ok {
            if ok {
                tracing::info!(node = %n.addr, "media node is back");
            } else {
                tracing::warn!(node = %n.addr, error = ?why, "media node taken out of the pool");
            }
        }
        if let Some(w) = why {
            if let Ok(mut e) = n.last_error.lock() {
                *e = Some(w);
            }
        }
        self.metrics
            .node_up
            .with_label_values(&[&n.addr.to_string()])
            .set(i64::from(ok));
    }

    /// Healthy nodes in weighted rendezvous order for `key` (highest random weight first).
    fn ranked(&self, key: &str) -> Vec<Arc<Node>> {
        let nodes = self.nodes.load();
        let mut scored: Vec<(f64, Arc<Node>)> = nodes
            .iter()
            .filter(|n| n.is_healthy())
            .map(|n| {
                let mut h = self.hasher.build_hasher();
                h.write(key.as_bytes());
                h.write(n.addr.to_string().as_bytes());
                // uniform in (0, 1]; score = -w / ln(u): larger weights win proportionally
                let u = ((h.finish() >> 11) as f64 + 1.0) / (1u64 << 53) as f64;
                let score = -(n.weight as f64) / u.ln().min(-f64::MIN_POSITIVE);
                (score, n.clone())
            })
            .collect();
        scored.sort_by(|a, b| b.0.total_cmp(&a.0));
        scored.into_iter().map(|(_, n)| n).collect()
    }

    fn find(&self, addr: SocketAddr) -> Option<Arc<Node>> {
        self.nodes.load().iter().find(|n| n.addr == addr).cloned()
    }

    /// Sends one request to one node; a transport failure takes the node out.
    async fn send(
        &self,
        node: &Node,
        req: &NgRequest,
        node_time: &mut Duration,
    ) -> Result<NgAnswer, MediaError> {
        let t0 = std::time::Instant::now();
        let r = self.client.request(node.addr, req).await;
        *node_time += t0.elapsed();
        match r {
            Ok(r) => Ok(r),
            Err(e @ (MediaError::Timeout { .. } | MediaError::Io(_))) => {
                self.set_health(node, false, Some(e.to_string()));
                Err(e)
            }
            Err(e) => Err(e),
        }
    }

    /// Routes a command to its node and returns the node's answer (an `error` result included:
    /// the caller decides what to do with it) and the node it went to.
    pub async fn dispatch(&self, req: &NgRequest) -> Result<(NgAnswer, SocketAddr), MediaError> {
        let mut node_time = Duration::ZERO;
        self.dispatch_timed(req, &mut node_time).await
    }

    /// [`dispatch`](Self::dispatch), adding the time spent waiting for nodes to `node_time`.
    pub async fn dispatch_timed(
        &self,
        req: &NgRequest,
        node_time: &mut Duration,
    ) -> Result<(NgAnswer, SocketAddr), MediaError> {
        let call_id = req.call_id().map(str::to_string);
        match (req.command, call_id) {
            (Command::Offer, Some(cid)) => {
                if let Some(addr) = self.sticky.get(&cid) {
                    // re-offer of a known call (re-INVITE): only its node has its state
                    let node = self.find(addr).ok_or(MediaError::NodeGone { node: addr })?;
                    if !node.is_healthy() {
                        return Err(MediaError::NodeDown { node: addr });
                    }
                    let r = self.send(&node, req, node_time).await?;
                    return Ok((r, addr));
                }
                let ranked = self.ranked(&cid);
                if ranked.is_empty() {
                    return Err(MediaError::NoHealthyNode);
                }
                let mut last = MediaError::NoHealthyNode;
                for node in ranked {
                    // pin BEFORE sending: a command of this call that arrives while the offer is
                    // in flight (e.g. a CANCEL's delete) must go to the same node, not be refused
                    self.sticky.insert(cid.clone(), node.addr);
                    match self.send(&node, req, node_time).await {
                        Ok(r) => {
                            if r.result == NgResult::Ok {
                                node.calls.fetch_add(1, Ordering::Relaxed);
                            } else {
                                self.unpin(&cid, node.addr);
                            }
                            return Ok((r, node.addr));
                        }
                        Err(e @ (MediaError::Timeout { .. } | MediaError::Io(_))) => {
                            tracing::warn!(node = %node.addr, error = %e, "offer failed over to the next node");
                            self.metrics.error("failover");
                            last = e;
                        }
                        Err(e) => {
                            self.unpin(&cid, node.addr);
                            return Err(e);
                        }
                    }
                }
                if let Some(a) = self.sticky.get(&cid) {
                    self.unpin(&cid, a);
                }
                Err(last)
            }
            (_, Some(cid)) => {
                let addr = match self.sticky.get(&cid) {
                    Some(a) => a,
                    None => self
                        .locate(&cid, node_time)
                        .await
                        .ok_or_else(|| MediaError::UnknownCall(cid.clone()))?,
                };
                let node = self.find(addr).ok_or(MediaError::NodeGone { node: addr })?;
                if !node.is_healthy() {
                    // fail fast: the call's node is known to be down
                    return Err(MediaError::NodeDown { node: addr });
                }
                let r = self.send(&node, req, node_time).await?;
                if req.command == Command::Delete
                    && r.result == NgResult::Ok
                    && req.dict.get("via-branch").is_none()
                    && req.to_tag().is_none()
                {
                    self.sticky.invalidate(&cid);
                }
                Ok((r, addr))
            }
            (_, None) => {
                // list, statistics, ping: any healthy node
                let node = self
                    .ranked("")
                    .into_iter()
                    .next()
                    .ok_or(MediaError::NoHealthyNode)?;
                let r = self.send(&node, req, node_time).await?;
                Ok((r, node.addr))
            }
        }
    }

    /// Forgets `call_id` → `addr` unless the call has meanwhile been pinned elsewhere.
    fn unpin(&self, call_id: &str, addr: SocketAddr) {
        if self.sticky.get(call_id) == Some(addr) {
            self.sticky.invalidate(call_id);
        }
    }

    /// Finds which healthy node holds a call the pool does not know (warpd restarted, or another
    /// warpd took the offer) by asking every node `query` at once; pins the call there.
    async fn locate(&self, call_id: &str, node_time: &mut Duration) -> Option<SocketAddr> {
        let t0 = std::time::Instant::now();
        let found = self.locate_inner(call_id).await;
        *node_time += t0.elapsed();
        found
    }

    async fn locate_inner(&self, call_id: &str) -> Option<SocketAddr> {
        let nodes = self.nodes.load_full();
        let q = NgRequest::new(Command::Query).with("call-id", call_id);
        let timeout = self.client.config().timeout;
        let futs = nodes.iter().filter(|n| n.is_healthy()).map(|n| {
            let q = &q;
            async move {
                match self.client.request_with(n.addr, q, timeout, 0).await {
                    Ok(r) if r.result == NgResult::Ok => Some(n.addr),
                    _ => None,
                }
            }
        });
        let found = futures_util::future::join_all(futs)
            .await
            .into_iter()
            .flatten()
            .next()?;
        tracing::info!(node = %found, "call found on a node by query; pinned");
        self.sticky.insert(call_id.to_string(), found);
        Some(found)
    }

    /// Pings every node once (concurrently) and updates health. Returns how many answered.
    pub async fn probe_once(&self) -> usize {
        let nodes = self.nodes.load_full();
        let ping = NgRequest::new(Command::Ping);
        let timeout = self.client.config().timeout;
        let futs = nodes.iter().map(|n| {
            let ping = &ping;
            async move {
                let r = self.client.request_with(n.addr, ping, timeout, 1).await;
                match r {
                    Ok(resp) if resp.result == NgResult::Pong => {
                        self.set_health(n, true, None);
                        true
                    }
                    Ok(resp) => {
                        self.set_health(n, false, Some(format!("ping answered {:?}", resp.result)));
                        false
                    }
                    Err(e) => {
                        self.metrics.error("probe_failed");
                        self.set_health(n, false, Some(e.to_string()));
                        false
                    }
                }
            }
        });
        futures_util::future::join_all(futs)
            .await
            .into_iter()
            .filter(|ok| *ok)
            .count()
    }

    /// Probes every `health_interval` until shutdown.
    pub async fn run_prober(self: Arc<Self>, shutdown: CancellationToken) {
        loop {
            self.probe_once().await;
            tokio::select! {
                _ = tokio::time::sleep(self.cfg.health_interval) => {}
                _ = shutdown.cancelled() => break,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::client::ClientConfig;
    use std::sync::atomic::AtomicBool;

    async fn pool(nodes: Vec<NodeSpec>) -> (NodePool, Arc<MediaMetrics>, CancellationToken) {
        let sd = CancellationToken::new();
        let metrics = Arc::new(MediaMetrics::new(None));
        let client = NgClient::start(
            "127.0.0.1:0".parse().unwrap(),
            ClientConfig {
                timeout: Duration::from_millis(40),
                retries: 0,
            },
            metrics.clone(),
            sd.clone(),
        )
        .await
        .unwrap();
        let cfg = PoolConfig {
            health_interval: Duration::from_secs(3600),
            call_ttl: Duration::from_secs(60),
            max_calls: 1000,
        };
        let pool = NodePool::new(client, nodes, cfg, metrics.clone());
        (pool, metrics, sd)
    }

    fn spec(addr: &str, weight: u32) -> NodeSpec {
        NodeSpec {
            addr: addr.parse().unwrap(),
            weight,
            source: NodeSource::Config,
        }
    }

    #[tokio::test]
    async fn new_calls_spread_by_weight_and_each_call_keeps_its_order() {
        let (a, b) = ("127.0.0.1:40001", "127.0.0.1:40002");
        let (pool, _m, _sd) = pool(vec![spec(a, 1), spec(b, 3)]).await;
        let n = 8000;
        let to_b = (0..n)
            .filter(|i| pool.ranked(&format!("call-{i}"))[0].addr.to_string() == b)
            .count();
        let share = to_b as f64 / n as f64;
        // weight 3 of 4: three calls in four; 8,000 draws put the share within ±0.03
        assert!(
            (share - 0.75).abs() < 0.03,
            "share of the weight-3 node: {share}"
        );
        // the same call always ranks the nodes the same way
        let first = pool.ranked("call-7")[0].addr;
        assert!((0..20).all(|_| pool.ranked("call-7")[0].addr == first));
        // both nodes are always in the order (failover has somewhere to go)
        assert_eq!(pool.ranked("call-7").len(), 2);
    }

    #[tokio::test]
    async fn a_silent_node_is_taken_out_and_probed_back_when_it_answers() {
        let sock = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let addr = sock.local_addr().unwrap();
        let answering = Arc::new(AtomicBool::new(false));
        let on = answering.clone();
        tokio::spawn(async move {
            let mut buf = vec![0u8; 2048];
            while let Ok((n, from)) = sock.recv_from(&mut buf).await {
                if !on.load(Ordering::Relaxed) {
                    continue;
                }
                let cookie = buf[..n]
                    .split(|b| *b == b' ')
                    .next()
                    .unwrap_or_default()
                    .to_vec();
                let mut pong = cookie;
                pong.extend_from_slice(b" d6:result4:ponge");
                let _ = sock.send_to(&pong, from).await;
            }
        });
        let (pool, m, _sd) = pool(vec![spec(&addr.to_string(), 1)]).await;
        let up = || m.node_up.with_label_values(&[&addr.to_string()]).get();
        assert_eq!(up(), 1, "a configured node serves until it fails");
        // silent: the probe takes it out, counted once as a failed probe
        assert_eq!(pool.probe_once().await, 0);
        assert!(!pool.any_healthy());
        assert_eq!(up(), 0);
        assert_eq!(m.errors.with_label_values(&["probe_failed"]).get(), 1);
        assert_eq!(m.errors.with_label_values(&["timeout"]).get(), 0);
        let info = &pool.nodes()[0];
        assert!(!info.healthy && info.last_error.is_some(), "{info:?}");
        // answers again: the next probe brings it back
        answering.store(true, Ordering::Relaxed);
        assert_eq!(pool.probe_once().await, 1);
        assert!(pool.any_healthy());
        assert_eq!(up(), 1);
        // healthy again; the last error stays on show for the operator
        let info = &pool.nodes()[0];
        assert!(info.healthy && info.last_error.is_some(), "{info:?}");
    }
}
