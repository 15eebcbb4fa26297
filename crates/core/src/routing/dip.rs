//! The dip procedure (the `get_lrn_rates` procedure, in memory): pure functions over a
//! [`Snapshot`]. Architecture Invariant: no I/O, no clock, no locks; `now` is a parameter.

use super::api_types::*;
use super::model::*;
use super::settings::UnknownAniPolicy;
use super::snapshot::*;
use super::stir;
use super::trie::KeyMatches;
use super::window::window_open;
use crate::numbering::{self, NumberClass, E164};
use dialstring::dialstrings;
use rate::{jurisdiction, rate_for, zone_rate, PartitionRates};

mod dialstring;
mod rate;

const DEFAULT_BILLING: Billing = Billing { min: 6, inc: 6 };

fn starts_with(digits: &[u8], prefix: &str) -> bool {
    digits.starts_with(prefix.as_bytes())
}

fn opt_rate(r: Option<Rate>) -> u32 {
    r.map(|r| r.0).unwrap_or(NO_RATE)
}

/// Everything the procedure derived about the call before choosing routes.
struct Call<'a> {
    customer: &'a CustomerC,
    customer_ix: u32,
    dnis: E164,
    /// E.164 of the LRN (NANP) used for LRN and OCN/LATA rating
    lrn: Option<E164>,
    zone: Zone,
    /// Canada or the Caribbean: a route whose deck prices the number international-style rates
    /// it in zone `international` (see `rate`)
    non_us_nanp: bool,
    /// set when the zone came from the unknown-ANI policy
    unknown_ani: Option<UnknownAniPolicy>,
    /// the LRN's NPA-NXX(-X) data, when known
    lrn_block: Option<&'a NpaNxxInfo>,
    /// key of the LRN's OCN/LATA pair; looked up on first use (most calls price no OCN/LATA route)
    ocn_lata_key: std::cell::OnceCell<Option<u32>>,
    pricing: Pricing<'a>,
    /// routes that take no new call right now (the caller's live view of route capacity)
    full: &'a [Name],
    /// set when a route that would have been kept was left out for capacity
    capacity_hit: std::cell::Cell<bool>,
}

struct Trace {
    partitions: Vec<String>,
    candidates: Vec<Candidate>,
}

struct Kept {
    route: RouteIx,
    /// the zone the route was rated in
    zone: Zone,
    rate: u32,
    sell: u32,
    billing: Billing,
    forced: bool,
    /// the route's rank among equal rates (`RouteC::order`), copied so ordering reads no route
    order: u32,
}

impl Kept {
    /// (rate, order) packed in one integer: one comparison per step of the sort
    fn rank(&self) -> u64 {
        (self.rate as u64) << 32 | self.order as u64
    }
}

/// Key-match caches of one dip: the trie is walked at most once per lookup number.
struct Matches {
    dnis: KeyMatches,
    lrn: KeyMatches,
}

/// How this call's sell rate is found; depends on the customer and the number, not on the route,
/// so it is worked out once per dip.
enum Pricing<'a> {
    /// the customer's sell deck prices the destination
    Deck(u32),
    /// vendor rate × (1 + margin) + fee
    Margin(&'a MarginRule),
    AtCost,
}

/// Sell deck (longest prefix with an effective row pricing the zone), else the most specific
/// margin rule, else at cost.
fn pricing<'a>(
    c: &'a CustomerC,
    dnis: &E164,
    zone: Zone,
    unknown_ani: Option<UnknownAniPolicy>,
    now: i64,
) -> Pricing<'a> {
    let d = dnis.digits();
    if !c.sell.is_empty() {
        for len in (1..=d.len()).rev() {
            let Ok(p) = std::str::from_utf8(&d[..len]) else {
                continue;
            };
            if let Some(rows) = c.sell.get(p) {
                if let Some(r) = rows
                    .iter()
                    .find(|r| r.effective_from <= now && now < r.effective_until)
                {
                    let rates = [opt_rate(r.inter), opt_rate(r.intra), opt_rate(r.local)];
                    if let Some(v) = zone_rate(rates, zone, unknown_ani) {
                        return Pricing::Deck(v);
                    }
                }
            }
        }
    }
    let rule =
        c.c.margin_rules
            .iter()
            .filter(|r| starts_with(d, &r.prefix))
            .max_by_key(|r| r.prefix.len())
            .or(c.c.margin.as_ref());
    rule.map_or(Pricing::AtCost, Pricing::Margin)
}

