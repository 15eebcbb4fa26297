//! Customer limits over the admin API reaching the dip: readable limits, blocked prefixes,
//! destination classes, the rate ceiling, margin pricing, call limits.

use serde_json::{json, Value};

use super::{start, Stack};

/// Customer 2002 ("Margin Co") created by admin with every limit (10 % + 0.001, a 50 % rule for
/// 4420, at most 5 calls, 2 per second, 30/6 billing), checked as stored, in partition intl.
async fn create_margin_customer(st: &Stack) {
    let (api, ops, admin) = (st, st.ops.as_str(), st.admin.as_str());
    let (s, v) = api
        .request(
            "POST",
            "/v1/admin/customers",
            Some(admin),
            Some(json!({
                "ban": "2002", "name": "Margin Co", "allowed_classes": ["international"],
                "margin_percent": "10", "fixed_fee": "0.001", "max_rate": 0.5, "max_results": 2,
                "blocked_prefixes": ["1900", "1976"], "allow_negative_margin": true,
                "max_concurrent_calls": 5, "max_cps": 2, "billing_min_seconds": 30, "billing_inc_seconds": 6,
                "margin_rules": [{"prefix": "4420", "margin_percent": "50"}]
            })),
        )
        .await;
    assert_eq!(s, 201, "{v}");
    let c = &v["after"];
    assert_eq!(
        (
            c["max_results"].as_i64(),
            c["max_concurrent_calls"].as_i64(),
            c["max_cps"].as_i64(),
            c["billing_min_seconds"].as_i64(),
            c["billing_inc_seconds"].as_i64(),
            c["allow_negative_margin"].as_bool(),
            c["margin_percent"].as_f64(),
            c["fixed_fee"].as_f64(),
            c["max_rate"].as_f64(),
        ),
        (
            Some(2),
            Some(5),
            Some(2),
            Some(30),
            Some(6),
            Some(true),
            Some(10.0),
            Some(0.001),
            Some(0.5)
        ),
        "{v}"
    );
    assert_eq!(c["blocked_prefixes"], json!(["1900", "1976"]));
    assert_eq!(c["margin_rules"][0]["prefix"], "4420");
    let (s, e) = api
        .request(
            "POST",
            "/v1/admin/customers",
            Some(admin),
            Some(json!({"ban": "2002"})),
        )
        .await;
    assert_eq!(s, 409, "{e}");
    let (s, v) = api
        .request(
            "POST",
            "/v1/admin/customers/2002/partitions",
            Some(ops),
            Some(json!({"partition": "intl"})),
        )
        .await;
    assert_eq!(s, 201, "{v}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_customer_limit_is_readable_one_customer_or_all() {
    let st = start().await;
    let (api, ro) = (&st, st.ro.as_str());
    // every limit is readable, one customer or all
    let (s, c) = api
        .request("GET", "/v1/admin/customers/1001", Some(ro), None)
        .await;
    assert_eq!(s, 200, "{c}");
    assert_eq!(
        c["allowed_classes"],
        json!(["domestic", "tollfree", "international"])
    );
    assert_eq!(c["blocked_prefixes"], json!([]));
    assert_eq!(c["max_results"], 5);
    assert_eq!(c["sell_rates"], 1);
    assert_eq!(c["partitions"][0]["partition"], "intl");
    for k in [
        "max_rate",
        "margin_percent",
        "max_concurrent_calls",
        "max_cps",
        "billing_min_seconds",
    ] {
        assert!(c[k].is_null(), "{k}: {c}");
    }
    let (s, l) = api
        .request("GET", "/v1/admin/customers", Some(ro), None)
        .await;
    assert_eq!((s, &l[0]), (200, &c));
    let (s, r) = api
        .request(
            "GET",
            "/v1/admin/customers/1001/sell_rates?prefix=4",
            Some(ro),
            None,
        )
        .await;
    assert_eq!(s, 200, "{r}");
    assert_eq!(
        (
            r[0]["prefix"].as_str(),
            r[0]["intrastate"].as_str(),
            r.as_array().map(Vec::len)
        ),
        (Some("44"), Some("0.05"), Some(1)),
        "{r}"
    );
    st.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blocked_prefix_added_over_the_api_rejects_the_dip_and_is_audited() {
    let st = start().await;
    let (api, ops, ro) = (&st, st.ops.as_str(), st.ro.as_str());
    // ops blocks 4420 and the next dips get 403 (readonly may not: see the bad-request table)
    let block = json!({"prefix": "4420"});
    let path = "/v1/admin/customers/1001/blocked_prefixes";
    let (s, v) = api
        .request("POST", path, Some(ops), Some(block.clone()))
        .await;
    assert_eq!(s, 201, "{v}");
    assert_eq!(v["after"]["blocked_prefixes"], json!(["4420"]), "{v}");
    let a = st
        .dip_until("1001", "blocked prefix", |a| a["sip_code"] == 403)
        .await;
    assert_eq!(a["reason"], "blocked prefix 4420", "{a}");
    let (s, e) = api.request("POST", path, Some(ops), Some(block)).await;
    assert_eq!(s, 409, "{e}");
    let (s, l) = api.request("GET", path, Some(ro), None).await;
    assert_eq!((s, l), (200, json!(["4420"])));
    // audited with the customer before and after
    let row = st
        .client
        .query_one(
            "SELECT actor, target, before->'blocked_prefixes', after->'blocked_prefixes' \
             FROM audit_log WHERE action = 'customer.blocked_prefix.add'",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(row.get::<_, String>(0), "token:deckops");
    assert_eq!(row.get::<_, String>(1), "customer 1001 blocked prefix 4420");
    assert_eq!(row.get::<_, Value>(2), json!([]));
    assert_eq!(row.get::<_, Value>(3), json!(["4420"]));
    let (s, v) = api
        .request("DELETE", &format!("{path}/4420"), Some(ops), None)
        .await;
    assert_eq!(
        (s, &v["after"]["blocked_prefixes"]),
        (200, &json!([])),
        "{v}"
    );
    st.dip_until("1001", "unblocked", |a| a["action"] == "route")
        .await;
    let (s, e) = api
        .request("DELETE", &format!("{path}/4420"), Some(ops), None)
        .await;
    assert_eq!(s, 404, "{e}");

    st.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn allowed_classes_and_rate_ceiling_patches_reach_the_dip() {
    let st = start().await;
    let (api, ops) = (&st, st.ops.as_str());
    // allowed classes and the ceiling, by PATCH (bad values: see the bad-request table)
    let (s, v) = api
        .request(
            "PATCH",
            "/v1/admin/customers/1001",
            Some(ops),
            Some(json!({"allowed_classes": ["domestic"]})),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    let a = st
        .dip_until("1001", "class", |a| a["sip_code"] == 403)
        .await;
    assert_eq!(
        a["reason"], "destination class international not allowed",
        "{a}"
    );
    let (s, v) = api
        .request(
            "PATCH",
            "/v1/admin/customers/1001",
            Some(ops),
            Some(json!({"allowed_classes": ["international"], "max_rate": "0.01"})),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    st.dip_until("1001", "ceiling", |a| a["sip_code"] == 404)
        .await;
    let (s, v) = api
        .request(
            "PATCH",
            "/v1/admin/customers/1001",
            Some(ops),
            Some(json!({"max_rate": null})),
        )
        .await;
    assert_eq!((s, &v["after"]["max_rate"]), (200, &Value::Null), "{v}");
    st.dip_until("1001", "no ceiling", |a| a["action"] == "route")
        .await;

    st.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn customer_priced_by_margin_rules_created_with_every_limit() {
    let st = start().await;
    let (api, ops, ro) = (&st, st.ops.as_str(), st.ro.as_str());
    create_margin_customer(&st).await;
    // the 4420 rule: 0.02 × 1.5
    let a = st
        .priced_until("2002", "margin rule", |a| a["action"] == "route")
        .await;
    assert_eq!(a["routes"][0]["customer_rate"].as_f64(), Some(0.03), "{a}");
    // the margin report covers customers priced by margin rules: beta's 44 under the default
    // margin, and 4420 under its own rule (the price the dip just gave)
    let (s, m) = api
        .request("GET", "/v1/admin/margins?ban=2002", Some(ro), None)
        .await;
    assert_eq!(s, 200, "{m}");
    let got: Vec<(&str, &str, &str, &str, &str, &str)> = m
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            let f = |k: &str| r[k].as_str().unwrap_or("-");
            (
                f("prefix"),
                f("route"),
                f("pricing"),
                f("buy"),
                f("sell"),
                f("margin"),
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            ("44", "beta", "default_margin", "0.02", "0.023", "0.003"),
            ("4420", "beta", "margin_rule", "0.02", "0.03", "0.01")
        ],
        "{m}"
    );
    assert_eq!(m[1]["rule_prefix"], "4420");
    assert_eq!(m[1]["vendor_prefix"], "44");
    // rules replaced by none: the default 10 % + 0.001
    let (s, v) = api
        .request(
            "PATCH",
            "/v1/admin/customers/2002",
            Some(ops),
            Some(json!({"margin_rules": []})),
        )
        .await;
    assert_eq!((s, &v["after"]["margin_rules"]), (200, &json!([])), "{v}");
    st.priced_until("2002", "default margin", |a| {
        a["routes"][0]["customer_rate"].as_f64() == Some(0.023)
    })
    .await;
    let audits: i64 = st
        .client
        .query_one(
            "SELECT count(*) FROM audit_log WHERE target = 'customer 2002' \
             AND action IN ('customer.create', 'customer.update')",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(audits, 2);
    // a PATCH that changes nothing (empty, or the values it already has) is answered with the
    // customer as it is and leaves no audit row
    let count_audits = || async {
        st.client
            .query_one("SELECT count(*) FROM audit_log", &[])
            .await
            .unwrap()
            .get::<_, i64>(0)
    };
    let audits_before = count_audits().await;
    for body in [json!({}), json!({"margin_rules": []})] {
        let (s, v) = api
            .request("PATCH", "/v1/admin/customers/2002", Some(ops), Some(body))
            .await;
        assert_eq!(s, 200, "{v}");
        assert_eq!(v["before"], v["after"], "{v}");
        assert_eq!(v["after"]["margin_rules"], json!([]), "{v}");
    }
    assert_eq!(
        count_audits().await,
        audits_before,
        "a no-op PATCH wrote an audit row"
    );

    st.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn call_limit_and_blocked_prefix_list_patches_reach_the_dip() {
    let st = start().await;
    let (api, ops) = (&st, st.ops.as_str());
    create_margin_customer(&st).await;
    // call limits reach the dip too (through the calls service's periodic refresh)
    let (s, v) = api
        .request(
            "PATCH",
            "/v1/admin/customers/2002",
            Some(ops),
            Some(json!({"max_concurrent_calls": 0})),
        )
        .await;
    assert_eq!(
        (s, v["after"]["max_concurrent_calls"].as_i64()),
        (200, Some(0)),
        "{v}"
    );
    let a = st
        .dip_until_q("ban=2002&call_id=lim-{n}", "call limit", |a| {
            a["sip_code"] == 503
        })
        .await;
    assert_eq!(a["reason"], "concurrent call limit 0 reached", "{a}");
    let (s, _) = api
        .request(
            "PATCH",
            "/v1/admin/customers/2002",
            Some(ops),
            Some(json!({"max_concurrent_calls": null})),
        )
        .await;
    assert_eq!(s, 200);
    st.dip_until_q("ban=2002&call_id=free-{n}", "no call limit", |a| {
        a["action"] == "route"
    })
    .await;
    // blocked prefixes as a whole list, by PATCH
    let (s, v) = api
        .request(
            "PATCH",
            "/v1/admin/customers/2002",
            Some(ops),
            Some(json!({"blocked_prefixes": ["1900", "442071"]})),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    let a = st
        .dip_until("2002", "patched block", |a| a["sip_code"] == 403)
        .await;
    assert_eq!(a["reason"], "blocked prefix 442071", "{a}");
    st.stop().await;
}

/// Issue 17: the emergency callback number through the admin API (the one rule set: any number
/// form in, E.164 digits stored; null clears it).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn emergency_callback_is_set_normalized_and_cleared() {
    let st = start().await;
    let (api, ops) = (&st, st.ops.as_str());
    create_margin_customer(&st).await;
    let patch = |v: Value| api.request("PATCH", "/v1/admin/customers/2002", Some(ops), Some(v));
    let (s, v) = patch(json!({"emergency_callback": "+1 (212) 555-0199"})).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["before"]["emergency_callback"], Value::Null, "{v}");
    assert_eq!(v["after"]["emergency_callback"], "12125550199", "{v}");
    let (s, v) = patch(json!({"emergency_callback": null})).await;
    assert_eq!(
        (s, &v["after"]["emergency_callback"]),
        (200, &Value::Null),
        "{v}"
    );
    let (s, v) = api
        .request(
            "POST",
            "/v1/admin/customers",
            Some(st.admin.as_str()),
            Some(json!({"ban": "2003", "emergency_callback": "2125550100"})),
        )
        .await;
    assert!(s == 200 || s == 201, "{s} {v}");
    let (_, c) = api
        .request("GET", "/v1/admin/customers/2003", Some(ops), None)
        .await;
    assert_eq!(c["emergency_callback"], "12125550100", "{c}");
    st.stop().await;
}

/// `GET /v1/admin/customers?limit=N&after=BAN` (issue 22: the console's customers page grew
/// with the customers): pages by BAN add up to the whole list, in order, each customer once;
/// a limit outside 1–1000 or an overlong cursor is refused naming the parameter.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn customers_list_pages_by_ban() {
    let st = start().await;
    st.client
        .batch_execute(
            "INSERT INTO customers (ban, name) SELECT 'page' || g, 'Paged ' || g \
             FROM generate_series(1, 23) g",
        )
        .await
        .unwrap();
    let ro = st.ro.as_str();
    let (s, all) = st
        .request("GET", "/v1/admin/customers", Some(ro), None)
        .await;
    assert_eq!(s, 200, "{all}");
    let all: Vec<String> = all
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["ban"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(all.len(), 24, "1001 and 23 more: {all:?}");
    let mut paged: Vec<String> = vec![];
    let mut pages = 0;
    loop {
        let path = match paged.last() {
            None => "/v1/admin/customers?limit=4".to_string(),
            Some(b) => format!("/v1/admin/customers?limit=4&after={b}"),
        };
        let (s, page) = st.request("GET", &path, Some(ro), None).await;
        assert_eq!(s, 200, "{page}");
        let page = page.as_array().unwrap();
        assert!(page.len() <= 4);
        if page.is_empty() {
            break;
        }
        // every field of the full list, not a summary
        assert!(page[0].get("partitions").is_some(), "{page:?}");
        paged.extend(page.iter().map(|c| c["ban"].as_str().unwrap().to_string()));
        pages += 1;
        assert!(pages < 50);
    }
    assert_eq!(paged, all);
    let long = "9".repeat(300);
    for (q, field) in [
        ("limit=0", "limit"),
        ("limit=1001", "limit"),
        ("limit=x", "limit"),
        (&*format!("limit=10&after={long}"), "after"),
    ] {
        let (s, e) = st
            .request("GET", &format!("/v1/admin/customers?{q}"), Some(ro), None)
            .await;
        assert_eq!(s, 400, "{q}: {e}");
        assert!(e.to_string().contains(field), "{q}: {e}");
        assert!(!e.to_string().contains(&long), "{q}: echoes the value");
    }
    st.stop().await;
}
