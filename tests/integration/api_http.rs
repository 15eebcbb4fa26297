//! End-to-end tests of the API listener (`warpd::api::serve`): JSON-RPC at `/rpc` and plain HTTP
//! on one port, against an engine holding a small snapshot built here. Every test starts its own
//! server on 127.0.0.1:0 and stops it (cancel + await, bounded) at the end.

use std::ops::Deref;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::support::{self, Api};
use futures_util::future::BoxFuture;
use ipnet::IpNet;
use serde_json::{json, Value};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use warpd::api::{serve, ApiError, ApiLimits, AppState, Listeners};
use warpd::metrics::Metrics;
use warpd::reload::{ReloadError, ReloadReport, Reloader};
use warpd::routing::*;

const LIMIT: usize = 4096;
const ANI: &str = "+13105551234";
const DNIS: &str = "+12125551234";

fn settings() -> RoutingSettings {
    RoutingSettings {
        // no dip cache: every request really runs the dip, so equal answers mean equal work
        dip_cache_ttl_ms: 0,
        ..RoutingSettings::default()
    }
}

fn vendor(id: i64, name: &str) -> Vendor {
    Vendor {
        id,
        name: name.into(),
        billing: BillingModel::Lrn,
        dialstring: "sip:${number}@${host}:${port};transport=${transport}".into(),
        enabled: true,
    }
}

fn gateway(id: i64, vendor_id: i64, host: &str, port: u16, transport: Transport) -> Gateway {
    Gateway {
        id,
        vendor_id,
        name: format!("gw{id}"),
        host: host.into(),
        port,
        transport,
        priority: 1,
        weight: 1,
        enabled: true,
    }
}

fn route(id: i64, name: &str, vendor_id: i64) -> Route {
    Route {
        id,
        name: name.into(),
        vendor_id,
        priority: 1,
        weight: 1,
        capacity: None,
        enabled: true,
    }
}

fn rate(inter: u32, intra: u32, local: u32) -> RateRow {
    RateRow {
        inter: Some(Rate(inter)),
        intra: Some(Rate(intra)),
        local: Some(Rate(local)),
        min_seconds: 6,
        inc_seconds: 6,
        effective_from: i64::MIN,
        effective_until: i64::MAX,
    }
}

fn npanxx(state: &str, lata: &str) -> NpaNxxInfo {
    NpaNxxInfo {
        state: state.into(),
        lata: lata.into(),
        ocn: "9999".into(),
        rate_center: "RC".into(),
    }
}

/// Customer 1001 (source 127.0.0.1/32, 10 % margin), partition "default" with routes
/// alpha-std ($0.0050 interstate to 1212) and bravo-std ($0.0040 interstate to 1212, $0.02 to 44).
fn snapshot(built_at: i64) -> Snapshot {
    let mut b = SnapshotBuilder::new(settings());
    b.vendor(vendor(1, "alpha"));
    b.vendor(vendor(2, "bravo"));
    b.gateway(gateway(10, 1, "198.51.100.10", 5060, Transport::Udp));
    b.gateway(gateway(20, 2, "198.51.100.20", 5080, Transport::Tcp));
    b.route(route(100, "alpha-std", 1));
    b.route(route(200, "bravo-std", 2));
    b.partition(Partition {
        id: 1,
        name: "default".into(),
        route_ids: vec![100, 200],
    });
    b.customer(Customer {
        id: 1,
        ban: "1001".into(),
        name: "Customer One".into(),
        enabled: true,
        max_rate: None,
        blocked_prefixes: vec![],
        allowed_classes: [DestClass::Domestic, DestClass::International]
            .into_iter()
            .collect(),
        max_results: 5,
        allow_negative_margin: false,
        margin: Some(MarginRule {
            prefix: String::new(),
            margin_ppm: 100_000,
            fixed_fee: Rate(0),
        }),
        margin_rules: vec![],
        partitions: vec![CustomerPartition {
            partition_id: 1,
            priority: 1,
            window: None,
        }],
        source_cidrs: vec!["127.0.0.1/32".parse::<IpNet>().unwrap()],
        emergency_callback: None,
    });
    b.vendor_rate(100, RateKey::Prefix("1212"), rate(50_000, 60_000, 30_000))
        .unwrap();
    b.vendor_rate(200, RateKey::Prefix("1212"), rate(40_000, 70_000, 20_000))
        .unwrap();
    b.vendor_rate(200, RateKey::Prefix("44"), rate(200_000, 200_000, 200_000))
        .unwrap();
    b.npanxx("212555", npanxx("NY", "132")).unwrap();
    b.npanxx("310555", npanxx("CA", "730")).unwrap();
    b.build(built_at).unwrap()
}

