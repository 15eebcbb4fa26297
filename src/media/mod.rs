//! Media control: warpd drives RTPEngine nodes over the ng protocol and answers ng itself, so
//! Kamailio's stock `rtpengine` module can point at warpd.
//!
//! ```text
//! Kamailio rtpengine ──ng/UDP──▶ proxy ──▶ MediaController::handle ──policy──▶ NodePool ──ng──▶ RTPEngine
//!                                              ▲ CallContextSource (filled by dips)      ▲ Consul / config
//! /rpc media.* ────────────────────────────────┘
//! ```
//!
//! - [`codec`]: the wire format (pure). [`client`]: UDP transport, cookies, retransmits.
//! - [`pool`]: nodes, health, stickiness by call-id. [`consul`]: discovery.
//! - [`policy`]: recording / T.38 / codecs per customer and route. [`context`]: call-id → dip
//!   decision. [`proxy`]: the UDP listener for Kamailio.
//!
//! Owns: everything ng. Must not touch: routing (it only reads what the dip handler remembered
//! through [`CallContextSource`]), the HTTP listener (the API calls [`MediaController`]).

pub mod client;
pub use warpd_ng as codec;
pub mod consul;
pub mod context;
pub mod metrics;
pub mod policy;
pub mod pool;
pub mod proxy;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;

use self::client::{ClientConfig, NgClient};
use self::codec::{Command, NgAnswer, NgRequest, NgResponse, NgResult, Quality};
pub use self::consul::ConsulConfig;
pub use self::context::{CallContext, CallContextSource, DipContextCache};
use self::metrics::MediaMetrics;
pub use self::policy::{MediaPolicy, PolicyTable, T38Mode};
pub use self::pool::{NodeInfo, NodePool, NodeSource, NodeSpec, PoolConfig};

/// Errors of the media layer.
#[derive(Debug, thiserror::Error)]
pub enum MediaError {
    #[error("media control is not configured (no [media] section)")]
    NotConfigured,
    #[error("no healthy RTPEngine node")]
    NoHealthyNode,
    #[error("call {0:?} is not known to the media controller")]
    UnknownCall(String),
    #[error("RTPEngine node {node} holding this call is down")]
    NodeDown { node: SocketAddr },
    #[error("RTPEngine node {node} holding this call left the pool")]
    NodeGone { node: SocketAddr },
    #[error("RTPEngine node {node} did not answer ({attempts} attempts)")]
    Timeout { node: SocketAddr, attempts: u32 },
    #[error("RTPEngine node {node} answered an error: {reason}")]
    Node { node: SocketAddr, reason: String },
    #[error("RTPEngine node {node} answered garbage: {error}")]
    Garbage { node: SocketAddr, error: String },
    #[error("ng request of {0} bytes does not fit a datagram")]
    TooLarge(usize),
    #[error("ng socket: {0}")]
    Io(String),
    #[error("media policies: {0}")]
    Policy(String),
    #[error("consul: {0}")]
    Consul(String),
    #[error("media config `{key}`: {message}")]
    Config { key: String, message: String },
}

impl MediaError {
    /// Label for metrics.
    pub fn kind(&self) -> &'static str {
        match self {
            MediaError::NotConfigured => "not_configured",
            MediaError::NoHealthyNode => "no_healthy_node",
            MediaError::UnknownCall(_) => "unknown_call",
            MediaError::NodeDown { .. } => "node_down",
            MediaError::NodeGone { .. } => "node_gone",
            MediaError::Timeout { .. } => "timeout",
            MediaError::Node { .. } => "node_error",
            MediaError::Garbage { .. } => "garbage_reply",
            MediaError::TooLarge(_) => "too_large",
            MediaError::Io(_) => "io",
            MediaError::Policy(_) => "policy",
            MediaError::Consul(_) => "consul",
            MediaError::Config { .. } => "config",
        }
    }
}

/// One configured node.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeConfig {
    /// the node's ng address (`--listen-ng`), e.g. `127.0.0.1:22222`
    pub address: String,
    #[serde(default = "one")]
    pub weight: u32,
}

