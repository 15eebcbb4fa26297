//! The ops console: server-rendered HTML pages under `/console/` on the admin listener
//! (docs/CONSOLE.md). Pages are maud templates compiled into the binary; there is no script at all
//! (forms, links, `<details>`, a meta refresh on the overview), so there is nothing to build and
//! nothing third-party to ship. Every change a page makes goes through the admin API's own route
//! table and handlers ([`crate::admin::call`]) as the signed-in user: the same role checks,
//! validation messages and audit rows (actor `console:<user>`).
//!
//! Layout: `mod.rs` (dispatch, sessions and CSRF at the door, the reply type, [`ConsoleError`]),
//! `auth.rs` (users, argon2id, sessions, lock-out), `html.rs` (layout, style, helpers),
//! `resource.rs` (the generic list/edit page of an admin resource, driven by a descriptor),
//! `form.rs` (its forms: fields ↔ JSON, the API's message placed at the field it names),
//! `pages/` (overview, simulator, decks, CDRs, audit), `sampler.rs` (the overview's history).
//!
//! Owns: `/console/…` paths, cookies, CSRF. Must not touch: validation (the admin API's),
//! routing logic (the engine's `simulate`).

pub mod auth;
mod catalog;
mod form;
mod html;
mod pages;
mod resource;
pub mod sampler;

use std::collections::HashMap;
use std::sync::Arc;

use bytes::Bytes;
use hyper::body::Incoming;
use hyper::header::{
    HeaderName, HeaderValue, CACHE_CONTROL, CONTENT_TYPE, COOKIE, LOCATION, SET_COOKIE,
};
use hyper::{Method, Request, StatusCode};
use maud::{html, Markup};

use crate::admin::{AdminError, AdminState};
use crate::config::ConsoleConfig;
use crate::http_body::{read_body, BodyError};
use crate::routing::Engine;
use auth::{Policy, Session, SignIn};
use html::Base;

/// Name of the session cookie.
const SESSION_COOKIE: &str = "warpd_console";
/// Name of the sign-in form's cookie (its double-submitted token stops login CSRF).
const LOGIN_COOKIE: &str = "warpd_console_login";
/// Largest form body (uploads excepted).
const MAX_FORM: usize = 64 << 10;
const FORM_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

/// Everything the console reads, shared by all requests.
pub struct Console {
    pub admin: Arc<AdminState>,
    pub engine: Arc<Engine>,
    pub calls: Option<Arc<crate::calls::CallService>>,
    pub metrics: Arc<crate::metrics::Metrics>,
    pub media: Option<Arc<crate::media::MediaController>>,
    pub config: ConsoleConfig,
    pub sampler: Arc<sampler::Sampler>,
    /// pages of deck diffs already computed: a version's rows never change once imported, and
    /// the first page of the diff of two 100,000-row versions takes the admin API 90–190 ms
    /// (it reads both versions whole for the counts; docs/BENCHMARKS.md), so coming back to a
    /// page is served from here
    pub diffs: moka::sync::Cache<DiffKey, serde_json::Value>,
}

/// A page of a deck diff: (route, from version, to version, order, cursor).
pub type DiffKey = (String, i64, i64, String, String);

