//! Credit accounts at the dip and on call.end (issue 21): a prepaid customer gets the duration
//! its balance buys, is charged by the CDR's own transaction and refused (402) once it is spent;
//! concurrent calls share a balance; emergency calls pass an exhausted account; a kill -9 with a
//! live call keeps the balance exact.

use super::*;

/// One route (max_results=1), so the grant is that route's.
pub(super) fn one(call_id: &str) -> String {
    format!("{}&max_results=1", call(call_id))
}

/// Money in 1e-7 units as the admin API takes it ("1.2345670").
pub(super) fn dec(e7: i64) -> String {
    format!("{}.{:07}", e7 / 10_000_000, e7 % 10_000_000)
}

/// An admin token for the test's database.
pub(super) async fn admin_token(client: &tokio_postgres::Client) -> String {
    warpd::admin::create_token(client, "credit-test", "admin", "test")
        .await
        .unwrap()
}

/// Posts a top-up of `e7` to customer 10001's account through the admin API.
pub(super) async fn topup(s: &support::Api, token: &str, e7: i64) {
    let (st, v) = s
        .request(
            "POST",
            "/v1/admin/customers/10001/account/ledger",
            Some(token),
            Some(json!({"kind": "topup", "amount": dec(e7), "note": "test"})),
        )
        .await;
    assert_eq!(st, 201, "{v}");
}

/// The first route's sell rate of the demo's customer 10001 (1e-7 per minute), after billing it
/// 1/1.
pub(super) async fn rate_1_1(s: &support::Api, client: &tokio_postgres::Client) -> i64 {
    client
        .batch_execute(
            "UPDATE customers SET billing_min_seconds = 1, billing_inc_seconds = 1 WHERE ban = '10001'",
        )
        .await
        .unwrap();
    let priced = s.priced(&format!("{Q}&max_results=1")).await;
    let rate = e7(priced["routes"][0]["customer_rate"].as_f64().unwrap());
    assert!(rate > 0, "{priced}");
    rate
}

/// Customer 10001 billed 1/1 with a prepaid account (through the admin API) holding `secs`
/// seconds of the first route's sell rate, each call reserving at most `cap_s` seconds' worth;
/// returns the rate and the admin token.
async fn prepaid_for(
    s: &support::Api,
    client: &tokio_postgres::Client,
    secs: i64,
    cap_s: Option<i64>,
) -> (i64, String) {
    let rate = rate_1_1(s, client).await;
    let token = admin_token(client).await;
    let mut terms = json!({"mode": "prepaid"});
    if let Some(c) = cap_s {
        terms["per_call_cost_cap"] = json!(dec((c * rate + 30) / 60));
    }
    let (st, v) = s
        .request(
            "PUT",
            "/v1/admin/customers/10001/account",
            Some(&token),
            Some(terms),
        )
        .await;
    assert_eq!(st, 201, "{v}");
    topup(s, &token, (secs * rate + 30) / 60).await;
    (rate, token)
}

async fn balance(client: &tokio_postgres::Client) -> (i64, i64) {
    let r = client
        .query_one(
            "SELECT balance_e7, (SELECT count(*) FROM account_ledger WHERE ban = '10001' AND kind = 'call') \
             FROM accounts WHERE ban = '10001'",
            &[],
        )
        .await
        .unwrap();
    (r.get(0), r.get(1))
}

/// Answers `id` on `route` at `t0` and ends it `secs` later.
pub(super) async fn answer_and_end(s: &Warpd, id: &str, route: &Value, t0: f64, secs: f64) {
    s.rpc_ok(
        "call.answer",
        json!({"call_id": id, "route_id": route, "ts": t0}),
    )
    .await;
    s.rpc_ok(
        "call.end",
        json!({"call_id": id, "ts": t0 + secs, "hangup": "system", "cause": "max duration (credit)"}),
    )
    .await;
}

