//! The buy rate of one route for a call: its rate entry (by LRN, DNIS or OCN/LATA, as its vendor
//! bills), the rate of the call's zone in it, and the zone of a NANP call ([`jurisdiction`]).
//!
//! Non-US NANP destinations (classes `canada` and `caribbean`, e.g. +1 876 Jamaica) are priced
//! the way the route's deck prices them: a vendor that bills by dial-code prefix
//! (`INTERNATIONAL`), or an entry with one rate for every zone (a `rate` column, or zone
//! `flat`), rates the call international-style: that single rate, zone `international`, no
//! interstate/intrastate jurisdiction. An entry priced per zone (an NPA-NXX style deck with
//! interstate/intrastate/local rates, or an OCN/LATA vendor) keeps the jurisdiction of
//! [`jurisdiction`]. The zone used is returned with the rate (the dip answer and the CDR carry it).
//!
//! Owns: rate lookup per route and zone. Must not touch: the choice and order of routes.

use super::{Call, Matches};
use crate::numbering::E164;
use crate::routing::api_types::Billing;
use crate::routing::model::*;
use crate::routing::settings::UnknownAniPolicy;
use crate::routing::snapshot::*;

/// Picks the rate of `zone` from [inter, intra, local]; local falls back to intrastate.
pub(super) fn zone_rate(
    rates: [u32; 3],
    zone: Zone,
    unknown_ani: Option<UnknownAniPolicy>,
) -> Option<u32> {
    let some = |r: u32| (r != NO_RATE).then_some(r);
    match zone {
        Zone::Interstate | Zone::International | Zone::Tollfree | Zone::Emergency => {
            match unknown_ani {
                Some(UnknownAniPolicy::Higher) => match (some(rates[0]), some(rates[1])) {
                    (Some(a), Some(b)) => Some(a.max(b)),
                    (a, b) => a.or(b),
                },
                _ => some(rates[0]),
            }
        }
        Zone::Intrastate => some(rates[1]),
        Zone::Local => some(rates[2]).or(some(rates[1])),
    }
}

/// The single rate of an entry that prices every zone the same (international-style), if it
/// does.
pub(super) fn flat_rate(rates: [u32; 3]) -> Option<u32> {
    (rates[0] != NO_RATE && rates[0] == rates[1] && rates[1] == rates[2]).then_some(rates[0])
}

/// Rate and zone of an entry for the call: international-style for a non-US NANP destination
/// when the vendor bills by prefix or the entry has one rate, else the call's zone's rate.
fn entry_rate(call: &Call, billing: BillingModel, rates: [u32; 3]) -> Option<(u32, Zone)> {
    if call.non_us_nanp {
        let single = match billing {
            BillingModel::International => zone_rate(rates, Zone::International, None),
            _ => flat_rate(rates),
        };
        if let Some(r) = single {
            return Some((r, Zone::International));
        }
    }
    zone_rate(rates, call.zone, call.unknown_ani).map(|r| (r, call.zone))
}

/// The route's rate, billing terms and the zone it was rated in.
pub(super) fn rate_for(
    s: &Snapshot,
    call: &Call,
    m: &Matches,
    route: RouteIx,
    now: i64,
) -> Option<(u32, Billing, Zone)> {
    let r = &s.routes[route as usize];
    let billing = s.vendors[r.vendor].billing;
    let priced = |e: &RateEntry| -> Option<(u32, Billing, Zone)> {
        let (rate, zone) = entry_rate(call, billing, e.rates)?;
        let t = s.rates.terms(e);
        Some((
            rate,
            Billing {
                min: t.min,
                inc: t.inc,
            },
            zone,
        ))
    };
    let keys: &[u32] = match (billing, call.zone) {
        (BillingModel::OcnLata, Zone::Interstate | Zone::Intrastate | Zone::Local) => {
            let key = *call.ocn_lata_key.get_or_init(|| {
                call.lrn_block
                    .and_then(|b| s.rates.ocn_lata_key(&b.ocn, &b.lata))
            });
            return key.and_then(|k| {
                let e = s.rates.entry(k, route, now)?;
                // an OCN/LATA deck prices NPA-NXX style: the jurisdiction's rate
                let rate = zone_rate(e.rates, call.zone, call.unknown_ani)?;
                let t = s.rates.terms(e);
                Some((
                    rate,
                    Billing {
                        min: t.min,
                        inc: t.inc,
                    },
                    call.zone,
                ))
            });
        }
        (BillingModel::OcnLata, _) => return None,
        (BillingModel::Lrn, Zone::Interstate | Zone::Intrastate | Zone::Local) => m.lrn.as_slice(),
        _ => m.dnis.as_slice(),
    };
    for &k in keys {
        if let Some(e) = s.rates.entry(k, route, now) {
            return priced(e);
        }
    }
    None
}

/// Zone of a NANP call from ANI and LRN block data.
pub(super) fn jurisdiction(
    s: &Snapshot,
    ani: Option<&E164>,
    lrn10: &[u8],
    lrn_block: Option<&NpaNxxInfo>,
) -> (Zone, Option<UnknownAniPolicy>) {
    let policy = s.settings.unknown_ani_policy;
    let by_policy = |p: UnknownAniPolicy| match p {
        UnknownAniPolicy::Intrastate => (Zone::Intrastate, Some(p)),
        _ => (Zone::Interstate, Some(p)),
    };
    let Some(ani10) = ani.and_then(E164::nanp10) else {
        return by_policy(policy);
    };
    let (Some(a), Some(b)) = (s.numbering.lookup(ani10), lrn_block) else {
        return by_policy(policy);
    };
    if s.numbering.is_local(ani10, lrn10) {
        (Zone::Local, None)
    } else if a.state == b.state {
        (Zone::Intrastate, None)
    } else {
        (Zone::Interstate, None)
    }
}