/// Customer sell rate for a buy rate.
fn sell_rate(call: &Call, buy: u32) -> u32 {
    match call.pricing {
        Pricing::Deck(v) => v,
        Pricing::AtCost => buy,
        Pricing::Margin(r) => {
            // i64 is exact here (buy < 2^32, |factor| < 2^31 for any sane margin); i128
            // division is several times slower and runs once per candidate route
            let scaled = (buy as i64)
                .checked_mul(1_000_000i64.saturating_add(r.margin_ppm))
                .map(|x| (x + 500_000) / 1_000_000)
                .unwrap_or_else(|| {
                    ((buy as i128 * (1_000_000 + r.margin_ppm as i128) + 500_000) / 1_000_000)
                        .clamp(i64::MIN as i128, i64::MAX as i128) as i64
                });
            let v = scaled.saturating_add(r.fixed_fee.0 as i64);
            v.clamp(0, Rate::MAX.0 as i64) as u32
        }
    }
}

fn vendor_excluded<'a>(s: &'a Snapshot, call: &Call, vendor: usize) -> Option<&'a ExclusionC> {
    s.exclusions.iter().find(|e| {
        e.vendor == Some(vendor)
            && e.customer.is_none_or(|c| c == call.customer_ix)
            && starts_with(call.dnis.digits(), &e.prefix)
    })
}

/// Why a route was dropped. Formatted only when a simulation asks (a dip never allocates for
/// the routes it drops).
enum Why<'a> {
    RouteDisabled,
    VendorDisabled,
    NoGateway,
    VendorExcluded { global: bool, prefix: &'a str },
    NoRate(Zone),
    AboveCeiling { rate: u32, max: Rate },
    NegativeMargin { sell: u32, buy: u32 },
    AtCapacity,
}

impl std::fmt::Display for Why<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Why::RouteDisabled => f.write_str("route disabled"),
            Why::VendorDisabled => f.write_str("vendor disabled"),
            Why::NoGateway => f.write_str("no enabled gateway"),
            Why::VendorExcluded { global, prefix } => {
                let scope = if *global { "global" } else { "customer" };
                write!(f, "vendor excluded ({scope} exclusion, prefix {prefix:?})")
            }
            Why::NoRate(zone) => write!(f, "no {} rate", zone.as_str()),
            Why::AtCapacity => f.write_str("route at capacity"),
            Why::AboveCeiling { rate, max } => {
                write!(f, "rate {} above ceiling {}", Rate(*rate), max)
            }
            Why::NegativeMargin { sell, buy } => write!(
                f,
                "negative margin: sell {} below buy {}",
                Rate(*sell),
                Rate(*buy)
            ),
        }
    }
}

enum Verdict<'a> {
    Keep(Kept),
    Drop(Why<'a>, Option<u32>, Option<u32>),
}

/// Applies per-route checks. `forced` routes skip the ceiling and margin checks. `at`: the
/// route's partition and position in it (see [`rate_for`]).
fn judge<'s>(
    s: &'s Snapshot,
    call: &Call,
    m: &Matches,
    route: RouteIx,
    at: Option<(&PartitionRates, usize)>,
    forced_rate: Option<Option<Rate>>,
    now: i64,
) -> Verdict<'s> {
    let r = &s.routes[route as usize];
    let v = &s.vendors[r.vendor];
    if !r.enabled {
        return Verdict::Drop(Why::RouteDisabled, None, None);
    }
    if !v.enabled {
        return Verdict::Drop(Why::VendorDisabled, None, None);
    }
    if r.gateways.is_empty() {
        return Verdict::Drop(Why::NoGateway, None, None);
    }
    if let Some(e) = vendor_excluded(s, call, r.vendor) {
        let why = Why::VendorExcluded {
            global: e.customer.is_none(),
            prefix: &e.prefix,
        };
        return Verdict::Drop(why, None, None);
    }
    let forced = forced_rate.is_some();
    let priced = match forced_rate.flatten() {
        Some(rate) => {
            let (billing, zone) = rate_for(s, call, m, route, at, now)
                .map(|(_, b, z)| (b, z))
                .unwrap_or((DEFAULT_BILLING, call.zone));
            Some((rate.0, billing, zone))
        }
        None => rate_for(s, call, m, route, at, now),
    };
    let Some((rate, billing, zone)) = priced else {
        return Verdict::Drop(Why::NoRate(call.zone), None, None);
    };
    let sell = sell_rate(call, rate);
    if !forced {
        if let Some(max) = call.customer.c.max_rate {
            if rate > max.0 {
                let why = Why::AboveCeiling { rate, max };
                return Verdict::Drop(why, Some(rate), Some(sell));
            }
        }
        if rate > sell && !call.customer.c.allow_negative_margin {
            let why = Why::NegativeMargin { sell, buy: rate };
            return Verdict::Drop(why, Some(rate), Some(sell));
        }
    }
    // last: only a route that would have been kept counts as left out for capacity
    if call.full.contains(&r.name) {
        call.capacity_hit.set(true);
        return Verdict::Drop(Why::AtCapacity, Some(rate), Some(sell));
    }
    Verdict::Keep(Kept {
        route,
        zone,
        rate,
        sell,
        billing,
        forced,
        order: r.order,
    })
}