pub(super) fn now_s() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prepaid_credit_for_30_s_is_granted_charged_and_then_refused() {
    let f = Scratch::new();
    let client = demo_db(&f.pg).await;
    let s = start(&f.pg, f.spool.path(), &[]).await;
    // before the account: the global cap (calls.max_call_duration_s, 4 h)
    let a = s.dip(&one("free-1")).await;
    assert_eq!(a["max_duration_s"], 14_400, "{a}");
    s.rpc_ok("call.end", json!({"call_id": "free-1", "hangup": "caller"}))
        .await;

    let (rate, token) = prepaid_for(&s, &client, 30, None).await;
    let a = s.dip(&one("pre-1")).await;
    assert_eq!(a["action"], "route", "{a}");
    assert_eq!(a["max_duration_s"], 30, "{a}");
    // the same over RESP-free JSON-RPC: a retransmitted dip gets the same grant
    let again = s.dip(&one("pre-1")).await;
    assert_eq!(again["max_duration_s"], 30, "{again}");
    // while pre-1 holds the whole balance, a second call cannot pay its first second
    let b = s.dip(&one("pre-2")).await;
    assert_eq!(
        (b["action"].as_str(), b["sip_code"].as_u64()),
        (Some("reject"), Some(402)),
        "{b}"
    );
    assert!(
        b["reason"]
            .as_str()
            .unwrap()
            .contains("insufficient credit"),
        "{b}"
    );

    let route = a["routes"][0]["route_id"].clone();
    answer_and_end(&s, "pre-1", &route, now_s(), 30.0).await;
    let rows = cdrs_of(&client, "pre-1").await;
    assert_eq!(rows[0].get::<_, i32>(2), 30, "customer billed 30 s");
    assert_eq!(rows[0].get::<_, String>(4), money(30, rate));
    // the CDR's price is the ledger's charge: the balance is spent exactly
    assert_eq!(balance(&client).await, (0, 1));
    let c = s.dip(&one("pre-3")).await;
    assert_eq!(
        (c["action"].as_str(), c["sip_code"].as_u64()),
        (Some("reject"), Some(402)),
        "{c}"
    );
    // the refusal has its CDR (disposition rejected, 402)
    support::eventually("the 402 CDR", Duration::from_secs(10), || {
        let c = &client;
        async move {
            count(
                c,
                "SELECT count(*) FROM cdrs WHERE call_id = 'pre-3' AND sip_code = 402",
            )
            .await
                == 1
        }
    })
    .await;

    // a call billed past its grant (Kamailio's BYE came late) is still charged only the grant
    topup(&s, &token, (10 * rate + 30) / 60).await;
    let d = s.dip(&one("pre-4")).await;
    assert_eq!(d["max_duration_s"], 10, "{d}");
    answer_and_end(&s, "pre-4", &route, now_s(), 12.5).await;
    assert_eq!(cdrs_of(&client, "pre-4").await[0].get::<_, i32>(2), 10);
    assert_eq!(balance(&client).await, (0, 2));
    // the counters and the ledger's numbering: topup, call, topup, call
    let r = client
        .query_one(
            "SELECT seq, day_spend_e7, month_billed_s, spend_day = (now() AT TIME ZONE 'UTC')::date \
             FROM accounts WHERE ban = '10001'",
            &[],
        )
        .await
        .unwrap();
    let spent = (30 * rate + 30) / 60 + (10 * rate + 30) / 60;
    assert_eq!(
        (
            r.get::<_, i64>(0),
            r.get::<_, i64>(1),
            r.get::<_, i64>(2),
            r.get::<_, bool>(3)
        ),
        (4, spent, 40, true)
    );
    let rows = client
        .query(
            "SELECT seq, kind, balance_after_e7 FROM account_ledger WHERE ban = '10001' ORDER BY seq",
            &[],
        )
        .await
        .unwrap();
    let got: Vec<(i64, String, i64)> = rows
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect();
    assert_eq!(
        got,
        vec![
            (1, "topup".into(), (30 * rate + 30) / 60),
            (2, "call".into(), 0),
            (3, "topup".into(), (10 * rate + 30) / 60),
            (4, "call".into(), 0),
        ]
    );
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_calls_share_the_balance_and_emergency_calls_pass() {
    let f = Scratch::new();
    let client = demo_db(&f.pg).await;
    let s = start(&f.pg, f.spool.path(), &[]).await;
    // 60 s of credit, each call may reserve at most 40 s of it
    let (rate, token) = prepaid_for(&s, &client, 60, Some(40)).await;
    let a = s.dip(&one("share-a")).await;
    let b = s.dip(&one("share-b")).await;
    assert_eq!(a["max_duration_s"], 40, "{a}");
    assert_eq!(
        b["max_duration_s"], 20,
        "their limits add up to the balance: {b}"
    );
    let c = s.dip(&one("share-c")).await;
    assert_eq!(c["sip_code"], 402, "{c}");
    // the admin view: the balance and the two reservations
    let (st, acct) = s
        .request(
            "GET",
            "/v1/admin/customers/10001/account",
            Some(&token),
            None,
        )
        .await;
    assert_eq!(st, 200, "{acct}");
    assert_eq!(acct["balance_e7"], (60 * rate + 30) / 60, "{acct}");
    assert_eq!(acct["live"]["calls"], 2, "{acct}");
    assert_eq!(acct["live"]["reserved_s"], 60, "{acct}");

    // 911 from the exhausted account: routed, never limited (no max_duration_s)
    let e = s
        .dip("ban=10001&ani=%2B12125550100&dnis=911&call_id=share-911")
        .await;
    assert_eq!(e["action"], "route", "{e}");
    assert_eq!(e["zone"], "emergency", "{e}");
    assert!(e.get("max_duration_s").is_none(), "{e}");

    // share-a ends after 10 s: charged 10 s, its reservation released; a new call gets what is
    // left (60 - 10 - 20 reserved by share-b = 30 s)
    let route = a["routes"][0]["route_id"].clone();
    answer_and_end(&s, "share-a", &route, now_s(), 10.0).await;
    let d = s.dip(&one("share-d")).await;
    assert_eq!(d["max_duration_s"], 30, "{d}");
    s.stop().await;
}

/// kill -9 with a live call holding a reservation: after the restart the reservation is back
/// (rebuilt from the call's start event), and its end charges exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_mid_call_keeps_the_balance_exact() {
    let pg = support::TestPg::start();
    let client = demo_db(&pg).await;
    let dir = tempfile::tempdir().unwrap();
    let spool = dir.path().join("spool");
    let spool_s = spool.display().to_string();
    let process = || {
        Warpd::builder(&pg)
            .envs(ENV)
            .env("WARPD_CDR__SPOOL_DIR", &spool_s)
            .spawn_process()
    };
    let p = process().await;
    let (rate, _token) = prepaid_for(&p, &client, 100, Some(40)).await;
    let topup = (100 * rate + 30) / 60;
    let a = p.dip(&one("k9-live")).await;
    assert_eq!(a["max_duration_s"], 40, "{a}");
    let route = a["routes"][0]["route_id"].clone();
    let t0 = now_s();
    p.rpc_ok(
        "call.answer",
        json!({"call_id": "k9-live", "route_id": route, "ts": t0}),
    )
    .await;
    drop(p); // SIGKILL

    let p = process().await;
    // the live call's 40 s are reserved again: 100 - 40 = 60 left, capped at 40 per call
    let b = p.dip(&one("k9-b")).await;
    assert_eq!(b["max_duration_s"], 40, "{b}");
    let c = p.dip(&one("k9-c")).await;
    assert_eq!(
        c["max_duration_s"], 20,
        "the restored reservation counts: {c}"
    );
    p.rpc_ok(
        "call.end",
        json!({"call_id": "k9-live", "ts": t0 + 25.0, "hangup": "caller"}),
    )
    .await;
    for id in ["k9-b", "k9-c"] {
        p.rpc_ok("call.end", json!({"call_id": id, "hangup": "caller"}))
            .await;
    }
    let want = topup - (25 * rate + 30) / 60;
    assert_eq!(balance(&client).await, (want, 1));
    assert_eq!(
        count(
            &client,
            "SELECT count(*) FROM account_ledger WHERE call_id = 'k9-live'"
        )
        .await,
        1
    );
    drop(p);
}

