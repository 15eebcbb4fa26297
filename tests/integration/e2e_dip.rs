//! End to end against a throwaway PostgreSQL: migrate, apply the demo network, run the daemon
//! (`server::run`), dip over HTTP and JSON-RPC, change a rate in the database and see the next dip
//! change without a restart (LISTEN/NOTIFY reload).

use crate::support;

use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tokio_util::sync::CancellationToken;
use warpd::config::Config;

async fn get_json(http: &reqwest::Client, url: &str) -> (u16, Value) {
    let r = http.get(url).send().await.unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demo_network_dips_over_http_and_rpc_and_follows_database_changes() {
    let pg = support::TestPg::start();
    let mut client = warpd::db::connect(&pg.url()).await.unwrap();
    warpd::db::migrate::migrate(&mut client).await.unwrap();
    let demo = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/demo/network.toml");
    warpd::provision::apply(&mut client, &demo, false)
        .await
        .unwrap();

    let example = support::warpd::EXAMPLE;
    let spool = tempfile::tempdir().unwrap();
    let env = vec![
        ("WARPD_DATABASE__URL".to_string(), pg.url()),
        ("WARPD_RELOAD__DEBOUNCE_MS".to_string(), "50".to_string()),
        (
            "WARPD_CDR__SPOOL_DIR".to_string(),
            spool.path().display().to_string(),
        ),
    ];
    let config = Config::from_str_with_env(example, env).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let shutdown = CancellationToken::new();
    let server = tokio::spawn(warpd::server::run(config, listener, shutdown.clone()));
    let http = reqwest::Client::new();

    // ready once the first snapshot is loaded
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

    // interstate NY -> IL for Acme (10001, premium partition)
    let q = "ban=10001&ani=%2B12125550100&dnis=%2B13125550100";
    let (status, http_answer) = get_json(&http, &format!("{base}/v1/route?{q}")).await;
    assert_eq!(status, 200, "{http_answer}");
    assert_eq!(http_answer["action"], "route", "{http_answer}");
    assert_eq!(http_answer["zone"], "interstate");
    let routes = http_answer["routes"].as_array().unwrap();
    assert!(!routes.is_empty());
    // forced (override) routes first, then cheapest first
    let lcr: Vec<&Value> = routes.iter().filter(|r| r["forced"] != true).collect();
    assert!(!lcr.is_empty(), "{http_answer}");
    let rates: Vec<f64> = lcr.iter().map(|r| r["rate"].as_f64().unwrap()).collect();
    assert!(
        rates.windows(2).all(|w| w[0] <= w[1]),
        "cheapest first: {rates:?}"
    );
    for r in routes {
        assert!(
            r["uri"]
                .as_str()
                .unwrap()
                .starts_with("sip:+13125550100@127.0.0.1:"),
            "{r}"
        );
        assert!(r["customer_rate"].as_f64().unwrap() >= r["rate"].as_f64().unwrap());
    }

    // the same dip over JSON-RPC gives the same answer
    let rpc: Value = http
        .post(format!("{base}/rpc"))
        .json(&json!({"jsonrpc":"2.0","id":7,"method":"lcr.route",
            "params":{"ban":"10001","ani":"+12125550100","dnis":"+13125550100"}}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(rpc["id"], 7);
    assert_eq!(rpc["result"], http_answer);

    // blocked premium prefix, emergency, unknown customer
    let (_, a) = get_json(
        &http,
        &format!("{base}/v1/route?ban=10001&ani=%2B12125550100&dnis=%2B19005550100"),
    )
    .await;
    assert_eq!(
        (a["action"].as_str(), a["sip_code"].as_u64()),
        (Some("reject"), Some(403)),
        "{a}"
    );
    let (_, a) = get_json(
        &http,
        &format!("{base}/v1/route?ban=10001&ani=%2B12125550100&dnis=911"),
    )
    .await;
    assert_eq!(a["zone"], "emergency", "{a}");
    assert_eq!(a["routes"][0]["route_id"], "e911");
    let (_, a) = get_json(
        &http,
        &format!("{base}/v1/route?ban=99999&ani=%2B12125550100&dnis=%2B13125550100"),
    )
    .await;
    assert_eq!(a["sip_code"], 403, "{a}");

    // change the most expensive LCR route's deck in the database only
    let last = lcr.last().unwrap()["route_id"]
        .as_str()
        .unwrap()
        .to_string();
    let changed = client
        .execute(
            "UPDATE vendor_rates SET rate_inter = 0.0000100, rate_intra = 0.0000100, rate_local = 0.0000100 \
             WHERE route_id = (SELECT id FROM routes WHERE name = $1)",
            &[&last],
        )
        .await
        .unwrap();
    assert!(changed > 0);
    let t = Instant::now();
    loop {
        let (_, a) = get_json(&http, &format!("{base}/v1/route?{q}")).await;
        let first_lcr = a["routes"]
            .as_array()
            .and_then(|rs| rs.iter().find(|r| r["forced"] != true).cloned());
        if first_lcr
            .is_some_and(|r| r["route_id"] == last.as_str() && r["rate"].as_f64() == Some(0.00001))
        {
            break;
        }
        assert!(
            t.elapsed() < Duration::from_secs(15),
            "rate change not picked up: {a}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // metrics saw the dips and the reloads
    let metrics = http
        .get(format!("{base}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(metrics.contains("warpd_dip_duration_seconds"), "{metrics}");
    assert!(
        metrics.contains("warpd_snapshot_reloads_total{result=\"ok\"}"),
        "{metrics}"
    );

    shutdown.cancel();
    let done = tokio::time::timeout(Duration::from_secs(15), server).await;
    assert!(
        matches!(done, Ok(Ok(Ok(())))),
        "server did not stop cleanly: {done:?}"
    );
}
