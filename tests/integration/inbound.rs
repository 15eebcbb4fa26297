//! Issue 19 against the real binary and PostgreSQL: trunks and numbers in the database reach the
//! snapshot (NOTIFY), the inbound dip on its three surfaces (`GET /v1/inbound`, `did.route`,
//! RESP `INBOUND`) answers the same, the credential look-up (`/v1/credentials`, RESP `CRED`),
//! the outbound dip by trunk, trunk limits (503), the inbound CDR (direction, trunk, number,
//! the number's rate) and bad input naming the field.

use std::time::Duration;

use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use warpd_resp::{Limits, Value};

use crate::support::{self, eventually, TestPg, Warpd};

/// Trunks of the demo customers: `acme-main` (10001, two destinations of priority 10 and one of
/// 20, a source network, credentials, at most 1 call), `acme-empty` (no destination); numbers;
/// an origination source of `northstar` (192.0.2.0/24). Every vendor gateway of the demo is
/// 127.0.0.1, so 127.0.0.1 is an origination source too.
pub const INBOUND_SQL: &str = "
INSERT INTO trunks (name, customer_id, max_concurrent_calls)
    SELECT 'acme-main', id, 1 FROM customers WHERE ban = '10001';
INSERT INTO trunks (name, customer_id) SELECT 'acme-empty', id FROM customers WHERE ban = '10001';
INSERT INTO trunk_sources SELECT id, '10.77.0.0/16' FROM trunks WHERE name = 'acme-main';
INSERT INTO trunk_credentials (trunk_id, username, realm, ha1)
    SELECT id, 'acme', 'sip.example.net', md5('acme:sip.example.net:s3cret') FROM trunks WHERE name = 'acme-main';
INSERT INTO trunk_destinations (trunk_id, host, port, priority, weight)
    SELECT id, h, 5090, p, 1 FROM trunks, (VALUES ('10.77.0.1', 10), ('10.77.0.2', 10), ('10.77.0.3', 20)) AS d(h, p)
    WHERE name = 'acme-main';
INSERT INTO numbers (number, customer_id, trunk_id, inbound_rate, cnam)
    SELECT '+12125550142', c.id, t.id, 0.0060, 'ACME' FROM customers c JOIN trunks t ON t.customer_id = c.id
    WHERE c.ban = '10001' AND t.name = 'acme-main';
INSERT INTO numbers (number, customer_id, trunk_id, status)
    SELECT '+12125550143', c.id, t.id, 'disabled' FROM customers c JOIN trunks t ON t.customer_id = c.id
    WHERE c.ban = '10001' AND t.name = 'acme-main';
INSERT INTO numbers (number, customer_id, trunk_id)
    SELECT '+12125550144', c.id, t.id FROM customers c JOIN trunks t ON t.customer_id = c.id
    WHERE c.ban = '10001' AND t.name = 'acme-empty';
INSERT INTO origination_sources SELECT id, '192.0.2.0/24' FROM vendors WHERE name = 'northstar';
";

const SECRET: &str = "inbound-secret-0123456789";

pub(crate) async fn stack() -> (TestPg, tokio_postgres::Client, Warpd) {
    let pg = TestPg::start();
    let client = support::demo::demo_db(&pg).await;
    client
        .batch_execute(
            "UPDATE customers SET max_concurrent_calls = NULL, max_cps = NULL, \
             billing_min_seconds = NULL, billing_inc_seconds = NULL",
        )
        .await
        .unwrap();
    client.batch_execute(INBOUND_SQL).await.unwrap();
    let w = Warpd::builder(&pg)
        .env("WARPD_SERVER__KAMAILIO_SECRET", SECRET)
        .env("WARPD_SERVER__KAMAILIO_DIP_AS", "any")
        .env("WARPD_CALLS__LIMITS_REFRESH_MS", "100")
        .resp()
        .await
        .start()
        .await;
    (pg, client, w)
}