/// The account endpoints refuse bad input naming the field (422), answer 404 without a customer
/// or an account, and audit every change.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn account_admin_api_validates_and_audits() {
    let f = Scratch::new();
    let client = demo_db(&f.pg).await;
    let s = start(&f.pg, f.spool.path(), &[]).await;
    let token = admin_token(&client).await;
    let put = |body: Value| {
        let (s, token) = (&s, token.clone());
        async move {
            s.request(
                "PUT",
                "/v1/admin/customers/10001/account",
                Some(&token),
                Some(body),
            )
            .await
        }
    };
    let bad: &[(Value, &str)] = &[
        (json!({"mode": "credit"}), "mode"),
        (
            json!({"mode": "prepaid", "credit_limit": "10"}),
            "credit_limit",
        ),
        (json!({"credit_limit": "-1"}), "credit_limit"),
        (
            json!({"daily_spend_limit": "1.000000001"}),
            "daily_spend_limit",
        ),
        (json!({"per_call_cost_cap": "0"}), "per_call_cost_cap"),
        (json!({"monthly_minutes": -1}), "monthly_minutes"),
        (json!({"tz": "Mars/Olympus_Mons"}), "tz"),
        (json!({"at_limit": "explode"}), "at_limit"),
    ];
    for (body, field) in bad {
        let (st, v) = put(body.clone()).await;
        assert_eq!(st, 422, "{body}: {v}");
        assert!(v.to_string().contains(field), "{body}: {v}");
    }
    // an unknown field is the caller's mistake too (400)
    let (st, v) = put(json!({"balance": "100"})).await;
    assert_eq!(st, 400, "{v}");
    // no account yet: ledger entries and reads are 404
    let ledger = "/v1/admin/customers/10001/account/ledger";
    let (st, _) = s
        .request(
            "POST",
            ledger,
            Some(&token),
            Some(json!({"kind": "topup", "amount": "1"})),
        )
        .await;
    assert_eq!(st, 404);
    let (st, _) = s
        .request(
            "GET",
            "/v1/admin/customers/10001/account",
            Some(&token),
            None,
        )
        .await;
    assert_eq!(st, 404);
    let (st, _) = s
        .request(
            "PUT",
            "/v1/admin/customers/nobody/account",
            Some(&token),
            Some(json!({})),
        )
        .await;
    assert_eq!(st, 404);
    // create, then entries: bad ones named, good ones move the balance
    let (st, v) =
        put(json!({"mode": "postpaid", "credit_limit": "50", "tz": "America/Chicago"})).await;
    assert_eq!(st, 201, "{v}");
    let entries: &[(Value, &str)] = &[
        (json!({"kind": "gift", "amount": "1"}), "kind"),
        (json!({"kind": "topup", "amount": "0"}), "amount"),
        (json!({"kind": "topup", "amount": "-5"}), "amount"),
        (json!({"kind": "adjustment", "amount": "0"}), "amount"),
        (json!({"kind": "topup", "amount": "1e9"}), "amount"),
        (
            json!({"kind": "topup", "amount": "1", "note": "x".repeat(501)}),
            "note",
        ),
    ];
    for (body, field) in entries {
        let (st, v) = s
            .request("POST", ledger, Some(&token), Some(body.clone()))
            .await;
        assert_eq!(st, 422, "{body}: {v}");
        assert!(v.to_string().contains(field), "{body}: {v}");
    }
    for (kind, amount) in [("topup", "25.50"), ("adjustment", "-0.5")] {
        let (st, v) = s
            .request(
                "POST",
                ledger,
                Some(&token),
                Some(json!({"kind": kind, "amount": amount, "note": "test"})),
            )
            .await;
        assert_eq!(st, 201, "{v}");
    }
    let (st, v) = s
        .request(
            "GET",
            "/v1/admin/customers/10001/account",
            Some(&token),
            None,
        )
        .await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["balance_e7"], 250_000_000, "{v}");
    assert_eq!(v["credit_limit_e7"], 500_000_000, "{v}");
    assert_eq!(v["seq"], 2, "{v}");
    let (st, v) = s.request("GET", ledger, Some(&token), None).await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(v[0]["balance_after_e7"], 250_000_000, "newest first: {v}");
    assert_eq!(v[0]["actor"], "token:credit-test", "{v}");
    // every change audited; the ledger cannot be rewritten
    assert_eq!(
        count(
            &client,
            "SELECT count(*) FROM audit_log WHERE target = 'account 10001'"
        )
        .await,
        3
    );
    let e = client
        .execute("UPDATE account_ledger SET amount_e7 = 1", &[])
        .await
        .unwrap_err();
    assert!(
        e.to_string().contains("append-only") || format!("{e:?}").contains("append-only"),
        "{e:?}"
    );
    s.stop().await;
}