fn one() -> u32 {
    1
}

/// The `[media]` config section.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MediaConfig {
    /// UDP ng socket Kamailio's `rtpengine_sock` points at (`udp:127.0.0.1:22223`)
    pub ng_listen: String,
    /// address the ng client binds (port 0 = any)
    pub client_bind: String,
    pub nodes: Vec<NodeConfig>,
    pub consul: Option<ConsulConfig>,
    /// wait for a node's answer before retransmitting
    pub timeout_ms: u64,
    /// retransmits after the first try
    pub retries: u32,
    pub health_interval_ms: u64,
    /// a call whose node has seen no command for this long is forgotten
    pub call_ttl_secs: u64,
    /// most calls tracked (call → node, call → dip decision, quality)
    pub max_calls: u64,
}

impl Default for MediaConfig {
    fn default() -> Self {
        MediaConfig {
            ng_listen: "127.0.0.1:22223".into(),
            client_bind: "127.0.0.1:0".into(),
            nodes: Vec::new(),
            consul: None,
            timeout_ms: 500,
            retries: 2,
            health_interval_ms: 1000,
            call_ttl_secs: 4 * 3600,
            max_calls: 1_000_000,
        }
    }
}

fn cfg_err(key: &str, message: impl Into<String>) -> MediaError {
    MediaError::Config {
        key: format!("media.{key}"),
        message: message.into(),
    }
}

impl MediaConfig {
    /// Checks every key; errors name it (`media.nodes[1].address`).
    pub fn validate(&self) -> Result<(), MediaError> {
        self.ng_listen_addr()?;
        self.client_bind
            .parse::<SocketAddr>()
            .map_err(|e| cfg_err("client_bind", format!("{:?}: {e}", self.client_bind)))?;
        self.node_specs()?;
        if self.nodes.is_empty() && self.consul.is_none() {
            return Err(cfg_err(
                "nodes",
                "give at least one node, or [media.consul] to discover them",
            ));
        }
        if let Some(c) = &self.consul {
            match url::Url::parse(&c.url) {
                Ok(u) if u.scheme() == "http" => {}
                Ok(_) => return Err(cfg_err("consul.url", "scheme must be http://")),
                Err(e) => return Err(cfg_err("consul.url", e.to_string())),
            }
            if c.service.is_empty()
                || !c
                    .service
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            {
                return Err(cfg_err("consul.service", "letters, digits, - and _ only"));
            }
            if c.wait_secs == 0 || c.wait_secs > 600 {
                return Err(cfg_err("consul.wait_secs", "must be between 1 and 600"));
            }
        }
        if self.timeout_ms == 0 || self.timeout_ms > 60_000 {
            return Err(cfg_err("timeout_ms", "must be between 1 and 60000"));
        }
        if self.retries > 10 {
            return Err(cfg_err("retries", "must be at most 10"));
        }
        if self.health_interval_ms < 10 {
            return Err(cfg_err("health_interval_ms", "must be at least 10"));
        }
        if self.call_ttl_secs == 0 {
            return Err(cfg_err("call_ttl_secs", "must be at least 1"));
        }
        if self.max_calls == 0 {
            return Err(cfg_err("max_calls", "must be at least 1"));
        }
        Ok(())
    }

    pub fn ng_listen_addr(&self) -> Result<SocketAddr, MediaError> {
        self.ng_listen
            .parse()
            .map_err(|e| cfg_err("ng_listen", format!("{:?}: {e}", self.ng_listen)))
    }

    pub fn node_specs(&self) -> Result<Vec<NodeSpec>, MediaError> {
        self.nodes
            .iter()
            .enumerate()
            .map(|(i, n)| {
                let addr = n.address.parse::<SocketAddr>().map_err(|e| {
                    cfg_err(
                        &format!("nodes[{i}].address"),
                        format!("{:?}: {e}", n.address),
                    )
                })?;
                if n.weight == 0 {
                    return Err(cfg_err(&format!("nodes[{i}].weight"), "must be at least 1"));
                }
                Ok(NodeSpec {
                    addr,
                    weight: n.weight,
                    source: NodeSource::Config,
                })
            })
            .collect()
    }
}