fn candidate(
    s: &Snapshot,
    route: RouteIx,
    partition: Option<&str>,
    rate: Option<u32>,
    sell: Option<u32>,
    kept: bool,
    reason: String,
) -> Candidate {
    let r = &s.routes[route as usize];
    Candidate {
        route_id: r.name.to_string(),
        vendor: s.vendors[r.vendor].name.to_string(),
        partition: partition.map(str::to_string),
        rate: rate.map(|x| Rate(x).as_f64()),
        customer_rate: sell.map(|x| Rate(x).as_f64()),
        kept,
        reason,
    }
}

/// A kept route in the answer; `answer_zone` is the answer's zone (the choice names its own only
/// when it was rated in another).
fn choice(
    s: &Snapshot,
    k: &Kept,
    answer_zone: Zone,
    number: &str,
    call_id: Option<&str>,
    short_code: bool,
) -> RouteChoice {
    let r = &s.routes[k.route as usize];
    let uris = dialstrings(r, number, call_id, short_code);
    RouteChoice {
        route_id: r.name.clone(),
        vendor: s.vendors[r.vendor].name.clone(),
        uri: uris.first().cloned().unwrap_or_default(),
        uris,
        rate: Rate(k.rate).as_f64(),
        customer_rate: Rate(k.sell).as_f64(),
        billing: k.billing,
        forced: k.forced,
        zone: (k.zone != answer_zone).then_some(k.zone),
    }
}

fn emergency(
    s: &Snapshot,
    req: &DipRequest,
    dialed: &str,
    callback: Option<&str>,
    trace: Option<&mut Trace>,
) -> DipAnswer {
    let Some(ix) = s.emergency_route else {
        return RejectReason::NoEmergencyRoute.into();
    };
    let r = &s.routes[ix as usize];
    if r.gateways.is_empty() {
        return RejectReason::NoEmergencyRoute.into();
    }
    if let Some(t) = trace {
        t.candidates.push(candidate(
            s,
            ix,
            None,
            Some(0),
            Some(0),
            true,
            "emergency route".into(),
        ));
    }
    let k = Kept {
        route: ix,
        zone: Zone::Emergency,
        rate: 0,
        sell: 0,
        billing: DEFAULT_BILLING,
        forced: true,
        order: r.order,
    };
    DipAnswer::Route(RouteAnswer {
        zone: Zone::Emergency,
        lrn: None,
        partition: None,
        routes: vec![choice(
            s,
            &k,
            Zone::Emergency,
            dialed,
            req.call_id.as_deref(),
            true,
        )],
        emergency_callback: callback.map(|c| format!("+{c}")),
        max_duration_s: None,
        stir: None,
    })
}

fn evaluate(
    s: &Snapshot,
    req: &DipRequest,
    now: i64,
    full: &[Name],
    trace: Option<&mut Trace>,
    info: &mut Simulation,
) -> DipAnswer {
    // 1. customer
    let Some((customer_ix, customer, trunk_ix, auth)) =
        s.identify(req.ban.as_deref(), req.trunk.as_deref(), req.src_ip)
    else {
        return RejectReason::UnknownCustomer.into();
    };
    let simulating = trace.is_some();
    let answer = route_or_reject(s, req, now, full, trace, info, customer_ix, customer);
    // STIR/SHAKEN (issue 20): the attestation of a routed call (emergency calls included)
    match answer {
        DipAnswer::Route(mut r) => {
            let (stir, verdict) = attest(s, req, customer_ix, customer, trunk_ix, auth);
            if simulating {
                info.stir = Some(verdict.to_string());
            }
            r.stir = stir;
            DipAnswer::Route(r)
        }
        reject => reject,
    }
}