/// `warpd account set|topup|adjust|show`: the same rules and ledger as the admin API, audited
/// as `cli:$USER`; a bad amount is refused naming the field.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn account_cli_sets_tops_up_adjusts_and_shows() {
    let pg = support::TestPg::start();
    let client = demo_db(&pg).await;
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("warpd.toml");
    std::fs::write(
        &cfg,
        "[database]\nurl = \"postgres://placeholder@127.0.0.1/x\"\n",
    )
    .unwrap();
    let run = |args: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_warpd"))
            .arg("--config")
            .arg(&cfg)
            .arg("account")
            .args(args)
            .env("WARPD_DATABASE__URL", pg.url())
            .env("USER", "tester")
            .output()
            .unwrap()
    };
    let ok = |args: &[&str]| {
        let o = run(args);
        assert!(
            o.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        String::from_utf8_lossy(&o.stdout).into_owned()
    };
    ok(&[
        "set",
        "--ban",
        "10002",
        "--mode",
        "prepaid",
        "--tz",
        "America/New_York",
    ]);
    let out = ok(&[
        "topup", "--ban", "10002", "--amount", "25.00", "--note", "opening",
    ]);
    assert!(out.contains("balance now 25.0000000"), "{out}");
    let out = ok(&["adjust", "--ban", "10002", "--amount", "-0.25"]);
    assert!(out.contains("balance now 24.7500000"), "{out}");
    let out = ok(&["show", "--ban", "10002"]);
    assert!(out.contains("\"balance_e7\": 247500000"), "{out}");
    for (args, field) in [
        (vec!["topup", "--ban", "10002", "--amount", "-1"], "amount"),
        (vec!["adjust", "--ban", "10002", "--amount", "0"], "amount"),
        (
            vec![
                "set",
                "--ban",
                "10002",
                "--mode",
                "prepaid",
                "--credit-limit",
                "5",
            ],
            "credit_limit",
        ),
        (
            vec!["topup", "--ban", "10001", "--amount", "1"],
            "no account",
        ),
    ] {
        let o = run(&args);
        assert!(!o.status.success(), "{args:?}");
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(err.contains(field), "{args:?}: {err}");
    }
    assert_eq!(
        count(&client, "SELECT count(*) FROM audit_log WHERE target = 'account 10002' AND actor = 'cli:tester'").await,
        3
    );
}
