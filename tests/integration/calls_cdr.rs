//! Calls and CDRs against a throwaway PostgreSQL: full lifecycles with failover rated under
//! 6/6, 60/60 and 30/6; concurrent-call and CPS limits; bad and duplicate events; restart with live
//! calls; a PostgreSQL outage during a stream of calls (spool + replay, every CDR exactly once);
//! `kill -9` of the warpd binary mid-stream (every acknowledged CDR exactly once); a spool whose
//! last record is cut.

use crate::support::{self, Warpd};

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value};

const Q: &str = "ban=10001&ani=%2B12125550100&dnis=%2B13125550100";

/// The demo network in a fresh cluster, without the demo's call limits and billing increments
/// of customer 10001 (tests stream calls faster than its 20 calls per second, and set the limits
/// and increments they test themselves).
async fn demo_db(pg: &support::TestPg) -> tokio_postgres::Client {
    let client = support::demo::demo_db(pg).await;
    client
        .execute(
            "UPDATE customers SET max_concurrent_calls = NULL, max_cps = NULL, \
             billing_min_seconds = NULL, billing_inc_seconds = NULL",
            &[],
        )
        .await
        .unwrap();
    client
}

/// What a test's warpd leaves behind: its database and CDR spool (kept while the test runs).
struct Scratch {
    pg: support::TestPg,
    spool: tempfile::TempDir,
}

impl Scratch {
    fn new() -> Scratch {
        Scratch {
            pg: support::TestPg::start(),
            spool: tempfile::tempdir().unwrap(),
        }
    }
}

/// Overrides of every warpd here, in-process or a child.
const ENV: [(&str, &str); 4] = [
    ("WARPD_CDR__DB_TIMEOUT_MS", "2000"),
    ("WARPD_CALLS__LIMITS_REFRESH_MS", "100"),
    ("WARPD_CALLS__REAPER_INTERVAL_MS", "100"),
    ("WARPD_LOG__LEVEL", "warn"),
];

/// warpd on the demo database: fast limit refreshes and reaper, CDR writes that give up after
/// 2 s (so an outage spools quickly), the spool in `spool` (kept across restarts).
async fn start(pg: &support::TestPg, spool: &Path, extra: &[(&str, &str)]) -> Warpd {
    Warpd::builder(pg)
        .spool(spool)
        .envs(ENV)
        .envs(extra.iter().copied())
        .start()
        .await
}

/// The query of a dip for call `call_id` (customer 10001, NY -> IL).
fn call(call_id: &str) -> String {
    format!("{Q}&call_id={call_id}")
}

/// Rows of `cdrs` for a call.
async fn cdrs_of(client: &tokio_postgres::Client, call_id: &str) -> Vec<tokio_postgres::Row> {
    client
        .query(
            "SELECT route_id, vendor_billed_s, customer_billed_s, cost::text, price::text, \
             disposition, attempt_count, duration_ms, flags, hangup, vendor_min, vendor_inc, \
             partition FROM cdrs WHERE call_id = $1",
            &[&call_id],
        )
        .await
        .unwrap()
}

fn billed(ms: i64, min: i64, inc: i64) -> i64 {
    let s = (ms + 999) / 1000;
    if s <= 0 {
        0
    } else if s <= min {
        min
    } else {
        min + (s - min + inc - 1) / inc * inc
    }
}

fn e7(rate: f64) -> i64 {
    (rate * 1e7).round() as i64
}

fn money(billed: i64, rate_e7: i64) -> String {
    let v = (billed * rate_e7 + 30) / 60;
    format!("{}.{:07}", v / 10_000_000, v % 10_000_000)
}

/// The demo with vendor terms ns-premium 6/6 and ks-ocn 60/60, customer 10001 billed 30/6 with at
/// most 2 live calls; warpd on it.
async fn rated_demo() -> (Scratch, tokio_postgres::Client, Warpd) {
    let f = Scratch::new();
    let (pg, spool) = (&f.pg, f.spool.path());
    let client = demo_db(pg).await;
    // vendor terms: ns-premium 6/6, ks-ocn 60/60; the customer bills 30/6; at most 2 live calls
    client
        .batch_execute(
            "UPDATE vendor_rates SET min_seconds = 6, inc_seconds = 6 WHERE route_id = (SELECT id FROM routes WHERE name = 'ns-premium');
             UPDATE vendor_rates SET min_seconds = 60, inc_seconds = 60 WHERE route_id = (SELECT id FROM routes WHERE name = 'ks-ocn');
             UPDATE customers SET billing_min_seconds = 30, billing_inc_seconds = 6, max_concurrent_calls = 2 WHERE ban = '10001';",
        )
        .await
        .unwrap();
    let s = start(pg, spool, &[]).await;
    (f, client, s)
}

fn unix_now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