/// Builds the test snapshot and installs it, like the DB reloader does with database rows.
struct TestReloader {
    engine: Arc<Engine>,
    calls: AtomicUsize,
    /// how long a reload takes (to hold a request in flight)
    delay_ms: AtomicU64,
}

impl Reloader for TestReloader {
    fn reload(&self) -> BoxFuture<'_, Result<ReloadReport, ReloadError>> {
        Box::pin(async move {
            self.calls.fetch_add(1, Ordering::SeqCst);
            let t0 = Instant::now();
            let delay = self.delay_ms.load(Ordering::SeqCst);
            if delay > 0 {
                // the scenario: a slow reload holds its request in flight
                tokio::time::sleep(Duration::from_millis(delay)).await;
            }
            let snap = snapshot(1_700_000_000);
            let stats = snap.stats();
            let generation = self.engine.install(snap);
            Ok(ReloadReport {
                generation,
                duration_ms: t0.elapsed().as_secs_f64() * 1000.0,
                stats,
                unchanged: false,
                data_version: None,
                rebuilt: vec![],
                rate_routes: vec![],
            })
        })
    }
}

/// `warpd::api::serve` on 127.0.0.1:0 with an engine and the [`TestReloader`]; [`Api`] by `Deref`.
struct TestServer {
    api: Api,
    engine: Arc<Engine>,
    reloader: Arc<TestReloader>,
    token: CancellationToken,
    task: JoinHandle<Result<(), ApiError>>,
}

impl Deref for TestServer {
    type Target = Api;
    fn deref(&self) -> &Api {
        &self.api
    }
}

impl TestServer {
    async fn start(install: bool) -> TestServer {
        let engine = Arc::new(Engine::new(settings()));
        if install {
            engine.install(snapshot(1_700_000_000));
        }
        let reloader = Arc::new(TestReloader {
            engine: engine.clone(),
            calls: AtomicUsize::new(0),
            delay_ms: AtomicU64::new(0),
        });
        let state = Arc::new(AppState {
            engine: engine.clone(),
            reloader: reloader.clone(),
            metrics: Arc::new(Metrics::new()),
            limits: ApiLimits {
                max_body_bytes: LIMIT,
                ..ApiLimits::default()
            },
            media: None,
            calls: None,
            admin: None,
            console: None,
            kamailio_auth: Default::default(),
        });
        let kamailio = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let admin = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let api = Api::with_admin(kamailio.local_addr().unwrap(), admin.local_addr().unwrap());
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
        TestServer {
            api,
            engine,
            reloader,
            token,
            task,
        }
    }

    /// Cancels the token and waits (bounded) for `serve` to return Ok.
    async fn stop(self) {
        self.token.cancel();
        let res = tokio::time::timeout(Duration::from_secs(5), self.task)
            .await
            .expect("serve did not stop within 5 s")
            .expect("serve task panicked");
        assert!(res.is_ok(), "serve returned {res:?}");
    }

    /// A series of `/metrics`, 0 when absent.
    async fn counter(&self, series: &str) -> f64 {
        self.metric(series).await.unwrap_or(0.0)
    }
}

fn route_query(extra: &str) -> String {
    format!("/v1/route?ban=1001&ani=%2B13105551234&dnis=%2B12125551234{extra}")
}