pub(crate) async fn resp(addr: std::net::SocketAddr, cmds: &[&[&str]]) -> Vec<Value> {
    let mut s = TcpStream::connect(addr).await.unwrap();
    let mut out = Vec::new();
    let mut all: Vec<&[&str]> = vec![&["AUTH", SECRET]];
    all.extend_from_slice(cmds);
    for c in &all {
        let v = Value::Array(c.iter().map(|a| Value::bulk(a.as_bytes())).collect());
        out.extend(v.to_bytes());
    }
    s.write_all(&out).await.unwrap();
    let mut buf = Vec::new();
    let mut replies = Vec::new();
    let limits = Limits::default();
    while replies.len() < all.len() {
        if let Some((v, n)) = warpd_resp::decode(&buf, &limits).unwrap() {
            buf.drain(..n);
            replies.push(v);
            continue;
        }
        let mut chunk = [0u8; 4096];
        let n = tokio::time::timeout(Duration::from_secs(10), s.read(&mut chunk))
            .await
            .expect("a reply within 10 s")
            .unwrap();
        assert!(n > 0, "connection closed");
        buf.extend_from_slice(&chunk[..n]);
    }
    replies.remove(0);
    replies
}

fn s(v: &Value) -> String {
    match v {
        Value::Bulk(b) => String::from_utf8(b.clone()).unwrap(),
        Value::Integer(i) => i.to_string(),
        other => panic!("{other:?}"),
    }
}

