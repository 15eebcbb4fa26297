//! HTTP request dispatch and the plain-HTTP surface: `GET /v1/route`, `POST /v1/routing/simulate`,
//! `POST /v1/events` (handled in `cdrs.rs`),
//! `GET /healthz`, `/readyz`, `/metrics`, and hand-off of `POST /rpc` to jsonrpsee. Which paths
//! each listener serves ([`Side`]; the other listener's paths are 404) and the Kamailio surface's
//! guard (every path but `/healthz` and `/readyz`) are decided here, before anything else.
//!
//! Owns: paths, HTTP methods, which listener serves what, response encoding, body limits. Must not touch: routing logic,
//! JSON-RPC method semantics (see `rpc.rs`), error-to-status mapping (see `error.rs`).

use std::convert::Infallible;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use http_body_util::Either;
use hyper::body::Incoming;
use hyper::header::{HeaderValue, CONTENT_TYPE};
use hyper::{Method, Request, Response, StatusCode};

use super::context::{full, unix_now, Api, Body, Surface, JSON, PROMETHEUS, TEXT};
use super::error::ApiError;
use super::params::dip_from_query;
use super::rpc::{Dispatched, RpcService, Source};
use super::Side;
use crate::http_body::read_body;
use crate::routing::inbound::params::{
    credential_from_query, inbound_from_query, source_from_query,
};
use crate::routing::stir::SourceAnswer;
use crate::routing::KamailioAnswer;

impl Api {
    fn http_route(&self, query: Option<&str>, source: IpAddr) -> Response<Body> {
        let answer = dip_from_query(query).and_then(|req| self.dip(&req, Surface::Http, source));
        match answer {
            Ok(a) => self.json_ok(Surface::Http, &KamailioAnswer(&a)),
            Err(e) => self.error(Surface::Http, e),
        }
    }

    fn http_inbound(&self, query: Option<&str>, source: IpAddr) -> Response<Body> {
        let answer = inbound_from_query(query)
            .map_err(ApiError::from)
            .and_then(|req| self.inbound(&req, Surface::Http, source));
        match answer {
            Ok(a) => self.json_ok(Surface::Http, &a),
            Err(e) => self.error(Surface::Http, e),
        }
    }

    fn http_source(&self, query: Option<&str>) -> Response<Body> {
        let answer = source_from_query(query)
            .map_err(ApiError::from)
            .and_then(|ip| self.source_kind(ip));
        match answer {
            Ok(source) => self.json_ok(Surface::Http, &SourceAnswer { source }),
            Err(e) => self.error(Surface::Http, e),
        }
    }

    fn http_credentials(&self, query: Option<&str>, source: IpAddr) -> Response<Body> {
        let answer = credential_from_query(query)
            .map_err(ApiError::from)
            .and_then(|q| self.credential(&q, source));
        match answer {
            Ok(a) => self.json_ok(Surface::Http, &a),
            Err(e) => self.error(Surface::Http, e),
        }
    }

    async fn http_simulate(&self, req: Request<Incoming>) -> Response<Body> {
        let result = async {
            check_json_content_type(&req)?;
            let limits = &self.state.limits;
            let body = read_body(req, limits.max_body_bytes, limits.body_read_timeout).await?;
            match super::inbound::simulation_request(&body, "body")? {
                super::inbound::SimulationRequest::Inbound(r) => self
                    .simulate_inbound(&r)
                    .map(|s| self.json_ok(Surface::Http, &s)),
                super::inbound::SimulationRequest::Outbound(r) => {
                    self.simulate(&r).map(|s| self.json_ok(Surface::Http, &s))
                }
            }
        }
        .await;
        match result {
            Ok(resp) => resp,
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
            let m = &self.state.metrics;
            m.set_snapshot(snap.generation(), &snap.stats());
            m.snapshot_data_version
                .set(snap.data_version().unwrap_or(0));
        }
        full(
            StatusCode::OK,
            PROMETHEUS,
            self.state.metrics.render(unix_now()),
        )
    }
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
    Inbound,
    Credentials,
    Source,
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
    Console,
    OpenApi,
    Refuse(Surface, ApiError),
}

