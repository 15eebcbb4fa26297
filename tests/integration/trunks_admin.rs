//! The admin API's trunk and number items and a trunk's lists (issue 19, for the console's
//! generic pages): `GET`/`PATCH /v1/admin/trunks/{trunk}` and `/v1/admin/numbers/{number}`, the
//! numbers list's search and pages, and `source_ips`, `credentials` (password in, HA1 stored,
//! neither ever answered or audited) and `destinations` (priority, weight) under a trunk —
//! checked by the rules of `warpd apply`, audited, reaching the inbound dip; bad input as tables.

use serde_json::{json, Value};

use crate::inbound::stack;
use crate::support::{self, Warpd};

struct Admin<'a> {
    w: &'a Warpd,
    http: reqwest::Client,
    token: String,
}

impl Admin<'_> {
    async fn call(&self, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
        let m = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let mut r = self
            .http
            .request(m, format!("{}{path}", self.w.admin_base))
            .bearer_auth(&self.token);
        if let Some(b) = body {
            r = r.json(&b);
        }
        let resp = r.send().await.unwrap();
        let status = resp.status().as_u16();
        (status, resp.json::<Value>().await.unwrap_or_default())
    }
}

async fn audits(c: &tokio_postgres::Client, action: &str) -> Vec<String> {
    c.query(
        "SELECT coalesce(before::text, '') || coalesce(after::text, '') FROM audit_log \
         WHERE action = $1 ORDER BY id",
        &[&action],
    )
    .await
    .unwrap()
    .iter()
    .map(|r| r.get(0))
    .collect()
}