/// life-1 and life-2: each fails over (attempt 1 503, attempt 2 answered, retried), is answered
/// and ends; on the way the concurrent-call limit (2) refuses a third call. Checks each CDR's
/// rating under the vendor's and the customer's terms; returns the routes of the first dip.
async fn two_answered_calls_with_failover(
    s: &Warpd,
    client: &tokio_postgres::Client,
) -> Vec<Value> {
    let a = s.dip(&call("life-1")).await;
    assert_eq!(a["action"], "route", "{a}");
    let routes = a["routes"].as_array().unwrap().clone();
    assert!(routes.len() >= 2, "need two routes for failover: {a}");
    let t0 = unix_now();
    // call 1: attempt 1 fails, attempt 2 answers, 31 s, on routes[1]
    for (id, carrier, secs) in [("life-1", 1usize, 31.0), ("life-2", 0, 61.0)] {
        if id != "life-1" {
            assert_eq!(s.dip(&call(id)).await["action"], "route");
        }
        s.rpc_ok("call.attempt", json!({"call_id":id,"attempt":1,"route_id":routes[1 - carrier]["route_id"],"sip_code":503,"reason":"Service Unavailable","ts":t0+1.0})).await;
        s.rpc_ok("call.attempt", json!({"call_id":id,"attempt":2,"route_id":routes[carrier]["route_id"],"sip_code":200,"ts":t0+3.0,"ring_ts":t0+2.0})).await;
        // a retry of the same attempt is harmless
        s.rpc_ok("call.attempt", json!({"call_id":id,"attempt":2,"route_id":routes[carrier]["route_id"],"sip_code":200,"ts":t0+3.0})).await;
        s.rpc_ok(
            "call.answer",
            json!({"call_id":id,"attempt":2,"route_id":routes[carrier]["route_id"],"ts":t0+3.0}),
        )
        .await;
        if id == "life-1" {
            // the limit is 2: life-1 is live, a second and a third call
            assert_eq!(s.dip(&call("limit-a")).await["action"], "route");
            let r = s.dip(&call("limit-b")).await;
            assert_eq!(
                (r["action"].as_str(), r["sip_code"].as_u64()),
                (Some("reject"), Some(503)),
                "{r}"
            );
            assert!(r["reason"].as_str().unwrap().contains("concurrent"), "{r}");
            // a retransmitted dip of a live call is still answered
            assert_eq!(s.dip(&call("limit-a")).await["action"], "route");
            s.rpc_ok("call.end", json!({"call_id":"limit-a","hangup":"caller"}))
                .await;
        }
        s.rpc_ok(
            "call.end",
            json!({"call_id":id,"ts":t0+3.0+secs,"hangup":"callee","cause":"normal"}),
        )
        .await;
        s.rpc_ok("call.end", json!({"call_id":id,"ts":t0+3.0+secs}))
            .await; // retry after the CDR
        let rows = cdrs_of(client, id).await;
        assert_eq!(
            rows.len(),
            1,
            "{id}: exactly one CDR once call.end is acknowledged"
        );
        let r = &rows[0];
        // the partition the dip's routes came from (customer 10001: "premium")
        assert_eq!(
            r.get::<_, Option<String>>(12).as_deref(),
            Some("premium"),
            "{id}"
        );
        let route = &routes[carrier];
        let (vmin, vinc) = (
            route["billing"]["min"].as_i64().unwrap(),
            route["billing"]["inc"].as_i64().unwrap(),
        );
        let ms = (secs * 1000.0) as i64;
        let vb = billed(ms, vmin, vinc);
        let cb = billed(ms, 30, 6);
        assert_eq!(
            r.get::<_, Option<String>>(0).as_deref(),
            route["route_id"].as_str()
        );
        assert_eq!(
            r.get::<_, i32>(1) as i64,
            vb,
            "{id} vendor billed under {vmin}/{vinc}"
        );
        assert_eq!(
            r.get::<_, i32>(2) as i64,
            cb,
            "{id} customer billed under 30/6"
        );
        assert_eq!(
            r.get::<_, String>(3),
            money(vb, e7(route["rate"].as_f64().unwrap()))
        );
        assert_eq!(
            r.get::<_, String>(4),
            money(cb, e7(route["customer_rate"].as_f64().unwrap()))
        );
        assert_eq!(r.get::<_, String>(5), "answered");
        assert_eq!(r.get::<_, i32>(6), 2);
        assert_eq!(r.get::<_, i64>(7), ms);
        assert_eq!(r.get::<_, Option<String>>(9).as_deref(), Some("callee"));
    }
    routes
}