/// The media controller: policy + node pool + per-call quality.
pub struct MediaController {
    pool: Arc<NodePool>,
    policies: Arc<ArcSwap<PolicyTable>>,
    contexts: Arc<dyn CallContextSource>,
    dips: Arc<DipContextCache>,
    quality: moka::sync::Cache<String, Arc<Quality>>,
    /// call-id → where its recording is (the node, and the files it named)
    recordings: moka::sync::Cache<String, Arc<Recording>>,
    pub(crate) metrics: Arc<MediaMetrics>,
}

/// Where a call's recording is: the RTPEngine node holding it and the files it named (its pcap
/// path with `--recording-method=pcap`; none for a recording started by `media.record.start`,
/// whose answer names no file: RTPEngine names the file after the Call-ID).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Recording {
    pub node: String,
    pub files: Vec<String>,
}

/// Quantile estimate (upper bucket bound) of a histogram's samples, from its buckets.
fn bucket_quantile(h: &prometheus::Histogram, q: f64) -> Option<f64> {
    use prometheus::core::Collector;
    let mf = h.collect();
    let hist = mf.first()?.get_metric().first()?.get_histogram();
    let total = hist.get_sample_count();
    if total == 0 {
        return None;
    }
    let want = (total as f64 * q).ceil() as u64;
    hist.get_bucket()
        .iter()
        .find(|b| b.cumulative_count() >= want)
        .map(|b| b.upper_bound())
        .or(Some(f64::INFINITY))
}

/// `media.record.*` / `media.query` answers.
#[derive(Clone, Debug, Serialize)]
pub struct CommandResult {
    pub call_id: String,
    pub node: String,
    /// the node's answer as JSON
    pub answer: serde_json::Value,
}

impl MediaController {
    /// Builds a controller over a started client. `contexts` defaults to the dip cache.
    pub async fn new(
        cfg: &MediaConfig,
        registry: Option<&prometheus::Registry>,
        contexts: Option<Arc<dyn CallContextSource>>,
        shutdown: CancellationToken,
    ) -> Result<Arc<MediaController>, MediaError> {
        cfg.validate()?;
        let metrics = Arc::new(MediaMetrics::new(registry));
        let bind: SocketAddr = cfg
            .client_bind
            .parse()
            .map_err(|e| cfg_err("client_bind", format!("{e}")))?;
        let client = NgClient::start(
            bind,
            ClientConfig {
                timeout: Duration::from_millis(cfg.timeout_ms),
                retries: cfg.retries,
            },
            metrics.clone(),
            shutdown,
        )
        .await?;
        let pool = Arc::new(NodePool::new(
            client,
            cfg.node_specs()?,
            PoolConfig {
                health_interval: Duration::from_millis(cfg.health_interval_ms),
                call_ttl: Duration::from_secs(cfg.call_ttl_secs),
                max_calls: cfg.max_calls,
            },
            metrics.clone(),
        ));
        let dips = Arc::new(DipContextCache::new(
            cfg.max_calls,
            Duration::from_secs(cfg.call_ttl_secs),
        ));
        Ok(Arc::new(MediaController {
            pool,
            policies: Arc::new(ArcSwap::from_pointee(PolicyTable::default())),
            contexts: contexts.unwrap_or_else(|| dips.clone() as Arc<dyn CallContextSource>),
            dips,
            quality: moka::sync::Cache::builder()
                .max_capacity(cfg.max_calls.min(1_000_000))
                .time_to_live(Duration::from_secs(3600))
                .build(),
            recordings: moka::sync::Cache::builder()
                .max_capacity(cfg.max_calls.min(1_000_000))
                .time_to_live(Duration::from_secs(cfg.call_ttl_secs.max(3600)))
                .build(),
            metrics,
        }))
    }

    pub fn pool(&self) -> &Arc<NodePool> {
        &self.pool
    }

