//! [`Api`]: the requests tests make to a running warpd (HTTP API, JSON-RPC, admin, metrics).

use std::time::Duration;

use serde_json::{json, Value};

/// The base URLs of warpd's two listeners (`http://127.0.0.1:PORT`) and a client. Requests go
/// to the listener that serves their path ([`Api::url`]) or JSON-RPC method ([`Api::rpc`]).
#[derive(Clone)]
pub struct Api {
    /// the Kamailio surface (dips, events, health)
    pub base: String,
    /// the admin surface (admin API, CDRs, metrics, OpenAPI, admin methods)
    pub admin_base: String,
    pub http: reqwest::Client,
    secret: Option<String>,
    tls: Option<ClientTls>,
}

/// What the client trusts and presents over HTTPS.
#[derive(Clone)]
struct ClientTls {
    ca_pem: Vec<u8>,
    identity_pem: Option<Vec<u8>>,
}

/// The client of [`Api`]: 10 s per request, the secret as a default header, the test CA.
fn client(secret: Option<&str>, tls: Option<&ClientTls>) -> reqwest::Client {
    let mut b = reqwest::Client::builder().timeout(Duration::from_secs(10));
    if let Some(secret) = secret {
        let mut h = reqwest::header::HeaderMap::new();
        h.insert(
            reqwest::header::AUTHORIZATION,
            reqwest::header::HeaderValue::from_str(&format!("Bearer {secret}")).expect("header"),
        );
        b = b.default_headers(h);
    }
    if let Some(tls) = tls {
        b = b
            .use_rustls_tls()
            .tls_built_in_root_certs(false)
            .add_root_certificate(reqwest::Certificate::from_pem(&tls.ca_pem).expect("CA PEM"));
        if let Some(id) = &tls.identity_pem {
            b = b.identity(reqwest::Identity::from_pem(id).expect("client identity PEM"));
        }
    }
    b.build().expect("HTTP client")
}

/// Paths served by the Kamailio surface (every other path is the admin surface's).
pub const KAMAILIO_PATHS: [&str; 8] = [
    "/v1/route",
    "/v1/inbound",
    "/v1/credentials",
    "/v1/source",
    "/v1/events",
    "/rpc",
    "/healthz",
    "/readyz",
];

/// JSON-RPC methods of the Kamailio surface (the rest are the admin surface's).
pub fn kamailio_method(method: &str) -> bool {
    // call.hangup ends a call through Kamailio: an admin method (credit, issue 21)
    method == "lcr.route"
        || method == "did.route"
        || (method.starts_with("call.") && method != "call.hangup")
}

impl Api {
    /// A client for a warpd whose listeners are `kamailio` and `admin`; requests give up after
    /// 10 s (a hung server fails the test, not CI).
    pub fn with_admin(kamailio: std::net::SocketAddr, admin: std::net::SocketAddr) -> Api {
        Api {
            base: format!("http://{kamailio}"),
            admin_base: format!("http://{admin}"),
            http: client(None, None),
            secret: None,
            tls: None,
        }
    }

    /// The same over HTTPS to the listeners marked (the certificate names `localhost` and
    /// 127.0.0.1), trusting only `ca_pem`, presenting `identity_pem` (certificate and key) when
    /// given.
    pub fn with_tls(
        mut self,
        kamailio: bool,
        admin: bool,
        ca_pem: &[u8],
        identity_pem: Option<&[u8]>,
    ) -> Api {
        if kamailio {
            self.base = self.base.replacen("http://", "https://", 1);
        }
        if admin {
            self.admin_base = self.admin_base.replacen("http://", "https://", 1);
        }
        self.tls = Some(ClientTls {
            ca_pem: ca_pem.to_vec(),
            identity_pem: identity_pem.map(<[u8]>::to_vec),
        });
        self.http = client(self.secret.as_deref(), self.tls.as_ref());
        self
    }

    /// The same, sending `Authorization: Bearer <secret>` unless a request sets its own (a
    /// warpd with `server.kamailio_secret`).
    pub fn with_kamailio_secret(mut self, secret: &str) -> Api {
        self.secret = Some(secret.to_string());
        self.http = client(self.secret.as_deref(), self.tls.as_ref());
        self
    }