/// The Kamailio surface's answer: no rates or billing terms (those are in `lcr.simulate`).
fn expected_route_answer() -> Value {
    json!({
        "action": "route",
        "zone": "interstate",
        "lrn": "2125551234",
        "partition": "default",
        "routes": [
            {
                "route_id": "bravo-std",
                "vendor": "bravo",
                "uri": "sip:12125551234@198.51.100.20:5080;transport=tcp",
                "uris": ["sip:12125551234@198.51.100.20:5080;transport=tcp"]
            },
            {
                "route_id": "alpha-std",
                "vendor": "alpha",
                "uri": "sip:12125551234@198.51.100.10:5060;transport=udp",
                "uris": ["sip:12125551234@198.51.100.10:5060;transport=udp"]
            }
        ],
        // STIR/SHAKEN (issue 20): customer 1001 does not own the ANI: B, its origid
        "stir": {
            "attest": "B",
            "origid": warpd::routing::stir::customer_origid(
                &warpd::routing::stir::DEFAULT_ORIGID_NAMESPACE,
                "1001"
            )
            .to_string(),
            "orig": &ANI[1..],
            "dest": &DNIS[1..]
        }
    })
}

#[tokio::test]
async fn get_route_answers_cheapest_first_with_exact_rates_and_uris() {
    let s = TestServer::start(true).await;
    let r = s
        .http
        .get(format!("{}{}", s.base, route_query("")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "application/json");
    let v: Value = r.json().await.unwrap();
    assert_eq!(v, expected_route_answer());

    // max_results limits the list to the cheapest
    let (status, v) = s.get_json(&route_query("&max_results=1")).await;
    assert_eq!(status, 200);
    assert_eq!(v["routes"].as_array().unwrap().len(), 1);
    assert_eq!(v["routes"][0]["route_id"], "bravo-std");
    s.stop().await;
}

#[tokio::test]
async fn json_rpc_route_returns_the_same_result_object() {
    let s = TestServer::start(true).await;
    let (_, via_get) = s.get_json(&route_query("")).await;
    let params = json!({"ban": "1001", "ani": ANI, "dnis": DNIS});
    let via_rpc = s.rpc_result("lcr.route", params.clone()).await;
    assert_eq!(via_rpc, via_get);
    assert_eq!(via_rpc, expected_route_answer());
    // positional form: a 1-element array holding the object
    let via_array = s.rpc_result("lcr.route", json!([params])).await;
    assert_eq!(via_array, via_get);
    s.stop().await;
}

#[tokio::test]
async fn src_ip_identifies_the_customer_on_both_surfaces() {
    let s = TestServer::start(true).await;
    let (status, v) = s
        .get_json("/v1/route?src_ip=127.0.0.1&ani=%2B13105551234&dnis=%2B12125551234")
        .await;
    assert_eq!(status, 200);
    assert_eq!(v, expected_route_answer());
    let v = s
        .rpc_result(
            "lcr.route",
            json!({"src_ip": "127.0.0.1", "ani": ANI, "dnis": DNIS}),
        )
        .await;
    assert_eq!(v, expected_route_answer());
    // an unknown source is an unknown customer
    let v = s
        .rpc_result(
            "lcr.route",
            json!({"src_ip": "192.0.2.1", "ani": ANI, "dnis": DNIS}),
        )
        .await;
    assert_eq!(v["action"], "reject");
    assert_eq!(v["sip_code"], 403);
    s.stop().await;
}

#[tokio::test]
async fn plus_in_query_works_percent_encoded_and_raw() {
    let s = TestServer::start(true).await;
    // raw '+' decodes to a space in form encoding; the API restores it
    let (status, raw) = s
        .get_json("/v1/route?ban=1001&ani=+13105551234&dnis=+12125551234")
        .await;
    assert_eq!(status, 200);
    assert_eq!(raw, expected_route_answer());

    // international: without the '+' "442071234567" is not a valid number (484), so the answer
    // proves the '+' survived in both spellings
    let (status, enc) = s
        .get_json("/v1/route?ban=1001&ani=%2B13105551234&dnis=%2B442071234567")
        .await;
    assert_eq!(status, 200);
    let (status, raw) = s
        .get_json("/v1/route?ban=1001&ani=+13105551234&dnis=+442071234567")
        .await;
    assert_eq!(status, 200);
    assert_eq!(enc, raw);
    assert_eq!(enc["action"], "route", "{enc}");
    assert_eq!(enc["zone"], "international");
    assert_eq!(enc["routes"][0]["route_id"], "bravo-std");
    // the Kamailio surface's answer carries no margin data (lcr.simulate has it)
    assert!(enc["routes"][0].get("rate").is_none(), "{enc}");
    assert_eq!(
        enc["routes"][0]["uri"],
        "sip:442071234567@198.51.100.20:5080;transport=tcp"
    );
    s.stop().await;
}

#[tokio::test]
async fn reject_answers() {
    let s = TestServer::start(true).await;
    let (status, v) = s
        .get_json("/v1/route?ban=9999&ani=%2B13105551234&dnis=%2B12125551234")
        .await;
    assert_eq!(status, 200, "a reject is an answer, not an HTTP error");
    assert_eq!(v["action"], "reject");
    assert_eq!(v["sip_code"], 403);
    assert_eq!(v["reason"], "unknown customer");

    let v = s
        .rpc_result(
            "lcr.route",
            json!({"ban": "1001", "ani": ANI, "dnis": "12345"}),
        )
        .await;
    assert_eq!(v["action"], "reject");
    assert_eq!(v["sip_code"], 484);
    assert_eq!(v["reason"], "invalid number in dnis");
    let (_, v) = s.get_json("/v1/route?ban=1001&ani=1&dnis=12345").await;
    assert_eq!(v["sip_code"], 484);
    s.stop().await;
}

#[tokio::test]
async fn simulate_lists_candidates_on_both_surfaces() {
    let s = TestServer::start(true).await;
    let params = json!({"ban": "1001", "ani": ANI, "dnis": DNIS, "max_results": 1});
    let v = s.rpc_result("lcr.simulate", params.clone()).await;
    assert_eq!(v["customer"], "1001");
    assert_eq!(v["zone"], "interstate");
    assert_eq!(v["partitions"], json!(["default"]));
    let cands = v["candidates"].as_array().unwrap();
    assert_eq!(cands.len(), 2, "{v}");
    let bravo = cands.iter().find(|c| c["route_id"] == "bravo-std").unwrap();
    let alpha = cands.iter().find(|c| c["route_id"] == "alpha-std").unwrap();
    assert_eq!(bravo["kept"], true);
    assert_eq!(bravo["rate"], 0.004);
    assert_eq!(alpha["kept"], false);
    assert_eq!(alpha["reason"], "beyond max_results 1");
    assert_eq!(v["answer"]["action"], "route");
    assert_eq!(v["answer"]["routes"].as_array().unwrap().len(), 1);

    let (status, text) = s
        .post_raw(
            "/v1/routing/simulate",
            "application/json",
            serde_json::to_vec(&params).unwrap(),
        )
        .await;
    assert_eq!(status, 200, "{text}");
    let via_http: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(via_http, v);
    s.stop().await;
}

#[tokio::test]
async fn health_and_reload() {
    let s = TestServer::start(true).await;
    let h = s.rpc_result("warpd.health", json!(null)).await;
    assert_eq!(h["ready"], true);
    assert_eq!(h["generation"], 1);
    assert_eq!(h["snapshot"]["customers"], 1);
    assert_eq!(h["snapshot"]["routes"], 2);

    let report = s.rpc_result("warpd.reload", json!([])).await;
    assert_eq!(s.reloader.calls.load(Ordering::SeqCst), 1);
    assert_eq!(report["generation"], 2);
    assert_eq!(report["stats"]["vendors"], 2);
    assert_eq!(s.engine.generation(), 2);
    let h = s.rpc_result("warpd.health", json!(null)).await;
    assert_eq!(h["generation"], 2);
    // routing still works on the new snapshot
    let (_, v) = s.get_json(&route_query("")).await;
    assert_eq!(v, expected_route_answer());
    s.stop().await;
}

#[tokio::test]
async fn readyz_follows_the_first_install() {
    let s = TestServer::start(false).await;
    assert_eq!(s.get("/healthz").await, (200, "ok".to_string()));
    let (status, _) = s.get("/readyz").await;
    assert_eq!(status, 503);
    // dips before the first snapshot are refused, not answered "unknown customer"
    let (status, v) = s.get_json(&route_query("")).await;
    assert_eq!(status, 503);
    assert!(v["error"].as_str().unwrap().contains("not ready"), "{v}");
    let (code, msg) = s
        .rpc_error(
            "lcr.route",
            json!({"ban": "1001", "ani": ANI, "dnis": DNIS}),
        )
        .await;
    assert_eq!(code, -32000);
    assert!(msg.contains("not ready"), "{msg}");
    let h = s.rpc_result("warpd.health", json!(null)).await;
    assert_eq!(h["ready"], false);

    s.engine.install(snapshot(1_700_000_000));
    let (status, _) = s.get("/readyz").await;
    assert_eq!(status, 200);
    let (status, v) = s.get_json(&route_query("")).await;
    assert_eq!(status, 200);
    assert_eq!(v["action"], "route");
    s.stop().await;
}

#[tokio::test]
async fn metrics_count_dips_and_bad_requests() {
    let s = TestServer::start(true).await;
    let r = s.http.get(s.url("/metrics")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "text/plain; version=0.0.4");
    let routed = "warpd_dips_total{outcome=\"route\"}";
    let rejected = "warpd_dips_total{outcome=\"reject_403\"}";
    let http_count = "warpd_dip_duration_seconds_count{surface=\"http\"}";
    let rpc_count = "warpd_dip_duration_seconds_count{surface=\"rpc\"}";
    let bad_http = "warpd_bad_requests_total{kind=\"invalid_param\",surface=\"http\"}";
    let bad_rpc = "warpd_bad_requests_total{kind=\"invalid_params\",surface=\"rpc\"}";
    let bad_rpc_parse = "warpd_bad_requests_total{kind=\"malformed_json\",surface=\"rpc\"}";
    let bad_rpc_method = "warpd_bad_requests_total{kind=\"unknown_method\",surface=\"rpc\"}";
    let before = [
        s.counter(routed).await,
        s.counter(rejected).await,
        s.counter(http_count).await,
        s.counter(rpc_count).await,
        s.counter(bad_http).await,
        s.counter(bad_rpc).await,
        s.counter(bad_rpc_parse).await,
        s.counter(bad_rpc_method).await,
    ];

    s.get_json(&route_query("")).await;
    s.get_json(&route_query("")).await;
    s.rpc_result(
        "lcr.route",
        json!({"ban": "1001", "ani": ANI, "dnis": DNIS}),
    )
    .await;
    s.rpc_result(
        "lcr.route",
        json!({"ban": "nope", "ani": ANI, "dnis": DNIS}),
    )
    .await;
    s.get("/v1/route?ban=1001&ani=1").await;
    s.rpc_error("lcr.route", json!({"ban": "1001", "ani": ANI}))
        .await;
    s.post_raw("/rpc", "application/json", b"{oops".to_vec())
        .await;
    s.rpc_error("no.such.method", json!({})).await;
    // simulations are not dips
    s.rpc_result(
        "lcr.simulate",
        json!({"ban": "1001", "ani": ANI, "dnis": DNIS}),
    )
    .await;

    let (_, text) = s.get("/metrics").await;
    assert!(text.contains("warpd_dip_duration_seconds"), "{text}");
    assert!(text.contains("warpd_snapshot_generation 1"), "{text}");
    assert_eq!(s.counter(routed).await, before[0] + 3.0);
    assert_eq!(s.counter(rejected).await, before[1] + 1.0);
    assert_eq!(s.counter(http_count).await, before[2] + 2.0);
    assert_eq!(s.counter(rpc_count).await, before[3] + 2.0);
    assert_eq!(s.counter(bad_http).await, before[4] + 1.0);
    assert_eq!(s.counter(bad_rpc).await, before[5] + 1.0);
    assert_eq!(s.counter(bad_rpc_parse).await, before[6] + 1.0);
    assert_eq!(s.counter(bad_rpc_method).await, before[7] + 1.0);
    s.stop().await;
}

#[tokio::test]
async fn json_rpc_bad_inputs() {
    let s = TestServer::start(true).await;
    // malformed JSON
    let (status, text) = s
        .post_raw(
            "/rpc",
            "application/json",
            br#"{"jsonrpc":"2.0","id":1,"method":"lcr.route","params":{"#.to_vec(),
        )
        .await;
    assert!(status == 200 || status == 400, "{status} {text}");
    let v: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v["error"]["code"], -32700, "{v}");

    let (code, msg) = s
        .rpc_error("lcr.route", json!({"ban": "1001", "ani": ANI}))
        .await;
    assert_eq!(code, -32602);
    assert!(msg.contains("dnis"), "{msg}");
    assert_eq!(msg, "dnis: missing field");

    let (code, msg) = s
        .rpc_error(
            "lcr.route",
            json!({"ban": "1001", "ani": ANI, "dnis": DNIS, "max_results": "x"}),
        )
        .await;
    assert_eq!(code, -32602);
    assert!(msg.starts_with("max_results:"), "{msg}");
    assert!(msg.contains("expected u16"), "{msg}");

    let (code, msg) = s
        .rpc_error(
            "lcr.route",
            json!([{"ban": "1001", "ani": ANI, "dnis": DNIS, "max_results": "x"}]),
        )
        .await;
    assert_eq!(code, -32602);
    assert!(msg.starts_with("max_results:"), "{msg}");

    let (code, msg) = s
        .rpc_error(
            "lcr.route",
            json!({"ban": "1001", "ani": ANI, "dnis": DNIS, "carrier": "a"}),
        )
        .await;
    assert_eq!(code, -32602);
    assert_eq!(msg, "carrier: unknown parameter");

    let (code, msg) = s
        .rpc_error("lcr.route", json!({"ani": ANI, "dnis": DNIS}))
        .await;
    assert_eq!(code, -32602);
    assert!(msg.contains("ban") && msg.contains("src_ip"), "{msg}");

    let (code, msg) = s.rpc_error("lcr.simulate", json!(null)).await;
    assert_eq!(code, -32602);
    assert!(msg.starts_with("params:"), "{msg}");

    let (code, _) = s.rpc_error("lcr.nope", json!({})).await;
    assert_eq!(code, -32601);

    // body over the limit
    let big = json!({"jsonrpc": "2.0", "id": 1, "method": "lcr.route",
        "params": {"ban": "1001", "ani": ANI, "dnis": DNIS, "call_id": "x".repeat(LIMIT)}});
    let (status, text) = s
        .post_raw(
            "/rpc",
            "application/json",
            serde_json::to_vec(&big).unwrap(),
        )
        .await;
    assert_eq!(status, 413, "{text}");

    // wrong HTTP method on /rpc
    let (status, _) = s.get("/rpc").await;
    assert_eq!(status, 405);

    // the server is still healthy after all that
    let v = s
        .rpc_result(
            "lcr.route",
            json!({"ban": "1001", "ani": ANI, "dnis": DNIS}),
        )
        .await;
    assert_eq!(v, expected_route_answer());
    s.stop().await;
}