    /// The policy table (swapped whole by the watcher; tests may set it).
    pub fn policies(&self) -> &Arc<ArcSwap<PolicyTable>> {
        &self.policies
    }

    /// Called by the dip handler for routed dips that carry a call-id.
    pub fn remember_dip(&self, call_id: &str, ban: Option<&str>, routes: Vec<String>) {
        self.dips.remember(
            call_id,
            CallContext {
                ban: ban.map(str::to_string),
                routes,
                trunk: None,
            },
        );
    }

    /// Called by the inbound dip handler for routed inbound dips that carry a call-id: the
    /// call's offer gets the trunk's media policy (then the customer's).
    pub fn remember_inbound(&self, call_id: &str, ban: &str, trunk: &str) {
        self.dips.remember(
            call_id,
            CallContext {
                ban: Some(ban.to_string()),
                routes: vec![],
                trunk: Some(trunk.to_string()),
            },
        );
    }

    /// The quality read from the node when the call was deleted; removed on read (the CDR
    /// writer takes it once).
    pub fn take_quality(&self, call_id: &str) -> Option<Quality> {
        self.quality.remove(call_id).map(|q| (*q).clone())
    }

    /// Where the call's recording is, if warpd saw it start; removed on read (the CDR writer
    /// takes it once, with the end event).
    pub fn take_recording(&self, call_id: &str) -> Option<Recording> {
        self.recordings.remove(call_id).map(|r| (*r).clone())
    }

    /// Remembers the recording a node's answer names (a recorded offer's answer lists its files;
    /// a first sighting with files wins over one without).
    fn note_recording(&self, call_id: &str, node: SocketAddr, files: Vec<String>) {
        let known = self.recordings.get(call_id);
        if known.is_some_and(|k| !k.files.is_empty() || files.is_empty()) {
            return;
        }
        let node = node.to_string();
        self.recordings
            .insert(call_id.to_string(), Arc::new(Recording { node, files }));
    }

    /// Proxied commands so far and the p50 / p99 of warpd's own time per command (bucket upper
    /// bounds of `warpd_media_proxy_overhead_seconds`, in seconds). For benchmarks and ops.
    pub fn proxy_overhead(&self) -> (u64, Option<f64>, Option<f64>) {
        let h = &self.metrics.proxy_overhead;
        (
            h.get_sample_count(),
            bucket_quantile(h, 0.5),
            bucket_quantile(h, 0.99),
        )
    }

    /// Nodes and their health (`media.nodes`).
    pub fn nodes(&self) -> Vec<NodeInfo> {
        self.pool.nodes()
    }

    /// Handles one ng command from Kamailio: policy, node, quality. Never fails: errors become
    /// ng `error` answers.
    pub async fn handle(&self, req: NgRequest) -> NgAnswer {
        let mut node_time = Duration::ZERO;
        self.handle_timed(req, &mut node_time).await
    }

