//! Route policies: capacity, the ASR floor, the reaper.

use super::*;

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

/// Issue 17: a customer at its concurrent-call limit, over its CPS and with the emergency route
/// at capacity still reaches 911 through the HTTP dip (and the call is tracked); the
/// emergency dialstring carries the short code without `+`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn emergency_calls_bypass_limits_and_capacity() {
    let (_f, client, s, _routes) = policy_stack().await;
    client
        .batch_execute(
            "UPDATE customers SET max_concurrent_calls = 1, max_cps = 1 WHERE ban = '10001';
             UPDATE routes SET capacity = 1 WHERE name = 'e911';",
        )
        .await
        .unwrap();
    let e911 = |id: &str| format!("ban=10001&ani=%2B12125550100&dnis=911&call_id={id}");
    // wait for the limits (refreshed every 100 ms): ordinary calls are refused
    let mut n = 0;
    let mut live = vec![];
    support::eventually("limits in force", support::DEADLINE, || {
        n += 1;
        let id = format!("busy-{n}");
        live.push(id.clone());
        let s = &s;
        async move {
            let r = s.dip(&call(&id)).await;
            match r["reason"].as_str() {
                Some(reason) if reason.contains("limit") => Ok(()),
                _ => Err(r.to_string()),
            }
        }
    })
    .await;
    for i in 0..3 {
        let a = s.dip(&e911(&format!("e911-{i}"))).await;
        assert_eq!(a["action"], "route", "911 #{i} at the limits: {a}");
        assert_eq!(a["zone"], "emergency", "{a}");
        assert_eq!(a["routes"][0]["route_id"], "e911", "{a}");
        let uri = a["routes"][0]["uri"].as_str().unwrap();
        assert!(
            uri.starts_with("sip:911@"),
            "no + before the short code: {uri}"
        );
    }
    // ordinary calls are still refused
    assert_eq!(s.dip(&call("busy-after")).await["action"], "reject");
    live.extend(["e911-0", "e911-1", "e911-2"].map(String::from));
    for id in live {
        s.rpc_ok("call.end", json!({"call_id": id})).await;
    }
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn route_under_the_asr_floor_is_demoted_and_quality_reports_it() {
    let (_f, _client, s, routes) = policy_stack().await;
    let (http, base) = (&s.http, s.admin_base.as_str()); // route quality: the admin listener
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
    let q: Value = support::json(http.get(format!("{base}/v1/routes/quality"))).await;
    let r = q
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["route_id"] == bad.as_str())
        .unwrap()
        .clone();
    assert!(r["asr"].as_f64().unwrap() < 0.5, "{q}");
    let g: Value = support::json(http.get(format!("{base}/v1/routes/quality?by=prefix"))).await;
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
    let left: i64 = count(
        &client,
        "SELECT count(*) FROM call_events WHERE call_id IN ('silent-1', 'ghost-2')",
    )
    .await;
    assert_eq!(left, 0);
    s.stop().await;
}

/// Issue 17: a call refused at the dip (by the dip or by the limits) is a CDR of its customer
/// with disposition `rejected`, its SIP code and reason, written at once; Kamailio's `call.end`
/// for it is no live call and no orphan (the orphan TTL here is the default 600 s).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rejected_calls_are_rejected_cdrs_at_once_never_live() {
    let f = Scratch::new();
    let client = demo_db(&f.pg).await;
    let s = start(&f.pg, f.spool.path(), &[]).await;
    // 10001 blocks 1900
    let blocked = "ban=10001&ani=%2B12125550100&dnis=%2B19005550100&call_id=rej-1";
    let a = s.dip(blocked).await;
    assert_eq!(a["sip_code"], 403, "{a}");
    // a retransmission writes nothing more
    assert_eq!(s.dip(blocked).await["sip_code"], 403);
    let row = |id: &'static str| {
        let client = &client;
        async move {
            client
                .query_opt(
                    "SELECT customer_ban, disposition, sip_code, cause, dnis, flags \
                     FROM cdrs WHERE call_id = $1",
                    &[&id],
                )
                .await
                .unwrap()
        }
    };
    support::eventually("the rejected CDR", support::DEADLINE, || async {
        row("rej-1").await.is_some()
    })
    .await;
    // Kamailio ends the rejected call: no live call, no orphan, still one CDR
    s.rpc_ok("call.end", json!({"call_id": "rej-1", "cause": "rejected"}))
        .await;
    let r = row("rej-1").await.unwrap();
    assert_eq!(r.get::<_, Option<String>>(0).as_deref(), Some("10001"));
    assert_eq!(r.get::<_, String>(1), "rejected");
    assert_eq!(r.get::<_, Option<i32>>(2), Some(403));
    assert_eq!(
        r.get::<_, Option<String>>(3).as_deref(),
        Some("blocked prefix 1900")
    );
    assert_eq!(
        r.get::<_, Option<String>>(4).as_deref(),
        Some("19005550100")
    );
    assert!(r.get::<_, Vec<String>>(5).is_empty());
    assert_eq!(s.metric("warpd_calls_active").await, Some(0.0));
    // refused by the limits: 503 with the limit's reason
    client
        .execute(
            "UPDATE customers SET max_concurrent_calls = 0 WHERE ban = '10001'",
            &[],
        )
        .await
        .unwrap();
    let mut n = 0;
    support::eventually("the limit in force", support::DEADLINE, || {
        n += 1;
        let id = format!("lim-{n}");
        let s = &s;
        async move {
            let a = s.dip(&call(&id)).await;
            s.rpc_ok("call.end", json!({"call_id": id})).await;
            if a["sip_code"] == 503 {
                Ok(())
            } else {
                Err(a.to_string())
            }
        }
    })
    .await;
    let id = format!("lim-{n}");
    support::eventually("the limit's rejected CDR", support::DEADLINE, || async {
        count(
            &client,
            &format!("SELECT count(*) FROM cdrs WHERE call_id = '{id}' AND disposition = 'rejected' AND sip_code = 503 AND cause = 'concurrent call limit 0 reached'"),
        )
        .await
            == 1
    })
    .await;
    assert_eq!(
        count(
            &client,
            "SELECT count(*) FROM cdrs WHERE 'orphan' = ANY(flags)"
        )
        .await,
        0
    );
    assert_eq!(s.metric("warpd_calls_active").await, Some(0.0));
    s.stop().await;
}
