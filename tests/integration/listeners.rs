//! The two listeners (`warpd::api::serve`): which paths and JSON-RPC methods each serves, the
//! Kamailio surface's guard (source allow-list, shared secret), and the HTTP availability limits
//! (connections overall and per source, header and body read timeouts, shutdown grace). Each
//! test starts its own pair of listeners on 127.0.0.1:0 with an engine that has no snapshot (a
//! dip that passes every gate answers 503 "not ready"), and stops it at the end.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::future::BoxFuture;
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use warpd::api::{serve, ApiError, ApiLimits, AppState, KamailioAuth, Listeners};
use warpd::metrics::Metrics;
use warpd::reload::{ReloadError, ReloadReport, Reloader};
use warpd::routing::{Engine, RoutingSettings};

use crate::support::Api;

/// Counts reloads and fails them (there is no database here); `delay` holds one in flight.
struct CountingReloader {
    calls: AtomicUsize,
    delay: Duration,
}

impl Reloader for CountingReloader {
    fn reload(&self) -> BoxFuture<'_, Result<ReloadReport, ReloadError>> {
        Box::pin(async move {
            self.calls.fetch_add(1, Ordering::SeqCst);
            tokio::time::sleep(self.delay).await;
            Err(ReloadError::Stopped)
        })
    }
}

struct Server {
    api: Api,
    kamailio: std::net::SocketAddr,
    reloader: Arc<CountingReloader>,
    token: CancellationToken,
    task: JoinHandle<Result<(), ApiError>>,
}

impl std::ops::Deref for Server {
    type Target = Api;
    fn deref(&self) -> &Api {
        &self.api
    }
}

async fn start(limits: ApiLimits, auth: KamailioAuth, reload_delay: Duration) -> Server {
    let reloader = Arc::new(CountingReloader {
        calls: AtomicUsize::new(0),
        delay: reload_delay,
    });
    let state = Arc::new(AppState {
        engine: Arc::new(Engine::new(RoutingSettings::default())),
        reloader: reloader.clone(),
        metrics: Arc::new(Metrics::new()),
        limits,
        media: None,
        calls: None,
        admin: None,
        console: None,
        kamailio_auth: auth,
    });
    let kamailio = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let admin = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let k = kamailio.local_addr().unwrap();
    let api = Api::with_admin(k, admin.local_addr().unwrap());
    let token = CancellationToken::new();
    let task = tokio::spawn(serve(
        Listeners {
            kamailio,
            admin,
            kamailio_resp: Vec::new(),
        },
        state,
        token.clone(),
    ));
    Server {
        api,
        kamailio: k,
        reloader,
        token,
        task,
    }
}

impl Server {
    async fn stop(self) {
        self.token.cancel();
        let r = tokio::time::timeout(Duration::from_secs(10), self.task)
            .await
            .expect("serve stops")
            .expect("no panic");
        assert!(r.is_ok(), "{r:?}");
    }

    async fn status(&self, url: String) -> u16 {
        self.http.get(url).send().await.unwrap().status().as_u16()
    }

