//! HTTP request dispatch and the plain-HTTP surface: `GET /v1/route`, `POST /v1/routing/simulate`,
//! `POST /v1/events` (handled in `cdrs.rs`),
//! `GET /healthz`, `/readyz`, `/metrics`, and hand-off of `POST /rpc` to jsonrpsee. Also [`Api`],
//! the shared request context whose [`Api::dip`] is the ONE dip entry point of both surfaces
//! (metrics, logging, readiness).
//!
//! Owns: paths, HTTP methods, response encoding, body limits. Must not touch: routing logic,
//! JSON-RPC method semantics (see `rpc.rs`), error-to-status mapping (see `error.rs`).

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use http_body_util::{Either, Full};
use hyper::body::Incoming;
use hyper::header::{HeaderValue, ALLOW, CONTENT_TYPE};
use hyper::{Method, Request, Response, StatusCode};
use prometheus::{Histogram, IntCounter};
use serde::Serialize;

use super::error::ApiError;
use super::params::{dip_from_json, dip_from_query};
use super::rpc::{Dispatched, RpcService};
use super::AppState;
use crate::http_body::read_body;
use crate::numbering::mask;
use crate::routing::{DipAnswer, DipRequest, Engine, Simulation};

/// Response body: our own full bodies, or jsonrpsee's.
pub type Body = Either<Full<Bytes>, jsonrpsee::server::HttpBody>;

pub(super) const JSON: HeaderValue = HeaderValue::from_static("application/json");
const TEXT: HeaderValue = HeaderValue::from_static("text/plain; charset=utf-8");
const PROMETHEUS: HeaderValue = HeaderValue::from_static("text/plain; version=0.0.4");

/// Which API surface a request came through (the `surface` metrics label).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Surface {
    Rpc = 0,
    Http = 1,
}

impl Surface {
    pub fn as_str(self) -> &'static str {
        match self {
            Surface::Rpc => "rpc",
            Surface::Http => "http",
        }
    }
}

/// SIP codes the engine answers with, whose `dips_total` counters are resolved up front.
const KNOWN_REJECTS: [(u16, &str); 4] = [
    (403, "reject_403"),
    (404, "reject_404"),
    (484, "reject_484"),
    (503, "reject_503"),
];

/// Shared request context: the app state plus metric handles resolved once, so the dip path
/// takes no locks (prometheus label lookups lock).
pub(crate) struct Api {
    pub(crate) state: Arc<AppState>,
    latency: [Histogram; 2],
    routed: IntCounter,
    rejected: [IntCounter; 4],
    not_ready: IntCounter,
}

fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

impl Api {
    pub(crate) fn new(state: Arc<AppState>) -> Api {
        let m = &state.metrics;
        Api {
            latency: [
                m.dip_latency.with_label_values(&[Surface::Rpc.as_str()]),
                m.dip_latency.with_label_values(&[Surface::Http.as_str()]),
            ],
            routed: m.dips.with_label_values(&["route"]),
            rejected: KNOWN_REJECTS.map(|(_, label)| m.dips.with_label_values(&[label])),
            not_ready: m.dips.with_label_values(&["not_ready"]),
            state,
        }
    }

    /// Counts a request refused as the caller's mistake.
    pub(crate) fn bad_request(&self, surface: Surface, kind: &str) {
        self.state
            .metrics
            .bad_requests
            .with_label_values(&[surface.as_str(), kind])
            .inc();
    }

