//! The inbound dip and the credential look-up (issue 19), one entry point each for every
//! surface of the Kamailio side: [`Api::inbound`] (`GET /v1/inbound`, JSON-RPC `did.route`,
//! RESP `INBOUND`), [`Api::credential`] (`GET /v1/credentials`, RESP `CRED`) and
//! [`Api::source_kind`] (`GET /v1/source`, RESP `SOURCE`). They read the live snapshot only,
//! never the database.
//!
//! The dip-as rule of the source applies to the customer of the answer: a source limited to
//! some BANs gets "unknown number" (404) for another customer's number and "not found" for
//! another customer's credentials, exactly like a miss.
//!
//! Owns: inbound metrics and logs, the calls layer hand-off. Must not touch: the procedure
//! (`warpd_core::routing::inbound`), paths (see `http.rs`), answer layouts of RESP (see `resp`).

use std::net::IpAddr;
use std::time::Instant;

use serde::Serialize;

use super::context::{Api, Surface};
use super::error::ApiError;
use crate::numbering::for_log;
use crate::routing::inbound::params::CredentialQuery;
use crate::routing::inbound::{Credential, InboundAnswer, InboundRejectReason, InboundRequest};
use crate::routing::stir::{verify, SourceKind};

/// `GET /v1/credentials`' answer: found with the HA1 and names, or `{"found":false}` (a miss
/// is a value; it never says why).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct CredentialAnswer {
    pub found: bool,
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    pub credential: Option<Credential>,
}

/// `lcr.simulate` / `POST /v1/routing/simulate` of an inbound call: the answer the inbound dip
/// would give (no limits: nothing is tracked) and every step of the procedure in words.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct InboundSimulation {
    pub direction: &'static str,
    pub answer: InboundAnswer,
    pub steps: Vec<String>,
}

/// What a simulation request asks for: `"direction": "inbound"` selects the inbound procedure
/// (the other parameters are then `did.route`'s); otherwise an outbound dip.
pub(crate) enum SimulationRequest {
    Outbound(crate::routing::DipRequest),
    Inbound(InboundRequest),
}

/// Parses a simulation request from JSON (an object or a 1-element array holding it).
pub(crate) fn simulation_request(
    raw: &[u8],
    what: &'static str,
) -> Result<SimulationRequest, ApiError> {
    let inbound = match serde_json::from_slice::<serde_json::Value>(raw) {
        Ok(mut v) => {
            let obj = match &mut v {
                serde_json::Value::Array(a) if a.len() == 1 => a[0].as_object_mut(),
                other => other.as_object_mut(),
            };
            match obj.and_then(|o| o.remove("direction").map(|d| (d, o.clone()))) {
                Some((serde_json::Value::String(d), rest)) if d == "inbound" => Some(rest),
                Some((serde_json::Value::String(d), _)) if d == "outbound" => None,
                Some(_) => {
                    return Err(ApiError::invalid(
                        "direction",
                        "expected \"inbound\" or \"outbound\"",
                    ))
                }
                None => None,
            }
        }
        // not JSON: the outbound parser names the problem
        Err(_) => None,
    };
    match inbound {
        Some(rest) => {
            let bytes = serde_json::to_vec(&rest)
                .map_err(|e| ApiError::Internal(format!("re-encoding params: {e}")))?;
            Ok(SimulationRequest::Inbound(
                crate::routing::inbound::params::inbound_from_json(&bytes, what)?,
            ))
        }
        None => Ok(SimulationRequest::Outbound(super::params::dip_from_json(
            raw, what,
        )?)),
    }
}

impl Api {
    /// `lcr.simulate` of an inbound call (see [`InboundSimulation`]). Not counted as a dip.
    pub(crate) fn simulate_inbound(
        &self,
        req: &InboundRequest,
    ) -> Result<InboundSimulation, ApiError> {
        let engine = &self.state.engine;
        if !engine.is_ready() {
            return Err(ApiError::NotReady);
        }
        let snap = engine.load();
        let (answer, trace) = snap.explain_inbound(req);
        Ok(InboundSimulation {
            direction: "inbound",
            answer,
            steps: trace.steps,
        })
    }

