//! End to end against a throwaway PostgreSQL: migrate, apply the demo network, run the daemon
//! (`server::run`), dip over HTTP and JSON-RPC, change a rate in the database and see the next dip
//! change without a restart (LISTEN/NOTIFY reload).

use serde_json::{json, Value};

use crate::support::{self, TestPg, Warpd};

/// Interstate NY -> IL for Acme (10001, premium partition).
const Q: &str = "ban=10001&ani=%2B12125550100&dnis=%2B13125550100";

/// The demo network and warpd on it.
async fn demo() -> (TestPg, tokio_postgres::Client, Warpd) {
    let pg = TestPg::start();
    let client = support::demo::demo_db(&pg).await;
    let w = Warpd::builder(&pg).start().await;
    (pg, client, w)
}

/// The routes of `answer` that are not forced by an override (least-cost order).
fn lcr(answer: &Value) -> Vec<&Value> {
    answer["routes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["forced"] != true)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demo_dip_over_http_is_cheapest_first_and_rpc_gives_the_same_answer() {
    let (_pg, _client, w) = demo().await;
    let (status, http_answer) = w.get_json(&format!("/v1/route?{Q}")).await;
    assert_eq!(status, 200, "{http_answer}");
    assert_eq!(http_answer["action"], "route", "{http_answer}");
    assert_eq!(http_answer["zone"], "interstate");
    let routes = http_answer["routes"].as_array().unwrap();
    assert!(!routes.is_empty());
    // forced (override) routes first, then cheapest first
    // the rates from the admin simulation (the Kamailio surface's answer has none), same order
    let priced = w.priced(Q).await;
    let ids = |a: &Value| -> Vec<Value> {
        a["routes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["route_id"].clone())
            .collect()
    };
    assert_eq!(ids(&priced), ids(&http_answer), "{priced}");
    let lcr = lcr(&priced);
    assert!(!lcr.is_empty(), "{http_answer}");
    let rates: Vec<f64> = lcr.iter().map(|r| r["rate"].as_f64().unwrap()).collect();
    assert!(
        rates.windows(2).all(|w| w[0] <= w[1]),
        "cheapest first: {rates:?}"
    );
    for r in priced["routes"].as_array().unwrap() {
        assert!(r["customer_rate"].as_f64().unwrap() >= r["rate"].as_f64().unwrap());
    }
    for r in routes {
        assert!(
            r.get("rate").is_none() && r.get("customer_rate").is_none(),
            "{r}"
        );
        assert!(
            r["uri"]
                .as_str()
                .unwrap()
                .starts_with("sip:+13125550100@127.0.0.1:"),
            "{r}"
        );
    }

    // the same dip over JSON-RPC gives the same answer
    let rpc = w
        .rpc_checked(
            "lcr.route",
            json!({"ban":"10001","ani":"+12125550100","dnis":"+13125550100"}),
        )
        .await;
    assert_eq!(rpc["result"], http_answer);
    w.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demo_blocked_prefix_emergency_and_unknown_customer() {
    let (_pg, _client, w) = demo().await;
    let a = w
        .dip("ban=10001&ani=%2B12125550100&dnis=%2B19005550100")
        .await;
    assert_eq!(
        (a["action"].as_str(), a["sip_code"].as_u64()),
        (Some("reject"), Some(403)),
        "{a}"
    );
    let a = w.dip("ban=10001&ani=%2B12125550100&dnis=911").await;
    assert_eq!(a["zone"], "emergency", "{a}");
    assert_eq!(a["routes"][0]["route_id"], "e911");
    let a = w
        .dip("ban=99999&ani=%2B12125550100&dnis=%2B13125550100")
        .await;
    assert_eq!(a["sip_code"], 403, "{a}");
    w.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_changed_in_the_database_changes_the_next_dip_without_a_restart() {
    let (_pg, client, w) = demo().await;
    let answer = w.dip(Q).await;
    // change the most expensive LCR route's deck in the database only
    let last = lcr(&answer).last().unwrap()["route_id"]
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
    let wr = &w;
    support::eventually("the rate change picked up", support::DEADLINE, || async {
        let a = wr.priced(Q).await;
        let first_lcr = lcr(&a).first().map(|r| (*r).clone());
        if first_lcr
            .is_some_and(|r| r["route_id"] == last.as_str() && r["rate"].as_f64() == Some(0.00001))
        {
            Ok(())
        } else {
            Err(a.to_string())
        }
    })
    .await;

    // metrics saw the dips and the reloads
    let metrics = w.metrics().await;
    assert!(metrics.contains("warpd_dip_duration_seconds"), "{metrics}");
    assert!(
        metrics.contains("warpd_snapshot_reloads_total{result=\"ok\"}"),
        "{metrics}"
    );
    w.stop().await;
}
