//! The inbound procedure: a call delivered by a vendor or peer to one of the carrier's numbers.
//!
//! source → vendor (its gateways' addresses, its origination sources) → DNIS normalised to E.164
//! (`numbering::normalize`, the code of the outbound dip) → number (active, voice or fax) →
//! customer (enabled) → trunk (enabled) → destinations in failover order: the number's own
//! destination override alone, else the trunk's enabled destinations by priority ascending and,
//! within one priority, a weighted order seeded by the call_id (the same call_id always gets the
//! same order; weight 0 goes last). Live-call limits (trunk, then customer; 503) are the calls
//! layer's, at the same dip (`CallTable::admit` with the trunk).
//!
//! Answers and codes (README "Inbound dip"): 403 the source is not an origination peer,
//! 404 unknown, invalid or not-active number (and a disabled customer: the number is not in
//! service), 480 no trunk, trunk disabled or no destination, 503 a limit (calls layer),
//! 436/437/438 the Identity failed verification and the customer refuses such calls (issue 20).

use std::hash::{Hash, Hasher};
use std::net::IpAddr;

use rustc_hash::FxHasher;
use serde::{Deserialize, Serialize};

use super::{number_key, DestC, Directory, Inbound, NumberStatus, TrunkLimits};
use crate::numbering::normalize;
use crate::routing::model::{Name, Rate};
use crate::routing::stir::verify::{outcome, Verification, Verstat};

/// Parameters of `did.route` / `GET /v1/inbound` / RESP `INBOUND`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InboundRequest {
    pub src_ip: IpAddr,
    #[serde(default)]
    pub ani: String,
    pub dnis: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub call_id: Option<String>,
    /// STIR/SHAKEN (issue 20): Kamailio's `secsipid_check_identity` return code (1: verified;
    /// negative: libsecsipid's error); absent: the INVITE had no Identity header
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verify: Option<i64>,
    /// the Identity header's value (at most `stir::verify::MAX_IDENTITY_LEN` bytes), read for
    /// the PASSporT's claims
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identity: Option<String>,
}

/// The answer of an inbound dip.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "action", rename_all = "lowercase")]
// the route is the common answer: boxing it would allocate once more on every inbound dip
#[allow(clippy::large_enum_variant)]
pub enum InboundAnswer {
    Route(InboundRoute),
    Reject(InboundReject),
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct InboundRoute {
    /// always "inbound"
    pub direction: &'static str,
    /// the BAN of the number's customer
    pub customer: Name,
    pub trunk: Name,
    /// E.164 with '+'
    pub number: String,
    /// destinations' SIP URIs in failover order
    pub uris: Vec<String>,
    /// the number's inbound per-minute sell rate
    pub rate: f64,
    /// the vendor (or peer) that delivered the call
    pub vendor: Name,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cnam: Option<String>,
    /// STIR/SHAKEN (issue 20): the verification outcome; Kamailio adds `verstat` towards the
    /// customer
    pub stir: Verification,
    /// the caller (ANI) in E.164 with '+', when it normalizes (the verstat P-Asserted-Identity)
    #[serde(skip_serializing_if = "Option::is_none")]
    pub caller: Option<String>,
    /// destination ids, parallel to `uris` (`trunk_destinations.id`, or "number" for the
    /// number's override): the RESP array carries them
    #[serde(skip)]
    pub destination_ids: Vec<Name>,
    /// the trunk's limits, for the calls layer
    #[serde(skip)]
    pub limits: TrunkLimits,
    #[serde(skip)]
    pub rate_units: Rate,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct InboundReject {
    pub code: u16,
    pub reason: String,
}

/// Why an inbound dip was refused. Expected outcomes, not errors.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum InboundRejectReason {
    #[error("source is not an origination peer")]
    UnknownSource,
    #[error("invalid number in dnis")]
    InvalidNumber,
    #[error("unknown number")]
    UnknownNumber,
    #[error("number not in service ({0})")]
    NotActive(&'static str),
    #[error("number has no trunk")]
    NoTrunk,
    #[error("trunk disabled")]
    TrunkDisabled,
    #[error("trunk has no live destination")]
    NoDestination,
    /// the customer refuses calls failing STIR verification (436, 437 or 438)
    #[error("{}", identity_reason(*.0))]
    IdentityFailed(u16),
}

/// RFC 8224's reason phrases.
fn identity_reason(code: u16) -> &'static str {
    match code {
        436 => "Bad Identity Info",
        437 => "Unsupported Credential",
        _ => "Invalid Identity Header",
    }
}

impl InboundRejectReason {
    pub fn code(&self) -> u16 {
        match self {
            InboundRejectReason::UnknownSource => 403,
            InboundRejectReason::InvalidNumber
            | InboundRejectReason::UnknownNumber
            | InboundRejectReason::NotActive(_) => 404,
            InboundRejectReason::NoTrunk
            | InboundRejectReason::TrunkDisabled
            | InboundRejectReason::NoDestination => 480,
            InboundRejectReason::IdentityFailed(c) => *c,
        }
    }
    /// Short label for metrics.
    pub fn label(&self) -> &'static str {
        match self {
            InboundRejectReason::UnknownSource => "unknown_source",
            InboundRejectReason::InvalidNumber => "invalid_number",
            InboundRejectReason::UnknownNumber => "unknown_number",
            InboundRejectReason::NotActive(_) => "not_active",
            InboundRejectReason::NoTrunk => "no_trunk",
            InboundRejectReason::TrunkDisabled => "trunk_disabled",
            InboundRejectReason::NoDestination => "no_destination",
            InboundRejectReason::IdentityFailed(_) => "identity_failed",
        }
    }
}