    /// [`handle`](Self::handle), adding the time spent waiting for nodes to `node_time`.
    pub async fn handle_timed(&self, mut req: NgRequest, node_time: &mut Duration) -> NgAnswer {
        let command = req.command.as_str();
        if req.command == Command::Ping {
            self.metrics
                .commands
                .with_label_values(&[command, "ok"])
                .inc();
            let answer = if self.pool.any_healthy() {
                NgResponse::pong()
            } else {
                NgResponse::error("warpd: no healthy RTPEngine node")
            };
            return answer.into();
        }
        let route_flag = policy::take_route_flag(&mut req);
        if req.command == Command::Offer {
            if let Some(cid) = req.call_id() {
                let ctx = self.contexts.context(cid).unwrap_or_default();
                let route = route_flag.or_else(|| ctx.routes.first().cloned());
                let pol = self.policies.load().resolve_call(
                    ctx.ban.as_deref(),
                    route.as_deref(),
                    ctx.trunk.as_deref(),
                );
                policy::apply(&pol, &ctx, route.as_deref(), &mut req);
            }
        }
        // recorded by the policy (or Kamailio's own `record-call=yes`, which its rtpengine module
        // sends as the same key)
        let recorded = req.dict.str("record call") == Some("yes");
        match self.pool.dispatch_timed(&req, node_time).await {
            Ok((resp, node)) => {
                let outcome = match &resp.result {
                    NgResult::Error(reason) => {
                        tracing::debug!(%node, command, reason, "node answered an error");
                        "node_error"
                    }
                    _ => "ok",
                };
                self.metrics
                    .commands
                    .with_label_values(&[command, outcome])
                    .inc();
                if recorded && resp.result == NgResult::Ok {
                    if let Some(cid) = req.call_id() {
                        // decoded only for recorded calls: the answer names the files
                        self.note_recording(cid, node, resp.recordings());
                    }
                }
                if req.command == Command::Delete && resp.result == NgResult::Ok {
                    if let Some(cid) = req.call_id() {
                        // read in place (~3 µs for a 2 KB delete answer), before the answer
                        // leaves, so a call.end can never miss it
                        let quality = Quality::from_answer(&resp);
                        self.quality.insert(cid.to_string(), Arc::new(quality));
                    }
                }
                resp
            }
            Err(e) => {
                self.metrics
                    .commands
                    .with_label_values(&[command, "error"])
                    .inc();
                self.metrics.error(e.kind());
                tracing::warn!(command, error = %e, "ng command failed");
                NgResponse::error(&format!("warpd: {e}")).into()
            }
        }
    }

    async fn call_command(
        &self,
        command: Command,
        call_id: &str,
    ) -> Result<CommandResult, MediaError> {
        let t0 = Instant::now();
        let req = NgRequest::new(command).with("call-id", call_id);
        let (answer, node) = self.counted(self.pool.dispatch(&req).await)?;
        self.metrics
            .command_duration
            .observe(t0.elapsed().as_secs_f64());
        let resp = self.counted(decoded(answer, node))?;
        Ok(CommandResult {
            call_id: call_id.to_string(),
            node: node.to_string(),
            answer: resp.dict.to_json(),
        })
    }

    /// Counts a failed command in `media_errors_total` by its kind: the one place the errors of
    /// the `media.*` methods are counted (the proxy's in `handle_timed`), so none counts twice.
    fn counted<T>(&self, r: Result<T, MediaError>) -> Result<T, MediaError> {
        if let Err(e) = &r {
            self.metrics.error(e.kind());
        }
        r
    }

    /// `media.record.start` / `media.record.stop`.
    pub async fn record(&self, call_id: &str, start: bool) -> Result<CommandResult, MediaError> {
        let c = if start {
            Command::StartRecording
        } else {
            Command::StopRecording
        };
        let r = self.call_command(c, call_id).await?;
        if start {
            if let Ok(node) = r.node.parse() {
                self.note_recording(call_id, node, Vec::new());
            }
        }
        Ok(r)
    }

    /// `media.query`: the node's view of the call, plus the parsed quality.
    pub async fn query(&self, call_id: &str) -> Result<serde_json::Value, MediaError> {
        let req = NgRequest::new(Command::Query).with("call-id", call_id);
        let (answer, node) = self.counted(self.pool.dispatch(&req).await)?;
        let resp = self.counted(decoded(answer, node))?;
        Ok(serde_json::json!({
            "call_id": call_id,
            "node": node.to_string(),
            "quality": Quality::from_response(&resp.dict),
            "answer": resp.dict.to_json(),
        }))
    }
}

/// A node's successful answer, decoded (for JSON-RPC callers); an `error` result is
/// [`MediaError::Node`].
fn decoded(answer: NgAnswer, node: SocketAddr) -> Result<NgResponse, MediaError> {
    if let NgResult::Error(reason) = answer.result {
        return Err(MediaError::Node { node, reason });
    }
    answer.response().map_err(|e| MediaError::Garbage {
        node,
        error: e.to_string(),
    })
}