    /// Answers a dip: the one entry point of `lcr.route` and `GET /v1/route`.
    pub(crate) fn dip(&self, req: &DipRequest, surface: Surface) -> Result<DipAnswer, ApiError> {
        let t0 = Instant::now();
        let engine = &self.state.engine;
        if !engine.is_ready() {
            self.not_ready.inc();
            return Err(ApiError::NotReady);
        }
        // routes at capacity drop out inside the dip, before the max_results cut
        let full = match &self.state.calls {
            Some(calls) => calls.routes_at_capacity(),
            None => Vec::new(),
        };
        // the request's one load: the dip, the customer of a src_ip and the numbering the calls
        // layer reads all come from this snapshot, whatever swap lands meanwhile
        let snap = engine.load();
        let mut answer = engine.dip_on(&snap, req, &full, Engine::now());
        // shadow evaluation samples real dip inputs
        if let Some(admin) = &self.state.admin {
            admin.dip_log.record(req);
        }
        // the customer of a tracked call, named once for the calls and media layers (a dip by
        // source address names it through the snapshot)
        let ban = req.call_id.as_ref().and_then(|_| snap.ban_for(req));
        // calls layer: limits, route capacity, ASR policy; a dip with a call_id starts the call
        if let Some(calls) = &self.state.calls {
            answer = calls.on_dip(req, ban.clone(), answer, &snap);
        }
        drop(snap);
        let outcome = match &answer {
            DipAnswer::Route(r) => {
                if let (Some(media), Some(call_id)) = (&self.state.media, &req.call_id) {
                    let routes = r.routes.iter().map(|c| c.route_id.to_string()).collect();
                    // per-customer media policies (recording) apply to dips by src_ip too
                    media.remember_dip(call_id, ban.as_deref(), routes);
                }
                self.routed.inc();
                "route"
            }
            DipAnswer::Reject(r) => {
                match KNOWN_REJECTS.iter().position(|(c, _)| *c == r.sip_code) {
                    Some(i) => {
                        self.rejected[i].inc();
                        KNOWN_REJECTS[i].1
                    }
                    None => {
                        self.state
                            .metrics
                            .dips
                            .with_label_values(&[&format!("reject_{}", r.sip_code)])
                            .inc();
                        "reject"
                    }
                }
            }
        };
        let took = t0.elapsed();
        self.latency[surface as usize].observe(took.as_secs_f64());
        tracing::debug!(
            surface = surface.as_str(),
            ban = ?req.ban,
            src_ip = ?req.src_ip,
            ani = %mask(&req.ani),
            dnis = %mask(&req.dnis),
            outcome,
            micros = took.as_micros() as u64,
            "dip"
        );
        Ok(answer)
    }

    /// `lcr.simulate` / `POST /v1/routing/simulate`. Not counted as a dip.
    pub(crate) fn simulate(&self, req: &DipRequest) -> Result<Simulation, ApiError> {
        let engine = &self.state.engine;
        if !engine.is_ready() {
            return Err(ApiError::NotReady);
        }
        tracing::debug!(ani = %mask(&req.ani), dnis = %mask(&req.dnis), ban = ?req.ban, "simulate");
        Ok(engine.simulate(req))
    }

    /// The HTTP response for an error; counts and logs the caller's mistakes.
    pub(super) fn error(&self, surface: Surface, e: ApiError) -> Response<Body> {
        let status = e.http_status();
        if e.is_client_error() {
            self.bad_request(surface, e.kind());
            tracing::debug!(
                surface = surface.as_str(),
                kind = e.kind(),
                status = status.as_u16(),
                "bad request"
            );
        } else {
            tracing::warn!(surface = surface.as_str(), error = %e, "request failed");
        }
        let allow = match &e {
            ApiError::MethodNotAllowed { allow, .. } => Some(*allow),
            ApiError::Admin(a) => a.allow(),
            _ => None,
        };
        let mut resp = full(status, JSON, e.to_json_body());
        if let Some(a) = allow {
            resp.headers_mut()
                .insert(ALLOW, HeaderValue::from_static(a));
        }
        resp
    }

    pub(super) fn json_ok<T: Serialize>(&self, surface: Surface, v: &T) -> Response<Body> {
        // sized for a typical multi-route answer, so serialization rarely reallocates
        let mut buf = Vec::with_capacity(1024);
        match serde_json::to_writer(&mut buf, v) {
            Ok(()) => full(StatusCode::OK, JSON, buf),
            Err(e) => self.error(
                surface,
                ApiError::Internal(format!("serializing the answer: {e}")),
            ),
        }
    }

