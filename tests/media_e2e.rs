//! Media control end to end through `server::run`: PostgreSQL (throwaway cluster) with the demo
//! network and its `media_policies` rows, a real rtpengine-daemon (ports 30300-30349), a dip with a
//! call-id over HTTP, then Kamailio-style ng through warpd's proxy socket: the customer's
//! recording policy from the database applies, `media.*` JSON-RPC methods work, and a policy
//! change in the database (NOTIFY warpd_routing) applies to the next call.

mod media_support;
mod support;

use std::time::{Duration, Instant};

use media_support::{audio_sdp, bs, kamailio_offer, RtpEngine};
use serde_json::{json, Value};
use tokio::net::UdpSocket;
use tokio_util::sync::CancellationToken;
use warpd::config::Config;
use warpd::media::codec::{parse_datagram, Dict};

async fn rpc(http: &reqwest::Client, base: &str, method: &str, params: Value) -> Value {
    http.post(format!("{base}/rpc"))
        .json(&json!({"jsonrpc":"2.0","id":1,"method":method,"params":params}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

async fn ng(sock: &UdpSocket, to: std::net::SocketAddr, data: &[u8]) -> Dict {
    sock.send_to(data, to).await.unwrap();
    let mut buf = vec![0u8; 65535];
    let (n, _) = tokio::time::timeout(Duration::from_secs(5), sock.recv_from(&mut buf))
        .await
        .expect("ng answer within 5 s")
        .unwrap();
    parse_datagram(&buf[..n]).unwrap().1
}

async fn metric(http: &reqwest::Client, base: &str, name: &str) -> Option<f64> {
    let text = http
        .get(format!("{base}/metrics"))
        .send()
        .await
        .ok()?
        .text()
        .await
        .ok()?;
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
}

async fn wait_metric(http: &reqwest::Client, base: &str, name: &str, at_least: f64) {
    let t = Instant::now();
    while metric(http, base, name).await.unwrap_or(0.0) < at_least {
        assert!(
            t.elapsed() < Duration::from_secs(15),
            "{name} never reached {at_least}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// offer → answer → delete through the proxy for `call_id`; returns the offer's answer.
async fn call(sock: &UdpSocket, proxy: std::net::SocketAddr, call_id: &str) -> Dict {
    let o = ng(
        sock,
        proxy,
        &kamailio_offer(
            &format!("o-{call_id}"),
            call_id,
            "ft",
            &audio_sdp(7000),
            &[],
        ),
    )
    .await;
    assert_eq!(o.str("result"), Some("ok"), "{o:?}");
    let a = format!(
        "a-{call_id} d7:command6:answer7:call-id{}8:from-tag2:ft6:to-tag2:tt3:sdp{}e",
        bs(call_id),
        bs(&audio_sdp(7002))
    );
    assert_eq!(
        ng(sock, proxy, a.as_bytes()).await.str("result"),
        Some("ok")
    );
    o
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dip_then_ng_through_warpd_applies_database_policy_and_rpc_methods_work() {
    let pg = support::TestPg::start();
    let node = RtpEngine::start(30300, 30349);
    let mut client = warpd::db::connect(&pg.url()).await.unwrap();
    warpd::db::migrate::migrate(&mut client).await.unwrap();
    let demo = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/demo/network.toml");
    warpd::provision::apply(&mut client, &demo, false)
        .await
        .unwrap();
    // the demo network's media policy records customer 10001's calls
    let record: Option<bool> = client
        .query_one(
            "SELECT record FROM media_policies WHERE customer_ban = '10001' AND route_name IS NULL",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(record, Some(true));

    let ng_port = std::net::UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let text = format!(
        "{}\n[media]\nng_listen = \"127.0.0.1:{ng_port}\"\nnodes = [{{ address = \"{}\" }}]\nhealth_interval_ms = 200\n",
        include_str!("../warpd.example.toml"),
        node.ng
    );
    let env = vec![
        ("WARPD_DATABASE__URL".to_string(), pg.url()),
        ("WARPD_RELOAD__DEBOUNCE_MS".to_string(), "50".to_string()),
    ];
    let config = Config::from_str_with_env(&text, env).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let shutdown = CancellationToken::new();
    let server = tokio::spawn(warpd::server::run(config, listener, shutdown.clone()));
    let http = reqwest::Client::new();
    let t = Instant::now();
    loop {
        let r = http.get(format!("{base}/readyz")).send().await;
        if r.map(|r| r.status().as_u16() == 200).unwrap_or(false) {
            break;
        }
        assert!(
            t.elapsed() < Duration::from_secs(20),
            "warpd never became ready"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    wait_metric(&http, &base, "warpd_media_policy_loads_total", 1.0).await;
    // the demo's two policies: customer 10001 (record) and route bw-intl (T.38, codecs)
    assert_eq!(
        metric(&http, &base, "warpd_media_policies").await,
        Some(2.0)
    );

    // the dip carries the call-id: warpd remembers BAN and routes for the media side. It names
    // the customer by source address only (as kamailio.cfg does): the BAN comes from the
    // snapshot, so the customer's recording policy still applies (checked below)
    let q = "src_ip=127.0.0.1&ani=%2B12125550100&dnis=%2B13125550100&call_id=e2e-call-1";
    let dip: Value = http
        .get(format!("{base}/v1/route?{q}"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(dip["action"], "route", "{dip}");
    let route = dip["routes"][0]["route_id"].as_str().unwrap().to_string();

    let proxy: std::net::SocketAddr = format!("127.0.0.1:{ng_port}").parse().unwrap();
    let sock = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let pong = ng(&sock, proxy, b"p1 d7:command4:pinge").await;
    assert_eq!(pong.str("result"), Some("pong"));
    let offer = call(&sock, proxy, "e2e-call-1").await;
    let sdp = offer.str("sdp").unwrap();
    assert!(sdp.contains("c=IN IP4 127.0.0.1"), "{sdp}");

    // JSON-RPC: nodes, query, record stop/start, and errors
    let nodes = rpc(&http, &base, "media.nodes", json!(null)).await;
    assert_eq!(
        nodes["result"][0]["address"],
        node.ng.to_string(),
        "{nodes}"
    );
    assert_eq!(nodes["result"][0]["healthy"], true);
    assert_eq!(nodes["result"][0]["calls"], 1);
    let qr = rpc(&http, &base, "media.query", json!({"call_id":"e2e-call-1"})).await;
    assert_eq!(qr["result"]["node"], node.ng.to_string(), "{qr}");
    assert!(qr["result"]["answer"]["tags"].is_object(), "{qr}");
    for m in ["media.record.stop", "media.record.start"] {
        let r = rpc(&http, &base, m, json!({"call_id":"e2e-call-1"})).await;
        assert_eq!(r["result"]["answer"]["result"], "ok", "{m}: {r}");
    }
    let unknown = rpc(&http, &base, "media.query", json!({"call_id":"nope"})).await;
    assert_eq!(unknown["error"]["code"], -32602, "{unknown}");
    let bad = rpc(&http, &base, "media.query", json!({"callid":"x"})).await;
    assert_eq!(bad["error"]["code"], -32602, "{bad}");

    let del = format!(
        "d1 d7:command6:delete7:call-id{}8:from-tag2:fte",
        bs("e2e-call-1")
    );
    assert_eq!(
        ng(&sock, proxy, del.as_bytes()).await.str("result"),
        Some("ok")
    );

    // the recording policy of BAN 10001 (from the database) applied, with BAN and route
    let t = Instant::now();
    let meta = loop {
        let meta: String = node
            .recordings()
            .iter()
            .filter(|f| f.to_string_lossy().contains("e2e-call-1"))
            .filter(|f| f.to_string_lossy().contains("metadata"))
            .filter_map(|f| std::fs::read_to_string(f).ok())
            .collect();
        if !meta.is_empty() || t.elapsed() > Duration::from_secs(5) {
            break meta;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(
        meta.contains(&format!("ban:10001|route:{route}")),
        "metadata: {meta:?}"
    );

    // turn recording off in the database: the NOTIFY reload applies it to the next call
    let loads = metric(&http, &base, "warpd_media_policy_loads_total")
        .await
        .unwrap();
    client
        .execute(
            "UPDATE media_policies SET record = false WHERE customer_ban = '10001'",
            &[],
        )
        .await
        .unwrap();
    wait_metric(&http, &base, "warpd_media_policy_loads_total", loads + 1.0).await;
    let q2 = "ban=10001&ani=%2B12125550100&dnis=%2B13125550100&call_id=e2e-call-2";
    let dip2 = http
        .get(format!("{base}/v1/route?{q2}"))
        .send()
        .await
        .unwrap();
    assert_eq!(dip2.status().as_u16(), 200);
    call(&sock, proxy, "e2e-call-2").await;
    let del = format!(
        "d2 d7:command6:delete7:call-id{}8:from-tag2:fte",
        bs("e2e-call-2")
    );
    assert_eq!(
        ng(&sock, proxy, del.as_bytes()).await.str("result"),
        Some("ok")
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        !node
            .recordings()
            .iter()
            .any(|f| f.to_string_lossy().contains("e2e-call-2")),
        "no recording after the policy was turned off"
    );
    assert!(metric(
        &http,
        &base,
        "warpd_media_commands_total{command=\"offer\",outcome=\"ok\"}"
    )
    .await
    .is_some_and(|v| v >= 2.0));

    shutdown.cancel();
    let _ = tokio::time::timeout(Duration::from_secs(15), server).await;
}