    /// Answers an inbound dip from `source`.
    pub(crate) fn inbound(
        &self,
        req: &InboundRequest,
        surface: Surface,
        source: IpAddr,
    ) -> Result<InboundAnswer, ApiError> {
        let t0 = Instant::now();
        let engine = &self.state.engine;
        if !engine.is_ready() {
            self.state
                .metrics
                .inbound_dips
                .with_label_values(&["not_ready"])
                .inc();
            return Err(ApiError::NotReady);
        }
        let snap = engine.load();
        let mut answer = snap.route_inbound(req);
        if let InboundAnswer::Route(r) = &answer {
            if self
                .state
                .kamailio_auth
                .dip_as()
                .check_ban(source, r.customer.as_str())
                .is_err()
            {
                self.state
                    .metrics
                    .dip_customer_refused
                    .with_label_values(&["not_allowed"])
                    .inc();
                tracing::info!(surface = surface.as_str(), source = %source,
                    "inbound dip refused: source may not dip for this number's customer");
                answer = InboundRejectReason::UnknownNumber.into();
            }
        }
        drop(snap);
        if let Some(calls) = &self.state.calls {
            answer = calls.on_inbound(req, answer);
        }
        // the trunk's media policy (recording, T.38, codecs) applies to the call's offer
        if let (InboundAnswer::Route(r), Some(media), Some(call_id)) =
            (&answer, &self.state.media, &req.call_id)
        {
            media.remember_inbound(call_id, r.customer.as_str(), r.trunk.as_str());
        }
        let outcome = match &answer {
            InboundAnswer::Route(_) => "route".to_string(),
            InboundAnswer::Reject(r) => format!("reject_{}", r.code),
        };
        // STIR/SHAKEN (issue 20): the verification outcome of a delivered call, or of one the
        // customer's policy refused (436-438)
        let verification = match &answer {
            InboundAnswer::Route(r) => Some(r.stir.clone()),
            InboundAnswer::Reject(r) if (436..=438).contains(&r.code) => Some(verify::outcome(
                req.verify,
                req.identity.as_deref(),
                &req.ani,
                &req.dnis,
            )),
            InboundAnswer::Reject(_) => None,
        };
        if let Some(v) = verification {
            self.state
                .metrics
                .stir_verifications
                .with_label_values(&[v.verstat.label(), v.reason.map_or("", |r| r.as_str())])
                .inc();
        }
        self.state
            .metrics
            .inbound_dips
            .with_label_values(&[&outcome])
            .inc();
        let took = t0.elapsed();
        self.state
            .metrics
            .dip_latency
            .with_label_values(&[surface.as_str()])
            .observe(took.as_secs_f64());
        tracing::debug!(
            surface = surface.as_str(),
            src_ip = %req.src_ip,
            ani = %for_log(&req.ani),
            dnis = %for_log(&req.dnis),
            outcome,
            micros = took.as_micros() as u64,
            "inbound dip"
        );
        Ok(answer)
    }

    /// What a source address is to warpd (STIR/SHAKEN, issue 20: Kamailio verifies the
    /// Identity of a known source's call only; `GET /v1/source`, RESP `SOURCE`).
    pub(crate) fn source_kind(&self, ip: IpAddr) -> Result<SourceKind, ApiError> {
        let engine = &self.state.engine;
        if !engine.is_ready() {
            return Err(ApiError::NotReady);
        }
        let kind = engine.load().source_kind(ip);
        self.state
            .metrics
            .stir_source_checks
            .with_label_values(&[kind.as_str()])
            .inc();
        Ok(kind)
    }

    /// The credential look-up of Kamailio's digest authentication. Never logs the HA1.
    pub(crate) fn credential(
        &self,
        q: &CredentialQuery,
        source: IpAddr,
    ) -> Result<CredentialAnswer, ApiError> {
        let engine = &self.state.engine;
        if !engine.is_ready() {
            return Err(ApiError::NotReady);
        }
        let snap = engine.load();
        let found = snap.credential(&q.user, &q.realm).filter(|c| {
            self.state
                .kamailio_auth
                .dip_as()
                .check_ban(source, c.customer.as_str())
                .is_ok()
        });
        self.state
            .metrics
            .credential_lookups
            .with_label_values(&[if found.is_some() {
                "found"
            } else {
                "not_found"
            }])
            .inc();
        Ok(CredentialAnswer {
            found: found.is_some(),
            credential: found,
        })
    }
}