const DIP: &str =
    "/v1/inbound?src_ip=192.0.2.7&ani=%2B13105550000&dnis=%2B12125550142&call_id=in-1";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inbound_dip_on_three_surfaces_and_credentials() {
    let (_pg, client, w) = stack().await;
    let (status, http) = w.get_json(DIP).await;
    assert_eq!(status, 200, "{http}");
    assert_eq!(http["action"], "route");
    assert_eq!(http["direction"], "inbound");
    assert_eq!(http["customer"], "10001");
    assert_eq!(http["trunk"], "acme-main");
    assert_eq!(http["number"], "+12125550142");
    assert_eq!(http["rate"], 0.006);
    assert_eq!(http["vendor"], "northstar");
    assert_eq!(http["cnam"], "ACME");
    let uris: Vec<&str> = http["uris"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u.as_str().unwrap())
        .collect();
    assert_eq!(uris.len(), 3);
    assert_eq!(uris[2], "sip:+12125550142@10.77.0.3:5090;transport=udp");

    // did.route: the same answer for the same call_id
    let rpc = w
        .rpc_result(
            "did.route",
            json!({"src_ip":"192.0.2.7","ani":"+13105550000","dnis":"+12125550142","call_id":"in-1"}),
        )
        .await;
    assert_eq!(rpc, http);

    // RESP INBOUND: LCR's layout, the same destinations in the same order
    let r = resp(
        w.resp_addr.unwrap(),
        &[
            &[
                "INBOUND",
                "192.0.2.7",
                "+13105550000",
                "+12125550142",
                "in-1",
            ],
            &["INBOUND", "192.0.2.7", "+13105550000", "+12125559999"],
            &["CRED", "acme", "sip.example.net"],
            &["CRED", "acme", "other.example.net"],
            &["INBOUND", "not-an-ip", "1", "2"],
        ],
    )
    .await;
    let Value::Array(a) = &r[0] else {
        panic!("{:?}", r[0])
    };
    assert_eq!(
        a[..8].iter().map(s).collect::<Vec<_>>(),
        [
            "route",
            "200",
            "",
            "10001",
            "acme-main",
            "+12125550142",
            // issue 20: no verification code given (no Identity header)
            "No-TN-Validation",
            "3"
        ]
    );
    // the destinations, then the caller in E.164 (issue 20)
    assert_eq!(a.len(), 8 + 3 * 3 + 1);
    assert_eq!(s(&a[8 + 3 * 3]), "+13105550000");
    for i in 0..3 {
        assert_eq!(s(&a[9 + 3 * i]), "acme-main");
        assert_eq!(s(&a[10 + 3 * i]), uris[i]);
        assert!(s(&a[8 + 3 * i]).parse::<i64>().is_ok(), "a destination id");
    }
    let Value::Array(a) = &r[1] else { panic!() };
    assert_eq!(
        a.iter().map(s).collect::<Vec<_>>(),
        ["reject", "404", "unknown number", "", "", "", "", "0"]
    );
    let ha1: String = client
        .query_one("SELECT md5('acme:sip.example.net:s3cret')", &[])
        .await
        .unwrap()
        .get(0);
    let Value::Array(a) = &r[2] else { panic!() };
    assert_eq!(
        a.iter().map(s).collect::<Vec<_>>(),
        ["1", ha1.as_str(), "acme-main", "10001"]
    );
    let Value::Array(a) = &r[3] else { panic!() };
    assert_eq!(a.iter().map(s).collect::<Vec<_>>(), ["0", "", "", ""]);
    match &r[4] {
        Value::Error(e) => assert!(e.contains("src_ip"), "{e}"),
        other => panic!("{other:?}"),
    }

    // credentials over HTTP
    let (status, c) = w
        .get_json("/v1/credentials?user=acme&realm=sip.example.net")
        .await;
    assert_eq!(status, 200);
    assert_eq!(
        c,
        json!({"found": true, "ha1": ha1, "trunk": "acme-main", "customer": "10001"})
    );
    let (status, c) = w.get_json("/v1/credentials?user=acme&realm=x").await;
    assert_eq!((status, c), (200, json!({"found": false})));

    // lcr.simulate explains an inbound call (admin listener; nothing tracked)
    let sim = w
        .rpc_result(
            "lcr.simulate",
            json!({"direction":"inbound","src_ip":"192.0.2.7","dnis":"+12125550143"}),
        )
        .await;
    assert_eq!(sim["direction"], "inbound", "{sim}");
    assert_eq!(sim["answer"]["code"], 404, "{sim}");
    let steps = sim["steps"].to_string();
    for needle in [
        "vendor northstar",
        "customer 10001, status disabled",
        "reject 404",
    ] {
        assert!(steps.contains(needle), "{needle}: {sim}");
    }
    let (code, msg) = w
        .rpc_error("lcr.simulate", json!({"direction":"sideways","dnis":"1"}))
        .await;
    assert!(msg.starts_with("direction"), "{code} {msg}");

    // rejects: (query, code)
    for (q, code) in [
        ("src_ip=198.51.100.1&dnis=%2B12125550142", 403),
        ("src_ip=192.0.2.7&dnis=%2B12125550199", 404),
        ("src_ip=192.0.2.7&dnis=%2B12125550143", 404),
        ("src_ip=127.0.0.1&dnis=12125550144", 480),
    ] {
        let (status, a) = w.get_json(&format!("/v1/inbound?{q}")).await;
        assert_eq!(status, 200, "{q}: {a}");
        assert_eq!(a["action"], "reject", "{q}: {a}");
        assert_eq!(a["code"], code, "{q}: {a}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outbound_dip_by_trunk_and_by_trunk_source() {
    let (_pg, _client, w) = stack().await;
    let q = "ani=%2B12125550100&dnis=%2B13125550100";
    let by_ban = w.dip(&format!("ban=10001&{q}")).await;
    assert_eq!(by_ban["action"], "route", "{by_ban}");
    for who in ["trunk=acme-main", "src_ip=10.77.3.4"] {
        let a = w.dip(&format!("{who}&{q}")).await;
        assert_eq!(a["routes"], by_ban["routes"], "{who}: {a}");
    }
    let r = resp(
        w.resp_addr.unwrap(),
        &[&["LCR", "trunk:acme-main", "+12125550100", "+13125550100"]],
    )
    .await;
    let Value::Array(a) = &r[0] else { panic!() };
    assert_eq!(s(&a[0]), "route");
    // an unknown trunk is an unknown customer
    let a = w.dip(&format!("trunk=nope&{q}")).await;
    assert_eq!(
        (a["action"].clone(), a["sip_code"].clone()),
        (json!("reject"), json!(403))
    );
    // ban and trunk together: a request error naming trunk
    let (status, e) = w
        .get_json(&format!("/v1/route?ban=10001&trunk=acme-main&{q}"))
        .await;
    assert_eq!(status, 400);
    assert!(e["error"].as_str().unwrap().starts_with("trunk:"), "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trunk_limit_and_inbound_cdr() {
    let (_pg, client, w) = stack().await;
    let (_, a) = w.get_json(DIP).await;
    assert_eq!(a["action"], "route", "{a}");
    // acme-main takes one call at a time: a second call is refused with 503
    let (_, b) = w
        .get_json(&DIP.replace("call_id=in-1", "call_id=in-2"))
        .await;
    assert_eq!(
        (b["action"].clone(), b["code"].clone()),
        (json!("reject"), json!(503)),
        "{b}"
    );
    assert!(b["reason"].as_str().unwrap().contains("trunk"), "{b}");
    // the first call: answered on its first destination, 30 s, ended
    let t0 = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
        .floor();
    let (status, _) = w
        .events(&format!(
            "event=attempt&call_id=in-1&ts={}&attempt=1&route_id={}&sip_code=200\n\
             event=answer&call_id=in-1&ts={}&attempt=1\n\
             event=end&call_id=in-1&ts={}&hangup=caller",
            t0 + 1.0,
            a_id(&w).await,
            t0 + 1.0,
            t0 + 31.0
        ))
        .await;
    assert_eq!(status, 200);
    let row = eventually("the inbound CDR", Duration::from_secs(10), || async {
        client
            .query_opt(
                "SELECT direction, trunk, number, customer_ban, price::text, vendor, cost::text, \
                 customer_billed_s FROM cdrs WHERE call_id = 'in-1'",
                &[],
            )
            .await
            .unwrap()
            .ok_or("no CDR yet")
    })
    .await;
    assert_eq!(row.get::<_, String>(0), "inbound");
    assert_eq!(
        row.get::<_, Option<String>>(1).as_deref(),
        Some("acme-main")
    );
    assert_eq!(
        row.get::<_, Option<String>>(2).as_deref(),
        Some("12125550142")
    );
    assert_eq!(row.get::<_, Option<String>>(3).as_deref(), Some("10001"));
    // 30 s billed 60/60 (the customer has no increments of its own) at 0.006/min
    assert_eq!(row.get::<_, i32>(7), 60);
    assert_eq!(row.get::<_, String>(4), "0.0060000");
    assert_eq!(
        row.get::<_, Option<String>>(5).as_deref(),
        Some("northstar")
    );
    assert_eq!(row.get::<_, String>(6), "0.0000000");
    // /v1/cdrs filters by direction and trunk (admin listener, a readonly token)
    let token = warpd::admin::create_token(&client, "cdr-reader", "readonly", "test")
        .await
        .unwrap();
    let http = reqwest::Client::new();
    let cdrs = |q: &'static str| {
        let req = http
            .get(format!("{}/v1/cdrs?{q}", w.admin_base))
            .bearer_auth(&token);
        async move { support::json(req).await }
    };
    let page: serde_json::Value = cdrs("direction=inbound&trunk=acme-main").await;
    let rows = page["cdrs"].as_array().unwrap();
    assert!(rows.iter().any(|r| r["call_id"] == "in-1"), "{page}");
    assert!(rows.iter().all(|r| r["direction"] == "inbound"), "{page}");
    let page: serde_json::Value = cdrs("direction=outbound").await;
    assert!(page["cdrs"]
        .as_array()
        .unwrap()
        .iter()
        .all(|r| r["call_id"] != "in-1"));
    let bad = http
        .get(format!("{}/v1/cdrs?direction=sideways", w.admin_base))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status().as_u16(), 400);
    assert!(bad.text().await.unwrap().contains("direction"));
    // and the trunk is free again
    eventually(
        "the trunk's call to end",
        Duration::from_secs(10),
        || async {
            let (_, c) = w
                .get_json(&DIP.replace("call_id=in-1", "call_id=in-3"))
                .await;
            if c["action"] == "route" {
                Ok(())
            } else {
                Err(c.to_string())
            }
        },
    )
    .await;
}

/// The first destination id of acme-main (the route id Kamailio reports for it).
async fn a_id(w: &Warpd) -> String {
    let r = resp(
        w.resp_addr.unwrap(),
        &[&["INBOUND", "192.0.2.7", "", "+12125550142", "in-1"]],
    )
    .await;
    let Value::Array(a) = &r[0] else { panic!() };
    s(&a[8])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_inbound_parameters_name_the_field() {
    let (_pg, _client, w) = stack().await;
    let long = "9".repeat(100);
    let table: Vec<(String, &str)> = vec![
        ("/v1/inbound?dnis=1".into(), "src_ip"),
        ("/v1/inbound?src_ip=1.2.3&dnis=1".into(), "src_ip"),
        ("/v1/inbound?src_ip=192.0.2.7".into(), "dnis"),
        (format!("/v1/inbound?src_ip=192.0.2.7&dnis={long}"), "dnis"),
        ("/v1/inbound?src_ip=192.0.2.7&dnis=1&lrn=2".into(), "lrn"),
        ("/v1/credentials?user=a".into(), "realm"),
        (format!("/v1/credentials?user={long}&realm=r"), "user"),
    ];
    for (path, field) in table {
        let (status, e) = w.get_json(&path).await;
        assert_eq!(status, 400, "{path}: {e}");
        assert!(
            e["error"].as_str().unwrap_or("").starts_with(field),
            "{path}: {e}"
        );
    }
    let (code, msg) = w.rpc_error("did.route", json!({"dnis": "1"})).await;
    assert!(msg.starts_with("src_ip"), "{code} {msg}");
}

/// Issue 20: what a source address is (Kamailio verifies a known source's Identity only), the
/// same on `GET /v1/source` and RESP `SOURCE`; bad input names the field.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn source_look_up_on_both_surfaces() {
    let (_pg, _client, w) = stack().await;
    let table = [
        // customer 10001's source address (the demo's gateways are 127.0.0.1 too: customer first)
        ("127.0.0.1", "customer"),
        // trunk acme-main's network
        ("10.77.1.2", "customer"),
        // northstar's origination network
        ("192.0.2.7", "vendor"),
        // customer 10002's network
        ("198.51.100.1", "customer"),
        ("203.0.113.9", "unknown"),
        ("2001:db8::1", "unknown"),
    ];
    let cmds: Vec<Vec<&str>> = table.iter().map(|(ip, _)| vec!["SOURCE", *ip]).collect();
    let mut cmds: Vec<&[&str]> = cmds.iter().map(Vec::as_slice).collect();
    cmds.extend([&["SOURCE"][..], &["SOURCE", "not-an-ip"][..]]);
    let r = resp(w.resp_addr.unwrap(), &cmds).await;
    for (i, (ip, want)) in table.iter().enumerate() {
        let (status, http) = w.get_json(&format!("/v1/source?src_ip={ip}")).await;
        assert_eq!((status, http), (200, json!({ "source": want })), "{ip}");
        let Value::Array(a) = &r[i] else {
            panic!("{ip}: {:?}", r[i])
        };
        assert_eq!(a.iter().map(s).collect::<Vec<_>>(), [*want], "{ip}");
    }
    for (reply, field) in r[table.len()..].iter().zip(["SOURCE", "src_ip"]) {
        match reply {
            Value::Error(e) => assert!(e.contains(field), "{e}"),
            other => panic!("{other:?}"),
        }
    }
    for (path, field) in [
        ("/v1/source", "src_ip"),
        ("/v1/source?src_ip=1.2.3", "src_ip"),
        ("/v1/source?src_ip=192.0.2.7&x=1", "x"),
    ] {
        let (status, e) = w.get_json(path).await;
        assert_eq!(status, 400, "{path}: {e}");
        assert!(
            e["error"].as_str().unwrap_or("").starts_with(field),
            "{path}: {e}"
        );
    }
    let metrics = w.metrics().await;
    assert!(
        metrics.contains(r#"warpd_stir_source_checks_total{source="vendor"} 2"#),
        "{metrics}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_api_trunks_and_numbers() {
    let (_pg, client, w) = stack().await;
    let token = warpd::admin::create_token(&client, "ops", "admin", "test")
        .await
        .unwrap();
    let http = reqwest::Client::new();
    let base = w.admin_base.clone();
    let call = |method: reqwest::Method, path: &str, body: Option<serde_json::Value>| {
        let mut r = http
            .request(method, format!("{base}{path}"))
            .bearer_auth(&token);
        if let Some(b) = body {
            r = r.json(&b);
        }
        async move {
            let resp = r.send().await.unwrap();
            let status = resp.status().as_u16();
            (
                status,
                resp.json::<serde_json::Value>().await.unwrap_or_default(),
            )
        }
    };
    use reqwest::Method;
    let (s, v) = call(
        Method::POST,
        "/v1/admin/trunks",
        Some(json!({"name":"ops-t","customer":"10002"})),
    )
    .await;
    assert_eq!(s, 201, "{v}");
    // bad input names the field
    for (body, field) in [
        (json!({"name":"bad name","customer":"10002"}), "name"),
        (
            json!({"name":"x","customer":"10002","max_cps":-1}),
            "max_cps",
        ),
    ] {
        let (s, v) = call(Method::POST, "/v1/admin/trunks", Some(body)).await;
        assert_eq!(s, 422, "{v}");
        assert!(v.to_string().contains(field), "{field}: {v}");
    }
    let (s, v) = call(
        Method::POST,
        "/v1/admin/numbers",
        Some(json!({"number":"+12125550150","customer":"10002","trunk":"ops-t","inbound_rate":"0.002"})),
    )
    .await;
    assert_eq!(s, 201, "{v}");
    for (body, status, field) in [
        (
            json!({"number":"2125550151","customer":"10002"}),
            422,
            "number",
        ),
        (
            json!({"number":"+12125550151","customer":"10002","trunk":"acme-main"}),
            422,
            "trunk",
        ),
        (
            json!({"number":"+12125550151","customer":"10002","status":"gone"}),
            422,
            "status",
        ),
        (
            json!({"number":"+12125550151","customer":"10002","trunk":"nope"}),
            404,
            "nope",
        ),
    ] {
        let (s, v) = call(Method::POST, "/v1/admin/numbers", Some(body)).await;
        assert_eq!(s, status, "{v}");
        assert!(v.to_string().contains(field), "{field}: {v}");
    }
    // the list shows credentials as user@realm, never the HA1
    let (s, v) = call(Method::GET, "/v1/admin/trunks", None).await;
    assert_eq!(s, 200);
    let ha1: String = client
        .query_one("SELECT md5('acme:sip.example.net:s3cret')", &[])
        .await
        .unwrap()
        .get(0);
    assert!(!v.to_string().contains(&ha1), "{v}");
    assert!(v.to_string().contains("acme@sip.example.net"), "{v}");
    // moving a number is its own action
    let (s, v) = call(
        Method::POST,
        "/v1/admin/numbers/+12125550150/move",
        Some(json!({"customer":"10001","trunk":"acme-main"})),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    let (_, v) = call(Method::GET, "/v1/admin/numbers", None).await;
    let moved = v
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["number"] == "+12125550150")
        .unwrap()
        .clone();
    assert_eq!(
        (moved["customer"].clone(), moved["trunk"].clone()),
        (json!("10001"), json!("acme-main"))
    );
    let audit: i64 = client
        .query_one(
            "SELECT count(*) FROM audit_log WHERE action = 'number.update'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(audit, 1);
    let (s, _) = call(Method::DELETE, "/v1/admin/numbers/12125550150", None).await;
    assert_eq!(s, 200);
    let (_, doc) = w.get_json("/v1/openapi.json").await;
    assert!(doc["paths"]["/v1/admin/numbers/{number}/move"].is_object());
    assert!(doc["paths"]["/v1/admin/numbers/import"]["post"].is_object());
    // bulk import: a CSV body; bad lines named, nothing applied; then the good file lands, audited
    let upload = |csv: &'static str| {
        http.post(format!("{base}/v1/admin/numbers/import"))
            .bearer_auth(&token)
            .header("content-type", "text/csv")
            .body(csv)
            .send()
    };
    let r = upload("number,customer,trunk\n+12125550160,10002,ops-t\n+1,10002,\n")
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 422);
    let e = r.json::<serde_json::Value>().await.unwrap();
    assert!(
        e["error"].as_str().unwrap().contains("line 3: number:"),
        "{e}"
    );
    let r = upload("number,customer,trunk\n+12125550160,10002,ops-t\n+12125550161,10002,\n")
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let v = r.json::<serde_json::Value>().await.unwrap();
    assert_eq!(
        (v["rows"].clone(), v["inserted"].clone()),
        (json!(2), json!(2)),
        "{v}"
    );
    let audit: i64 = client
        .query_one(
            "SELECT count(*) FROM audit_log WHERE action = 'numbers.import' AND actor LIKE '%ops%'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(audit, 1);
}