impl From<InboundRejectReason> for InboundAnswer {
    fn from(r: InboundRejectReason) -> Self {
        InboundAnswer::Reject(InboundReject {
            code: r.code(),
            reason: r.to_string(),
        })
    }
}

/// Each step of the procedure, for `lcr.simulate`'s explanation.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct InboundTrace {
    pub steps: Vec<String>,
}

impl InboundTrace {
    fn note(&mut self, on: bool, s: impl FnOnce() -> String) {
        if on {
            self.steps.push(s());
        }
    }
}

/// The inbound procedure (see the module doc) over the inbound part `ib`, its customers and
/// vendors read through `dir` (the snapshot's). Pure: no clock, no I/O.
pub fn route_inbound<D: Directory + ?Sized>(
    ib: &Inbound,
    dir: &D,
    req: &InboundRequest,
) -> InboundAnswer {
    explain_inbound(ib, dir, req, false).0
}

/// [`route_inbound`] with, when `explain`, every step in words.
pub fn explain_inbound<D: Directory + ?Sized>(
    ib: &Inbound,
    dir: &D,
    req: &InboundRequest,
    explain: bool,
) -> (InboundAnswer, InboundTrace) {
    let mut tr = InboundTrace::default();
    let ans = run(ib, dir, req, explain, &mut tr);
    if let (InboundAnswer::Reject(r), true) = (&ans, explain) {
        tr.steps.push(format!("reject {}: {}", r.code, r.reason));
    }
    (ans, tr)
}