    async fn rpc_at(&self, base: &str, method: &str, auth: Option<&str>) -> (u16, Value) {
        let mut r = self
            .http
            .post(format!("{base}/rpc"))
            .json(&json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": {"call_id": "c1", "ban": "1", "ani": "1", "dnis": "2"}}));
        if let Some(a) = auth {
            r = r.bearer_auth(a);
        }
        let resp = r.send().await.unwrap();
        (
            resp.status().as_u16(),
            resp.json().await.unwrap_or(Value::Null),
        )
    }

    async fn refused(&self, reason: &str) -> f64 {
        self.metric(&format!(
            "warpd_refused_total{{listener=\"kamailio\",reason=\"{reason}\"}}"
        ))
        .await
        .unwrap_or(0.0)
    }
}

const DIP: &str = "/v1/route?ban=1001&ani=%2B13105551234&dnis=%2B12125551234";

#[tokio::test]
async fn each_listener_serves_its_own_paths_and_404s_the_others() {
    let s = start(
        ApiLimits::default(),
        KamailioAuth::default(),
        Duration::ZERO,
    )
    .await;
    let (k, a) = (s.base.clone(), s.admin_base.clone());
    // the admin surface's paths are not there on the Kamailio listener
    for path in [
        "/metrics",
        "/v1/openapi.json",
        "/v1/admin/routes",
        "/v1/cdrs",
        "/v1/cdrs/export",
        "/v1/routes/quality",
    ] {
        assert_eq!(
            s.status(format!("{k}{path}")).await,
            404,
            "{path} on kamailio"
        );
    }
    let r = s
        .http
        .post(format!("{k}/v1/routing/simulate"))
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404, "simulate on kamailio");
    assert_eq!(s.status(format!("{a}/metrics")).await, 200);
    assert_eq!(s.status(format!("{a}/v1/openapi.json")).await, 200);
    // dips and events are not there on the admin listener
    assert_eq!(s.status(format!("{a}{DIP}")).await, 404, "dip on admin");
    let r = s
        .http
        .post(format!("{a}/v1/events"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("event=attempt")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404, "events on admin");
    let (_, v) = s.rpc_at(&a, "lcr.route", None).await;
    assert_eq!(v["error"]["code"], -32601, "lcr.route on admin: {v}");
    let (_, v) = s.rpc_at(&a, "call.attempt", None).await;
    assert_eq!(v["error"]["code"], -32601, "call.attempt on admin: {v}");
    // ... and are on the Kamailio listener (no snapshot yet: 503 not ready)
    assert_eq!(s.status(format!("{k}{DIP}")).await, 503);
    let (_, v) = s.rpc_at(&k, "lcr.route", None).await;
    assert_eq!(v["error"]["code"], -32000, "lcr.route on kamailio: {v}");
    for path in ["/healthz", "/readyz"] {
        assert_ne!(s.status(format!("{k}{path}")).await, 404, "{path}");
    }
    s.stop().await;
}

#[tokio::test]
async fn admin_methods_answer_only_on_the_admin_listener() {
    let s = start(
        ApiLimits::default(),
        KamailioAuth::default(),
        Duration::ZERO,
    )
    .await;
    let (k, a) = (s.base.clone(), s.admin_base.clone());
    for m in [
        "warpd.reload",
        "media.record.start",
        "media.record.stop",
        "media.query",
        "media.nodes",
        "lcr.simulate",
    ] {
        let (status, v) = s.rpc_at(&k, m, None).await;
        assert_eq!(v["error"]["code"], -32600, "{m} on kamailio: {status} {v}");
        assert!(
            v["error"]["message"]
                .as_str()
                .unwrap()
                .contains("admin listener only"),
            "{v}"
        );
    }
    assert_eq!(s.reloader.calls.load(Ordering::SeqCst), 0, "no reload ran");
    // on the admin listener they run (no database, no media here: their own errors)
    let (_, v) = s.rpc_at(&a, "warpd.reload", None).await;
    assert_eq!(
        v["error"]["code"], -32602,
        "dip params are not reload params: {v}"
    );
    assert_eq!(s.reloader.calls.load(Ordering::SeqCst), 0);
    let v: Value = s
        .http
        .post(format!("{a}/rpc"))
        .json(&json!({"jsonrpc": "2.0", "id": 1, "method": "warpd.reload"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(v["error"]["code"], -32000, "{v}");
    assert_eq!(s.reloader.calls.load(Ordering::SeqCst), 1);
    let (_, v) = s.rpc_at(&a, "media.query", None).await;
    assert_eq!(v["error"]["code"], -32601, "media not configured: {v}");
    let (_, v) = s.rpc_at(&a, "lcr.simulate", None).await;
    assert_eq!(v["error"]["code"], -32000, "not ready: {v}");
    s.stop().await;
}

#[tokio::test]
async fn kamailio_listener_refuses_sources_outside_the_allow_list() {
    let auth = KamailioAuth::new(vec!["192.0.2.0/24".parse().unwrap()], None);
    let s = start(ApiLimits::default(), auth, Duration::ZERO).await;
    let k = s.base.clone();
    assert_eq!(s.status(format!("{k}{DIP}")).await, 403);
    let (status, _) = s.rpc_at(&k, "lcr.route", None).await;
    assert_eq!(status, 403);
    // even a path that does not exist: the guard comes first
    assert_eq!(s.status(format!("{k}/metrics")).await, 403);
    // health checks stay open
    assert_eq!(s.status(format!("{k}/healthz")).await, 200);
    assert_eq!(s.refused("source_not_allowed").await, 3.0);
    s.stop().await;

    let auth = KamailioAuth::new(vec!["127.0.0.0/8".parse().unwrap()], None);
    let s = start(ApiLimits::default(), auth, Duration::ZERO).await;
    assert_eq!(s.status(s.url(DIP)).await, 503, "allowed: not ready");
    s.stop().await;
}

#[tokio::test]
async fn kamailio_listener_requires_the_shared_secret() {
    const SECRET: &str = "s3cret-s3cret-s3cret";
    let auth = KamailioAuth::new(Vec::new(), Some(SECRET));
    let s = start(ApiLimits::default(), auth, Duration::ZERO).await;
    let k = s.base.clone();
    assert_eq!(s.status(format!("{k}{DIP}")).await, 401);
    let r = s
        .http
        .get(format!("{k}{DIP}"))
        .bearer_auth("s3cret-s3cret-s3creT")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let body = r.text().await.unwrap();
    assert!(!body.contains(SECRET), "{body}");
    let (status, _) = s.rpc_at(&k, "call.end", None).await;
    assert_eq!(status, 401);
    let r = s
        .http
        .get(format!("{k}{DIP}"))
        .bearer_auth(SECRET)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 503, "authenticated: not ready");
    let (_, v) = s.rpc_at(&k, "lcr.route", Some(SECRET)).await;
    assert_eq!(v["error"]["code"], -32000, "{v}");
    assert_eq!(s.refused("unauthorized").await, 3.0);
    // the admin listener does not ask for it
    assert_eq!(s.status(s.admin_url("/metrics")).await, 200);
    s.stop().await;
}

/// True when the server closes `c` within `within` (EOF or reset).
async fn closed_by_server(c: &mut TcpStream, within: Duration) -> bool {
    let mut buf = [0u8; 1024];
    loop {
        match tokio::time::timeout(within, c.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return true,
            Ok(Ok(_)) => continue,
            Err(_) => return false,
        }
    }
}

async fn healthz(c: &mut TcpStream) -> Option<String> {
    c.write_all(b"GET /healthz HTTP/1.1\r\nhost: x\r\n\r\n")
        .await
        .ok()?;
    let mut buf = vec![0u8; 1024];
    let n = tokio::time::timeout(Duration::from_millis(500), c.read(&mut buf))
        .await
        .ok()?
        .ok()?;
    (n > 0).then(|| String::from_utf8_lossy(&buf[..n]).into_owned())
}

#[tokio::test]
async fn connections_per_source_are_capped() {
    let limits = ApiLimits {
        max_connections_per_source: 3,
        ..ApiLimits::default()
    };
    let s = start(limits, KamailioAuth::default(), Duration::ZERO).await;
    let mut open = Vec::new();
    for _ in 0..3 {
        let mut c = TcpStream::connect(s.kamailio).await.unwrap();
        assert!(healthz(&mut c).await.is_some_and(|r| r.contains("200")));
        open.push(c);
    }
    let mut fourth = TcpStream::connect(s.kamailio).await.unwrap();
    assert!(
        closed_by_server(&mut fourth, Duration::from_secs(5)).await,
        "a fourth connection from 127.0.0.1 is closed"
    );
    assert_eq!(s.refused("connections_per_source").await, 1.0);
    // one closes: a new one is served
    drop(open.pop());
    crate::support::eventually("a slot is free again", Duration::from_secs(5), || async {
        match TcpStream::connect(s.kamailio).await {
            Ok(mut c) => healthz(&mut c).await.is_some(),
            Err(_) => false,
        }
    })
    .await;
    drop(open);
    s.stop().await;
}

#[tokio::test]
async fn connections_overall_are_capped_and_wait() {
    let limits = ApiLimits {
        max_connections: 2,
        ..ApiLimits::default()
    };
    let s = start(limits, KamailioAuth::default(), Duration::ZERO).await;
    let mut a = TcpStream::connect(s.kamailio).await.unwrap();
    let mut b = TcpStream::connect(s.kamailio).await.unwrap();
    assert!(healthz(&mut a).await.is_some());
    assert!(healthz(&mut b).await.is_some());
    // the third waits in the accept queue: no answer while two are open
    let mut c = TcpStream::connect(s.kamailio).await.unwrap();
    assert!(healthz(&mut c).await.is_none(), "third served over the cap");
    drop(a);
    let mut buf = vec![0u8; 1024];
    let n = tokio::time::timeout(Duration::from_secs(5), c.read(&mut buf))
        .await
        .expect("served once a connection closed")
        .unwrap();
    assert!(String::from_utf8_lossy(&buf[..n]).contains("200"));
    // the admin listener has its own limits
    assert_eq!(s.status(s.admin_url("/metrics")).await, 200);
    drop((b, c));
    s.stop().await;
}

#[tokio::test]
async fn an_incomplete_header_is_cut_off() {
    let limits = ApiLimits {
        header_read_timeout: Duration::from_millis(300),
        ..ApiLimits::default()
    };
    let s = start(limits, KamailioAuth::default(), Duration::ZERO).await;
    let mut c = TcpStream::connect(s.kamailio).await.unwrap();
    c.write_all(b"GET /healthz HTTP/1.1\r\nhost: x\r\n")
        .await
        .unwrap();
    let t0 = Instant::now();
    assert!(closed_by_server(&mut c, Duration::from_secs(5)).await);
    assert!(t0.elapsed() < Duration::from_secs(3), "{:?}", t0.elapsed());
    s.stop().await;
}

#[tokio::test]
async fn a_slow_body_gets_408() {
    let limits = ApiLimits {
        body_read_timeout: Duration::from_millis(300),
        ..ApiLimits::default()
    };
    let s = start(limits, KamailioAuth::default(), Duration::ZERO).await;
    let mut c = TcpStream::connect(s.kamailio).await.unwrap();
    c.write_all(
        b"POST /v1/events HTTP/1.1\r\nhost: x\r\ncontent-type: application/x-www-form-urlencoded\r\ncontent-length: 1000\r\n\r\nevent=",
    )
    .await
    .unwrap();
    let mut buf = vec![0u8; 2048];
    let n = tokio::time::timeout(Duration::from_secs(5), c.read(&mut buf))
        .await
        .expect("answered within the body timeout")
        .unwrap();
    let head = String::from_utf8_lossy(&buf[..n]);
    assert!(head.starts_with("HTTP/1.1 408"), "{head}");
    s.stop().await;
}

#[tokio::test]
async fn shutdown_waits_the_configured_grace_then_drops_stragglers() {
    let limits = ApiLimits {
        shutdown_grace: Duration::from_millis(300),
        ..ApiLimits::default()
    };
    // a reload that takes far longer than the grace
    let s = start(limits, KamailioAuth::default(), Duration::from_secs(30)).await;
    let http = s.http.clone();
    let url = s.rpc_url("warpd.reload");
    let inflight = tokio::spawn(async move {
        http.post(url)
            .json(&json!({"jsonrpc": "2.0", "id": 1, "method": "warpd.reload"}))
            .send()
            .await
    });
    crate::support::eventually("the reload started", Duration::from_secs(5), || {
        std::future::ready(s.reloader.calls.load(Ordering::SeqCst) > 0)
    })
    .await;
    let t0 = Instant::now();
    s.stop().await;
    // the hard-coded 10 s grace is gone: 300 ms (+ the 1 s drop wait at most)
    assert!(t0.elapsed() < Duration::from_secs(3), "{:?}", t0.elapsed());
    assert!(inflight.await.unwrap().is_err(), "straggler dropped");
}
