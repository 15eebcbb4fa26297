//! The admin API end to end: `server::run` in-process against a throwaway PostgreSQL; bearer
//! tokens and roles, audit rows, the OpenAPI document, CRUD errors (bad requests as one table), a
//! deck uploaded over HTTP changing the next dip without a restart, a refused deck changing
//! nothing, shadow of a staged version replaying the dips just made, customer limits reaching the
//! dip.

mod audit;
mod customers;
mod deck_bombs;
mod decks;
mod stir;

use std::ops::Deref;

use serde_json::{json, Value};

use crate::support::{self, TestPg, Warpd};

/// A running warpd (in-process) on the deck test network (`support::demo::DECK_NETWORK`) with an
/// admin, an ops and a readonly token.
struct Stack {
    _pg: TestPg,
    client: tokio_postgres::Client,
    warpd: Warpd,
    admin: String,
    ops: String,
    ro: String,
}

async fn start() -> Stack {
    let pg = TestPg::start();
    let client = support::demo::deck_network_db(&pg).await;
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
    let warpd = Warpd::builder(&pg)
        .env("WARPD_ROUTING__DIP_CACHE_TTL_MS", "0")
        .env("WARPD_CALLS__LIMITS_REFRESH_MS", "100")
        .start()
        .await;
    let ro = tokens.pop().unwrap();
    let ops = tokens.pop().unwrap();
    let admin = tokens.pop().unwrap();
    Stack {
        _pg: pg,
        client,
        warpd,
        admin,
        ops,
        ro,
    }
}

impl Deref for Stack {
    type Target = Warpd;
    fn deref(&self) -> &Warpd {
        &self.warpd
    }
}

impl Stack {
    async fn stop(self) {
        self.warpd.stop().await;
    }

    /// London from customer 1001.
    async fn london(&self) -> Value {
        self.dip("ban=1001&ani=%2B12125550100&dnis=%2B442071234567")
            .await
    }

    /// Dips London for `ban` until `ok` accepts the answer (the snapshot reloads after a change).
    async fn dip_until(&self, ban: &str, what: &str, ok: impl Fn(&Value) -> bool) -> Value {
        self.dip_until_q(&format!("ban={ban}"), what, ok).await
    }

    /// [`Stack::dip_until`] with any identifying query (`ban=…[&call_id=…]`); `{n}` in it is
    /// replaced by a counter, so every dip can be a new call.
    async fn dip_until_q(&self, id: &str, what: &str, ok: impl Fn(&Value) -> bool) -> Value {
        let mut n = 0;
        let ok = &ok;
        support::eventually(what, support::DEADLINE, || {
            n += 1;
            let q = format!(
                "{}&ani=%2B12125550100&dnis=%2B442071234567",
                id.replace("{n}", &n.to_string())
            );
            async move {
                let a = self.dip(&q).await;
                if ok(&a) {
                    Ok(a)
                } else {
                    Err(a.to_string())
                }
            }
        })
        .await
    }

    /// Like [`Stack::dip_until`] over the priced answer ([`support::Api::priced`]: with rates).
    async fn priced_until(&self, ban: &str, what: &str, ok: impl Fn(&Value) -> bool) -> Value {
        let q = format!("ban={ban}&ani=%2B12125550100&dnis=%2B442071234567");
        let (q, ok) = (&q, &ok);
        support::eventually(what, support::DEADLINE, || async move {
            let a = self.priced(q).await;
            if ok(&a) {
                Ok(a)
            } else {
                Err(a.to_string())
            }
        })
        .await
    }

    fn token(&self, who: Who) -> Option<&str> {
        match who {
            Who::Admin => Some(&self.admin),
            Who::Ops => Some(&self.ops),
            Who::Ro => Some(&self.ro),
            Who::Nobody => None,
        }
    }