fn attest(
    s: &Snapshot,
    req: &DipRequest,
    customer_ix: u32,
    customer: &CustomerC,
    trunk_ix: Option<u32>,
    auth: stir::Auth,
) -> (Option<stir::StirAnswer>, stir::Verdict) {
    let ani = numbering::normalize(&req.ani);
    let facts = crate::routing::inbound::stir_facts(
        &s.inbound,
        customer.c.id,
        trunk_ix,
        auth,
        ani.as_ref(),
        req.identity.unwrap_or_default(),
    );
    let verdict = stir::decide(&facts);
    let answer = stir::answer(&verdict, &s.stir, customer_ix, trunk_ix, || {
        // signing implies an ANI that normalized
        let orig = ani
            .as_ref()
            .map_or_else(|| stir::canonical_tn(&req.ani), stir::Tn::from);
        (orig, stir::canonical_tn(&req.dnis))
    });
    (answer, verdict)
}

/// The STIR/SHAKEN attestation a routed dip of `req` carries, and why (None: unknown customer).
/// What [`dip`] adds to a routed answer, on its own (the criterion bench `stir` measures it).
pub fn attestation(
    s: &Snapshot,
    req: &DipRequest,
) -> Option<(Option<stir::StirAnswer>, stir::Verdict)> {
    let (ix, customer, trunk_ix, auth) =
        s.identify(req.ban.as_deref(), req.trunk.as_deref(), req.src_ip)?;
    Some(attest(s, req, ix, customer, trunk_ix, auth))
}

