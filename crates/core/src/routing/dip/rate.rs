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

const UNRESOLVED: u32 = u32::MAX;

/// Which of the call's key lists a route's rate is looked up in.
#[derive(Clone, Copy)]
enum KeyList {
    Lrn,
    Dnis,
}

/// The rate entries of one partition's routes for this call (issue 23: a partition of 50
/// routes). A route's entry is the effective entry under the longest matched key that has one
/// for it; instead of a binary search per route and key, each matched key's entries (sorted by
/// route) are merged once with the partition's routes (sorted by route, `PartitionC::by_route`),
/// per key list, on first use. Same entries as [`RateIndex::entry`] key by key (tested).
pub(super) struct PartitionRates<'a> {
    part: &'a PartitionC,
    lrn: std::cell::OnceCell<smallvec::SmallVec<[u32; 64]>>,
    dnis: std::cell::OnceCell<smallvec::SmallVec<[u32; 64]>>,
}

impl<'a> PartitionRates<'a> {
    pub(super) fn new(part: &'a PartitionC) -> PartitionRates<'a> {
        PartitionRates {
            part,
            lrn: std::cell::OnceCell::new(),
            dnis: std::cell::OnceCell::new(),
        }
    }

    /// The entry of the route at position `pos` of the partition.
    fn entry<'s>(
        &self,
        rates: &'s RateIndex,
        m: &Matches,
        list: KeyList,
        pos: usize,
        now: i64,
    ) -> Option<&'s RateEntry> {
        // the two lists are the same when the LRN is the dialed number: one table
        let (cell, keys) = match list {
            KeyList::Lrn if m.lrn != m.dnis => (&self.lrn, m.lrn.as_slice()),
            _ => (&self.dnis, m.dnis.as_slice()),
        };
        let table = cell.get_or_init(|| resolve(rates, keys, self.part, now));
        let ix = *table.get(pos)?;
        if ix == UNRESOLVED {
            return None;
        }
        rates.entries.get(ix as usize)
    }
}

/// Index of the first entry of `route` or a later route in `entries` (sorted by route):
/// galloping from the front, so the next route of a dense key costs one comparison.
fn first_at_least(entries: &[RateEntry], route: RouteIx) -> usize {
    let (mut lo, mut step) = (0usize, 1usize);
    while lo + step <= entries.len() && entries[lo + step - 1].route < route {
        lo += step;
        step *= 2;
    }
    let hi = (lo + step).min(entries.len());
    lo + entries[lo..hi].partition_point(|e| e.route < route)
}

/// For each position of the partition, the index of its route's effective entry under the
/// longest key of `keys` (longest first) that has one, else [`UNRESOLVED`].
fn resolve(
    rates: &RateIndex,
    keys: &[u32],
    part: &PartitionC,
    now: i64,
) -> smallvec::SmallVec<[u32; 64]> {
    let mut out = smallvec::smallvec![UNRESOLVED; part.routes.len()];
    let mut left = part.by_route.len();
    for &k in keys {
        if left == 0 {
            break;
        }
        let Some((base, entries)) = rates.key_entries(k) else {
            continue;
        };
        let mut at = 0usize;
        for &(route, pos) in &part.by_route {
            let slot = &mut out[pos as usize];
            if *slot != UNRESOLVED {
                continue;
            }
            at += first_at_least(&entries[at..], route);
            let found = entries[at..]
                .iter()
                .take_while(|e| e.route == route)
                .position(|e| rates.terms[e.terms as usize].effective(now));
            if let Some(i) = found {
                *slot = (base + at + i) as u32;
                left -= 1;
            }
        }
    }
    out
}

/// The route's rate, billing terms and the zone it was rated in. `at`: the route's partition
/// and position in it, when it is rated as a partition member (its entry comes from the
/// partition's merged lookup), else `None` (an override's route: looked up alone).
pub(super) fn rate_for(
    s: &Snapshot,
    call: &Call,
    m: &Matches,
    route: RouteIx,
    at: Option<(&PartitionRates, usize)>,
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
    let keys = match (billing, call.zone) {
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
        (BillingModel::Lrn, Zone::Interstate | Zone::Intrastate | Zone::Local) => {
            (m.lrn.as_slice(), KeyList::Lrn)
        }
        _ => (m.dnis.as_slice(), KeyList::Dnis),
    };
    let (keys, list) = keys;
    let entry = match at {
        Some((part, pos)) => part.entry(&s.rates, m, list, pos, now),
        None => keys.iter().find_map(|&k| s.rates.entry(k, route, now)),
    };
    entry.and_then(priced)
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

#[cfg(test)]
mod tests;