    fn http_route(&self, query: Option<&str>) -> Response<Body> {
        let answer = dip_from_query(query).and_then(|req| self.dip(&req, Surface::Http));
        match answer {
            Ok(a) => self.json_ok(Surface::Http, &a),
            Err(e) => self.error(Surface::Http, e),
        }
    }

    async fn http_simulate(&self, req: Request<Incoming>) -> Response<Body> {
        let result = async {
            check_json_content_type(&req)?;
            let body = read_body(req, self.state.limits.max_body_bytes).await?;
            let dip = dip_from_json(&body, "body")?;
            self.simulate(&dip)
        }
        .await;
        match result {
            Ok(sim) => self.json_ok(Surface::Http, &sim),
            Err(e) => self.error(Surface::Http, e),
        }
    }

    async fn rpc(&self, mut svc: RpcService, req: Request<Incoming>) -> Response<Body> {
        match tower::Service::call(&mut svc, req).await {
            Ok(resp) => {
                let status = resp.status();
                let kind = match status {
                    // a 200 that did not pass method dispatch is jsonrpsee's parse/invalid-request error
                    StatusCode::OK if resp.extensions().get::<Dispatched>().is_none() => {
                        Some("malformed_json")
                    }
                    StatusCode::BAD_REQUEST => Some("malformed_json"),
                    StatusCode::PAYLOAD_TOO_LARGE => Some("too_large"),
                    StatusCode::UNSUPPORTED_MEDIA_TYPE => Some("unsupported_media_type"),
                    StatusCode::METHOD_NOT_ALLOWED => Some("method_not_allowed"),
                    _ => None,
                };
                if let Some(k) = kind {
                    self.bad_request(Surface::Rpc, k);
                }
                resp.map(Either::Right)
            }
            Err(e) => self.error(
                Surface::Rpc,
                ApiError::Internal(format!("JSON-RPC service: {e}")),
            ),
        }
    }

    fn metrics(&self) -> Response<Body> {
        let engine = &self.state.engine;
        if engine.is_ready() {
            let snap = engine.load();
            self.state
                .metrics
                .set_snapshot(snap.generation(), &snap.stats());
        }
        full(
            StatusCode::OK,
            PROMETHEUS,
            self.state.metrics.render(unix_now()),
        )
    }
}

pub(super) fn full(
    status: StatusCode,
    content_type: HeaderValue,
    body: impl Into<Bytes>,
) -> Response<Body> {
    let mut resp = Response::new(Either::Left(Full::new(body.into())));
    *resp.status_mut() = status;
    resp.headers_mut().insert(CONTENT_TYPE, content_type);
    resp
}

/// No content type (curl without -H) or a JSON one is accepted.
fn check_json_content_type<B>(req: &Request<B>) -> Result<(), ApiError> {
    let Some(v) = req.headers().get(CONTENT_TYPE) else {
        return Ok(());
    };
    let s = v.to_str().unwrap_or("");
    let media = s.split(';').next().unwrap_or("").trim();
    if media.eq_ignore_ascii_case("application/json")
        || media.to_ascii_lowercase().ends_with("+json")
    {
        Ok(())
    } else {
        Err(ApiError::UnsupportedMediaType {
            expected: "application/json",
            got: s.chars().take(64).collect(),
        })
    }
}

fn not_allowed(path: &str, method: &Method, allow: &'static str) -> ApiError {
    ApiError::MethodNotAllowed {
        path: path.to_string(),
        method: method.as_str().chars().take(16).collect(),
        allow,
    }
}

/// What a request asks for, decided from path and method alone.
enum Action {
    Route,
    Rpc,
    Simulate,
    Healthz,
    Readyz,
    Metrics,
    Events,
    Cdrs,
    CdrsExport,
    RouteQuality,
    Admin,
    OpenApi,
    Refuse(Surface, ApiError),
}