    /// Sends each bad request and checks its status and error; afterwards customer 1001 and the
    /// vendors are as they were (a refused request changes nothing).
    async fn refuses(&self, cases: &[Bad]) {
        let (_, customer) = self
            .request("GET", "/v1/admin/customers/1001", Some(&self.ro), None)
            .await;
        let (_, vendors) = self
            .request("GET", "/v1/admin/vendors", Some(&self.ro), None)
            .await;
        for c in cases {
            let token = self.token(c.who);
            let (s, e) = match &c.body {
                Body::Empty => self.request(c.method, c.path, token, None).await,
                Body::Json(v) => self.request(c.method, c.path, token, Some(v.clone())).await,
                Body::Raw(text) => {
                    assert_eq!(c.method, "POST", "{}: raw bodies are uploads", c.case);
                    self.upload(c.path, token.unwrap_or_default(), *text).await
                }
            };
            assert_eq!(s, c.status, "{}: {e}", c.case);
            let error = e["error"].as_str().unwrap_or_default();
            match c.error {
                Expect::Any => {}
                Expect::Names(what) => {
                    assert!(
                        error.contains(what),
                        "{}: error should name {what}: {e}",
                        c.case
                    )
                }
                Expect::Field(field) => assert!(
                    error.starts_with(&format!("{field}: ")),
                    "{}: error should start with field {field}: {e}",
                    c.case
                ),
            }
        }
        let (_, after) = self
            .request("GET", "/v1/admin/customers/1001", Some(&self.ro), None)
            .await;
        assert_eq!(after, customer, "a refused request changed customer 1001");
        let (_, after) = self
            .request("GET", "/v1/admin/vendors", Some(&self.ro), None)
            .await;
        assert_eq!(after, vendors, "a refused request changed the vendors");
    }
}

/// Whose token a request carries.
#[derive(Clone, Copy)]
enum Who {
    Admin,
    Ops,
    Ro,
    Nobody,
}