/// Everything `warpd serve` starts for media: controller, prober, proxy, policy watcher, Consul.
///
/// The ng side (the controller's client socket and its receive task, the node prober and the
/// proxy) runs on its own thread with a current-thread runtime: a command's datagram in, the
/// node's answer and the answer out are then all handled on one thread, with no wake-up
/// crossing threads (on the shared multi-thread runtime each hop could land on the other worker:
/// a futex wake-up, tens of µs on a VM, measured in docs/BENCHMARKS.md). Callers on other
/// runtimes (the `media.*` JSON-RPC methods) still use the controller; their I/O is driven by the
/// media thread. The policy and Consul watchers only update shared state and stay on the
/// caller's runtime.
pub async fn start(
    cfg: &MediaConfig,
    db_url: Option<String>,
    registry: Option<&prometheus::Registry>,
    shutdown: CancellationToken,
) -> Result<(Arc<MediaController>, SocketAddr), MediaError> {
    cfg.validate()?;
    let listen = cfg.ng_listen_addr()?;
    let (tx, rx) = tokio::sync::oneshot::channel();
    {
        let cfg = cfg.clone();
        let registry = registry.cloned();
        let shutdown = shutdown.clone();
        std::thread::Builder::new()
            .name("warpd-media".into())
            .spawn(move || {
                let rt = match tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    Ok(rt) => rt,
                    Err(e) => {
                        let _ = tx.send(Err(MediaError::Io(format!("media runtime: {e}"))));
                        return;
                    }
                };
                rt.block_on(async move {
                    let started = async {
                        let ctl =
                            MediaController::new(&cfg, registry.as_ref(), None, shutdown.clone())
                                .await?;
                        let sock = tokio::net::UdpSocket::bind(listen).await.map_err(|e| {
                            MediaError::Io(format!("binding media.ng_listen {listen}: {e}"))
                        })?;
                        let bound = sock
                            .local_addr()
                            .map_err(|e| MediaError::Io(e.to_string()))?;
                        Ok::<_, MediaError>((ctl, sock, bound))
                    }
                    .await;
                    match started {
                        Ok((ctl, sock, bound)) => {
                            tokio::spawn(ctl.pool.clone().run_prober(shutdown.clone()));
                            let proxy =
                                tokio::spawn(proxy::run(sock, ctl.clone(), shutdown.clone()));
                            if tx.send(Ok((ctl, bound))).is_err() {
                                return; // the caller gave up
                            }
                            shutdown.cancelled().await;
                            let _ = proxy.await;
                        }
                        Err(e) => {
                            let _ = tx.send(Err(e));
                        }
                    }
                });
            })
            .map_err(|e| MediaError::Io(format!("starting the media thread: {e}")))?;
    }
    let (ctl, bound) = rx
        .await
        .map_err(|_| MediaError::Io("the media thread stopped while starting".into()))??;
    if let Some(c) = cfg.consul.clone() {
        tokio::spawn(consul::watch(c, ctl.pool.clone(), shutdown.clone()));
    }
    if let Some(url) = db_url {
        tokio::spawn(policy::watch(
            url,
            ctl.policies.clone(),
            ctl.metrics.clone(),
            Duration::from_millis(200),
            shutdown.clone(),
        ));
    }
    Ok((ctl, bound))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_errors_name_the_key() {
        let ok = MediaConfig {
            nodes: vec![NodeConfig {
                address: "127.0.0.1:22222".into(),
                weight: 1,
            }],
            ..MediaConfig::default()
        };
        assert!(ok.validate().is_ok());
        let cases: Vec<(MediaConfig, &str)> = vec![
            (MediaConfig::default(), "media.nodes"),
            (
                MediaConfig {
                    ng_listen: "x".into(),
                    ..ok.clone()
                },
                "media.ng_listen",
            ),
            (
                MediaConfig {
                    nodes: vec![
                        ok.nodes[0].clone(),
                        NodeConfig {
                            address: "nope".into(),
                            weight: 1,
                        },
                    ],
                    ..ok.clone()
                },
                "media.nodes[1].address",
            ),
            (
                MediaConfig {
                    timeout_ms: 0,
                    ..ok.clone()
                },
                "media.timeout_ms",
            ),
            (
                MediaConfig {
                    nodes: vec![NodeConfig {
                        address: "127.0.0.1:22222".into(),
                        weight: 0,
                    }],
                    ..ok.clone()
                },
                "media.nodes[0].weight",
            ),
            (
                MediaConfig {
                    consul: Some(ConsulConfig {
                        url: "https://x".into(),
                        service: "rtpengine".into(),
                        tag: None,
                        dc: None,
                        wait_secs: 30,
                    }),
                    ..ok.clone()
                },
                "media.consul.url",
            ),
        ];
        for (c, key) in cases {
            let e = c.validate().unwrap_err().to_string();
            assert!(e.contains(key), "{key}: {e}");
        }
    }

    /// Every error is counted once, where it is handled: a command the node never answers
    /// (controller, not again by the client), bad datagrams from Kamailio (proxy).
    #[tokio::test]
    async fn each_error_is_counted_once_by_kind() {
        // a node that answers its health pings but never an offer
        let sock = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let node = sock.local_addr().unwrap();
        tokio::spawn(async move {
            let mut buf = vec![0u8; 4096];
            while let Ok((n, from)) = sock.recv_from(&mut buf).await {
                if let Ok((cookie, d)) = codec::parse_datagram(&buf[..n]) {
                    if d.str("command") == Some("ping") {
                        let mut pong = cookie.to_vec();
                        pong.extend_from_slice(b" d6:result4:ponge");
                        let _ = sock.send_to(&pong, from).await;
                    }
                }
            }
        });
        let sd = CancellationToken::new();
        let cfg = MediaConfig {
            ng_listen: "127.0.0.1:0".into(),
            nodes: vec![NodeConfig {
                address: node.to_string(),
                weight: 1,
            }],
            timeout_ms: 30,
            retries: 1,
            health_interval_ms: 3_600_000,
            ..MediaConfig::default()
        };
        let (ctl, proxy) = start(&cfg, None, None, sd.clone()).await.unwrap();
        let errors = |kind: &str| ctl.metrics.errors.with_label_values(&[kind]).get();
        let kamailio = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let ask = |d: &'static [u8]| {
            let k = &kamailio;
            async move {
                k.send_to(d, proxy).await.unwrap();
                let mut buf = vec![0u8; 4096];
                let n = tokio::time::timeout(Duration::from_secs(2), k.recv(&mut buf))
                    .await
                    .expect("an answer")
                    .unwrap();
                let (_, d) = codec::parse_datagram(&buf[..n]).unwrap();
                d.str("result").map(str::to_string)
            }
        };
        let error = Some("error".to_string());
        // the offer times out after its retransmit: one timeout, counted by the controller only
        let offer = b"c1 d7:command5:offer7:call-id2:c18:from-tag1:f3:sdp1:xe";
        assert_eq!(ask(offer).await, error);
        assert_eq!(errors("timeout"), 1);
        // the node is out of the pool now: the next offer fails at once, counted once
        let offer = b"c2 d7:command5:offer7:call-id2:c28:from-tag1:f3:sdp1:xe";
        assert_eq!(ask(offer).await, error);
        assert_eq!(errors("no_healthy_node"), 1);
        assert_eq!(errors("timeout"), 1);
        let offers = ctl.metrics.commands.with_label_values(&["offer", "error"]);
        assert_eq!(offers.get(), 2);
        // bad datagrams: answered with an error, each counted once by the proxy
        assert_eq!(ask(b"c3 d7:command5:bogus3:fooi1ee").await, error);
        assert_eq!(ask(b"c4 d7:command").await, error);
        assert_eq!(ask(b"c5 d7:call-id1:xe").await, error);
        kamailio.send_to(b"no-cookie-here", proxy).await.unwrap();
        let t = Instant::now();
        while errors("no_cookie") == 0 && t.elapsed() < Duration::from_secs(2) {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert_eq!(
            ["unknown_command", "decode", "bad_command", "no_cookie"].map(errors),
            [1, 1, 1, 1]
        );
        assert_eq!(errors("probe_failed"), 0, "the node answered its pings");
        sd.cancel();
    }
}
