//! The admin API end to end: `server::run` in-process against a throwaway PostgreSQL; bearer
//! tokens and roles, audit rows, the OpenAPI document, CRUD errors, a deck uploaded over HTTP
//! changing the next dip without a restart, a refused deck changing nothing, shadow of a staged
//! version replaying the dips just made.

use crate::support;

use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tokio_util::sync::CancellationToken;
use warpd::config::Config;

/// Two international vendors and routes, customer 1001 selling 44 at 0.05, beta priced at 0.02.
const NETWORK: &str = support::demo::DECK_NETWORK;

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
        support::json(self.http.get(format!("{}/v1/route?{q}", self.base))).await
    }
}

type Server = tokio::task::JoinHandle<Result<(), warpd::server::ServeError>>;

/// `server::run` with `config` on a free port, once it answers `/readyz` with 200.
async fn serve(config: Config) -> (Api, CancellationToken, Server) {
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
    (api, shutdown, server)
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

    let example = support::warpd::EXAMPLE;
    let env = vec![
        ("WARPD_DATABASE__URL".to_string(), pg.url()),
        ("WARPD_RELOAD__DEBOUNCE_MS".to_string(), "50".to_string()),
        (
            "WARPD_ROUTING__DIP_CACHE_TTL_MS".to_string(),
            "0".to_string(),
        ),
    ];
    let config = Config::from_str_with_env(example, env).unwrap();
    let (api, shutdown, server) = serve(config).await;

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

/// A running warpd (in-process) on the deck test network with an admin, an ops and a readonly
/// token.
struct Stack {
    _pg: support::TestPg,
    client: tokio_postgres::Client,
    api: Api,
    admin: String,
    ops: String,
    ro: String,
    shutdown: CancellationToken,
    server: Server,
}

async fn start() -> Stack {
    let pg = support::TestPg::start();
    let mut client = warpd::db::connect(&pg.url()).await.unwrap();
    warpd::db::migrate(&mut client).await.unwrap();
    client.batch_execute(NETWORK).await.unwrap();
    let mut tokens = vec![];
    for (name, role) in [
        ("root", "admin"),
        ("deckops", "ops"),
        ("viewer", "readonly"),
    ] {
        tokens.push(
            warpd::admin::create_token(&client, name, role, "test")
                .await
                .unwrap(),
        );
    }
    let env = vec![
        ("WARPD_DATABASE__URL".to_string(), pg.url()),
        ("WARPD_RELOAD__DEBOUNCE_MS".to_string(), "50".to_string()),
        (
            "WARPD_ROUTING__DIP_CACHE_TTL_MS".to_string(),
            "0".to_string(),
        ),
        (
            "WARPD_CALLS__LIMITS_REFRESH_MS".to_string(),
            "100".to_string(),
        ),
    ];
    let config = Config::from_str_with_env(support::warpd::EXAMPLE, env).unwrap();
    let (api, shutdown, server) = serve(config).await;
    let ro = tokens.pop().unwrap();
    let ops = tokens.pop().unwrap();
    let admin = tokens.pop().unwrap();
    Stack {
        _pg: pg,
        client,
        api,
        admin,
        ops,
        ro,
        shutdown,
        server,
    }
}

impl Stack {
    async fn stop(self) {
        self.shutdown.cancel();
        let done = tokio::time::timeout(Duration::from_secs(15), self.server).await;
        assert!(
            matches!(done, Ok(Ok(Ok(())))),
            "server did not stop cleanly: {done:?}"
        );
    }

    /// Dips London for `ban` until `ok` accepts the answer (the snapshot reloads after a change).
    async fn dip_until(&self, ban: &str, what: &str, ok: impl Fn(&Value) -> bool) -> Value {
        self.dip_until_q(&format!("ban={ban}"), what, ok).await
    }

    /// [`Stack::dip_until`] with any identifying query (`ban=…[&call_id=…]`); `{n}` in it is
    /// replaced by a counter, so every dip can be a new call.
    async fn dip_until_q(&self, id: &str, what: &str, ok: impl Fn(&Value) -> bool) -> Value {
        let t = Instant::now();
        let mut n = 0;
        loop {
            n += 1;
            let q = format!(
                "{}&ani=%2B12125550100&dnis=%2B442071234567",
                id.replace("{n}", &n.to_string())
            );
            let a: Value = self
                .api
                .http
                .get(format!("{}/v1/route?{q}", self.api.base))
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            if ok(&a) {
                return a;
            }
            assert!(t.elapsed() < Duration::from_secs(15), "{what}: last {a}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn customer_limits_over_the_api_reach_the_dip() {
    let st = start().await;
    let (api, ops, ro, admin) = (&st.api, st.ops.as_str(), st.ro.as_str(), st.admin.as_str());

    // every limit is readable, one customer or all
    let (s, c) = api
        .call("GET", "/v1/admin/customers/1001", Some(ro), None)
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
    let (s, l) = api.call("GET", "/v1/admin/customers", Some(ro), None).await;
    assert_eq!((s, &l[0]), (200, &c));
    let (s, r) = api
        .call(
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
    let (s, e) = api
        .call("GET", "/v1/admin/customers/9999/sell_rates", Some(ro), None)
        .await;
    assert_eq!(s, 404, "{e}");
    let (s, e) = api
        .call("GET", "/v1/admin/customers/9999", Some(ro), None)
        .await;
    assert_eq!(s, 404, "{e}");
    assert!(
        e["error"].as_str().unwrap().contains("customer \"9999\""),
        "{e}"
    );

    // blocked prefixes: readonly may not write; ops blocks 4420 and the next dips get 403
    let block = json!({"prefix": "4420"});
    let path = "/v1/admin/customers/1001/blocked_prefixes";
    let (s, e) = api.call("POST", path, Some(ro), Some(block.clone())).await;
    assert_eq!(s, 403, "{e}");
    let (s, e) = api
        .call(
            "PATCH",
            "/v1/admin/customers/1001",
            Some(ro),
            Some(json!({"max_cps": 1})),
        )
        .await;
    assert_eq!(s, 403, "{e}");
    let (s, v) = api.call("POST", path, Some(ops), Some(block.clone())).await;
    assert_eq!(s, 201, "{v}");
    assert_eq!(v["after"]["blocked_prefixes"], json!(["4420"]), "{v}");
    let a = st
        .dip_until("1001", "blocked prefix", |a| a["sip_code"] == 403)
        .await;
    assert_eq!(a["reason"], "blocked prefix 4420", "{a}");
    let (s, e) = api.call("POST", path, Some(ops), Some(block)).await;
    assert_eq!(s, 409, "{e}");
    let (s, e) = api
        .call("POST", path, Some(ops), Some(json!({"prefix": "44x"})))
        .await;
    assert_eq!(s, 422, "{e}");
    assert!(e["error"].as_str().unwrap().starts_with("prefix: "), "{e}");
    let (s, l) = api.call("GET", path, Some(ro), None).await;
    assert_eq!((s, l), (200, json!(["4420"])));
    let (s, e) = api
        .call(
            "GET",
            "/v1/admin/customers/9999/blocked_prefixes",
            Some(ro),
            None,
        )
        .await;
    assert_eq!(s, 404, "{e}");
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
    let (s, e) = api
        .call("DELETE", &format!("{path}/4420"), Some(ro), None)
        .await;
    assert_eq!(s, 403, "{e}");
    let (s, v) = api
        .call("DELETE", &format!("{path}/4420"), Some(ops), None)
        .await;
    assert_eq!(
        (s, &v["after"]["blocked_prefixes"]),
        (200, &json!([])),
        "{v}"
    );
    st.dip_until("1001", "unblocked", |a| a["action"] == "route")
        .await;
    let (s, e) = api
        .call("DELETE", &format!("{path}/4420"), Some(ops), None)
        .await;
    assert_eq!(s, 404, "{e}");

    // allowed classes and the ceiling, by PATCH
    let (s, e) = api
        .call(
            "PATCH",
            "/v1/admin/customers/1001",
            Some(ops),
            Some(json!({"allowed_classes": ["domestic", "moon"]})),
        )
        .await;
    assert_eq!(s, 422, "{e}");
    assert!(
        e["error"]
            .as_str()
            .unwrap()
            .starts_with("allowed_classes[1]: "),
        "{e}"
    );
    for (body, field) in [
        (json!({"max_cps": -1}), "max_cps: "),
        (json!({"max_rate": "-0.1"}), "max_rate: "),
        (
            json!({"blocked_prefixes": ["1900", "+1976"]}),
            "blocked_prefixes[1]: ",
        ),
        (json!({"billing_inc_seconds": 0}), "billing_inc_seconds: "),
        (
            json!({"margin_rules": [{"prefix": "44", "margin_percent": "ten"}]}),
            "margin_rules[0].margin_percent: ",
        ),
    ] {
        let (s, e) = api
            .call("PATCH", "/v1/admin/customers/1001", Some(ops), Some(body))
            .await;
        assert_eq!(s, 422, "{e}");
        assert!(
            e["error"].as_str().unwrap().starts_with(field),
            "{field}: {e}"
        );
    }
    let (s, e) = api
        .call(
            "PATCH",
            "/v1/admin/customers/1001",
            Some(ops),
            Some(json!({"max_results": "x"})),
        )
        .await;
    assert_eq!(s, 400, "{e}");
    let (s, v) = api
        .call(
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
        .call(
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
        .call(
            "PATCH",
            "/v1/admin/customers/1001",
            Some(ops),
            Some(json!({"max_rate": null})),
        )
        .await;
    assert_eq!((s, &v["after"]["max_rate"]), (200, &Value::Null), "{v}");
    st.dip_until("1001", "no ceiling", |a| a["action"] == "route")
        .await;

    // a customer priced by margin rules, created with every limit
    let (s, e) = api
        .call(
            "POST",
            "/v1/admin/customers",
            Some(ops),
            Some(json!({"ban": "2002"})),
        )
        .await;
    assert_eq!(s, 403, "{e}");
    let (s, v) = api
        .call(
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
        .call(
            "POST",
            "/v1/admin/customers",
            Some(admin),
            Some(json!({"ban": "2002"})),
        )
        .await;
    assert_eq!(s, 409, "{e}");
    let (s, v) = api
        .call(
            "POST",
            "/v1/admin/customers/2002/partitions",
            Some(ops),
            Some(json!({"partition": "intl"})),
        )
        .await;
    assert_eq!(s, 201, "{v}");
    // the 4420 rule: 0.02 × 1.5
    let a = st
        .dip_until("2002", "margin rule", |a| a["action"] == "route")
        .await;
    assert_eq!(a["routes"][0]["customer_rate"].as_f64(), Some(0.03), "{a}");
    // the margin report covers customers priced by margin rules: beta's 44 under the default
    // margin, and 4420 under its own rule (the price the dip just gave)
    let (s, m) = api
        .call("GET", "/v1/admin/margins?ban=2002", Some(ro), None)
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
        .call(
            "PATCH",
            "/v1/admin/customers/2002",
            Some(ops),
            Some(json!({"margin_rules": []})),
        )
        .await;
    assert_eq!((s, &v["after"]["margin_rules"]), (200, &json!([])), "{v}");
    st.dip_until("2002", "default margin", |a| {
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
            .call("PATCH", "/v1/admin/customers/2002", Some(ops), Some(body))
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

    // call limits reach the dip too (through the calls service's periodic refresh)
    let (s, v) = api
        .call(
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
        .call(
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
        .call(
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn get_one_vendor_route_partition() {
    let st = start().await;
    let (api, ro) = (&st.api, st.ro.as_str());
    let (s, v) = api
        .call("GET", "/v1/admin/vendors/Alpha", Some(ro), None)
        .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(
        (
            v["billing_model"].as_str(),
            v["gateways"][0]["name"].as_str(),
            v["routes"].clone()
        ),
        (Some("INTERNATIONAL"), Some("gw"), json!(["alpha"])),
        "{v}"
    );
    let (s, r) = api
        .call("GET", "/v1/admin/routes/beta", Some(ro), None)
        .await;
    assert_eq!(s, 200, "{r}");
    assert_eq!(
        (
            r["vendor"].as_str(),
            r["rate_rows"].as_i64(),
            r["partitions"].clone()
        ),
        (Some("Beta"), Some(1), json!(["intl"])),
        "{r}"
    );
    let (s, p) = api
        .call("GET", "/v1/admin/partitions/intl", Some(ro), None)
        .await;
    assert_eq!(s, 200, "{p}");
    assert_eq!(
        (p["routes"].clone(), p["customers"].clone()),
        (json!(["alpha", "beta"]), json!(["1001"]))
    );
    for (path, what) in [
        ("/v1/admin/vendors/Nope", "vendor \"Nope\""),
        ("/v1/admin/routes/nope", "route \"nope\""),
        ("/v1/admin/partitions/nowhere", "partition \"nowhere\""),
    ] {
        let (s, e) = api.call("GET", path, Some(ro), None).await;
        assert_eq!(s, 404, "{path}: {e}");
        assert!(e["error"].as_str().unwrap().contains(what), "{e}");
    }
    let (s, _) = api.call("GET", "/v1/admin/vendors/Alpha", None, None).await;
    assert_eq!(s, 401);
    st.stop().await;
}

/// A multipart/form-data body (boundary `b0undary`): (field, file name, value).
fn form(parts: &[(&str, Option<&str>, &str)]) -> String {
    let mut s = String::new();
    for (name, file, v) in parts {
        s.push_str(&format!(
            "--b0undary\r\nContent-Disposition: form-data; name=\"{name}\""
        ));
        if let Some(f) = file {
            s.push_str(&format!("; filename=\"{f}\"\r\nContent-Type: text/csv"));
        }
        s.push_str(&format!("\r\n\r\n{v}\r\n"));
    }
    s.push_str("--b0undary--\r\n");
    s
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deck_upload_as_multipart_form() {
    let st = start().await;
    let (api, ops, ro) = (&st.api, st.ops.as_str(), st.ro.as_str());
    let (_, doc) = api.call("GET", "/v1/openapi.json", None, None).await;
    assert!(
        doc["paths"]["/v1/admin/routes/{route}/decks"]["post"]["requestBody"]["content"]
            ["multipart/form-data"]
            .is_object(),
        "{doc}"
    );
    let post = |token: &str, path: &str, body: String| {
        api.http
            .post(format!("{}{path}", api.base))
            .bearer_auth(token)
            .header("content-type", "multipart/form-data; boundary=b0undary")
            .body(body)
            .send()
    };
    let versions = || async {
        let (_, v) = api
            .call("GET", "/v1/admin/routes/alpha/decks", Some(ro), None)
            .await;
        v.as_array().map(Vec::len).unwrap_or(0)
    };
    let deck = "Code,Destination,Price\n44,UK,0.01\n";

    // readonly: 403; no file part: 400 naming it; a dry run as a form field stores nothing
    let r = post(
        ro,
        "/v1/admin/routes/alpha/decks",
        form(&[("file", Some("a.csv"), deck)]),
    )
    .await
    .unwrap();
    assert_eq!(r.status().as_u16(), 403);
    let r = post(
        ops,
        "/v1/admin/routes/alpha/decks",
        form(&[("effective", None, "2026-01-01T00:00Z")]),
    )
    .await
    .unwrap();
    assert_eq!(r.status().as_u16(), 400);
    let e: Value = r.json().await.unwrap();
    assert!(e["error"].as_str().unwrap().starts_with("file: "), "{e}");
    let r = post(
        ops,
        "/v1/admin/routes/alpha/decks",
        form(&[("file", Some("a.csv"), deck), ("dry_run", None, "true")]),
    )
    .await
    .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    assert_eq!(versions().await, 0);
    // a form field contradicting the query
    let r = post(
        ops,
        "/v1/admin/routes/alpha/decks?dry_run=false",
        form(&[("file", Some("a.csv"), deck), ("dry_run", None, "true")]),
    )
    .await
    .unwrap();
    assert_eq!(r.status().as_u16(), 400);
    // a bad row inside the file part: 422 with its line, under the part's file name
    let r = post(
        ops,
        "/v1/admin/routes/alpha/decks",
        form(&[("file", Some("lumen.csv"), "Code,Price\n44,0.01\n4420,x\n")]),
    )
    .await
    .unwrap();
    assert_eq!(r.status().as_u16(), 422);
    let e: Value = r.json().await.unwrap();
    assert!(
        e["error"].as_str().unwrap().contains("lumen.csv line 3"),
        "{e}"
    );
    assert_eq!(versions().await, 0);

    // the real thing: options after the file part, the version named after the file
    let r = post(
        ops,
        "/v1/admin/routes/alpha/decks",
        form(&[
            ("file", Some("alpha-form.csv"), deck),
            ("skip_invalid", None, "false"),
        ]),
    )
    .await
    .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let rep: Value = r.json().await.unwrap();
    assert_eq!(
        (rep["rows"].as_u64(), rep["state"].as_str()),
        (Some(1), Some("live")),
        "{rep}"
    );
    let (_, v) = api
        .call("GET", "/v1/admin/routes/alpha/decks", Some(ro), None)
        .await;
    assert_eq!(v.as_array().unwrap().len(), 1, "{v}");
    assert_eq!(v[0]["source"], "alpha-form.csv", "{v}");
    let a = st
        .dip_until("1001", "multipart deck", |a| {
            a["routes"][0]["route_id"] == "alpha"
        })
        .await;
    assert_eq!(a["routes"][0]["rate"].as_f64(), Some(0.01), "{a}");
    st.stop().await;
}