#[allow(clippy::too_many_arguments)]
fn route_or_reject(
    s: &Snapshot,
    req: &DipRequest,
    now: i64,
    full: &[Name],
    mut trace: Option<&mut Trace>,
    info: &mut Simulation,
    customer_ix: u32,
    customer: &CustomerC,
) -> DipAnswer {
    let simulating = trace.is_some();
    if simulating {
        info.customer = Some(customer.c.ban.clone());
    }
    // 2. emergency: never blocked, limited or priced out
    if let Some(dialed) = s
        .settings
        .emergency_numbers
        .iter()
        .find(|e| numbering::dialed_equals(&req.dnis, e))
    {
        info.class = Some("emergency".into());
        info.zone = Some(Zone::Emergency);
        let callback = customer.c.emergency_callback.as_deref();
        return emergency(s, req, dialed, callback, trace);
    }
    if !customer.c.enabled {
        return RejectReason::CustomerDisabled.into();
    }
    // 3. numbers
    let Some(dnis) = numbering::normalize(&req.dnis) else {
        return RejectReason::InvalidNumber { field: "dnis" }.into();
    };
    let ani = numbering::normalize(&req.ani);
    if simulating {
        info.dnis = Some(format!("+{}", dnis.as_str()));
        info.ani = ani.map(|a| format!("+{}", a.as_str()));
    }
    if let Some(a) = &ani {
        if s.numbering.is_dno(a) {
            return RejectReason::Dno.into();
        }
    }
    // 4. class
    let nclass = numbering::classify(&dnis);
    let class = match nclass {
        NumberClass::Nanp => DestClass::Domestic,
        NumberClass::TollFree => DestClass::Tollfree,
        NumberClass::Premium => DestClass::Premium,
        NumberClass::International => DestClass::International,
        NumberClass::Canada => DestClass::Canada,
        NumberClass::Caribbean => DestClass::Caribbean,
    };
    if simulating {
        info.class = Some(class.as_str().into());
    }
    let d = dnis.digits();
    if let Some(p) = customer
        .c
        .blocked_prefixes
        .iter()
        .find(|p| starts_with(d, p))
    {
        return RejectReason::BlockedPrefix(p.clone()).into();
    }
    if !customer.c.allowed_classes.contains(class) {
        return RejectReason::ClassNotAllowed(class).into();
    }
    if let Some(e) = s.exclusions.iter().find(|e| {
        e.vendor.is_none()
            && e.customer.is_none_or(|c| c == customer_ix)
            && starts_with(d, &e.prefix)
    }) {
        return RejectReason::Excluded(e.prefix.clone()).into();
    }
    // 5. LRN and zone
    let (lrn, lrn_block, zone, unknown_ani) = match nclass {
        NumberClass::Nanp | NumberClass::Canada | NumberClass::Caribbean | NumberClass::Premium => {
            let lrn = match req.lrn.as_deref().filter(|l| !l.trim().is_empty()) {
                Some(l) => match numbering::normalize_lrn(l) {
                    Some(l) => l,
                    None => return RejectReason::InvalidNumber { field: "lrn" }.into(),
                },
                None => dnis
                    .nanp10()
                    .and_then(|n| s.numbering.ported_lrn(n))
                    .unwrap_or(dnis),
            };
            let lrn10 = lrn.nanp10().unwrap_or(&[]);
            let block = s.numbering.lookup(lrn10);
            let (zone, policy) = jurisdiction(s, ani.as_ref(), lrn10, block);
            (Some(lrn), block, zone, policy)
        }
        NumberClass::TollFree => (None, None, Zone::Tollfree, None),
        NumberClass::International => (None, None, Zone::International, None),
    };
    info.zone = Some(zone);
    let lrn10 = lrn.as_ref().and_then(E164::nanp10);
    let pricing = pricing(customer, &dnis, zone, unknown_ani, now);
    let call = Call {
        customer,
        customer_ix,
        dnis,
        lrn,
        zone,
        non_us_nanp: matches!(nclass, NumberClass::Canada | NumberClass::Caribbean),
        unknown_ani,
        lrn_block,
        ocn_lata_key: std::cell::OnceCell::new(),
        pricing,
        full,
        capacity_hit: std::cell::Cell::new(false),
    };
    let dnis_keys = s.rates.trie.matches(call.dnis.digits());
    let m = Matches {
        dnis: dnis_keys,
        lrn: match &call.lrn {
            Some(l) if *l != call.dnis => s.rates.trie.matches(l.digits()),
            _ => dnis_keys,
        },
    };

    // 6. overrides: forced routes first
    // on the stack for partitions of up to 64 routes (a spilled SmallVec was a malloc and two
    // reallocs per dip at 50 routes)
    let mut kept: smallvec::SmallVec<[Kept; 64]> = smallvec::SmallVec::new();
    for o in s.overrides.iter().filter(|o| {
        o.customer.is_none_or(|c| c == customer_ix)
            && starts_with(call.dnis.digits(), &o.prefix)
            && o.valid_from <= now
            && now < o.valid_until
            && o.window.as_ref().is_none_or(|w| window_open(w, now))
    }) {
        if kept.iter().any(|k| k.route == o.route) {
            continue;
        }
        match judge(s, &call, &m, o.route, None, Some(o.rate), now) {
            Verdict::Keep(k) => {
                if let Some(t) = trace.as_deref_mut() {
                    t.candidates.push(candidate(
                        s,
                        o.route,
                        None,
                        Some(k.rate),
                        Some(k.sell),
                        true,
                        format!("forced by override {}", o.id),
                    ));
                }
                kept.push(k);
            }
            Verdict::Drop(why, rate, sell) => {
                if let Some(t) = trace.as_deref_mut() {
                    t.candidates.push(candidate(
                        s,
                        o.route,
                        None,
                        rate,
                        sell,
                        false,
                        format!("override {}: {why}", o.id),
                    ));
                }
            }
        }
    }
    let forced = kept.len();

    // 7. partitions in priority order whose window is open; the first one with a usable route wins
    let mut won: Option<usize> = None;
    for (pix, window) in &customer.partitions {
        let p = &s.partitions[*pix];
        if let Some(w) = window {
            if !window_open(w, now) {
                if let Some(t) = trace.as_deref_mut() {
                    t.partitions.push(format!("{} (window closed)", p.name));
                }
                continue;
            }
        }
        if let Some(t) = trace.as_deref_mut() {
            t.partitions.push(p.name.clone());
        }
        let rates = PartitionRates::new(p);
        for (pos, &route) in p.routes.iter().enumerate() {
            if forced > 0 && kept[..forced].iter().any(|k| k.route == route) {
                if let Some(t) = trace.as_deref_mut() {
                    t.candidates.push(candidate(
                        s,
                        route,
                        Some(&p.name),
                        None,
                        None,
                        false,
                        "already forced by override".into(),
                    ));
                }
                continue;
            }
            // a route listed twice in the partition is judged once if kept
            if p.repeated[pos] && kept[forced..].iter().any(|k| k.route == route) {
                continue;
            }
            match judge(s, &call, &m, route, Some((&rates, pos)), None, now) {
                Verdict::Keep(k) => {
                    if let Some(t) = trace.as_deref_mut() {
                        t.candidates.push(candidate(
                            s,
                            route,
                            Some(&p.name),
                            Some(k.rate),
                            Some(k.sell),
                            true,
                            "kept".into(),
                        ));
                    }
                    kept.push(k);
                }
                Verdict::Drop(why, rate, sell) => {
                    if let Some(t) = trace.as_deref_mut() {
                        t.candidates.push(candidate(
                            s,
                            route,
                            Some(&p.name),
                            rate,
                            sell,
                            false,
                            why.to_string(),
                        ));
                    }
                }
            }
        }
        if kept.len() > forced {
            won = Some(*pix);
            break;
        }
    }

    // 8. order: forced first (in override order), then cheapest, route priority, weight, name
    // (route priority, weight, name) is precomputed per route as `order`, unique per route, so
    // (rate, order) orders the kept routes totally: only the first `limit` need sorting
    let limit = req
        .max_results
        .unwrap_or(customer.c.max_results)
        .clamp(1, s.settings.max_results_limit.max(1)) as usize;
    let ranked = &mut kept[forced..];
    let wanted = limit.saturating_sub(forced);
    if wanted < ranked.len() {
        if wanted > 0 {
            ranked.select_nth_unstable_by_key(wanted - 1, Kept::rank);
            ranked[..wanted - 1].sort_unstable_by_key(Kept::rank);
        }
    } else {
        ranked.sort_unstable_by_key(Kept::rank);
    }
    if kept.len() > limit {
        if let Some(t) = trace {
            for k in &kept[limit..] {
                if let Some(c) = t
                    .candidates
                    .iter_mut()
                    .rev()
                    .find(|c| c.kept && *c.route_id == *s.routes[k.route as usize].name)
                {
                    c.kept = false;
                    c.reason = format!("beyond max_results {limit}");
                }
            }
        }
        kept.truncate(limit);
    }
    if kept.is_empty() {
        // a usable route left out for capacity makes this congestion (503), not "no route" (404)
        return if call.capacity_hit.get() {
            RejectReason::AllAtCapacity.into()
        } else {
            RejectReason::NoRoute.into()
        };
    }
    let number = call.dnis.as_str();
    let lrn_out = lrn10.map(|n| String::from_utf8_lossy(n).into_owned());
    info.lrn.clone_from(&lrn_out);
    // the answer's zone is the first route's (a non-US NANP call may be rated
    // international-style); a route rated in another zone names it
    let zone = kept.first().map_or(zone, |k| k.zone);
    info.zone = Some(zone);
    DipAnswer::Route(RouteAnswer {
        zone,
        lrn: lrn_out,
        partition: won.map(|p| s.partitions[p].label.clone()),
        routes: kept
            .iter()
            .map(|k| choice(s, k, zone, number, req.call_id.as_deref(), false))
            .collect(),
        emergency_callback: None,
        max_duration_s: None,
        stir: None,
    })
}

