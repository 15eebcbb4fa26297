//! Call lifecycles: failover rated under vendor and customer terms, unanswered and skewed calls,
//! events for calls never dipped, bad events, the CPS limit, the CDR query/export/CLI, form events.

use super::*;

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
    // rates and billing terms from the admin simulation of the same dip (the Kamailio surface's
    // answer carries none); same routes in the same order
    let routes = s.priced_routes(&call("life-1"), &a).await;
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
    let n: i64 = count(
        &client,
        "SELECT count(*) FROM call_events WHERE call_id = 'ghost-1'",
    )
    .await;
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
        // an end 30 days ahead of warpd's clock (it billed a 2,592,000 s call)
        (
            "call.end",
            json!({"call_id":"b","ts":unix_now() + 30.0 * 86_400.0}),
            "ts",
        ),
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
    let base = s.admin_base.as_str(); // CDRs and route quality: the admin listener
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
    let page: Value = support::json(http.get(format!(
        "{base}/v1/cdrs?ban=10001&disposition=answered&limit=1"
    )))
    .await;
    assert_eq!(page["cdrs"].as_array().unwrap().len(), 1, "{page}");
    let cursor = page["next_cursor"].as_str().unwrap();
    let page2: Value = support::json(http.get(format!(
        "{base}/v1/cdrs?ban=10001&disposition=answered&limit=10&cursor={cursor}"
    )))
    .await;
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
    let csv = support::text(http.get(format!(
        "{base}/v1/cdrs/export?format=csv&dnis_prefix=%2B1312"
    )))
    .await;
    assert!(csv.starts_with("call_id,started_at"), "{csv}");
    assert!(csv.lines().any(|l| l.starts_with("life-1,")), "{csv}");
    let nd = support::text(http.get(format!("{base}/v1/cdrs/export?format=json&ban=10001"))).await;
    let total: i64 = count(&client, "SELECT count(*) FROM cdrs").await;
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
    let m = s.metrics().await;
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
    let n: i64 = count(
        &client,
        "SELECT count(*) FROM call_events WHERE call_id = 'form-1' AND kind = 'end'",
    )
    .await;
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