/// A request body.
enum Body {
    Empty,
    Json(Value),
    /// an upload (`POST`, CSV text)
    Raw(&'static str),
}

/// What the `error` of a refusal must say.
#[derive(Clone, Copy)]
enum Expect {
    Any,
    /// contains this text (the culprit: a name, a line)
    Names(&'static str),
    /// starts with `{field}: ` (the offending field of the body)
    Field(&'static str),
}

/// A request the admin API must refuse: (case, method, path, token, body, status, error).
struct Bad {
    case: &'static str,
    method: &'static str,
    path: &'static str,
    who: Who,
    body: Body,
    status: u16,
    error: Expect,
}

const fn bad(
    case: &'static str,
    method: &'static str,
    path: &'static str,
    who: Who,
    body: Body,
    status: u16,
    error: Expect,
) -> Bad {
    Bad {
        case,
        method,
        path,
        who,
        body,
        status,
        error,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_requests_are_refused_naming_the_culprit_and_change_nothing() {
    use Body::*;
    use Expect::*;
    use Who::*;
    let st = start().await;
    let gamma = || json!({"name": "Gamma", "billing_model": "INTERNATIONAL"});
    let customer = "/v1/admin/customers/1001";
    let blocked = "/v1/admin/customers/1001/blocked_prefixes";
    st.refuses(&[
        // tokens and roles
        bad(
            "no token",
            "GET",
            "/v1/admin/vendors",
            Nobody,
            Empty,
            401,
            Any,
        ),
        bad(
            "no token, one vendor",
            "GET",
            "/v1/admin/vendors/Alpha",
            Nobody,
            Empty,
            401,
            Any,
        ),
        bad(
            "vendor by readonly",
            "POST",
            "/v1/admin/vendors",
            Ro,
            Json(gamma()),
            403,
            Names("needs role admin"),
        ),
        bad(
            "vendor by ops",
            "POST",
            "/v1/admin/vendors",
            Ops,
            Json(gamma()),
            403,
            Any,
        ),
        bad(
            "audit by readonly",
            "GET",
            "/v1/admin/audit",
            Ro,
            Empty,
            403,
            Any,
        ),
        bad(
            "customer by ops",
            "POST",
            "/v1/admin/customers",
            Ops,
            Json(json!({"ban": "2002"})),
            403,
            Any,
        ),
        bad(
            "customer PATCH by readonly",
            "PATCH",
            customer,
            Ro,
            Json(json!({"max_cps": 1})),
            403,
            Any,
        ),
        bad(
            "blocked prefix by readonly",
            "POST",
            blocked,
            Ro,
            Json(json!({"prefix": "4420"})),
            403,
            Any,
        ),
        bad(
            "blocked prefix DELETE by readonly",
            "DELETE",
            "/v1/admin/customers/1001/blocked_prefixes/4420",
            Ro,
            Empty,
            403,
            Any,
        ),
        // bodies: 400 malformed, 422 invalid value naming the field
        bad(
            "vendor with an unknown billing model",
            "POST",
            "/v1/admin/vendors",
            Admin,
            Json(json!({"name": "Delta", "billing_model": "PIGEON"})),
            422,
            Any,
        ),
        bad(
            "vendor with an unknown field",
            "POST",
            "/v1/admin/vendors",
            Admin,
            Json(json!({"name": "Delta", "colour": 1})),
            400,
            Any,
        ),
        bad(
            "source IP that is no CIDR",
            "POST",
            "/v1/admin/customers/1001/source_ips",
            Admin,
            Json(json!({"cidr": "nope"})),
            400,
            Any,
        ),
        bad(
            "malformed blocked prefix",
            "POST",
            blocked,
            Ops,
            Json(json!({"prefix": "44x"})),
            422,
            Field("prefix"),
        ),
        bad(
            "unknown destination class",
            "PATCH",
            customer,
            Ops,
            Json(json!({"allowed_classes": ["domestic", "moon"]})),
            422,
            Field("allowed_classes[1]"),
        ),
        bad(
            "emergency callback that is no number",
            "PATCH",
            customer,
            Ops,
            Json(json!({"emergency_callback": "911"})),
            422,
            Field("emergency_callback"),
        ),
        bad(
            "negative CPS",
            "PATCH",
            customer,
            Ops,
            Json(json!({"max_cps": -1})),
            422,
            Field("max_cps"),
        ),
        bad(
            "negative rate ceiling",
            "PATCH",
            customer,
            Ops,
            Json(json!({"max_rate": "-0.1"})),
            422,
            Field("max_rate"),
        ),
        bad(
            "blocked prefix with a plus",
            "PATCH",
            customer,
            Ops,
            Json(json!({"blocked_prefixes": ["1900", "+1976"]})),
            422,
            Field("blocked_prefixes[1]"),
        ),
        bad(
            "zero billing increment",
            "PATCH",
            customer,
            Ops,
            Json(json!({"billing_inc_seconds": 0})),
            422,
            Field("billing_inc_seconds"),
        ),
        bad(
            "margin that is no number",
            "PATCH",
            customer,
            Ops,
            Json(json!({"margin_rules": [{"prefix": "44", "margin_percent": "ten"}]})),
            422,
            Field("margin_rules[0].margin_percent"),
        ),
        bad(
            "max_results of the wrong type",
            "PATCH",
            customer,
            Ops,
            Json(json!({"max_results": "x"})),
            400,
            Any,
        ),
        bad(
            "DNO list with a bad number",
            "POST",
            "/v1/admin/numbering/dno",
            Ops,
            Raw("number,reason\nabc,x\n"),
            422,
            Names("line 2"),
        ),
        bad(
            "customer partition window in a time zone that does not exist (stored, it failed every snapshot reload)",
            "POST",
            "/v1/admin/customers/1001/partitions",
            Ops,
            Json(json!({"partition": "intl", "tz": "Mars/Olympus"})),
            422,
            Field("tz"),
        ),
        // things that do not exist
        bad(
            "customer partition that does not exist",
            "POST",
            "/v1/admin/customers/1001/partitions",
            Ops,
            Json(json!({"partition": "nowhere"})),
            404,
            Names("partition \"nowhere\""),
        ),
        bad(
            "routes of a partition that does not exist",
            "POST",
            "/v1/admin/partitions/nowhere/routes",
            Ops,
            Json(json!({"route": "alpha"})),
            404,
            Any,
        ),
        bad(
            "override of a route that does not exist",
            "POST",
            "/v1/admin/overrides",
            Ops,
            Json(json!({"route": "nope"})),
            404,
            Any,
        ),
        bad(
            "unknown customer",
            "GET",
            "/v1/admin/customers/9999",
            Ro,
            Empty,
            404,
            Names("customer \"9999\""),
        ),
        bad(
            "sell rates of an unknown customer",
            "GET",
            "/v1/admin/customers/9999/sell_rates",
            Ro,
            Empty,
            404,
            Any,
        ),
        bad(
            "blocked prefixes of an unknown customer",
            "GET",
            "/v1/admin/customers/9999/blocked_prefixes",
            Ro,
            Empty,
            404,
            Any,
        ),
        bad(
            "unknown vendor",
            "GET",
            "/v1/admin/vendors/Nope",
            Ro,
            Empty,
            404,
            Names("vendor \"Nope\""),
        ),
        bad(
            "unknown route",
            "GET",
            "/v1/admin/routes/nope",
            Ro,
            Empty,
            404,
            Names("route \"nope\""),
        ),
        bad(
            "unknown partition",
            "GET",
            "/v1/admin/partitions/nowhere",
            Ro,
            Empty,
            404,
            Names("partition \"nowhere\""),
        ),
        bad(
            "LERG import (no such resource)",
            "POST",
            "/v1/admin/numbering/lerg",
            Ops,
            Raw("x\n"),
            404,
            Any,
        ),
    ])
    .await;
    st.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openapi_document_needs_no_token() {
    let st = start().await;
    let (s, doc) = st.request("GET", "/v1/openapi.json", None, None).await;
    assert_eq!(s, 200);
    assert!(doc["paths"]["/v1/admin/routes/{route}/decks"]["post"].is_object());
    st.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_are_stored_hashed_and_a_revoked_token_stops_working() {
    let st = start().await;
    let (api, admin, ro) = (&st, st.admin.as_str(), st.ro.as_str());
    // only hashes are stored
    let stored: i64 = st
        .client
        .query_one(
            "SELECT count(*) FROM admin_tokens WHERE token_sha256 IN ($1, $2, $3)",
            &[&st.admin, &st.ops, &st.ro],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(stored, 0);
    let (s, e) = api.request("GET", "/v1/admin/vendors", None, None).await;
    assert_eq!(s, 401, "{e}");
    let (s, _) = api
        .request("GET", "/v1/admin/vendors", Some("wdt_bogus"), None)
        .await;
    assert_eq!(s, 401);
    let (s, v) = api
        .request("GET", "/v1/admin/vendors", Some(ro), None)
        .await;
    assert_eq!((s, v.as_array().map(Vec::len)), (200, Some(2)), "{v}");
    // revoked tokens stop working
    let (s, _) = api
        .request("DELETE", "/v1/admin/tokens/viewer", Some(admin), None)
        .await;
    assert_eq!(s, 200);
    let (s, _) = api
        .request("GET", "/v1/admin/vendors", Some(ro), None)
        .await;
    assert_eq!(s, 401);
    st.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vendor_created_by_admin_is_audited_and_a_second_create_conflicts() {
    let st = start().await;
    let (api, admin, ro) = (&st, st.admin.as_str(), st.ro.as_str());
    let gamma = json!({"name": "Gamma", "billing_model": "INTERNATIONAL"});
    let (s, v) = api
        .request(
            "POST",
            "/v1/admin/vendors",
            Some(admin),
            Some(gamma.clone()),
        )
        .await;
    assert_eq!(s, 201, "{v}");
    let (s, e) = api
        .request("POST", "/v1/admin/vendors", Some(admin), Some(gamma))
        .await;
    assert_eq!(s, 409, "{e}");

    // audit: who, what, before/after
    let row = st
        .client
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
    let (s, a) = api.request("GET", "/v1/admin/audit", Some(ro), None).await;
    assert_eq!(s, 403, "{a}");
    let (s, a) = api
        .request("GET", "/v1/admin/audit", Some(admin), None)
        .await;
    assert_eq!(s, 200);
    assert!(a
        .as_array()
        .unwrap()
        .iter()
        .any(|r| r["action"] == "vendor.create"));
    st.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn customer_rate_ceiling_and_source_ips_over_the_api() {
    let st = start().await;
    let (api, admin) = (&st, st.admin.as_str());
    let (s, v) = api
        .request(
            "PATCH",
            "/v1/admin/customers/1001",
            Some(admin),
            Some(json!({"max_rate": "0.5"})),
        )
        .await;
    assert_eq!(
        (s, v["after"]["max_rate"].as_f64()),
        (200, Some(0.5)),
        "{v}"
    );
    let (s, v) = api
        .request(
            "POST",
            "/v1/admin/customers/1001/source_ips",
            Some(admin),
            Some(json!({"cidr": "192.0.2.7/24"})),
        )
        .await;
    assert_eq!(
        (s, v["after"]["cidr"].as_str()),
        (201, Some("192.0.2.0/24")),
        "{v}"
    );
    let (s, v) = api
        .request(
            "DELETE",
            "/v1/admin/customers/1001/source_ips/192.0.2.0%2F24",
            Some(admin),
            None,
        )
        .await;
    assert_eq!(s, 200, "{v}");
    st.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn global_exclusion_rejects_the_next_dips_until_deleted() {
    let st = start().await;
    let (api, ops) = (&st, st.ops.as_str());
    let (s, ex) = api
        .request(
            "POST",
            "/v1/admin/exclusions",
            Some(ops),
            Some(json!({"prefix": "4420", "note": "fraud"})),
        )
        .await;
    assert_eq!(s, 201, "{ex}");
    let id = ex["after"]["id"].as_i64().unwrap();
    st.dip_until("1001", "exclusion picked up", |a| a["sip_code"] == 403)
        .await;
    let (s, _) = api
        .request(
            "DELETE",
            &format!("/v1/admin/exclusions/{id}"),
            Some(ops),
            None,
        )
        .await;
    assert_eq!(s, 200);
    let (s, e) = api
        .request(
            "DELETE",
            &format!("/v1/admin/exclusions/{id}"),
            Some(ops),
            None,
        )
        .await;
    assert_eq!(s, 404, "{e}");
    st.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dno_list_imports_over_http() {
    let st = start().await;
    let ops = st.ops.as_str();
    let resp = st
        .http
        .post(st.url("/v1/admin/numbering/dno"))
        .bearer_auth(ops)
        .body("number,reason\n+18005550100,fraud\n")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    let n: i64 = st
        .client
        .query_one("SELECT count(*) FROM dno WHERE number = '18005550100'", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(n, 1);
    st.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn get_one_vendor_route_partition() {
    let st = start().await;
    let (api, ro) = (&st, st.ro.as_str());
    let (s, v) = api
        .request("GET", "/v1/admin/vendors/Alpha", Some(ro), None)
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
        .request("GET", "/v1/admin/routes/beta", Some(ro), None)
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
        .request("GET", "/v1/admin/partitions/intl", Some(ro), None)
        .await;
    assert_eq!(s, 200, "{p}");
    assert_eq!(
        (p["routes"].clone(), p["customers"].clone()),
        (json!(["alpha", "beta"]), json!(["1001"]))
    );
    st.stop().await;
}