    /// A client for the Kamailio listener `kamailio` and the admin listener on the next port
    /// (how tests that run the binary bind them).
    pub fn new(kamailio: std::net::SocketAddr) -> Api {
        let mut admin = kamailio;
        admin.set_port(kamailio.port() + 1);
        Api::with_admin(kamailio, admin)
    }

    /// `/rpc` on the listener that serves `method`.
    pub fn rpc_url(&self, method: &str) -> String {
        if kamailio_method(method) {
            format!("{}/rpc", self.base)
        } else {
            format!("{}/rpc", self.admin_base)
        }
    }

    /// Waits until `/readyz` answers 200 (the first snapshot is loaded); 30 s at most.
    pub async fn wait_ready(&self) {
        super::eventually(
            "warpd ready (/readyz 200)",
            Duration::from_secs(30),
            || async {
                self.http
                    .get(self.url("/readyz"))
                    .send()
                    .await
                    .is_ok_and(|r| r.status() == 200)
            },
        )
        .await
    }

    /// The URL of a path on the listener that serves it (`/rpc`: the Kamailio one; see
    /// [`Api::rpc_url`]).
    pub fn url(&self, path_and_query: &str) -> String {
        let path = path_and_query.split('?').next().unwrap_or("");
        if KAMAILIO_PATHS.contains(&path) {
            format!("{}{path_and_query}", self.base)
        } else {
            format!("{}{path_and_query}", self.admin_base)
        }
    }

    /// The URL of a path on the admin listener, whatever it serves (404 tests).
    pub fn admin_url(&self, path_and_query: &str) -> String {
        format!("{}{path_and_query}", self.admin_base)
    }

    /// `GET` → status and body text.
    pub async fn get(&self, path_and_query: &str) -> (u16, String) {
        let r = self
            .http
            .get(self.url(path_and_query))
            .send()
            .await
            .unwrap();
        (r.status().as_u16(), r.text().await.unwrap())
    }

    /// `GET` → status and body, which must be JSON.
    pub async fn get_json(&self, path_and_query: &str) -> (u16, Value) {
        let (status, body) = self.get(path_and_query).await;
        (
            status,
            serde_json::from_str(&body).unwrap_or_else(|e| panic!("not JSON ({e}): {body}")),
        )
    }

    /// `POST` of raw bytes with a content type → status and body text.
    pub async fn post_raw(&self, path: &str, content_type: &str, body: Vec<u8>) -> (u16, String) {
        let r = self
            .http
            .post(self.url(path))
            .header("content-type", content_type)
            .body(body)
            .send()
            .await
            .unwrap();
        (r.status().as_u16(), r.text().await.unwrap())
    }

    /// Any method, optional bearer token and JSON body → status and body (`null` if not JSON).
    pub async fn request(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> (u16, Value) {
        let m = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let mut r = self.http.request(m, self.url(path));
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

    /// `POST` of a raw body with a bearer token (deck uploads) → status and JSON body.
    pub async fn upload(
        &self,
        path: &str,
        token: &str,
        body: impl Into<reqwest::Body>,
    ) -> (u16, Value) {
        let resp = self
            .http
            .post(self.url(path))
            .bearer_auth(token)
            .body(body)
            .send()
            .await
            .unwrap();
        let status = resp.status().as_u16();
        (status, resp.json().await.unwrap_or(Value::Null))
    }

    /// One JSON-RPC call at `/rpc`; the whole response object, whatever the HTTP status.
    pub async fn rpc(&self, method: &str, params: Value) -> Value {
        super::json(
            self.http
                .post(self.rpc_url(method))
                .json(&json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params})),
        )
        .await
    }

    /// A JSON-RPC call that must answer HTTP 200 echoing its id; the whole response object.
    pub async fn rpc_checked(&self, method: &str, params: Value) -> Value {
        let body = json!({"jsonrpc": "2.0", "id": 7, "method": method, "params": params});
        let r = self
            .http
            .post(self.rpc_url(method))
            .header("content-type", "application/json")
            .body(serde_json::to_vec(&body).unwrap())
            .send()
            .await
            .unwrap();
        let (status, text) = (r.status().as_u16(), r.text().await.unwrap());
        assert_eq!(status, 200, "{text}");
        let v: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(v["id"], 7, "{v}");
        v
    }

