//! The shared request context of both API surfaces: [`Api`] (the app state plus metric handles
//! resolved once) whose [`Api::dip`] is the ONE dip entry point of JSON-RPC and plain HTTP
//! (metrics, logging, readiness), and the reply helpers every handler uses.
//!
//! Owns: dip metrics, reply encoding. Must not touch: paths and methods (see `http.rs`),
//! JSON-RPC method semantics (see `rpc.rs`), error-to-status mapping (see `error.rs`).

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use http_body_util::{Either, Full};
use hyper::header::{HeaderValue, ALLOW, CONTENT_TYPE};
use hyper::{Response, StatusCode};
use prometheus::{Histogram, IntCounter};
use serde::Serialize;

use super::dip_as::DipAsRefusal;
use super::error::ApiError;
use super::AppState;
use crate::numbering::for_log;
use crate::routing::stir::{Attest, StirAnswer};
use crate::routing::{DipAnswer, DipRequest, Engine, RejectReason, Simulation};
use warpd_core::excerpt::excerpt;

/// Response body: our own full bodies, or jsonrpsee's.
pub type Body = Either<Full<Bytes>, jsonrpsee::server::HttpBody>;

pub(super) const JSON: HeaderValue = HeaderValue::from_static("application/json");
pub(super) const TEXT: HeaderValue = HeaderValue::from_static("text/plain; charset=utf-8");
pub(super) const PROMETHEUS: HeaderValue = HeaderValue::from_static("text/plain; version=0.0.4");

/// Which API surface a request came through (the `surface` metrics label).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Surface {
    Rpc = 0,
    Http = 1,
    /// the RESP listener's `LCR` command (Kamailio's ndb_redis)
    Resp = 2,
}

impl Surface {
    pub fn as_str(self) -> &'static str {
        match self {
            Surface::Rpc => "rpc",
            Surface::Http => "http",
            Surface::Resp => "resp",
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
    latency: [Histogram; 3],
    routed: IntCounter,
    rejected: [IntCounter; 4],
    not_ready: IntCounter,
    /// STIR/SHAKEN attestations of routed dips: A, B, C, keep, none
    stir: [IntCounter; 5],
}

pub(super) fn unix_now() -> i64 {
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
                m.dip_latency.with_label_values(&[Surface::Resp.as_str()]),
            ],
            routed: m.dips.with_label_values(&["route"]),
            rejected: KNOWN_REJECTS.map(|(_, label)| m.dips.with_label_values(&[label])),
            not_ready: m.dips.with_label_values(&["not_ready"]),
            stir: ["A", "B", "C", "keep", "none"]
                .map(|a| m.stir_attestations.with_label_values(&[a])),
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

    /// Answers a dip from `source`: the one entry point of `lcr.route`, `GET /v1/route` and RESP `LCR`.
    /// A customer the source may not dip as (`server.kamailio_dip_as`) gets the same answer as
    /// an unknown one.
    pub(crate) fn dip(
        &self,
        req: &DipRequest,
        surface: Surface,
        source: IpAddr,
    ) -> Result<DipAnswer, ApiError> {
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
        if let Err(refusal) = self.state.kamailio_auth.dip_as().check(source, req, &snap) {
            let reason = refusal.label();
            self.state
                .metrics
                .dip_customer_refused
                .with_label_values(&[reason])
                .inc();
            // the source and the reason; the BAN only when it is a real customer's (NotAllowed)
            let ban = match refusal {
                DipAsRefusal::NotAllowed => snap.ban_for(req).map(|b| excerpt(&b)),
                DipAsRefusal::BanNotAccepted => None,
            };
            tracing::info!(surface = surface.as_str(), source = %source, reason, ban = ?ban,
                "dip refused: source may not dip as this customer");
            drop(snap);
            let answer = DipAnswer::from(RejectReason::UnknownCustomer);
            self.count_outcome(&answer);
            self.latency[surface as usize].observe(t0.elapsed().as_secs_f64());
            return Ok(answer);
        }
        let mut answer = engine.dip_on(&snap, req, &full, Engine::now());
        // an unknown customer is a 403 reject: only those pay the second lookup
        if matches!(&answer, DipAnswer::Reject(r) if r.sip_code == 403) && !snap.knows_customer(req)
        {
            self.state
                .metrics
                .dip_customer_refused
                .with_label_values(&["unknown"])
                .inc();
            tracing::debug!(surface = surface.as_str(), source = %source, "dip for an unknown customer");
        }
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
        if let (DipAnswer::Route(r), Some(media), Some(call_id)) =
            (&answer, &self.state.media, &req.call_id)
        {
            let routes = r.routes.iter().map(|c| c.route_id.to_string()).collect();
            // per-customer media policies (recording) apply to dips by src_ip too
            media.remember_dip(call_id, ban.as_deref(), routes);
        }
        let outcome = self.count_outcome(&answer);
        let took = t0.elapsed();
        self.latency[surface as usize].observe(took.as_secs_f64());
        tracing::debug!(
            surface = surface.as_str(),
            ban = ?req.ban,
            src_ip = ?req.src_ip,
            ani = %for_log(&req.ani),
            dnis = %for_log(&req.dnis),
            outcome,
            micros = took.as_micros() as u64,
            "dip"
        );
        Ok(answer)
    }

    /// Counts a dip's outcome in `dips_total`; returns its label.
    fn count_outcome(&self, answer: &DipAnswer) -> &'static str {
        match answer {
            DipAnswer::Route(r) => {
                self.routed.inc();
                let ix = match &r.stir {
                    Some(StirAnswer::Sign { attest, .. }) => match attest {
                        Attest::A => 0,
                        Attest::B => 1,
                        Attest::C => 2,
                    },
                    Some(StirAnswer::Keep) => 3,
                    None => 4,
                };
                self.stir[ix].inc();
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
        }
    }

    /// `lcr.simulate` / `POST /v1/routing/simulate`. Not counted as a dip.
    pub(crate) fn simulate(&self, req: &DipRequest) -> Result<Simulation, ApiError> {
        let engine = &self.state.engine;
        if !engine.is_ready() {
            return Err(ApiError::NotReady);
        }
        tracing::debug!(ani = %for_log(&req.ani), dnis = %for_log(&req.dnis), ban = ?req.ban, "simulate");
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