/// Failures of a console request; [`ConsoleError::status`] is the one mapping to HTTP.
#[derive(Debug, thiserror::Error)]
pub enum ConsoleError {
    #[error("{0}")]
    Admin(#[from] AdminError),
    #[error("sign-in: {0}")]
    Auth(#[from] auth::AuthError),
    #[error("internal error: database pool: {0}")]
    Pool(#[from] deadpool_postgres::PoolError),
    #[error("{0}")]
    Body(#[from] BodyError),
    #[error("{0}: no such page")]
    NotFound(String),
    #[error("the form's CSRF token is missing or wrong: reload the page and try again")]
    Csrf,
    #[error("{0}")]
    Invalid(String),
    #[error("internal error: database: {0}")]
    Db(#[from] tokio_postgres::Error),
}

impl ConsoleError {
    pub fn status(&self) -> StatusCode {
        match self {
            ConsoleError::Admin(a) => a.http_status(),
            ConsoleError::Body(BodyError::TooLarge { .. }) => StatusCode::PAYLOAD_TOO_LARGE,
            ConsoleError::Body(BodyError::Timeout(_)) => StatusCode::REQUEST_TIMEOUT,
            ConsoleError::Body(BodyError::Read(_)) => StatusCode::BAD_REQUEST,
            ConsoleError::NotFound(_) => StatusCode::NOT_FOUND,
            ConsoleError::Csrf => StatusCode::FORBIDDEN,
            ConsoleError::Invalid(_) => StatusCode::BAD_REQUEST,
            ConsoleError::Auth(_) | ConsoleError::Pool(_) | ConsoleError::Db(_) => {
                StatusCode::INTERNAL_SERVER_ERROR
            }
        }
    }
}

/// A console answer: status, headers, and a body (whole, or streamed for CSV exports).
pub struct Reply {
    pub status: StatusCode,
    pub headers: Vec<(HeaderName, HeaderValue)>,
    pub body: ReplyBody,
}

pub enum ReplyBody {
    Full(Bytes),
    Stream(tokio::sync::mpsc::Receiver<Vec<u8>>),
}

impl Reply {
    fn html(status: StatusCode, m: Markup) -> Reply {
        Reply {
            status,
            headers: vec![(
                CONTENT_TYPE,
                HeaderValue::from_static("text/html; charset=utf-8"),
            )],
            body: ReplyBody::Full(m.into_string().into()),
        }
    }

    fn redirect(to: &str) -> Reply {
        let mut r = Reply {
            status: StatusCode::SEE_OTHER,
            headers: vec![],
            body: ReplyBody::Full(Bytes::new()),
        };
        if let Ok(v) = HeaderValue::from_str(to) {
            r.headers.push((LOCATION, v));
        }
        r
    }

    fn cookie(mut self, c: String) -> Reply {
        if let Ok(v) = HeaderValue::from_str(&c) {
            self.headers.push((SET_COOKIE, v));
        }
        self
    }
}

/// One request as the pages see it.
pub struct Req {
    pub method: Method,
    /// the path under `/console/`, without leading or trailing `/`
    pub path: String,
    pub query: HashMap<String, String>,
    pub form: HashMap<String, String>,
    pub session: Session,
    pub base: Base,
}

impl Req {
    pub fn q(&self, k: &str) -> &str {
        self.query.get(k).map(|s| s.trim()).unwrap_or("")
    }
    pub fn f(&self, k: &str) -> &str {
        self.form.get(k).map(|s| s.trim()).unwrap_or("")
    }
}

fn cookies(req: &Request<Incoming>) -> HashMap<String, String> {
    req.headers()
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn parse_form(body: &[u8]) -> HashMap<String, String> {
    url::form_urlencoded::parse(body).into_owned().collect()
}

impl Console {
    pub fn new(
        admin: Arc<AdminState>,
        engine: Arc<Engine>,
        calls: Option<Arc<crate::calls::CallService>>,
        metrics: Arc<crate::metrics::Metrics>,
        media: Option<Arc<crate::media::MediaController>>,
        config: ConsoleConfig,
    ) -> Console {
        Console {
            admin,
            engine,
            calls,
            metrics,
            media,
            config,
            sampler: Arc::new(sampler::Sampler::new()),
            diffs: moka::sync::Cache::new(64),
        }
    }

    fn base(&self) -> Base {
        Base(format!("{}/console", self.config.external_prefix))
    }

    fn policy(&self) -> Policy {
        Policy {
            lockout_failures: self.config.lockout_failures,
            lockout_minutes: self.config.lockout_minutes,
            session_ttl_minutes: self.config.session_ttl_minutes,
        }
    }

    /// `Set-Cookie` of `name`: HttpOnly, SameSite=Strict, Secure (unless turned off), scoped to
    /// the console's external path.
    fn set_cookie(&self, name: &str, value: &str, max_age_s: u64) -> String {
        format!(
            "{name}={value}; Path={}/; Max-Age={max_age_s}; HttpOnly; SameSite=Strict{}",
            self.base().0,
            if self.config.cookie_secure {
                "; Secure"
            } else {
                ""
            }
        )
    }

    /// Handles one `/console…` request; never fails (errors become pages).
    pub async fn handle(&self, req: Request<Incoming>) -> Reply {
        let started = std::time::Instant::now();
        let mut r = match self.route(req).await {
            Ok(r) => r,
            Err(e) => {
                let status = e.status();
                if status.is_server_error() {
                    tracing::warn!(error = %e, "console request failed");
                }
                Reply::html(
                    status,
                    html::layout(
                        &self.base(),
                        None,
                        "",
                        "Error",
                        None,
                        html::error_box(&e.to_string()),
                    ),
                )
            }
        };
        for (k, v) in [
            (
                "content-security-policy",
                "default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; \
                 frame-ancestors 'none'; base-uri 'none'",
            ),
            ("x-content-type-options", "nosniff"),
            ("referrer-policy", "same-origin"),
        ] {
            r.headers
                .push((HeaderName::from_static(k), HeaderValue::from_static(v)));
        }
        r.headers
            .push((CACHE_CONTROL, HeaderValue::from_static("no-store")));
        // the page's server time (a streamed export: until its first byte), for browsers' dev
        // tools and the page-time test
        let ms = started.elapsed().as_secs_f64() * 1000.0;
        if let Ok(v) = HeaderValue::from_str(&format!("app;dur={ms:.1}")) {
            r.headers
                .push((HeaderName::from_static("server-timing"), v));
        }
        r
    }

    async fn route(&self, req: Request<Incoming>) -> Result<Reply, ConsoleError> {
        let base = self.base();
        let full = req.uri().path().to_string();
        let Some(rest) = full.strip_prefix("/console") else {
            return Err(ConsoleError::NotFound(warpd_core::excerpt::excerpt(&full)));
        };
        if rest.is_empty() {
            return Ok(Reply::redirect(&base.url("")));
        }
        let path = rest.trim_matches('/').to_string();
        let method = req.method().clone();
        match (&method, path.as_str()) {
            (&Method::GET, "static/console.css") => {
                return Ok(Reply {
                    status: StatusCode::OK,
                    headers: vec![(
                        CONTENT_TYPE,
                        HeaderValue::from_static("text/css; charset=utf-8"),
                    )],
                    body: ReplyBody::Full(Bytes::from_static(html::CSS.as_bytes())),
                })
            }
            (&Method::GET, "login") => return self.login_page(None, StatusCode::OK),
            (&Method::POST, "login") => return self.login(req).await,
            _ => {}
        }
        let jar = cookies(&req);
        let client = self.admin.pool.get().await?;
        let session = match jar.get(SESSION_COOKIE) {
            Some(id) if id.len() == 64 => auth::session(&**client, id).await?,
            _ => None,
        };
        drop(client);
        let Some(session) = session else {
            return Ok(Reply::redirect(&base.url("login")));
        };
        let query: HashMap<String, String> = req
            .uri()
            .query()
            .map(|q| {
                url::form_urlencoded::parse(q.as_bytes())
                    .into_owned()
                    .collect()
            })
            .unwrap_or_default();
        let mut upload = None;
        let form = if method == Method::POST {
            let multipart = req
                .headers()
                .get(CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .is_some_and(|v| v.to_ascii_lowercase().starts_with("multipart/"));
            let form = if multipart {
                let u = crate::admin::receive_upload(req, self.admin.max_upload_bytes).await?;
                let f = u.fields.clone();
                upload = Some(u);
                f
            } else {
                parse_form(&read_body(req, MAX_FORM, FORM_TIMEOUT).await?)
            };
            // the synchronizer token: the session's, echoed by the form
            let given = form.get("csrf").map(String::as_str).unwrap_or("");
            if !auth::same_token(given, &session.csrf) {
                return Err(ConsoleError::Csrf);
            }
            form
        } else {
            HashMap::new()
        };
        if method == Method::POST && path == "logout" {
            if let Some(id) = jar.get(SESSION_COOKIE) {
                let client = self.admin.pool.get().await?;
                auth::sign_out(&**client, id).await?;
            }
            return Ok(
                Reply::redirect(&base.url("login?signed_out=1")).cookie(self.set_cookie(
                    SESSION_COOKIE,
                    "",
                    0,
                )),
            );
        }
        let r = Req {
            method,
            path,
            query,
            form,
            session,
            base,
        };
        pages::dispatch(self, r, upload).await
    }

    fn login_page(&self, error: Option<&str>, status: StatusCode) -> Result<Reply, ConsoleError> {
        let token =
            auth::random_hex().map_err(|e| ConsoleError::Auth(auth::AuthError::Random(e)))?;
        let base = self.base();
        let body = html! {
            @if let Some(e) = error { (html::error_box(e)) }
            form method="post" action=(base.url("login")) {
                input type="hidden" name="login_token" value=(token);
                fieldset {
                    legend { "Sign in with your console account" }
                    label for="username" { "User name" }
                    input id="username" name="username" autocomplete="username" required autofocus;
                    label for="password" { "Password" }
                    input id="password" name="password" type="password" autocomplete="current-password" required;
                    p { button type="submit" id="sign-in" { "Sign in" } }
                }
            }
            p.hint { "Accounts are created on the host with " code { "warpd user add" } "." }
        };
        Ok(
            Reply::html(status, html::layout(&base, None, "", "Sign in", None, body))
                .cookie(self.set_cookie(LOGIN_COOKIE, &token, 3600)),
        )
    }

    async fn login(&self, req: Request<Incoming>) -> Result<Reply, ConsoleError> {
        let jar = cookies(&req);
        let form = parse_form(&read_body(req, MAX_FORM, FORM_TIMEOUT).await?);
        let get = |k: &str| form.get(k).map(String::as_str).unwrap_or("");
        let cookie = jar.get(LOGIN_COOKIE).map(String::as_str).unwrap_or("");
        if cookie.is_empty() || !auth::same_token(get("login_token"), cookie) {
            return self.login_page(
                Some("The sign-in form expired or was not sent by this console: try again."),
                StatusCode::FORBIDDEN,
            );
        }
        let client = self.admin.pool.get().await?;
        match auth::sign_in(
            &**client,
            get("username").trim(),
            get("password"),
            self.policy(),
        )
        .await?
        {
            SignIn::Ok { session } => {
                let ttl = self.config.session_ttl_minutes * 60;
                Ok(Reply::redirect(&self.base().url(""))
                    .cookie(self.set_cookie(SESSION_COOKIE, &session, ttl))
                    .cookie(self.set_cookie(LOGIN_COOKIE, "", 0)))
            }
            SignIn::Refused => self.login_page(
                Some("Wrong user name or password."),
                StatusCode::UNAUTHORIZED,
            ),
            SignIn::Locked { until } => self.login_page(
                Some(&format!(
                    "This account is locked after repeated failed sign-ins until {until}."
                )),
                StatusCode::TOO_MANY_REQUESTS,
            ),
        }
    }
}