    /// [`Api::rpc_checked`] that must succeed; its `result`.
    pub async fn rpc_result(&self, method: &str, params: Value) -> Value {
        let v = self.rpc_checked(method, params).await;
        assert!(v.get("error").is_none(), "unexpected error: {v}");
        v["result"].clone()
    }

    /// [`Api::rpc_checked`] that must fail; its error code and message.
    pub async fn rpc_error(&self, method: &str, params: Value) -> (i64, String) {
        let v = self.rpc_checked(method, params).await;
        assert!(v.get("result").is_none(), "expected an error: {v}");
        (
            v["error"]["code"].as_i64().unwrap(),
            v["error"]["message"].as_str().unwrap().to_string(),
        )
    }

    /// A call method that must answer `{"ok": true}`.
    pub async fn rpc_ok(&self, method: &str, params: Value) {
        let r = self.rpc(method, params.clone()).await;
        assert_eq!(r["result"], json!({"ok": true}), "{method} {params}: {r}");
    }

    /// `GET /v1/route?{query}` → the answer (JSON, any status).
    pub async fn dip(&self, query: &str) -> Value {
        super::json(self.http.get(self.url(&format!("/v1/route?{query}")))).await
    }

    /// The full answer to the dip `query` (`ban=…&ani=%2B…&dnis=…`), with buy and sell rates and
    /// billing: the admin surface's `lcr.simulate` (the Kamailio surface's dip answer carries no
    /// margin data).
    pub async fn priced(&self, query: &str) -> Value {
        let mut params = serde_json::Map::new();
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            let v = v.replace("%2B", "+").replace("%2b", "+");
            let v = match (k, v.parse::<u64>()) {
                ("max_results", Ok(n)) => json!(n),
                _ => json!(v),
            };
            params.insert(k.to_string(), v);
        }
        let v = self.rpc("lcr.simulate", Value::Object(params)).await;
        assert!(v.get("error").is_none(), "lcr.simulate {query}: {v}");
        v["result"]["answer"].clone()
    }

    /// The routes of [`Api::priced`] for the dip `query` whose Kamailio-surface answer is
    /// `answer`: the same routes in the same order (checked), with rates and billing terms.
    pub async fn priced_routes(&self, query: &str, answer: &Value) -> Vec<Value> {
        let priced = self.priced(query).await;
        let ids = |v: &Value| -> Vec<Value> {
            let routes = v["routes"].as_array().cloned().unwrap_or_default();
            routes.iter().map(|r| r["route_id"].clone()).collect()
        };
        assert_eq!(ids(&priced), ids(answer), "{priced} vs {answer}");
        priced["routes"].as_array().cloned().unwrap_or_default()
    }

    /// `POST /v1/events` with a form body, as Kamailio sends it → status and JSON body.
    pub async fn events(&self, form: &str) -> (u16, Value) {
        let r = self
            .http
            .post(self.url("/v1/events"))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(form.to_string())
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    /// The `/metrics` page (must answer 200).
    pub async fn metrics(&self) -> String {
        let (status, text) = self.get("/metrics").await;
        assert_eq!(status, 200, "/metrics: {text}");
        text
    }

    /// The value of one series, named exactly with its labels as `/metrics` prints it
    /// (`warpd_dips_total{outcome="route"}`); `None` if absent.
    pub async fn metric(&self, series: &str) -> Option<f64> {
        let text = self.metrics().await;
        text.lines().find_map(|l| {
            l.strip_prefix(series)?
                .strip_prefix(' ')?
                .trim()
                .parse()
                .ok()
        })
    }

    /// Waits until `series` is at least `at_least`.
    pub async fn wait_metric(&self, series: &str, at_least: f64) {
        super::eventually(
            format!("{series} >= {at_least}"),
            super::DEADLINE,
            || async move {
                match self.metric(series).await {
                    Some(v) if v >= at_least => Ok(()),
                    v => Err(format!("{v:?}")),
                }
            },
        )
        .await
    }
}
