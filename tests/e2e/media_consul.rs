//! Consul discovery of RTPEngine nodes against a FAKE Consul: no Consul server binary is
//! installable on Debian, so this test serves exactly the one endpoint warpd uses,
//! `GET /v1/health/service/<service>?passing=true&index=N&wait=Ns`, with Consul's blocking-query
//! semantics (hold the request until the index moves past N or the wait ends; `X-Consul-Index`
//! header). The RTPEngine nodes are real daemons (ports 30350-30399).

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::support;
use crate::support::media::{audio_sdp, RtpEngine};
use bytes::Bytes;
use http_body_util::Full;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use warpd::media::codec::{Command, NgRequest, NgResult};
use warpd::media::{ConsulConfig, MediaConfig, MediaError, NodeSource};

/// The fake: a list of (address, port) instances under an index that bumps on every change.
#[derive(Default)]
struct FakeConsul {
    state: Mutex<(u64, Vec<SocketAddr>)>,
    changed: Notify,
    blocking_requests: AtomicU64,
}

impl FakeConsul {
    fn set(&self, nodes: Vec<SocketAddr>) {
        let mut s = self.state.lock().unwrap();
        s.0 += 1;
        s.1 = nodes;
        self.changed.notify_waiters();
    }

    async fn handle(self: Arc<Self>, req: Request<hyper::body::Incoming>) -> Response<Full<Bytes>> {
        if req.uri().path() != "/v1/health/service/rtpengine" {
            return Response::builder()
                .status(404)
                .body(Full::new(Bytes::new()))
                .unwrap();
        }
        let query = req.uri().query().unwrap_or("");
        let param = |k: &str| {
            query
                .split('&')
                .find_map(|kv| kv.strip_prefix(k)?.strip_prefix('='))
                .map(str::to_string)
        };
        assert_eq!(
            param("passing").as_deref(),
            Some("true"),
            "only passing instances"
        );
        let index: u64 = param("index").and_then(|v| v.parse().ok()).unwrap_or(0);
        let wait: u64 = param("wait")
            .and_then(|v| v.trim_end_matches('s').parse().ok())
            .unwrap_or(300);
        if index > 0 {
            self.blocking_requests.fetch_add(1, Ordering::Relaxed);
            let deadline = tokio::time::Instant::now() + Duration::from_secs(wait);
            loop {
                let notified = self.changed.notified();
                if self.state.lock().unwrap().0 > index {
                    break;
                }
                if tokio::time::timeout_at(deadline, notified).await.is_err() {
                    break;
                }
            }
        }
        let (idx, nodes) = self.state.lock().unwrap().clone();
        let body: Vec<serde_json::Value> = nodes
            .iter()
            .map(|a| {
                serde_json::json!({
                    "Node": {"Node": "n", "Address": a.ip().to_string()},
                    "Service": {"Service": "rtpengine", "Address": "", "Port": a.port(),
                                "Weights": {"Passing": 1, "Warning": 1}},
                    "Checks": []
                })
            })
            .collect();
        Response::builder()
            .header("X-Consul-Index", idx.to_string())
            .header("Content-Type", "application/json")
            .body(Full::new(Bytes::from(serde_json::to_vec(&body).unwrap())))
            .unwrap()
    }
}

async fn serve_fake(fake: Arc<FakeConsul>, shutdown: CancellationToken) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let (stream, _) = tokio::select! {
                r = listener.accept() => match r { Ok(x) => x, Err(_) => continue },
                _ = shutdown.cancelled() => break,
            };
            let fake = fake.clone();
            tokio::spawn(async move {
                let svc = service_fn(move |req| {
                    let fake = fake.clone();
                    async move { Ok::<_, Infallible>(fake.handle(req).await) }
                });
                let _ = http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), svc)
                    .await;
            });
        }
    });
    addr
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodes_follow_consul_blocking_queries() {
    let a = RtpEngine::start(30350, 30374);
    let b = RtpEngine::start(30375, 30399);
    let shutdown = CancellationToken::new();
    let fake = Arc::new(FakeConsul::default());
    fake.set(vec![a.ng]);
    let consul = serve_fake(fake.clone(), shutdown.clone()).await;

    let cfg = MediaConfig {
        ng_listen: "127.0.0.1:0".into(),
        nodes: vec![],
        consul: Some(ConsulConfig {
            url: format!("http://{consul}"),
            service: "rtpengine".into(),
            tag: None,
            dc: None,
            wait_secs: 5,
        }),
        timeout_ms: 200,
        retries: 1,
        health_interval_ms: 200,
        ..MediaConfig::default()
    };
    let (ctl, _ng) = warpd::media::start(&cfg, None, None, shutdown.clone())
        .await
        .unwrap();

    let wait_nodes = |want: SocketAddr| {
        let ctl = ctl.clone();
        async move {
            let t = Instant::now();
            let n = support::eventually(format!("nodes [{want}]"), Duration::from_secs(5), || {
                let n = ctl.nodes();
                let done = n.len() == 1 && n[0].address == want.to_string();
                std::future::ready(if done { Ok(n) } else { Err(format!("{n:?}")) })
            })
            .await;
            assert_eq!(n[0].source, NodeSource::Consul);
            t.elapsed()
        }
    };
    wait_nodes(a.ng).await;

    let offer = |call: &str| {
        let mut r = NgRequest::new(Command::Offer)
            .with("call-id", call)
            .with("from-tag", "ft")
            .with("sdp", &audio_sdp(8000));
        r.dict.set(
            "flags",
            warpd::media::codec::Bencode::str_list(&["trust-address"]),
        );
        r
    };
    let r = ctl.handle(offer("consul-1")).await;
    assert_eq!(r.result, NgResult::Ok, "{r:?}");
    assert_eq!(ctl.pool().node_of("consul-1"), Some(a.ng));

    // the service moves to b: the blocking query returns at once with the new index
    fake.set(vec![b.ng]);
    let took = wait_nodes(b.ng).await;
    assert!(
        took < Duration::from_secs(2),
        "change seen via blocking query, took {took:?}"
    );
    assert!(
        fake.blocking_requests.load(Ordering::Relaxed) >= 1,
        "index= was used"
    );

    let r = ctl.handle(offer("consul-2")).await;
    assert_eq!(r.result, NgResult::Ok, "{r:?}");
    assert_eq!(ctl.pool().node_of("consul-2"), Some(b.ng));

    // the old call's node left the pool: its commands fail with a clear error
    let e = ctl.query("consul-1").await.unwrap_err();
    assert!(
        matches!(e, MediaError::NodeGone { node } if node == a.ng),
        "{e}"
    );

    shutdown.cancel();
}