fn action(path: &str, method: &Method) -> Action {
    match (path, method) {
        ("/v1/route", &Method::GET) => Action::Route,
        ("/rpc", &Method::POST) => Action::Rpc,
        ("/v1/routing/simulate", &Method::POST) => Action::Simulate,
        ("/healthz", &Method::GET) => Action::Healthz,
        ("/readyz", &Method::GET) => Action::Readyz,
        ("/metrics", &Method::GET) => Action::Metrics,
        ("/v1/openapi.json", &Method::GET) => Action::OpenApi,
        (p, _) if p.starts_with("/v1/admin/") => Action::Admin,
        ("/v1/events", &Method::POST) => Action::Events,
        ("/v1/cdrs", &Method::GET) => Action::Cdrs,
        ("/v1/cdrs/export", &Method::GET) => Action::CdrsExport,
        ("/v1/routes/quality", &Method::GET) => Action::RouteQuality,
        (
            "/v1/route" | "/healthz" | "/readyz" | "/metrics" | "/v1/cdrs" | "/v1/cdrs/export"
            | "/v1/routes/quality",
            m,
        ) => Action::Refuse(Surface::Http, not_allowed(path, m, "GET")),
        ("/v1/routing/simulate" | "/v1/events", m) => {
            Action::Refuse(Surface::Http, not_allowed(path, m, "POST"))
        }
        ("/rpc", m) => Action::Refuse(Surface::Rpc, not_allowed(path, m, "POST")),
        _ => Action::Refuse(
            Surface::Http,
            ApiError::NotFound(path.chars().take(128).collect()),
        ),
    }
}

/// Dispatches one HTTP request. Never fails: every error becomes a response.
pub(crate) async fn handle(
    api: Arc<Api>,
    rpc: RpcService,
    req: Request<Incoming>,
) -> Result<Response<Body>, Infallible> {
    let resp = match action(req.uri().path(), req.method()) {
        Action::Route => api.http_route(req.uri().query()),
        Action::Rpc => api.rpc(rpc, req).await,
        Action::Simulate => api.http_simulate(req).await,
        Action::Healthz => full(StatusCode::OK, TEXT, "ok"),
        Action::Readyz => {
            if api.state.engine.is_ready() {
                full(StatusCode::OK, TEXT, "ready")
            } else {
                full(
                    StatusCode::SERVICE_UNAVAILABLE,
                    TEXT,
                    "not ready: no routing snapshot loaded yet",
                )
            }
        }
        Action::Metrics => api.metrics(),
        Action::Events => api.http_events(req).await,
        Action::Cdrs => api.http_cdrs(req).await,
        Action::CdrsExport => api.http_cdrs_export(req).await,
        Action::RouteQuality => api.http_route_quality(req.uri().query()),
        Action::OpenApi => full(StatusCode::OK, JSON, crate::admin::openapi::document()),
        Action::Admin => match &api.state.admin {
            Some(admin) => match crate::admin::handle(admin, req).await {
                Ok(r) => full(r.status, HeaderValue::from_static(r.content_type), r.body),
                Err(e) => api.error(Surface::Http, e.into()),
            },
            None => api.error(
                Surface::Http,
                ApiError::NotFound("/v1/admin (admin API not enabled)".into()),
            ),
        },
        Action::Refuse(surface, e) => api.error(surface, e),
    };
    Ok(resp)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_type_check() {
        let ok = |ct: Option<&str>| {
            let mut b = Request::builder();
            if let Some(ct) = ct {
                b = b.header(CONTENT_TYPE, ct);
            }
            check_json_content_type(&b.body(()).unwrap()).is_ok()
        };
        assert!(ok(None));
        assert!(ok(Some("application/json")));
        assert!(ok(Some("Application/JSON; charset=utf-8")));
        assert!(ok(Some("application/problem+json")));
        assert!(!ok(Some("text/plain")));
        assert!(!ok(Some("application/x-www-form-urlencoded")));
    }
}