fn run<D: Directory + ?Sized>(
    ib: &Inbound,
    dir: &D,
    req: &InboundRequest,
    ex: bool,
    tr: &mut InboundTrace,
) -> InboundAnswer {
    let Some(vendor) = dir.vendor_by_source(req.src_ip) else {
        tr.note(ex, || {
            format!(
                "source {}: no vendor gateway or origination source",
                req.src_ip
            )
        });
        return InboundRejectReason::UnknownSource.into();
    };
    tr.note(ex, || format!("source {}: vendor {vendor}", req.src_ip));
    let Some(e164) = normalize(&req.dnis) else {
        tr.note(ex, || "dnis does not normalise to E.164".to_string());
        return InboundRejectReason::InvalidNumber.into();
    };
    let Some(n) = number_key(e164.digits()).and_then(|k| ib.numbers.get(&k)) else {
        tr.note(ex, || format!("number +{}: not provisioned", e164.as_str()));
        return InboundRejectReason::UnknownNumber.into();
    };
    // the customer as it is now (the customers part), not as when the numbers were read
    let Some(customer) = dir.customer(n.customer) else {
        tr.note(ex, || {
            format!(
                "number +{}: customer id {} does not exist",
                e164.as_str(),
                n.customer
            )
        });
        return InboundRejectReason::UnknownNumber.into();
    };
    tr.note(ex, || {
        format!(
            "number +{}: customer {}, status {}",
            e164.as_str(),
            customer.ban,
            n.status.as_str()
        )
    });
    if n.status != NumberStatus::Active {
        return InboundRejectReason::NotActive(n.status.as_str()).into();
    }
    if !n.voice && !n.fax {
        return InboundRejectReason::NotActive("neither voice nor fax").into();
    }
    let Some(trunk) = n.trunk.and_then(|ix| ib.trunks.get(ix as usize)) else {
        return InboundRejectReason::NoTrunk.into();
    };
    if !customer.enabled {
        tr.note(ex, || format!("customer {} disabled", customer.ban));
        return InboundRejectReason::NotActive("customer disabled").into();
    }
    if !trunk.enabled {
        tr.note(ex, || format!("trunk {} disabled", trunk.name));
        return InboundRejectReason::TrunkDisabled.into();
    }
    // STIR/SHAKEN (issue 20): Kamailio verified the Identity; the claims must name this call
    let stir = outcome(req.verify, req.identity.as_deref(), &req.ani, &req.dnis);
    tr.note(ex, || {
        format!(
            "identity: {}{}",
            stir.verstat.as_str(),
            stir.reason
                .map(|r| format!(" ({})", r.as_str()))
                .unwrap_or_default()
        )
    });
    if stir.verstat == Verstat::Failed {
        if let Some(code) = super::stir_reject_code(ib, n.customer) {
            tr.note(ex, || {
                format!("customer {} refuses failed verification", customer.ban)
            });
            return InboundRejectReason::IdentityFailed(code).into();
        }
    }
    let order: Vec<&DestC> = match &n.destination {
        Some(d) => {
            tr.note(ex, || "the number's destination override".to_string());
            vec![d]
        }
        None => failover_order(&trunk.dests, req.call_id.as_deref()),
    };
    if order.is_empty() {
        tr.note(ex, || {
            format!("trunk {}: no enabled destination", trunk.name)
        });
        return InboundRejectReason::NoDestination.into();
    }
    let digits = e164.as_str();
    let uris: Vec<String> = order.iter().map(|d| d.uri(digits)).collect();
    tr.note(ex, || {
        format!(
            "trunk {}: destinations {} in failover order",
            trunk.name,
            order
                .iter()
                .map(|d| d.id.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        )
    });
    InboundAnswer::Route(InboundRoute {
        direction: "inbound",
        customer: customer.ban.clone(),
        trunk: trunk.name.clone(),
        number: format!("+{digits}"),
        uris,
        rate: n.rate.as_f64(),
        vendor: vendor.clone(),
        cnam: n.cnam.as_deref().map(str::to_string),
        stir,
        caller: normalize(&req.ani).map(|a| format!("+{}", a.as_str())),
        destination_ids: order.iter().map(|d| d.id.clone()).collect(),
        limits: trunk.limits,
        rate_units: n.rate,
    })
}

/// splitmix64: a small deterministic generator for the weighted order.
struct SplitMix(u64);

impl SplitMix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

/// `dests` (sorted by priority) in failover order: priority groups ascending; within a group, a
/// weighted draw without replacement seeded by the call_id (weight-0 destinations last, in
/// their stored order).
pub(crate) fn failover_order<'a>(dests: &'a [DestC], call_id: Option<&str>) -> Vec<&'a DestC> {
    let mut h = FxHasher::default();
    call_id.unwrap_or("").hash(&mut h);
    let mut rng = SplitMix(h.finish());
    let mut out = Vec::with_capacity(dests.len());
    let mut rest = dests;
    while let Some(first) = rest.first() {
        let n = rest
            .iter()
            .position(|d| d.priority != first.priority)
            .unwrap_or(rest.len());
        let (group, tail) = rest.split_at(n);
        rest = tail;
        let mut pool: Vec<&DestC> = group.iter().filter(|d| d.weight > 0).collect();
        while !pool.is_empty() {
            let total: u64 = pool.iter().map(|d| u64::from(d.weight)).sum();
            let mut pick = rng.next() % total;
            let mut i = 0;
            while i + 1 < pool.len() && pick >= u64::from(pool[i].weight) {
                pick -= u64::from(pool[i].weight);
                i += 1;
            }
            out.push(pool.remove(i));
        }
        out.extend(group.iter().filter(|d| d.weight == 0));
    }
    out
}
