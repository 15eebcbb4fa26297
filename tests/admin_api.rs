//! The admin API end to end: `server::run` in-process against a throwaway PostgreSQL; bearer
//! tokens and roles, audit rows, the OpenAPI document, CRUD errors, a deck uploaded over HTTP
//! changing the next dip without a restart, a refused deck changing nothing, shadow of a staged
//! version replaying the dips just made.

mod support;

use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tokio_util::sync::CancellationToken;
use warpd::config::Config;

/// Two international vendors and routes, customer 1001 selling 44 at 0.05, beta priced at 0.02.
const NETWORK: &str = include_str!("support/deck_network.sql");

struct Api {
    base: String,
    http: reqwest::Client,
}

impl Api {
    async fn call(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> (u16, Value) {
        let m = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let mut r = self.http.request(m, format!("{}{path}", self.base));
        if let Some(t) = token {
            r = r.bearer_auth(t);
        }
        if let Some(b) = body {
            r = r.json(&b);
        }
        let resp = r.send().await.unwrap();
        let status = resp.status().as_u16();
        (status, resp.json().await.unwrap_or(Value::Null))
    }

    async fn upload(&self, path: &str, token: &str, body: &'static str) -> (u16, Value) {
        let resp = self
            .http
            .post(format!("{}{path}", self.base))
            .bearer_auth(token)
            .body(body)
            .send()
            .await
            .unwrap();
        let status = resp.status().as_u16();
        (status, resp.json().await.unwrap_or(Value::Null))
    }

    async fn london(&self) -> Value {
        let q = "ban=1001&ani=%2B12125550100&dnis=%2B442071234567";
        self.http
            .get(format!("{}/v1/route?{q}", self.base))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_api_roles_audit_openapi_and_decks() {
    let pg = support::TestPg::start();
    let mut client = warpd::db::connect(&pg.url()).await.unwrap();
    warpd::db::migrate(&mut client).await.unwrap();
    client.batch_execute(NETWORK).await.unwrap();
    let admin = warpd::admin::create_token(&client, "root", "admin", "test")
        .await
        .unwrap();
    let ops = warpd::admin::create_token(&client, "deckops", "ops", "test")
        .await
        .unwrap();
    let ro = warpd::admin::create_token(&client, "viewer", "readonly", "test")
        .await
        .unwrap();
    // only hashes are stored
    let stored: i64 = client
        .query_one(
            "SELECT count(*) FROM admin_tokens WHERE token_sha256 IN ($1, $2, $3)",
            &[&admin, &ops, &ro],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(stored, 0);

    let example = include_str!("../warpd.example.toml");
    let env = vec![
        ("WARPD_DATABASE__URL".to_string(), pg.url()),
        ("WARPD_RELOAD__DEBOUNCE_MS".to_string(), "50".to_string()),
        (
            "WARPD_ROUTING__DIP_CACHE_TTL_MS".to_string(),
            "0".to_string(),
        ),
    ];
    let config = Config::from_str_with_env(example, env).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let api = Api {
        base: format!("http://{}", listener.local_addr().unwrap()),
        http: reqwest::Client::new(),
    };
    let shutdown = CancellationToken::new();
    let server = tokio::spawn(warpd::server::run(config, listener, shutdown.clone()));
    let t = Instant::now();
    while api
        .http
        .get(format!("{}/readyz", api.base))
        .send()
        .await
        .map(|r| r.status().as_u16())
        .unwrap_or(0)
        != 200
    {
        assert!(t.elapsed() < Duration::from_secs(20), "never ready");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // OpenAPI, no token needed
    let (s, doc) = api.call("GET", "/v1/openapi.json", None, None).await;
    assert_eq!(s, 200);
    assert!(doc["paths"]["/v1/admin/routes/{route}/decks"]["post"].is_object());

    // tokens and roles
    let (s, e) = api.call("GET", "/v1/admin/vendors", None, None).await;
    assert_eq!(s, 401, "{e}");
    let (s, _) = api
        .call("GET", "/v1/admin/vendors", Some("wdt_bogus"), None)
        .await;
    assert_eq!(s, 401);
    let (s, v) = api.call("GET", "/v1/admin/vendors", Some(&ro), None).await;
    assert_eq!((s, v.as_array().map(Vec::len)), (200, Some(2)), "{v}");
    let gamma = json!({"name": "Gamma", "billing_model": "INTERNATIONAL"});
    let (s, e) = api
        .call("POST", "/v1/admin/vendors", Some(&ro), Some(gamma.clone()))
        .await;
    assert_eq!(s, 403, "{e}");
    assert!(
        e["error"].as_str().unwrap().contains("needs role admin"),
        "{e}"
    );
    let (s, e) = api
        .call("POST", "/v1/admin/vendors", Some(&ops), Some(gamma.clone()))
        .await;
    assert_eq!(s, 403, "{e}");
    let (s, v) = api
        .call(
            "POST",
            "/v1/admin/vendors",
            Some(&admin),
            Some(gamma.clone()),
        )
        .await;
    assert_eq!(s, 201, "{v}");
    let (s, e) = api
        .call("POST", "/v1/admin/vendors", Some(&admin), Some(gamma))
        .await;
    assert_eq!(s, 409, "{e}");
    let (s, e) = api
        .call(
            "POST",
            "/v1/admin/vendors",
            Some(&admin),
            Some(json!({"name": "Delta", "billing_model": "PIGEON"})),
        )
        .await;
    assert_eq!(s, 422, "{e}");
    let (s, e) = api
        .call(
            "POST",
            "/v1/admin/vendors",
            Some(&admin),
            Some(json!({"name": "Delta", "colour": 1})),
        )
        .await;
    assert_eq!(s, 400, "{e}");
    // a partition that does not exist
    let (s, e) = api
        .call(
            "POST",
            "/v1/admin/customers/1001/partitions",
            Some(&ops),
            Some(json!({"partition": "nowhere"})),
        )
        .await;
    assert_eq!(s, 404, "{e}");
    assert!(
        e["error"]
            .as_str()
            .unwrap()
            .contains("partition \"nowhere\""),
        "{e}"
    );
    let (s, e) = api
        .call(
            "POST",
            "/v1/admin/partitions/nowhere/routes",
            Some(&ops),
            Some(json!({"route": "alpha"})),
        )
        .await;
    assert_eq!(s, 404, "{e}");

    // audit: who, what, before/after
    let row = client
        .query_one(
            "SELECT actor, action, target, before IS NULL, after->>'name' FROM audit_log \
             WHERE action = 'vendor.create'",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(row.get::<_, String>(0), "token:root");
    assert_eq!(row.get::<_, String>(2), "vendor Gamma");
    assert!(row.get::<_, bool>(3));
    assert_eq!(row.get::<_, String>(4), "Gamma");
    let (s, a) = api.call("GET", "/v1/admin/audit", Some(&ro), None).await;
    assert_eq!(s, 403, "{a}");
    let (s, a) = api.call("GET", "/v1/admin/audit", Some(&admin), None).await;
    assert_eq!(s, 200);
    assert!(a
        .as_array()
        .unwrap()
        .iter()
        .any(|r| r["action"] == "vendor.create"));

    // before the deck: beta at 0.02
    let a = api.london().await;
    assert_eq!(
        (
            a["routes"][0]["route_id"].as_str(),
            a["routes"][0]["rate"].as_f64()
        ),
        (Some("beta"), Some(0.02)),
        "{a}"
    );

    // a bad deck over HTTP: 422 naming the line, nothing changes
    let (s, e) = api
        .upload(
            "/v1/admin/routes/alpha/decks?name=bad.csv",
            &ops,
            "Code,Price\n44,0.01\n4420,x\n",
        )
        .await;
    assert_eq!(s, 422, "{e}");
    assert!(
        e["error"].as_str().unwrap().contains("bad.csv line 3"),
        "{e}"
    );
    let (s, e) = api
        .upload("/v1/admin/routes/alpha/decks", &ro, "Code,Price\n44,0.01\n")
        .await;
    assert_eq!(s, 403, "{e}");
    let (s, e) = api
        .upload("/v1/admin/routes/nope/decks", &ops, "Code,Price\n44,0.01\n")
        .await;
    assert_eq!(s, 404, "{e}");

    // a good deck: the next dips change without a restart
    let (s, r) = api
        .upload(
            "/v1/admin/routes/alpha/decks?name=alpha.csv",
            &ops,
            "Code,Destination,Price\n44,UK,0.01\n",
        )
        .await;
    assert_eq!(s, 200, "{r}");
    assert_eq!(
        (r["rows"].as_u64(), r["state"].as_str()),
        (Some(1), Some("live"))
    );
    let t = Instant::now();
    loop {
        let a = api.london().await;
        if a["routes"][0]["route_id"] == "alpha" {
            assert_eq!(a["routes"][0]["rate"].as_f64(), Some(0.01));
            break;
        }
        assert!(
            t.elapsed() < Duration::from_secs(15),
            "deck not picked up: {a}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // staged version, then shadow replays the dips just made (from the dip log)
    let (s, st) = api
        .upload(
            "/v1/admin/routes/alpha/decks?stage=true",
            &ops,
            "Code,Price\n44,0.045\n",
        )
        .await;
    assert_eq!((s, st["state"].as_str()), (200, Some("staged")), "{st}");
    let staged = st["version"].as_i64().unwrap();
    let (s, sh) = api
        .call(
            "GET",
            &format!("/v1/admin/routes/alpha/decks/{staged}/shadow"),
            Some(&ops),
            None,
        )
        .await;
    assert_eq!(s, 200, "{sh}");
    assert!(sh["samples"].as_u64().unwrap() >= 2, "{sh}");
    assert!(sh["changed"].as_u64().unwrap() >= 1, "{sh}");
    assert_eq!(sh["destinations"][0]["destination"], "4420", "{sh}");

    let (s, vs) = api
        .call("GET", "/v1/admin/routes/alpha/decks", Some(&ro), None)
        .await;
    assert_eq!((s, vs.as_array().map(Vec::len)), (200, Some(2)), "{vs}");
    let (s, d) = api
        .call(
            "GET",
            &format!("/v1/admin/routes/alpha/decks/diff?to={staged}"),
            Some(&ro),
            None,
        )
        .await;
    assert_eq!((s, d["up"].as_i64()), (200, Some(1)), "{d}");
    let resp = api
        .http
        .get(format!(
            "{}/v1/admin/routes/alpha/decks/current/export",
            api.base
        ))
        .bearer_auth(&ro)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    assert_eq!(
        resp.text().await.unwrap(),
        "Code,Destination,Price\n44,UK,0.01\n"
    );
    let (s, m) = api
        .call("GET", "/v1/admin/margins?ban=1001", Some(&ro), None)
        .await;
    assert_eq!(s, 200, "{m}");
    assert_eq!(m[0]["route"], "alpha");
    assert_eq!(m[0]["margin"], "0.04");

    // activate, then roll back over HTTP
    let (s, v) = api
        .call(
            "POST",
            &format!("/v1/admin/routes/alpha/decks/{staged}/activate"),
            Some(&ops),
            None,
        )
        .await;
    assert_eq!((s, v["state"].as_str()), (200, Some("live")), "{v}");
    let (s, v) = api
        .call(
            "POST",
            "/v1/admin/routes/alpha/decks/rollback",
            Some(&ops),
            None,
        )
        .await;
    assert_eq!((s, v["rolled_back"].as_i64()), (200, Some(staged)), "{v}");
    let (s, e) = api
        .call(
            "POST",
            &format!("/v1/admin/routes/alpha/decks/{staged}/activate"),
            Some(&ro),
            None,
        )
        .await;
    assert_eq!(s, 403, "{e}");

    // customer limits and source IPs
    let (s, v) = api
        .call(
            "PATCH",
            "/v1/admin/customers/1001",
            Some(&admin),
            Some(json!({"max_rate": "0.5"})),
        )
        .await;
    assert_eq!(
        (s, v["after"]["max_rate"].as_f64()),
        (200, Some(0.5)),
        "{v}"
    );
    let (s, v) = api
        .call(
            "POST",
            "/v1/admin/customers/1001/source_ips",
            Some(&admin),
            Some(json!({"cidr": "192.0.2.7/24"})),
        )
        .await;
    assert_eq!(
        (s, v["after"]["cidr"].as_str()),
        (201, Some("192.0.2.0/24")),
        "{v}"
    );
    let (s, e) = api
        .call(
            "POST",
            "/v1/admin/customers/1001/source_ips",
            Some(&admin),
            Some(json!({"cidr": "nope"})),
        )
        .await;
    assert_eq!(s, 400, "{e}");
    let (s, v) = api
        .call(
            "DELETE",
            "/v1/admin/customers/1001/source_ips/192.0.2.0%2F24",
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(s, 200, "{v}");

    // exclusions and overrides: a global block of 4420 rejects the next dips, deleting it restores
    let (s, e) = api
        .call(
            "POST",
            "/v1/admin/overrides",
            Some(&ops),
            Some(json!({"route": "nope"})),
        )
        .await;
    assert_eq!(s, 404, "{e}");
    let (s, ex) = api
        .call(
            "POST",
            "/v1/admin/exclusions",
            Some(&ops),
            Some(json!({"prefix": "4420", "note": "fraud"})),
        )
        .await;
    assert_eq!(s, 201, "{ex}");
    let id = ex["after"]["id"].as_i64().unwrap();
    let t = Instant::now();
    while api.london().await["sip_code"] != 403 {
        assert!(
            t.elapsed() < Duration::from_secs(15),
            "exclusion not picked up"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (s, _) = api
        .call(
            "DELETE",
            &format!("/v1/admin/exclusions/{id}"),
            Some(&ops),
            None,
        )
        .await;
    assert_eq!(s, 200);
    let (s, e) = api
        .call(
            "DELETE",
            &format!("/v1/admin/exclusions/{id}"),
            Some(&ops),
            None,
        )
        .await;
    assert_eq!(s, 404, "{e}");

    // numbering imports: a DNO list over HTTP; a bad one is refused naming the line
    let resp = api
        .http
        .post(format!("{}/v1/admin/numbering/dno", api.base))
        .bearer_auth(&ops)
        .body("number,reason\n+18005550100,fraud\n")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    let n: i64 = client
        .query_one("SELECT count(*) FROM dno WHERE number = '18005550100'", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(n, 1);
    let (s, e) = api
        .upload("/v1/admin/numbering/dno", &ops, "number,reason\nabc,x\n")
        .await;
    assert_eq!(s, 422, "{e}");
    assert!(e["error"].as_str().unwrap().contains("line 2"), "{e}");
    let (s, e) = api.upload("/v1/admin/numbering/lerg", &ops, "x\n").await;
    assert_eq!(s, 404, "{e}");

    // revoked tokens stop working
    let (s, _) = api
        .call("DELETE", "/v1/admin/tokens/viewer", Some(&admin), None)
        .await;
    assert_eq!(s, 200);
    let (s, _) = api.call("GET", "/v1/admin/vendors", Some(&ro), None).await;
    assert_eq!(s, 401);

    shutdown.cancel();
    let done = tokio::time::timeout(Duration::from_secs(15), server).await;
    assert!(
        matches!(done, Ok(Ok(Ok(())))),
        "server did not stop cleanly: {done:?}"
    );
}
