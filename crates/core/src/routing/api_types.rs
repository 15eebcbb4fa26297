//! Dip request and answer types: the wire contract Kamailio depends on (see README "Wire contract").

use std::net::IpAddr;

use serde::{Deserialize, Serialize};

use super::model::{DestClass, Name, Zone};

/// Parameters of `lcr.route` / `lcr.simulate` / `GET /v1/route`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DipRequest {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ban: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub src_ip: Option<IpAddr>,
    /// a digest-authenticated customer trunk: the dip is its customer's (issue 19)
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trunk: Option<String>,
    pub ani: String,
    pub dnis: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lrn: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub call_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_results: Option<u16>,
    /// STIR/SHAKEN (issue 20): what Kamailio found about an Identity header of the INVITE
    /// (`valid`: kept, not re-signed; `invalid`: Kamailio removes it and signs its own)
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identity: Option<super::stir::IdentityIn>,
}

/// Answer of a dip: route or reject.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "action", rename_all = "lowercase")]
pub enum DipAnswer {
    Route(RouteAnswer),
    Reject(RejectAnswer),
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct RouteAnswer {
    pub zone: Zone,
    /// 10-digit LRN used for routing (NANP only)
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lrn: Option<String>,
    /// the customer partition that supplied the (non-forced) routes; absent when only overrides
    /// or the emergency route answered
    #[serde(skip_serializing_if = "Option::is_none")]
    pub partition: Option<Name>,
    pub routes: Vec<RouteChoice>,
    /// emergency calls only: the customer's emergency callback number (`+` and E.164 digits), for
    /// Kamailio's P-Asserted-Identity; absent when the customer has none
    #[serde(skip_serializing_if = "Option::is_none")]
    pub emergency_callback: Option<String>,
    /// the longest the call may last once answered, seconds (set by the calls layer for a
    /// tracked call: the customer's credit, capped by `calls.max_call_duration_s`; absent for
    /// an emergency call, which nothing cuts); Kamailio sets the dialog timeout from it
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_duration_s: Option<u32>,
    /// STIR/SHAKEN (issue 20): sign with `{"attest","origid"}` or `{"keep":true}`; absent: no
    /// Identity header
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stir: Option<super::stir::StirAnswer>,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct RouteChoice {
    /// route name (stable identifier across reloads); shared with the snapshot, not copied
    pub route_id: Name,
    pub vendor: Name,
    /// first gateway's dialstring
    pub uri: String,
    /// all gateways' dialstrings in failover order (uri is uris[0])
    pub uris: Vec<String>,
    pub rate: f64,
    pub customer_rate: f64,
    pub billing: Billing,
    /// present when an override forced this route
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub forced: bool,
    /// the zone this route was rated in, when not the answer's (a Canadian or Caribbean number
    /// priced international-style by one route and by jurisdiction by another)
    #[serde(skip_serializing_if = "Option::is_none")]
    pub zone: Option<Zone>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct Billing {
    pub min: u16,
    pub inc: u16,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct RejectAnswer {
    pub sip_code: u16,
    pub reason: String,
}

/// Why a dip was rejected. Expected outcomes, not errors.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RejectReason {
    #[error("unknown customer")]
    UnknownCustomer,
    #[error("customer disabled")]
    CustomerDisabled,
    #[error("invalid number in {field}")]
    InvalidNumber { field: &'static str },
    #[error("blocked prefix {0}")]
    BlockedPrefix(String),
    #[error("ANI on do-not-originate list")]
    Dno,
    #[error("destination class {} not allowed", .0.as_str())]
    ClassNotAllowed(DestClass),
    #[error("destination excluded by prefix {0}")]
    Excluded(String),
    #[error("no route")]
    NoRoute,
    /// every usable route is at its capacity right now (a congestion answer: the caller may
    /// retry elsewhere, unlike 404)
    #[error("all routes at capacity")]
    AllAtCapacity,
    #[error("no emergency route configured")]
    NoEmergencyRoute,
}

impl RejectReason {
    pub fn sip_code(&self) -> u16 {
        match self {
            RejectReason::UnknownCustomer => 403,
            RejectReason::CustomerDisabled => 403,
            RejectReason::InvalidNumber { .. } => 484,
            RejectReason::BlockedPrefix(_) => 403,
            RejectReason::Dno => 403,
            RejectReason::ClassNotAllowed(_) => 403,
            RejectReason::Excluded(_) => 403,
            RejectReason::NoRoute => 404,
            RejectReason::AllAtCapacity => 503,
            RejectReason::NoEmergencyRoute => 503,
        }
    }
    /// Short label for metrics (`outcome` label).
    pub fn label(&self) -> &'static str {
        match self {
            RejectReason::UnknownCustomer => "unknown_customer",
            RejectReason::CustomerDisabled => "customer_disabled",
            RejectReason::InvalidNumber { .. } => "invalid_number",
            RejectReason::BlockedPrefix(_) => "blocked_prefix",
            RejectReason::Dno => "dno",
            RejectReason::ClassNotAllowed(_) => "class_not_allowed",
            RejectReason::Excluded(_) => "excluded",
            RejectReason::NoRoute => "no_route",
            RejectReason::AllAtCapacity => "at_capacity",
            RejectReason::NoEmergencyRoute => "no_emergency_route",
        }
    }
}

impl From<RejectReason> for DipAnswer {
    fn from(r: RejectReason) -> Self {
        DipAnswer::Reject(RejectAnswer {
            sip_code: r.sip_code(),
            reason: r.to_string(),
        })
    }
}

/// Result of `lcr.simulate`: the answer plus every candidate route and why it was kept or dropped.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Simulation {
    pub customer: Option<String>,
    pub ani: Option<String>,
    pub dnis: Option<String>,
    pub class: Option<String>,
    pub zone: Option<Zone>,
    pub lrn: Option<String>,
    pub partitions: Vec<String>,
    pub candidates: Vec<Candidate>,
    /// STIR/SHAKEN (issue 20): the attestation decision and why
    pub stir: Option<String>,
    pub answer: DipAnswer,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Candidate {
    pub route_id: String,
    pub vendor: String,
    pub partition: Option<String>,
    pub rate: Option<f64>,
    pub customer_rate: Option<f64>,
    pub kept: bool,
    pub reason: String,
}

/// What the Kamailio surface answers for a dip (`lcr.route`, `GET /v1/route`): the
/// [`DipAnswer`] without the margin data Kamailio never reads (`rate`, `customer_rate`,
/// `billing`). The admin surface's simulation keeps the full [`DipAnswer`].
#[derive(Clone, Copy, Debug)]
pub struct KamailioAnswer<'a>(pub &'a DipAnswer);

/// [`KamailioAnswer`] owning its answer (for serializers that need `'static` values).
#[derive(Clone, Debug)]
pub struct KamailioAnswerOwned(pub DipAnswer);

impl Serialize for KamailioAnswerOwned {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        KamailioAnswer(&self.0).serialize(s)
    }
}

#[derive(Serialize)]
#[serde(tag = "action", rename_all = "lowercase")]
enum KamailioWire<'a> {
    Route(KamailioRoute<'a>),
    Reject(&'a RejectAnswer),
}

#[derive(Serialize)]
struct KamailioRoute<'a> {
    zone: Zone,
    #[serde(skip_serializing_if = "Option::is_none")]
    lrn: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    partition: Option<&'a Name>,
    routes: Vec<KamailioChoice<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    emergency_callback: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    max_duration_s: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    stir: Option<&'a super::stir::StirAnswer>,
}

#[derive(Serialize)]
struct KamailioChoice<'a> {
    route_id: &'a Name,
    vendor: &'a Name,
    uri: &'a str,
    uris: &'a [String],
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    forced: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    zone: Option<Zone>,
}

impl Serialize for KamailioAnswer<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let wire = match self.0 {
            DipAnswer::Reject(r) => KamailioWire::Reject(r),
            DipAnswer::Route(r) => KamailioWire::Route(KamailioRoute {
                zone: r.zone,
                lrn: r.lrn.as_deref(),
                partition: r.partition.as_ref(),
                routes: r
                    .routes
                    .iter()
                    .map(|c| KamailioChoice {
                        route_id: &c.route_id,
                        vendor: &c.vendor,
                        uri: &c.uri,
                        uris: &c.uris,
                        forced: c.forced,
                        zone: c.zone,
                    })
                    .collect(),
                emergency_callback: r.emergency_callback.as_deref(),
                max_duration_s: r.max_duration_s,
                stir: r.stir.as_ref(),
            }),
        };
        wire.serialize(s)
    }
}