fn action(path: &str, method: &Method) -> Action {
    match (path, method) {
        ("/v1/route", &Method::GET) => Action::Route,
        ("/v1/inbound", &Method::GET) => Action::Inbound,
        ("/v1/credentials", &Method::GET) => Action::Credentials,
        ("/v1/source", &Method::GET) => Action::Source,
        ("/rpc", &Method::POST) => Action::Rpc,
        ("/v1/routing/simulate", &Method::POST) => Action::Simulate,
        ("/healthz", &Method::GET) => Action::Healthz,
        ("/readyz", &Method::GET) => Action::Readyz,
        ("/metrics", &Method::GET) => Action::Metrics,
        ("/v1/openapi.json", &Method::GET) => Action::OpenApi,
        (p, _) if p.starts_with("/v1/admin/") => Action::Admin,
        (p, _) if p == "/console" || p.starts_with("/console/") => Action::Console,
        ("/v1/events", &Method::POST) => Action::Events,
        ("/v1/cdrs", &Method::GET) => Action::Cdrs,
        ("/v1/cdrs/export", &Method::GET) => Action::CdrsExport,
        ("/v1/routes/quality", &Method::GET) => Action::RouteQuality,
        (
            "/v1/route" | "/v1/inbound" | "/v1/credentials" | "/v1/source" | "/healthz" | "/readyz"
            | "/metrics" | "/v1/cdrs" | "/v1/cdrs/export" | "/v1/routes/quality",
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

/// Paths of the Kamailio surface; every other path belongs to the admin surface.
fn kamailio_path(path: &str) -> bool {
    matches!(
        path,
        "/v1/route"
            | "/v1/inbound"
            | "/v1/credentials"
            | "/v1/source"
            | "/v1/events"
            | "/rpc"
            | "/healthz"
            | "/readyz"
    )
}

/// The listener's gate: the Kamailio surface's guard (not for health checks), then 404 for a
/// path of the other surface (`/rpc` is on both, with different methods: see `rpc.rs`).
fn gate(api: &Api, side: Side, peer: SocketAddr, req: &Request<Incoming>) -> Result<(), ApiError> {
    let path = req.uri().path();
    let surface = if path == "/rpc" {
        Surface::Rpc
    } else {
        Surface::Http
    };
    match side {
        Side::Kamailio => {
            if !matches!(path, "/healthz" | "/readyz") {
                if let Err(e) = api.state.kamailio_auth.check(peer.ip(), req.headers()) {
                    api.state
                        .metrics
                        .refused
                        .with_label_values(&[side.as_str(), e.kind()])
                        .inc();
                    // the source address and the reason only: no query (numbers), no header
                    tracing::info!(listener = side.as_str(), source = %peer.ip(), surface = surface.as_str(),
                        reason = e.kind(), "request refused");
                    return Err(e);
                }
            }
            if kamailio_path(path) {
                Ok(())
            } else {
                Err(ApiError::NotFound(format!(
                    "{} (on the admin listener, server.admin_listen)",
                    path.chars().take(128).collect::<String>()
                )))
            }
        }
        Side::Admin if kamailio_path(path) && path != "/rpc" => Err(ApiError::NotFound(format!(
            "{path} (on the Kamailio listener, server.kamailio_listen)"
        ))),
        Side::Admin => Ok(()),
    }
}

/// Dispatches one HTTP request. Never fails: every error becomes a response.
pub(crate) async fn handle(
    api: Arc<Api>,
    rpc: RpcService,
    side: Side,
    peer: SocketAddr,
    req: Request<Incoming>,
) -> Result<Response<Body>, Infallible> {
    if let Err(e) = gate(&api, side, peer, &req) {
        let surface = if req.uri().path() == "/rpc" {
            Surface::Rpc
        } else {
            Surface::Http
        };
        return Ok(api.error(surface, e));
    }
    let resp = match action(req.uri().path(), req.method()) {
        Action::Route => api.http_route(req.uri().query(), peer.ip()),
        Action::Inbound => api.http_inbound(req.uri().query(), peer.ip()),
        Action::Credentials => api.http_credentials(req.uri().query(), peer.ip()),
        Action::Source => api.http_source(req.uri().query()),
        Action::Rpc => {
            let mut req = req;
            // lcr.route reads the source from the request's extensions (jsonrpsee hands them on)
            req.extensions_mut().insert(Source(peer.ip()));
            api.rpc(rpc, req).await
        }
        Action::Simulate => api.http_simulate(req).await,
        Action::Healthz => full(StatusCode::OK, TEXT, "ok"),
        Action::Readyz => {
            if api.state.engine.is_ready() {
                // which data is live: the snapshot's generation and routing data version
                let snap = api.state.engine.load();
                let version = snap
                    .data_version()
                    .map_or_else(|| "none".to_string(), |v| v.to_string());
                let mut body = format!(
                    "ready\ngeneration {}\ndata_version {version}\n",
                    snap.generation()
                );
                // STIR/SHAKEN (issue 20): the signing certificate's remaining days
                if let Some(days) = api.state.metrics.stir_days_to_expiry(unix_now()) {
                    body.push_str(&format!("stir_cert_days_to_expiry {days}\n"));
                }
                full(StatusCode::OK, TEXT, body)
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
        Action::Console => match &api.state.console {
            Some(console) => console_reply(console.handle(req).await),
            None => api.error(
                Surface::Http,
                ApiError::NotFound("/console (the console is off: console.enabled)".into()),
            ),
        },
        Action::Refuse(surface, e) => api.error(surface, e),
    };
    Ok(resp)
}

/// A console answer as a response (CSV exports stream).
fn console_reply(r: crate::console::Reply) -> Response<Body> {
    use crate::console::ReplyBody;
    let mut resp = match r.body {
        ReplyBody::Full(b) => Response::new(Either::Left(http_body_util::Full::new(b))),
        ReplyBody::Stream(rx) => {
            let stream = futures_util::stream::unfold(rx, |mut rx| async move {
                rx.recv().await.map(|b| {
                    (
                        Ok::<_, std::io::Error>(hyper::body::Frame::data(bytes::Bytes::from(b))),
                        rx,
                    )
                })
            });
            Response::new(Either::Right(jsonrpsee::server::HttpBody::new(
                http_body_util::StreamBody::new(stream),
            )))
        }
    };
    *resp.status_mut() = r.status;
    for (k, v) in r.headers {
        resp.headers_mut().append(k, v);
    }
    resp
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