#[tokio::test]
async fn http_bad_inputs() {
    let s = TestServer::start(true).await;
    let (status, v) = s.get_json("/v1/route?ban=1001&ani=%2B13105551234").await;
    assert_eq!(status, 400);
    assert!(v["error"].as_str().unwrap().starts_with("dnis:"), "{v}");

    let (status, v) = s.get_json(&route_query("&carrier=7")).await;
    assert_eq!(status, 400);
    assert_eq!(v["error"], "carrier: unknown parameter");

    let (status, v) = s.get_json(&route_query("&max_results=lots")).await;
    assert_eq!(status, 400);
    assert!(
        v["error"].as_str().unwrap().starts_with("max_results:"),
        "{v}"
    );

    let (status, v) = s.get_json("/v1/route?ani=1&dnis=2").await;
    assert_eq!(status, 400);
    assert!(
        v["error"]
            .as_str()
            .unwrap()
            .starts_with("ban, src_ip, trunk:"),
        "{v}"
    );

    let (status, v) = s.get_json("/v1/nowhere").await;
    assert_eq!(status, 404);
    assert!(v["error"].as_str().unwrap().contains("/v1/nowhere"), "{v}");

    let r = s
        .http
        .post(format!("{}{}", s.base, route_query("")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 405);
    assert_eq!(r.headers()["allow"], "GET");

    let (status, _) = s.get("/v1/routing/simulate").await;
    assert_eq!(status, 405);

    // simulate: bad JSON names the field; malformed JSON is 400; over the limit is 413
    let (status, text) = s
        .post_raw(
            "/v1/routing/simulate",
            "application/json",
            br#"{"ban":"1001","ani":"1","dnis":"2","max_results":-1}"#.to_vec(),
        )
        .await;
    assert_eq!(status, 400);
    let v: Value = serde_json::from_str(&text).unwrap();
    assert!(
        v["error"].as_str().unwrap().starts_with("max_results:"),
        "{v}"
    );

    let (status, text) = s
        .post_raw(
            "/v1/routing/simulate",
            "application/json",
            b"{not json".to_vec(),
        )
        .await;
    assert_eq!(status, 400);
    let v: Value = serde_json::from_str(&text).unwrap();
    assert!(v["error"].as_str().unwrap().starts_with("body:"), "{v}");

    let (status, _) = s
        .post_raw(
            "/v1/routing/simulate",
            "application/json",
            vec![b' '; LIMIT + 1],
        )
        .await;
    assert_eq!(status, 413);

    let (status, _) = s
        .post_raw("/v1/routing/simulate", "text/plain", b"{}".to_vec())
        .await;
    assert_eq!(status, 415);
    s.stop().await;
}

#[tokio::test]
async fn shutdown_finishes_and_stops_listening() {
    let s = TestServer::start(true).await;
    let (status, _) = s.get_json(&route_query("")).await;
    assert_eq!(status, 200);
    let base = s.base.clone();
    s.stop().await;
    let fresh = reqwest::Client::builder()
        .timeout(Duration::from_secs(2))
        .build()
        .unwrap();
    assert!(fresh.get(format!("{base}/healthz")).send().await.is_err());
}

#[tokio::test]
async fn shutdown_lets_the_request_in_flight_finish() {
    let s = TestServer::start(true).await;
    s.reloader.delay_ms.store(300, Ordering::SeqCst);
    let http = s.http.clone();
    let url = s.rpc_url("warpd.reload");
    let in_flight = tokio::spawn(async move {
        http.post(url)
            .json(&json!({"jsonrpc": "2.0", "id": 1, "method": "warpd.reload"}))
            .send()
            .await
    });
    // wait until the reload has started, then shut down while it runs
    support::eventually("the reload started", Duration::from_secs(5), || {
        std::future::ready(s.reloader.calls.load(Ordering::SeqCst) > 0)
    })
    .await;
    s.stop().await;
    let resp = in_flight
        .await
        .unwrap()
        .expect("in-flight request must complete");
    assert_eq!(resp.status(), 200);
    let v: Value = resp.json().await.unwrap();
    assert_eq!(v["result"]["generation"], 2, "{v}");
}

#[tokio::test]
async fn media_methods_without_media_config_are_method_not_found() {
    let s = TestServer::start(true).await;
    // (on the admin listener, where the harness sends them: see tests/integration/listeners.rs)
    for (m, p) in [
        ("media.nodes", json!(null)),
        ("media.query", json!({"call_id": "c"})),
        ("media.record.start", json!({"call_id": "c"})),
    ] {
        let (code, msg) = s.rpc_error(m, p).await;
        assert_eq!(code, -32601, "{m}: {msg}");
        assert!(msg.contains("not configured"), "{m}: {msg}");
    }
    s.stop().await;
}