/// A dip for a new call of customer 10001 whose routes the test then uses.
async fn routes_of_new_call(s: &Warpd, call_id: &str) -> Vec<Value> {
    let a = s.dip(&call(call_id)).await;
    assert_eq!(a["action"], "route", "{a}");
    a["routes"].as_array().unwrap().clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn answered_calls_after_failover_are_rated_under_vendor_and_customer_terms() {
    let (_f, client, s) = rated_demo().await;
    let routes = two_answered_calls_with_failover(&s, &client).await;
    // the terms seen were 6/6 (ns-premium) and 60/60 (ks-ocn) when both routes were offered
    let terms: HashSet<(i32, i32)> = client
        .query(
            "SELECT vendor_min, vendor_inc FROM cdrs WHERE call_id LIKE 'life-%'",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    let names: HashSet<&str> = routes
        .iter()
        .map(|r| r["route_id"].as_str().unwrap())
        .collect();
    if names.contains("ns-premium") && names.contains("ks-ocn") {
        assert_eq!(terms, HashSet::from([(6, 6), (60, 60)]));
    }

    // the routing number's place (demo numbering: 312-555 is in Illinois)
    let r = client
        .query_one(
            "SELECT state, lata, ocn, dnis FROM cdrs WHERE call_id = 'life-1'",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(r.get::<_, Option<String>>(0).as_deref(), Some("IL"));
    assert!(r.get::<_, Option<String>>(1).is_some() && r.get::<_, Option<String>>(2).is_some());
    assert_eq!(
        r.get::<_, Option<String>>(3).as_deref(),
        Some("13125550100")
    );
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unanswered_call_and_end_before_answer_are_not_billed() {
    let (_f, client, s) = rated_demo().await;
    let t0 = unix_now();
    // unanswered call: busy on every attempt
    let routes = routes_of_new_call(&s, "busy-1").await;
    s.rpc_ok(
        "call.attempt",
        json!({"call_id":"busy-1","attempt":1,"route_id":routes[0]["route_id"],"sip_code":486}),
    )
    .await;
    s.rpc_ok("call.end", json!({"call_id":"busy-1"})).await;
    let r = &cdrs_of(&client, "busy-1").await[0];
    assert_eq!(
        (r.get::<_, String>(5).as_str(), r.get::<_, i32>(1)),
        ("busy", 0)
    );
    // end before answer: flagged, not billed
    assert_eq!(s.dip(&call("skew-1")).await["action"], "route");
    s.rpc_ok(
        "call.answer",
        json!({"call_id":"skew-1","route_id":routes[0]["route_id"],"ts":t0+10.0}),
    )
    .await;
    s.rpc_ok("call.end", json!({"call_id":"skew-1","ts":t0+5.0}))
        .await;
    let r = &cdrs_of(&client, "skew-1").await[0];
    assert_eq!(r.get::<_, i64>(7), 0);
    assert!(r
        .get::<_, Vec<String>>(8)
        .contains(&"end_before_answer".to_string()));
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_of_a_call_never_dipped_are_kept() {
    let (_f, client, s) = rated_demo().await;
    // events for a call never dipped are kept (acknowledged, stored), not dropped
    s.rpc_ok("call.end", json!({"call_id":"ghost-1"})).await;
    let n: i64 = client
        .query_one(
            "SELECT count(*) FROM call_events WHERE call_id = 'ghost-1'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(n, 1);
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_call_events_are_invalid_params_naming_the_field() {
    let (_f, _client, s) = rated_demo().await;
    // bad input: JSON-RPC invalid params naming the field; nothing stored
    for (method, params, field) in [
        (
            "call.attempt",
            json!({"attempt":1,"route_id":"x","sip_code":200}),
            "call_id",
        ),
        (
            "call.attempt",
            json!({"call_id":"b","attempt":1,"route_id":"x","sip_code":42}),
            "sip_code",
        ),
        ("call.answer", json!({"call_id":"b","ts":"soon"}), "ts"),
        (
            "call.end",
            json!({"call_id":"b","hangup":"martians"}),
            "hangup",
        ),
        ("call.end", json!({"call_id":"b","extra":1}), "extra"),
    ] {
        let r = s.rpc(method, params).await;
        assert_eq!(r["error"]["code"], -32602, "{r}");
        assert!(
            r["error"]["message"].as_str().unwrap().starts_with(field),
            "{field}: {r}"
        );
    }
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cps_limit_refuses_dips_over_the_rate() {
    let (_f, client, s) = rated_demo().await;
    // CPS: 1 per second for customer 10001 → the second immediate dip is refused
    client
        .execute(
            "UPDATE customers SET max_concurrent_calls = NULL, max_cps = 1 WHERE ban = '10001'",
            &[],
        )
        .await
        .unwrap();
    // limits refresh every 100 ms: wait until a dip is refused for the rate (before the refresh
    // every probe is a new live call, which the old limit of 2 may refuse as concurrent)
    let mut n = 0;
    support::eventually("the CPS limit in force", support::DEADLINE, || {
        n += 1;
        let q = call(&format!("cps-probe-{n}"));
        let s = &s;
        async move {
            let r = s.dip(&q).await;
            match r["reason"].as_str() {
                Some(reason) if reason.contains("per second") => Ok(()),
                _ => Err(r.to_string()),
            }
        }
    })
    .await;
    let mut refused = 0;
    for i in 0..3 {
        let r = s.dip(&call(&format!("cps-{i}"))).await;
        if r["action"] == "reject" {
            assert!(r["reason"].as_str().unwrap().contains("per second"), "{r}");
            refused += 1;
        }
    }
    assert!(refused >= 1, "CPS limit 1 never refused");
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cdr_query_export_cli_quality_and_metrics_see_the_answered_calls() {
    let (f, client, s) = rated_demo().await;
    two_answered_calls_with_failover(&s, &client).await;
    let base = s.base.as_str();
    // query: CDRs need an admin API token (readonly is enough)
    let r = s
        .http
        .get(format!("{base}/v1/cdrs?limit=1"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 401);
    let token = warpd::admin::create_token(&client, "cdr-reader", "readonly", "test")
        .await
        .unwrap();
    let http = &{
        let mut h = reqwest::header::HeaderMap::new();
        h.insert(
            reqwest::header::AUTHORIZATION,
            format!("Bearer {token}").parse().unwrap(),
        );
        reqwest::Client::builder()
            .default_headers(h)
            .build()
            .unwrap()
    };
    // filters, pagination with a cursor, export
    let page: Value = http
        .get(format!(
            "{base}/v1/cdrs?ban=10001&disposition=answered&limit=1"
        ))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(page["cdrs"].as_array().unwrap().len(), 1, "{page}");
    let cursor = page["next_cursor"].as_str().unwrap();
    let page2: Value = http
        .get(format!(
            "{base}/v1/cdrs?ban=10001&disposition=answered&limit=10&cursor={cursor}"
        ))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let ids: HashSet<String> = page["cdrs"]
        .as_array()
        .unwrap()
        .iter()
        .chain(page2["cdrs"].as_array().unwrap())
        .map(|c| c["call_id"].as_str().unwrap().to_string())
        .collect();
    assert!(ids.contains("life-1") && ids.contains("life-2"), "{ids:?}");
    assert!(page2["next_cursor"].is_null());
    let r = http
        .get(format!("{base}/v1/cdrs?limit=abc"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 400);
    let csv = http
        .get(format!(
            "{base}/v1/cdrs/export?format=csv&dnis_prefix=%2B1312"
        ))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(csv.starts_with("call_id,started_at"), "{csv}");
    assert!(csv.lines().any(|l| l.starts_with("life-1,")), "{csv}");
    let nd = http
        .get(format!("{base}/v1/cdrs/export?format=json&ban=10001"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let total: i64 = client
        .query_one("SELECT count(*) FROM cdrs", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(nd.lines().count() as i64, total);
    // the same through the CLI
    let cfg = f.spool.path().join("cli.toml");
    std::fs::write(&cfg, format!("[database]\nurl = \"{}\"\n", f.pg.url())).unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_warpd"))
        .args([
            "--config",
            cfg.to_str().unwrap(),
            "cdr",
            "export",
            "--ban",
            "10001",
        ])
        .args(["--format", "csv", "--disposition", "answered"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let csv = String::from_utf8(out.stdout).unwrap();
    assert!(csv.starts_with("call_id,"), "{csv}");
    assert!(csv.lines().any(|l| l.starts_with("life-2,")), "{csv}");

    // route quality, metrics
    let q: Value = support::json(http.get(format!("{base}/v1/routes/quality"))).await;
    assert!(
        q.as_array()
            .unwrap()
            .iter()
            .any(|r| r["answered"].as_u64() >= Some(1)),
        "{q}"
    );
    let m = http
        .get(format!("{base}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(m.contains("warpd_cdrs_written_total"), "{m}");
    assert!(
        m.contains("warpd_call_events_total{kind=\"attempt\",outcome=\"duplicate\"} 2"),
        "{m}"
    );
    s.stop().await;
}
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn form_events_several_per_request_all_or_nothing() {
    let pg = support::TestPg::start();
    let client = demo_db(&pg).await;
    let spool = tempfile::tempdir().unwrap();
    let s = start(&pg, spool.path(), &[]).await;
    let (http, base) = (&s.http, s.base.as_str());
    let a = s.dip(&call("form-1")).await;
    assert_eq!(a["action"], "route", "{a}");
    let routes = a["routes"].as_array().unwrap().clone();
    assert!(routes.len() >= 2, "need two routes for failover: {a}");
    let (r0, r1) = (
        routes[0]["route_id"].as_str().unwrap(),
        routes[1]["route_id"].as_str().unwrap(),
    );
    let t0 = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
        .floor();

    // attempt 1 fails, attempt 2 answers: three events, one request, in order
    let body = format!(
        "event=attempt&call_id=form-1&ts={}&attempt=1&route_id={r0}&sip_code=503&reason=Service%20Unavailable\n\
         event=attempt&call_id=form-1&ts={}&attempt=2&route_id={r1}&sip_code=200&reason=OK\n\
         event=answer&call_id=form-1&ts={}&attempt=2&route_id={r1}\n",
        t0 + 1.0,
        t0 + 3.0,
        t0 + 3.0
    );
    assert_eq!(
        s.events(&body).await,
        (200, json!({"ok": true, "events": 3}))
    );

    // a bad second line refuses the whole body: the end on line 1 is not applied
    let bad = format!(
        "event=end&call_id=form-1&ts={}&hangup=caller\nevent=attempt&call_id=form-1&attempt=3&route_id={r0}&sip_code=42",
        t0 + 10.0
    );
    let (status, err) = s.events(&bad).await;
    assert_eq!(status, 400, "{err}");
    assert!(
        err["error"]
            .as_str()
            .unwrap_or_default()
            .starts_with("line 2: sip_code"),
        "{err}"
    );
    assert!(cdrs_of(&client, "form-1").await.is_empty());
    let n: i64 = client
        .query_one(
            "SELECT count(*) FROM call_events WHERE call_id = 'form-1' AND kind = 'end'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(n, 0, "nothing of a refused body is stored");
    // wrong content type, wrong method
    let r = http
        .post(format!("{base}/v1/events"))
        .header("content-type", "application/json")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 415);
    let r = http.get(format!("{base}/v1/events")).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 405);
    assert_eq!(r.headers()["allow"], "POST");

    // the end: the CDR carries the second route, two attempts, 7 s from the answer
    let end = format!(
        "event=end&call_id=form-1&ts={}&hangup=callee&cause=200%20BYE",
        t0 + 10.0
    );
    assert_eq!(
        s.events(&end).await,
        (200, json!({"ok": true, "events": 1}))
    );
    let rows = cdrs_of(&client, "form-1").await;
    assert_eq!(rows.len(), 1, "one CDR once the end is acknowledged");
    let r = &rows[0];
    assert_eq!(r.get::<_, Option<String>>(0).as_deref(), Some(r1));
    assert_eq!(r.get::<_, String>(5), "answered");
    assert_eq!(r.get::<_, i32>(6), 2);
    assert_eq!(r.get::<_, i64>(7), 7000);
    assert_eq!(r.get::<_, Option<String>>(9).as_deref(), Some("callee"));
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_rebuilds_live_calls_so_limits_hold() {
    let pg = support::TestPg::start();
    let client = demo_db(&pg).await;
    client
        .execute(
            "UPDATE customers SET max_concurrent_calls = 2 WHERE ban = '10001'",
            &[],
        )
        .await
        .unwrap();
    let spool = tempfile::tempdir().unwrap();
    let s = start(&pg, spool.path(), &[]).await;
    for id in ["live-1", "live-2"] {
        assert_eq!(s.dip(&call(id)).await["action"], "route");
        s.rpc_ok(
            "call.answer",
            json!({"call_id": id, "route_id": "ns-premium"}),
        )
        .await;
    }
    s.stop().await;

    let s = start(&pg, spool.path(), &[]).await;
    let r = s.dip(&call("live-3")).await;
    assert_eq!(r["sip_code"], 503, "limit must survive the restart: {r}");
    for id in ["live-1", "live-2"] {
        s.rpc_ok("call.end", json!({"call_id": id, "hangup": "caller"}))
            .await;
        assert_eq!(cdrs_of(&client, id).await.len(), 1);
    }
    assert_eq!(s.dip(&call("live-3")).await["action"], "route");
    support::eventually("only live-3 unfinished", Duration::from_secs(10), || {
        let c = &client;
        async move {
            let r = c
                .query("SELECT DISTINCT call_id FROM call_events", &[])
                .await
                .unwrap();
            r.len() == 1 && r[0].get::<_, String>(0) == "live-3"
        }
    })
    .await;
    s.stop().await;
}

/// Drives `n` complete calls with `conc` in flight; returns the call-ids whose call.end was
/// acknowledged. Calls numbered `allowed` and above wait until `allowed` grows (the test paces
/// the stream). `fail_ok`: transport errors end a worker instead of failing the test.
async fn stream_calls(
    base: String,
    prefix: &'static str,
    n: usize,
    conc: usize,
    acked: Arc<AtomicUsize>,
    allowed: Arc<AtomicUsize>,
    fail_ok: bool,
) -> Vec<String> {
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    let next = Arc::new(AtomicUsize::new(0));
    let mut tasks = vec![];
    for _ in 0..conc {
        let (http, base, next, acked, allowed) = (
            http.clone(),
            base.clone(),
            next.clone(),
            acked.clone(),
            allowed.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let mut done = vec![];
            loop {
                let i = next.fetch_add(1, Ordering::SeqCst);
                if i >= n {
                    break;
                }
                // the test opens the gate (`allowed`) stage by stage
                support::eventually(
                    format!("the gate open for call {i}"),
                    Duration::from_secs(300),
                    || std::future::ready(i < allowed.load(Ordering::SeqCst)),
                )
                .await;
                let id = format!("{prefix}-{i}");
                let steps: Vec<(&str, Value)> = vec![
                    (
                        "call.attempt",
                        json!({"call_id":id,"attempt":1,"route_id":"ns-premium","sip_code":200}),
                    ),
                    ("call.answer", json!({"call_id":id})),
                    ("call.end", json!({"call_id":id,"hangup":"caller"})),
                ];
                let dip = http
                    .get(format!("{base}/v1/route?{Q}&call_id={id}"))
                    .send()
                    .await;
                if dip.is_err() {
                    assert!(fail_ok, "dip failed: {dip:?}");
                    return done;
                }
                for (method, params) in steps {
                    let r = http
                        .post(format!("{base}/rpc"))
                        .json(&json!({"jsonrpc":"2.0","id":1,"method":method,"params":params}))
                        .send()
                        .await;
                    let body: Option<Value> = match r {
                        Ok(r) => r.json().await.ok(),
                        Err(_) => None,
                    };
                    match body {
                        Some(b) if b["result"]["ok"] == true => {}
                        other => {
                            assert!(fail_ok, "{method} for {id}: {other:?}");
                            return done;
                        }
                    }
                }
                acked.fetch_add(1, Ordering::SeqCst);
                done.push(id);
            }
            done
        }));
    }
    let mut all = vec![];
    for t in tasks {
        all.extend(t.await.unwrap());
    }
    all
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn database_outage_mid_stream_every_cdr_exactly_once() {
    let pg = support::TestPg::start();
    let _client = demo_db(&pg).await;
    drop(_client);
    let spool = tempfile::tempdir().unwrap();
    let s = start(&pg, spool.path(), &[]).await;
    const N: usize = 300;
    let acked = Arc::new(AtomicUsize::new(0));
    let allowed = Arc::new(AtomicUsize::new(N / 3));
    let stream = tokio::spawn(stream_calls(
        s.base.clone(),
        "out",
        N,
        8,
        acked.clone(),
        allowed.clone(),
        false,
    ));
    let reach = |n: usize, what: &'static str| {
        let a = acked.clone();
        support::eventually(what, Duration::from_secs(120), move || {
            let a = a.clone();
            async move { a.load(Ordering::SeqCst) >= n }
        })
    };
    reach(N / 3, "the first third of the calls").await;
    tokio::task::block_in_place(|| pg.stop());
    // the second third runs entirely while PostgreSQL is down
    allowed.store(2 * N / 3, Ordering::SeqCst);
    reach(2 * N / 3, "calls acknowledged while the database is down").await;
    let spooled = std::fs::metadata(spool.path().join("events.spool"))
        .map(|m| m.len())
        .unwrap_or(0);
    assert!(
        spooled > 0,
        "events must be spooled while PostgreSQL is down"
    );
    allowed.store(N, Ordering::SeqCst);
    tokio::task::block_in_place(|| pg.start_server());
    let done = stream.await.unwrap();
    assert_eq!(done.len(), N, "every call acknowledged");
    let client = warpd::db::connect(&pg.url()).await.unwrap();
    support::eventually("every CDR in PostgreSQL", Duration::from_secs(30), || {
        let c = &client;
        async move {
            let n: i64 = c
                .query_one("SELECT count(*) FROM cdrs WHERE call_id LIKE 'out-%'", &[])
                .await
                .unwrap()
                .get(0);
            n >= N as i64
        }
    })
    .await;
    let row = client
        .query_one(
            "SELECT count(*), count(DISTINCT call_id) FROM cdrs WHERE call_id LIKE 'out-%'",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(
        (row.get::<_, i64>(0), row.get::<_, i64>(1)),
        (N as i64, N as i64)
    );
    let left: i64 = client
        .query_one("SELECT count(*) FROM call_events", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(left, 0, "no finished call left in call_events");
    support::eventually(
        "spool removed after replay",
        Duration::from_secs(10),
        || async { !spool.path().join("events.spool").exists() },
    )
    .await;
    s.stop().await;
}

fn warpd_child(pg: &support::TestPg, spool: &Path, port: u16, cfg: &Path) -> std::process::Child {
    std::process::Command::new(env!("CARGO_BIN_EXE_warpd"))
        .arg("--config")
        .arg(cfg)
        .arg("serve")
        .envs(ENV)
        .env("WARPD_DATABASE__URL", pg.url())
        .env("WARPD_RELOAD__DEBOUNCE_MS", "50")
        .env("WARPD_CDR__SPOOL_DIR", spool)
        .env("WARPD_SERVER__LISTEN", format!("127.0.0.1:{port}"))
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_mid_stream_every_acknowledged_cdr_exactly_once() {
    let pg = support::TestPg::start();
    drop(demo_db(&pg).await);
    let dir = tempfile::tempdir().unwrap();
    let spool: PathBuf = dir.path().join("spool");
    let cfg = dir.path().join("warpd.toml");
    std::fs::write(
        &cfg,
        "[database]\nurl = \"postgres://placeholder@127.0.0.1/x\"\n",
    )
    .unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let api = support::Api::new(([127, 0, 0, 1], port).into());

    let mut child = warpd_child(&pg, &spool, port, &cfg);
    api.wait_ready().await;
    const N: usize = 100_000; // far more than can finish: the kill comes first
    let acked = Arc::new(AtomicUsize::new(0));
    let stream = tokio::spawn(stream_calls(
        api.base.clone(),
        "k9",
        N,
        8,
        acked.clone(),
        Arc::new(AtomicUsize::new(N)),
        true,
    ));
    support::eventually("calls before the kill", Duration::from_secs(60), || {
        let a = acked.clone();
        async move { a.load(Ordering::SeqCst) >= 150 }
    })
    .await;
    child.kill().unwrap(); // SIGKILL
    let _ = child.wait();
    let done = stream.await.unwrap();
    assert!(done.len() >= 150);

    let mut child = warpd_child(&pg, &spool, port, &cfg);
    api.wait_ready().await;
    let client = warpd::db::connect(&pg.url()).await.unwrap();
    let rows = client
        .query(
            "SELECT call_id, count(*) FROM cdrs WHERE call_id LIKE 'k9-%' GROUP BY call_id",
            &[],
        )
        .await
        .unwrap();
    let mut seen = HashSet::new();
    for r in &rows {
        let n: i64 = r.get(1);
        assert_eq!(n, 1, "duplicate CDR for {}", r.get::<_, String>(0));
        seen.insert(r.get::<_, String>(0));
    }
    for id in &done {
        assert!(
            seen.contains(id),
            "acknowledged call {id} has no CDR after kill -9"
        );
    }
    child.kill().unwrap();
    let _ = child.wait();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spool_with_a_cut_last_record_is_replayed_up_to_the_cut() {
    let pg = support::TestPg::start();
    drop(demo_db(&pg).await);
    let spool = tempfile::tempdir().unwrap();
    // a complete call as warpd spools it, then a record cut in the middle (a crash during write)
    let t = 1_800_000_000_000_000i64;
    let evs = [
        json!({"call_id":"sp-1","ts_us":t,"kind":"start","ban":"10001","ani":"12125550100","dnis":"13125550100",
               "routes":[{"route_id":"ns-premium","vendor":"northstar","rate_e7":45000,"customer_rate_e7":54000,"min":6,"inc":6}]}),
        json!({"call_id":"sp-1","ts_us":t+1_000_000,"kind":"attempt","attempt":1,"route_id":"ns-premium","sip_code":200}),
        json!({"call_id":"sp-1","ts_us":t+1_000_000,"kind":"answer"}),
        json!({"call_id":"sp-1","ts_us":t+8_000_000,"kind":"end","hangup":"caller"}),
    ];
    let mut bytes = vec![];
    for e in &evs {
        warpd::cdr::spool::encode(e.to_string().as_bytes(), &mut bytes);
    }
    let mut cut = vec![];
    warpd::cdr::spool::encode(br#"{"call_id":"sp-2","ts_us":1,"kind":"end"}"#, &mut cut);
    bytes.extend_from_slice(&cut[..cut.len() - 7]);
    std::fs::write(spool.path().join("events.spool"), &bytes).unwrap();

    let s = start(&pg, spool.path(), &[]).await;
    let client = warpd::db::connect(&pg.url()).await.unwrap();
    let rows = cdrs_of(&client, "sp-1").await;
    assert_eq!(rows.len(), 1);
    // 7 s under 6/6 = 12 s; $0.0045/min → 0.0009
    assert_eq!(rows[0].get::<_, i32>(1), 12);
    assert_eq!(rows[0].get::<_, String>(3), "0.0009000");
    assert!(!spool.path().join("events.spool").exists());
    let m = s
        .http
        .get(format!("{}/metrics", s.base))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(m.contains("warpd_cdr_spool_damaged_total 1"), "{m}");
    s.stop().await;

    // the writer's fast path (plain COPY) refuses an existing CDR; the idempotent path skips it
    let mut client = client;
    warpd::cdr::store::prepare(&client).await.unwrap();
    let row: String = client
        .query_one(
            "SELECT row_to_json(c)::text FROM cdrs c WHERE call_id = 'sp-1'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    let started: chrono::DateTime<chrono::Utc> = client
        .query_one("SELECT started_at FROM cdrs WHERE call_id = 'sp-1'", &[])
        .await
        .unwrap()
        .get(0);
    assert!(row.contains("sp-1"));
    let dup = warpd::cdr::Cdr {
        call_id: "sp-1".into(),
        started_us: started.timestamp_micros(),
        disposition: "answered",
        ..Default::default()
    };
    let mut parts = HashSet::new();
    let e = warpd::cdr::store::commit_batch(
        &mut client,
        &[],
        std::slice::from_ref(&dup),
        &[],
        &mut parts,
        false,
    )
    .await
    .unwrap_err();
    assert!(warpd::cdr::store::is_unique_violation(&e), "{e}");
    let c = warpd::cdr::store::commit_batch(&mut client, &[], &[dup], &[], &mut parts, true)
        .await
        .unwrap();
    assert_eq!(c.cdrs, 0);
}

/// The demo without its override (pure least-cost order) and warpd closing calls without events
/// after 1 s (set-up) or 1 s (orphans), demoting routes under 50 % ASR over 2 attempts or more;
/// the routes of a first dip ("plain").
async fn policy_stack() -> (Scratch, tokio_postgres::Client, Warpd, Vec<Value>) {
    let f = Scratch::new();
    let (pg, spool) = (&f.pg, f.spool.path());
    let client = demo_db(pg).await;
    // pure least-cost order (the demo forces a route for this customer by override)
    client.execute("DELETE FROM overrides", &[]).await.unwrap();
    let s = start(
        pg,
        spool,
        &[
            ("WARPD_CALLS__MAX_SETUP_S", "1"),
            ("WARPD_CALLS__ORPHAN_TTL_S", "1"),
            ("WARPD_CALLS__ASR_FLOOR", "0.5"),
            ("WARPD_CALLS__ASR_MIN_ATTEMPTS", "2"),
        ],
    )
    .await;
    let routes = s.dip(&call("plain")).await["routes"]
        .as_array()
        .unwrap()
        .clone();
    assert!(routes.len() >= 2);
    (f, client, s, routes)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn route_at_capacity_is_skipped_while_its_calls_are_up() {
    let (_f, client, s, routes) = policy_stack().await;
    let first = routes[0]["route_id"].as_str().unwrap().to_string();
    // capacity 1 on the first route: while one call is up on it, dips skip it
    client
        .execute("UPDATE routes SET capacity = 1 WHERE name = $1", &[&first])
        .await
        .unwrap();
    assert_eq!(s.dip(&call("cap-1")).await["action"], "route");
    s.rpc_ok(
        "call.attempt",
        json!({"call_id":"cap-1","attempt":1,"route_id":first,"sip_code":200}),
    )
    .await;
    // limits refresh every 100 ms: wait until the capacity is in force, i.e. a dip (no call-id, so
    // no call started) leaves out the full route
    support::eventually(
        format!("capacity 1 of {first} in force"),
        support::DEADLINE,
        || async {
            let a = s.dip(Q).await;
            let full = a["routes"]
                .as_array()
                .is_some_and(|rs| rs.iter().all(|r| r["route_id"] != first.as_str()));
            if full {
                Ok(())
            } else {
                Err(a.to_string())
            }
        },
    )
    .await;
    let a = s.dip(&call("cap-2")).await;
    let ids: Vec<&str> = a["routes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["route_id"].as_str().unwrap())
        .collect();
    assert!(
        !ids.contains(&first.as_str()),
        "route at capacity must be skipped: {a}"
    );
    // asked for one route while the first is full: the answer is the next best, not empty
    let one = s.dip(&format!("{Q}&call_id=cap-1b&max_results=1")).await;
    assert_eq!(one["action"], "route", "{one}");
    assert_eq!(one["routes"].as_array().map(Vec::len), Some(1), "{one}");
    assert_eq!(one["routes"][0]["route_id"], routes[1]["route_id"], "{one}");
    s.rpc_ok("call.end", json!({"call_id":"cap-1b"})).await;
    s.rpc_ok("call.end", json!({"call_id":"cap-1"})).await;
    s.rpc_ok("call.end", json!({"call_id":"cap-2"})).await;
    let a = s.dip(&call("cap-3")).await;
    assert_eq!(
        a["routes"][0]["route_id"],
        first.as_str(),
        "capacity free again: {a}"
    );
    s.rpc_ok("call.end", json!({"call_id":"cap-3"})).await;
    client
        .execute(
            "UPDATE routes SET capacity = NULL WHERE name = $1",
            &[&first],
        )
        .await
        .unwrap();

    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn route_under_the_asr_floor_is_demoted_and_quality_reports_it() {
    let (_f, _client, s, routes) = policy_stack().await;
    let (http, base) = (&s.http, s.base.as_str());
    // ASR policy: the cheapest unforced route fails three times (ASR 0 over >= 2 attempts): it is
    // moved behind the other unforced routes (forced override routes keep their place)
    let unforced: Vec<String> = routes
        .iter()
        .filter(|r| r["forced"] != true)
        .map(|r| r["route_id"].as_str().unwrap().to_string())
        .collect();
    assert!(unforced.len() >= 2, "{routes:?}");
    let bad = unforced[0].clone();
    for id in ["asr-1", "asr-2", "asr-3"] {
        assert_eq!(s.dip(&call(id)).await["action"], "route");
        let p = json!({"call_id":id,"attempt":1,"route_id":bad,"sip_code":503});
        s.rpc_ok("call.attempt", p).await;
        s.rpc_ok("call.end", json!({"call_id":id})).await;
    }
    support::eventually(
        "the failing route demoted",
        Duration::from_secs(10),
        || async {
            let a = s.dip(&call("asr-probe")).await;
            let rs: Vec<String> = a["routes"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|r| r["forced"] != true)
                .map(|r| r["route_id"].as_str().unwrap().to_string())
                .collect();
            rs.last() == Some(&bad) && rs[0] != bad
        },
    )
    .await;
    let q: Value = http
        .get(format!("{base}/v1/routes/quality"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let r = q
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["route_id"] == bad.as_str())
        .unwrap()
        .clone();
    assert!(r["asr"].as_f64().unwrap() < 0.5, "{q}");
    let g: Value = http
        .get(format!("{base}/v1/routes/quality?by=prefix"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(
        g.as_array()
            .unwrap()
            .iter()
            .any(|r| r["route_id"] == bad.as_str() && r["prefix"] == "1312"),
        "{g}"
    );

    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reaper_closes_calls_without_an_end_and_orphans() {
    let (_f, client, s, routes) = policy_stack().await;
    let first = routes[0]["route_id"].as_str().unwrap().to_string();
    // the reaper: a dipped call with no events is closed after max_setup_s; an orphan after its TTL
    assert_eq!(s.dip(&call("silent-1")).await["action"], "route");
    s.rpc_ok(
        "call.attempt",
        json!({"call_id":"ghost-2","attempt":1,"route_id":first,"sip_code":200}),
    )
    .await;
    support::eventually("reaped CDRs", Duration::from_secs(15), || async {
        !cdrs_of(&client, "silent-1").await.is_empty()
            && !cdrs_of(&client, "ghost-2").await.is_empty()
    })
    .await;
    let r = &cdrs_of(&client, "silent-1").await[0];
    assert!(r
        .get::<_, Vec<String>>(8)
        .contains(&"reaped_no_end".to_string()));
    assert_eq!(r.get::<_, Option<String>>(9).as_deref(), Some("system"));
    let r = &cdrs_of(&client, "ghost-2").await[0];
    assert!(r.get::<_, Vec<String>>(8).contains(&"orphan".to_string()));
    let left: i64 = client
        .query_one(
            "SELECT count(*) FROM call_events WHERE call_id IN ('silent-1', 'ghost-2')",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(left, 0);
    s.stop().await;
}