/// The URIs the inbound dip answers for the demo number +12125550142 (from northstar's source).
async fn uris(w: &Warpd) -> Vec<String> {
    let (_, a) = w
        .get_json("/v1/inbound?src_ip=192.0.2.7&dnis=%2B12125550142")
        .await;
    a["uris"]
        .as_array()
        .map(|u| {
            u.iter()
                .filter_map(|x| x.as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trunk_and_number_items_and_a_trunks_lists() {
    let (_pg, client, w) = stack().await;
    let token = warpd::admin::create_token(&client, "root", "admin", "test")
        .await
        .unwrap();
    let a = Admin {
        w: &w,
        http: reqwest::Client::new(),
        token,
    };

    // one trunk, with its lists; credentials as user@realm, never an HA1
    let (s, t) = a.call("GET", "/v1/admin/trunks/acme-main", None).await;
    assert_eq!(s, 200, "{t}");
    assert_eq!(t["customer"], "10001");
    assert_eq!(t["source_ips"], json!(["10.77.0.0/16"]));
    assert_eq!(t["credentials"][0]["credential"], "acme@sip.example.net");
    assert_eq!(t["destinations"].as_array().unwrap().len(), 3);
    assert_eq!(t["numbers"], 2);
    let ha1: String = client
        .query_one("SELECT md5('acme:sip.example.net:s3cret')", &[])
        .await
        .unwrap()
        .get(0);
    assert!(!t.to_string().contains(&ha1), "{t}");

    // a trunk's limits: set, cleared; a PATCH that changes nothing writes no audit row
    let (s, v) = a
        .call(
            "PATCH",
            "/v1/admin/trunks/acme-main",
            Some(json!({"max_cps": 7})),
        )
        .await;
    assert_eq!((s, v["after"]["max_cps"].clone()), (200, json!(7)), "{v}");
    let (s, v) = a
        .call(
            "PATCH",
            "/v1/admin/trunks/acme-main",
            Some(json!({"max_cps": null, "max_concurrent_calls": 1})),
        )
        .await;
    assert_eq!(
        (s, v["after"]["max_cps"].clone()),
        (200, Value::Null),
        "{v}"
    );
    assert_eq!(audits(&client, "trunk.update").await.len(), 2);
    let (s, _) = a
        .call(
            "PATCH",
            "/v1/admin/trunks/acme-main",
            Some(json!({"enabled": true})),
        )
        .await;
    assert_eq!(s, 200);
    assert_eq!(
        audits(&client, "trunk.update").await.len(),
        2,
        "no-op audited"
    );

    // credentials: a password in, its HA1 stored; neither answered nor audited; the snapshot's
    // credential look-up (what Kamailio asks) finds the HA1
    let (s, v) = a
        .call(
            "POST",
            "/v1/admin/trunks/acme-main/credentials",
            Some(json!({"username": "bob", "realm": "sip.example.net", "password": "pa55-word"})),
        )
        .await;
    assert_eq!(s, 201, "{v}");
    let bob_ha1: String = client
        .query_one("SELECT md5('bob:sip.example.net:pa55-word')", &[])
        .await
        .unwrap()
        .get(0);
    let stored: String = client
        .query_one(
            "SELECT ha1 FROM trunk_credentials WHERE username = 'bob'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(stored, bob_ha1);
    let rows = audits(&client, "trunk.credential.add").await;
    assert_eq!(rows.len(), 1);
    for text in [v.to_string(), rows[0].clone()] {
        assert!(
            !text.contains("pa55-word") && !text.contains(&bob_ha1),
            "{text}"
        );
        assert!(text.contains("bob@sip.example.net"), "{text}");
    }
    support::eventually("bob's credentials live", support::DEADLINE, || async {
        let (_, c) = w
            .get_json("/v1/credentials?user=bob&realm=sip.example.net")
            .await;
        if c["ha1"] == bob_ha1.as_str() {
            Ok(())
        } else {
            Err(c.to_string())
        }
    })
    .await;
    let (s, _) = a
        .call(
            "DELETE",
            "/v1/admin/trunks/acme-main/credentials/bob@sip.example.net",
            None,
        )
        .await;
    assert_eq!(s, 200);

    // source networks: added, refused when they overlap another trunk's, removed
    let (s, v) = a
        .call(
            "POST",
            "/v1/admin/trunks/acme-empty/source_ips",
            Some(json!({"cidr": "10.78.0.0/16"})),
        )
        .await;
    assert_eq!(s, 201, "{v}");
    let (s, _) = a
        .call(
            "DELETE",
            "/v1/admin/trunks/acme-empty/source_ips/10.78.0.0%2F16",
            None,
        )
        .await;
    assert_eq!(s, 200);

    // destinations: a new first one (priority 5) reaches the inbound dip, a PATCH moves it last
    // keeping its host, then it is removed
    let (s, v) = a
        .call(
            "POST",
            "/v1/admin/trunks/acme-main/destinations",
            Some(json!({"host": "10.77.0.9", "priority": 5, "weight": 2})),
        )
        .await;
    assert_eq!(s, 201, "{v}");
    let id = v["after"]["id"].as_i64().unwrap();
    let first = "sip:+12125550142@10.77.0.9:5060;transport=udp";
    support::eventually("the new destination first", support::DEADLINE, || async {
        let u = uris(&w).await;
        if u.first().map(String::as_str) == Some(first) {
            Ok(())
        } else {
            Err(format!("{u:?}"))
        }
    })
    .await;
    let (s, v) = a
        .call(
            "PATCH",
            &format!("/v1/admin/trunks/acme-main/destinations/{id}"),
            Some(json!({"priority": 30, "transport": "tcp"})),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(
        (
            &v["after"]["host"],
            &v["after"]["priority"],
            &v["after"]["weight"]
        ),
        (&json!("10.77.0.9"), &json!(30), &json!(2)),
        "{v}"
    );
    let last = "sip:+12125550142@10.77.0.9:5060;transport=tcp";
    support::eventually("the destination last", support::DEADLINE, || async {
        let u = uris(&w).await;
        if u.last().map(String::as_str) == Some(last) && u.len() == 4 {
            Ok(())
        } else {
            Err(format!("{u:?}"))
        }
    })
    .await;
    let (s, _) = a
        .call(
            "DELETE",
            &format!("/v1/admin/trunks/acme-main/destinations/{id}"),
            None,
        )
        .await;
    assert_eq!(s, 200);

    // a number: read, edited (disabled: the inbound dip answers 404), read again
    let (s, n) = a.call("GET", "/v1/admin/numbers/+12125550142", None).await;
    assert_eq!(s, 200, "{n}");
    assert_eq!(
        (&n["customer"], &n["trunk"], &n["cnam"]),
        (&json!("10001"), &json!("acme-main"), &json!("ACME"))
    );
    let (s, v) = a
        .call(
            "PATCH",
            "/v1/admin/numbers/%2B12125550142",
            Some(json!({"status": "disabled", "cnam": null, "inbound_rate": "0.007"})),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["after"]["cnam"], Value::Null, "{v}");
    support::eventually("the number disabled", support::DEADLINE, || async {
        let (_, d) = w
            .get_json("/v1/inbound?src_ip=192.0.2.7&dnis=%2B12125550142")
            .await;
        if d["code"] == 404 {
            Ok(())
        } else {
            Err(d.to_string())
        }
    })
    .await;
    let (_, n) = a.call("GET", "/v1/admin/numbers/12125550142", None).await;
    assert_eq!(
        (&n["status"], &n["inbound_rate"]),
        (&json!("disabled"), &json!("0.0070000")),
        "{n}"
    );

    // the numbers list: searched and paged by number
    let (s, p1) = a
        .call("GET", "/v1/admin/numbers?prefix=1212555014&limit=2", None)
        .await;
    assert_eq!(s, 200, "{p1}");
    let got: Vec<&str> = p1
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["number"].as_str().unwrap())
        .collect();
    assert_eq!(got, ["+12125550142", "+12125550143"]);
    let (_, p2) = a
        .call(
            "GET",
            "/v1/admin/numbers?prefix=%2B1212555014&after=%2B12125550143&limit=2",
            None,
        )
        .await;
    let got: Vec<&str> = p2
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["number"].as_str().unwrap())
        .collect();
    assert_eq!(got, ["+12125550144"]);
    let (_, t) = a
        .call("GET", "/v1/admin/numbers?trunk=acme-empty", None)
        .await;
    assert_eq!(t.as_array().unwrap().len(), 1, "{t}");

    // the OpenAPI document has every new route
    let (_, doc) = w.get_json("/v1/openapi.json").await;
    for (path, method) in [
        ("/v1/admin/trunks/{trunk}", "get"),
        ("/v1/admin/trunks/{trunk}", "patch"),
        ("/v1/admin/numbers/{number}", "get"),
        ("/v1/admin/numbers/{number}", "patch"),
        ("/v1/admin/trunks/{trunk}/source_ips", "post"),
        ("/v1/admin/trunks/{trunk}/credentials", "post"),
        (
            "/v1/admin/trunks/{trunk}/credentials/{credential}",
            "delete",
        ),
        ("/v1/admin/trunks/{trunk}/destinations", "post"),
        ("/v1/admin/trunks/{trunk}/destinations/{id}", "patch"),
    ] {
        assert!(doc["paths"][path][method].is_object(), "{method} {path}");
    }
    w.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_trunk_and_number_edits_name_the_field_and_change_nothing() {
    let (_pg, client, w) = stack().await;
    let token = warpd::admin::create_token(&client, "root", "admin", "test")
        .await
        .unwrap();
    let a = Admin {
        w: &w,
        http: reqwest::Client::new(),
        token,
    };
    let huge = "7".repeat(5000);
    let t = "/v1/admin/trunks/acme-main";
    // (method, path, body, status, what the message starts with or contains)
    let table: Vec<(&str, String, Option<Value>, u16, &str)> = vec![
        (
            "PATCH",
            t.into(),
            Some(json!({"max_cps": -1})),
            422,
            "max_cps",
        ),
        (
            "PATCH",
            t.into(),
            Some(json!({"max_concurrent_calls": "x"})),
            400,
            "max_concurrent_calls",
        ),
        (
            "PATCH",
            t.into(),
            Some(json!({"name": "other"})),
            400,
            "name",
        ),
        (
            "POST",
            format!("{t}/source_ips"),
            Some(json!({"cidr": "10.77.0.0/33"})),
            422,
            "cidr",
        ),
        (
            "POST",
            format!("{t}/source_ips"),
            Some(json!({"cidr": "10.77.5.0/24"})),
            409,
            "acme-main",
        ),
        (
            "POST",
            format!("{t}/credentials"),
            Some(json!({"username": "u", "realm": "r.example"})),
            422,
            "ha1",
        ),
        (
            "POST",
            format!("{t}/credentials"),
            Some(
                json!({"username": "u", "realm": "r.example", "ha1": "0123456789abcdef0123456789abcdef", "password": "p"}),
            ),
            422,
            "ha1",
        ),
        (
            "POST",
            format!("{t}/credentials"),
            Some(json!({"username": "u", "realm": "r.example", "ha1": "xyz"})),
            422,
            "ha1",
        ),
        (
            "POST",
            format!("{t}/credentials"),
            Some(json!({"username": "u:1", "realm": "r.example", "password": "p"})),
            422,
            "username",
        ),
        (
            "POST",
            format!("{t}/credentials"),
            Some(json!({"username": "acme", "realm": "sip.example.net", "password": "p"})),
            409,
            "username",
        ),
        (
            "DELETE",
            format!("{t}/credentials/nobody"),
            None,
            422,
            "credential",
        ),
        (
            "POST",
            format!("{t}/destinations"),
            Some(json!({"port": 5060})),
            422,
            "host",
        ),
        (
            "POST",
            format!("{t}/destinations"),
            Some(json!({"host": "h", "weight": 5000})),
            422,
            "weight",
        ),
        (
            "POST",
            format!("{t}/destinations"),
            Some(json!({"uri": "http://x"})),
            422,
            "uri",
        ),
        (
            "POST",
            format!("{t}/destinations"),
            Some(json!({"host": "h", "transport": "sctp"})),
            422,
            "transport",
        ),
        (
            "PATCH",
            format!("{t}/destinations/999999"),
            Some(json!({"priority": 1})),
            404,
            "destination 999999",
        ),
        (
            "PATCH",
            format!("{t}/destinations/x"),
            Some(json!({"priority": 1})),
            400,
            "id",
        ),
        (
            "PATCH",
            "/v1/admin/numbers/+12125550142".into(),
            Some(json!({"status": "gone"})),
            422,
            "status",
        ),
        (
            "PATCH",
            "/v1/admin/numbers/+12125550142".into(),
            Some(json!({"trunk": "nope"})),
            404,
            "nope",
        ),
        (
            "PATCH",
            "/v1/admin/numbers/+12125550142".into(),
            Some(json!({"inbound_rate": "-1"})),
            422,
            "inbound_rate",
        ),
        (
            "PATCH",
            "/v1/admin/numbers/+12125550142".into(),
            Some(json!({"customer": "10002"})),
            400,
            "customer",
        ),
        (
            "PATCH",
            "/v1/admin/numbers/+19995550100".into(),
            Some(json!({"status": "active"})),
            404,
            "does not exist",
        ),
        (
            "GET",
            "/v1/admin/numbers/+19995550100".into(),
            None,
            404,
            "does not exist",
        ),
        (
            "GET",
            "/v1/admin/numbers?prefix=12a".into(),
            None,
            422,
            "prefix",
        ),
        (
            "GET",
            "/v1/admin/numbers?limit=x".into(),
            None,
            400,
            "limit",
        ),
        // a huge key is quoted cut, never echoed whole
        (
            "GET",
            format!("/v1/admin/trunks/{huge}"),
            None,
            404,
            "(5000 bytes)",
        ),
        (
            "PATCH",
            format!("/v1/admin/trunks/{huge}"),
            Some(json!({"max_cps": 1})),
            404,
            "does not exist",
        ),
        (
            "POST",
            format!("/v1/admin/trunks/{huge}/destinations"),
            Some(json!({"host": "h"})),
            404,
            "(5000 bytes)",
        ),
        (
            "GET",
            format!("/v1/admin/numbers/{huge}"),
            None,
            422,
            "(5001 bytes)",
        ),
    ];
    let before: i64 = client
        .query_one("SELECT count(*) FROM audit_log", &[])
        .await
        .unwrap()
        .get(0);
    for (method, path, body, status, needle) in table {
        let (s, v) = a.call(method, &path, body).await;
        let msg = v["error"].as_str().unwrap_or_default().to_string();
        let label: String = format!("{method} {path}").chars().take(90).collect();
        assert_eq!(s, status, "{label}: {v}");
        assert!(msg.contains(needle), "{label}: {msg}");
        assert!(
            msg.len() < 400,
            "{label}: a long message ({} bytes)",
            msg.len()
        );
    }
    let after: i64 = client
        .query_one("SELECT count(*) FROM audit_log", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(before, after, "a refused edit wrote an audit row");
    w.stop().await;
}
