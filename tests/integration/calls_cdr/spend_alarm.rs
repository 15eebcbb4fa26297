//! The spend-rate alarm (issue 21 part 5): an account whose call charges in the window plus its
//! live reservations reach the threshold shows in the metrics; with `auto_block` warpd blocks it
//! itself (audited, reason "spend rate", no ledger row), its next dip gets 403, and emergency
//! calls still pass.

use super::credit::{admin_token, answer_and_end, dec, now_s, one, rate_1_1};
use super::*;

const ALARM: &str = "warpd_account_spend_alarm{ban=\"10001\"}";
const BLOCKS: &str = "warpd_account_spend_alarms_total{action=\"block\"}";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spend_rate_over_the_threshold_alarms_then_blocks_the_account() {
    let f = Scratch::new();
    let client = demo_db(&f.pg).await;
    let s = start(&f.pg, f.spool.path(), &[]).await;
    let rate = rate_1_1(&s, &client).await;
    let token = admin_token(&client).await;
    let cost = |secs: i64| (secs * rate + 30) / 60;
    // postpaid, each call reserving at most 60 s, alarm at 100 s worth in 10 minutes
    let mut terms = json!({
        "mode": "postpaid", "credit_limit": "1000", "at_limit": "cut",
        "per_call_cost_cap": dec(cost(60)),
        "spend_alarm_minutes": 10, "spend_alarm_threshold": dec(cost(100)),
    });
    let (st, v) = s
        .request(
            "PUT",
            "/v1/admin/customers/10001/account",
            Some(&token),
            Some(terms.clone()),
        )
        .await;
    assert_eq!(st, 201, "{v}");

    // 60 s reserved: under the threshold
    let a = s.dip(&one("sa-1")).await;
    assert_eq!(a["max_duration_s"], 60, "{a}");
    // charged 50 s, the reservation released: still under it
    answer_and_end(&s, "sa-1", &a["routes"][0]["route_id"], now_s(), 50.0).await;
    // 50 s charged + 60 s reserved by the next call: at or over the 100 s threshold
    let b = s.dip(&one("sa-2")).await;
    assert_eq!(b["action"], "route", "{b}");
    support::eventually("the alarm gauge", Duration::from_secs(10), || {
        let s = &s;
        async move { s.metric(ALARM).await == Some(1.0) }
    })
    .await;
    // no auto_block: alarm only, the account takes calls
    let c = s.dip(&one("sa-3")).await;
    assert_eq!(c["action"], "route", "alarm only, not blocked: {c}");
    assert_eq!(s.metric(BLOCKS).await.unwrap_or(0.0), 0.0);

    // auto_block on: warpd blocks it itself
    terms["auto_block"] = json!(true);
    let (st, v) = s
        .request(
            "PUT",
            "/v1/admin/customers/10001/account",
            Some(&token),
            Some(terms),
        )
        .await;
    assert_eq!(st, 200, "{v}");
    support::eventually("the automatic block", Duration::from_secs(10), || {
        let c = &client;
        async move {
            let r = c
                .query_one(
                    "SELECT blocked, blocked_reason FROM accounts WHERE ban = '10001'",
                    &[],
                )
                .await
                .unwrap();
            r.get::<_, bool>(0) && r.get::<_, Option<String>>(1).as_deref() == Some("spend rate")
        }
    })
    .await;
    // the books take the block right after its commit
    let n = std::sync::atomic::AtomicUsize::new(0);
    support::eventually("the 403", Duration::from_secs(10), || {
        let (s, n) = (&s, &n);
        async move {
            let id = format!("sa-4-{}", n.fetch_add(1, Ordering::Relaxed));
            s.dip(&one(&id)).await["sip_code"] == 403
        }
    })
    .await;
    let d = s.dip(&one("sa-5")).await;
    assert_eq!(
        (d["action"].as_str(), d["sip_code"].as_u64()),
        (Some("reject"), Some(403)),
        "{d}"
    );
    assert!(
        d["reason"].as_str().unwrap_or("").contains("blocked"),
        "{d}"
    );
    // audited as warpd's own change; the ledger has only the one call charge
    assert_eq!(
        count(
            &client,
            "SELECT count(*) FROM audit_log WHERE actor = 'warpd' AND action = 'account.auto_block' \
             AND target = 'account 10001' AND (after->>'blocked')::bool"
        )
        .await,
        1
    );
    assert_eq!(
        count(
            &client,
            "SELECT count(*) FROM account_ledger WHERE ban = '10001'"
        )
        .await,
        1
    );
    assert_eq!(s.metric(BLOCKS).await, Some(1.0));
    // emergency calls still pass a blocked account
    let e = s
        .dip("ban=10001&ani=%2B12125550100&dnis=911&call_id=sa-911")
        .await;
    assert_eq!(e["action"], "route", "{e}");
    assert_eq!(e["zone"], "emergency", "{e}");
    // an operator's PUT unblocks it and clears the reason
    let (st, v) = s
        .request(
            "PUT",
            "/v1/admin/customers/10001/account",
            Some(&token),
            Some(json!({"mode": "postpaid", "credit_limit": "1000"})),
        )
        .await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["after"]["blocked_reason"], Value::Null, "{v}");
    // no alarm configured any more: its series is removed
    support::eventually("the alarm series removed", Duration::from_secs(10), || {
        let s = &s;
        async move { s.metric(ALARM).await.is_none() }
    })
    .await;
    s.stop().await;
}