/// Answers a routing dip. Pure: the same snapshot, request and `now` give the same answer.
pub fn dip(s: &Snapshot, req: &DipRequest, now: i64) -> DipAnswer {
    dip_with_full(s, req, now, &[])
}

/// [`dip`] with the routes that take no new call right now (`full`: at their capacity, from the
/// calls layer's live counts). They drop out like any unusable route *before* the partition
/// choice and the `max_results` cut, so the answer is the best usable routes, not fewer.
pub fn dip_with_full(s: &Snapshot, req: &DipRequest, now: i64, full: &[Name]) -> DipAnswer {
    let mut info = Simulation::blank();
    evaluate(s, req, now, full, None, &mut info)
}

/// Like [`dip`], and reports every candidate route with the reason it was kept or dropped.
pub fn simulate(s: &Snapshot, req: &DipRequest, now: i64) -> Simulation {
    let mut info = Simulation::blank();
    let mut trace = Trace {
        partitions: vec![],
        candidates: vec![],
    };
    let answer = evaluate(s, req, now, &[], Some(&mut trace), &mut info);
    info.answer = answer;
    info.partitions = trace.partitions;
    info.candidates = trace.candidates;
    info
}

impl Simulation {
    fn blank() -> Simulation {
        Simulation {
            customer: None,
            ani: None,
            dnis: None,
            class: None,
            zone: None,
            lrn: None,
            partitions: vec![],
            candidates: vec![],
            stir: None,
            answer: RejectReason::NoRoute.into(),
        }
    }
}
