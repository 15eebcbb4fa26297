//! Validation: turns the operator's [`Network`] into the typed desired state ([`Desired`]) with all
//! defaults applied, and checks references against the file plus the current database [`State`].
//! Every problem becomes an [`Issue`] naming the file and the field path
//! (`customers[1] "10002".partitions[0].tz`); all of them are reported together.
//!
//! Owns: the rules of what a valid provisioning file is, and the defaults of omitted fields.
//! Must not touch: the database (it only reads the already-loaded [`State`]), CSV contents.

use std::collections::{HashMap, HashSet};
use std::path::Path;

use super::deck::{DeckKind, DeckSource};
use super::spec::*;
use super::state::State;
use super::values::*;
use super::Issue;
use crate::routing::model::BillingModel;
use crate::rules::media::T38Mode;
use crate::rules::{self, IntRule, RuleError};

pub use super::desired::*;
pub use crate::rules::DEFAULT_DIALSTRING;

struct Ctx<'a> {
    file: &'a str,
    base: &'a Path,
    issues: Vec<Issue>,
}

impl Ctx<'_> {
    fn err(&mut self, field: impl Into<String>, msg: impl Into<String>) {
        self.issues.push(Issue::new(self.file, field, msg));
    }

    /// The value of a rule, or `fallback` after recording the broken rule as an issue.
    fn rule<T>(&mut self, r: Result<T, RuleError>, fallback: T) -> T {
        r.unwrap_or_else(|e| {
            self.err(e.field(), e.problem());
            fallback
        })
    }

    /// An integer field of object `at` (its default when omitted or out of range).
    fn int(&mut self, at: &str, rule: &IntRule, v: Option<i64>) -> i32 {
        self.int_or(at, rule, v, rule.default)
    }

    fn int_or(&mut self, at: &str, rule: &IntRule, v: Option<i64>, default: i64) -> i32 {
        let fallback = i32::try_from(default).unwrap_or_default();
        self.rule(rule.value_or(at, v, default), fallback)
    }

    /// An optional integer column (NULL when omitted or out of range).
    fn opt_int(&mut self, at: &str, rule: &IntRule, v: Option<i64>) -> Option<i32> {
        self.rule(rule.optional(at, v), None)
    }

    fn name(&mut self, field: &str, v: &str) {
        self.rule(rules::name(field, v), ());
    }

    fn deck(&mut self, field: &str, kind: DeckKind, rel: &str, effective_from: i64) -> DeckSource {
        if rel.trim().is_empty() {
            self.err(field, "empty CSV path");
        }
        DeckSource {
            kind,
            path: self.base.join(rel),
            label: rel.to_string(),
            ocn_lata: None,
            effective_from,
        }
    }

    fn ts(&mut self, field: &str, v: Option<&str>, default: i64) -> i64 {
        match v {
            None => default,
            Some(s) => match parse_ts(s) {
                Ok(t) => t,
                Err(m) => {
                    self.err(field, m);
                    default
                }
            },
        }
    }

    fn window(
        &mut self,
        at: &str,
        days: &[Day],
        start: Option<&str>,
        end: Option<&str>,
        tz: Option<&str>,
    ) -> WindowD {
        let days = self.rule(rules::days(format!("{at}.days"), days), vec![]);
        let mut time = |f: &str, v: Option<&str>| {
            v.and_then(|v| self.rule(rules::local_time(format!("{at}.{f}"), v).map(Some), None))
        };
        let (s, e) = (time("start", start), time("end", end));
        self.rule(
            rules::start_and_end(format!("{at}.start"), start.is_some(), end.is_some()),
            (),
        );
        let tz = self.rule(
            rules::time_zone(format!("{at}.tz"), tz),
            rules::DEFAULT_TZ.to_string(),
        );
        WindowD {
            days,
            start: s,
            end: e,
            tz,
        }
    }
}

/// The message of a reference to an object neither the file nor the database has.
fn unknown(what: &str, name: &str) -> String {
    format!("unknown {what} {name:?} (not in this file or the database)")
}

fn at(kind: &str, i: usize, name: &str) -> String {
    format!("{kind}[{i}] {name:?}")
}

fn opt_ban(b: &Option<Ban>) -> Option<String> {
    b.as_ref().map(|b| b.0.clone())
}

/// Checks everything that does not need the database; returns the desired state and the issues.
pub fn build(net: &Network, file: &str, base: &Path) -> (Desired, Vec<Issue>) {
    let mut cx = Ctx {
        file,
        base,
        issues: vec![],
    };
    let mut d = Desired::default();

    let mut seen = HashSet::new();
    for (i, v) in net.vendors.iter().enumerate() {
        let a = at("vendors", i, &v.name);
        cx.name(&format!("{a}.name"), &v.name);
        if !seen.insert(v.name.as_str()) {
            cx.err(format!("{a}.name"), "vendor named twice in this file");
        }
        let billing = cx.rule(
            rules::billing_model(&a, &v.billing_model),
            BillingModel::Lrn,
        );
        let dialstring = v.dialstring.as_deref();
        let dialstring = cx.rule(
            rules::dialstring(&a, dialstring),
            dialstring.unwrap_or(DEFAULT_DIALSTRING).to_string(),
        );
        let gateways = v.gateways.as_ref().map(|gws| {
            let mut names = HashSet::new();
            gws.iter()
                .enumerate()
                .map(|(j, g)| {
                    let ga = format!("{a}.gateways[{j}] {:?}", g.name);
                    cx.name(&format!("{ga}.name"), &g.name);
                    if !names.insert(g.name.as_str()) {
                        cx.err(format!("{ga}.name"), "gateway named twice in this vendor");
                    }
                    let host =
                        cx.rule(rules::gateway_host(&ga, &g.host), g.host.trim().to_string());
                    let transport = cx.rule(
                        rules::transport(&ga, g.transport.as_deref()),
                        rules::DEFAULT_TRANSPORT,
                    );
                    GatewayD {
                        name: g.name.clone(),
                        host,
                        port: cx.int(&ga, &rules::GATEWAY_PORT, g.port),
                        transport,
                        priority: cx.int(&ga, &rules::GATEWAY_PRIORITY, g.priority),
                        weight: cx.int(&ga, &rules::GATEWAY_WEIGHT, g.weight),
                        enabled: g.enabled.unwrap_or(rules::DEFAULT_ENABLED),
                    }
                })
                .collect()
        });
        d.vendors.push(VendorD {
            name: v.name.clone(),
            billing,
            dialstring,
            enabled: v.enabled.unwrap_or(rules::DEFAULT_ENABLED),
            gateways,
        });
    }

    let mut seen = HashSet::new();
    for (i, r) in net.routes.iter().enumerate() {
        let a = at("routes", i, &r.name);
        cx.name(&format!("{a}.name"), &r.name);
        if !seen.insert(r.name.as_str()) {
            cx.err(format!("{a}.name"), "route named twice in this file");
        }
        cx.name(&format!("{a}.vendor"), &r.vendor);
        let from = cx.ts(
            &format!("{a}.rates_effective_from"),
            r.rates_effective_from.as_deref(),
            NEG_INF,
        );
        if from == POS_INF {
            cx.err(
                format!("{a}.rates_effective_from"),
                "must be before infinity",
            );
        }
        if r.rates.is_none() && r.rates_effective_from.is_some() {
            cx.err(format!("{a}.rates_effective_from"), "given without rates");
        }
        let deck = r
            .rates
            .as_ref()
            .map(|p| cx.deck(&format!("{a}.rates"), DeckKind::VendorRates, p, from));
        d.routes.push(RouteD {
            name: r.name.clone(),
            vendor: r.vendor.clone(),
            priority: cx.int(&a, &rules::ROUTE_PRIORITY, r.priority),
            weight: cx.int(&a, &rules::ROUTE_WEIGHT, r.weight),
            capacity: r
                .capacity
                .map(|c| cx.int(&a, &rules::ROUTE_CAPACITY, Some(c))),
            enabled: r.enabled.unwrap_or(rules::DEFAULT_ENABLED),
            deck,
        });
    }

    let mut seen = HashSet::new();
    for (i, p) in net.partitions.iter().enumerate() {
        let a = at("partitions", i, &p.name);
        cx.name(&format!("{a}.name"), &p.name);
        if !seen.insert(p.name.as_str()) {
            cx.err(format!("{a}.name"), "partition named twice in this file");
        }
        if let Some(rs) = &p.routes {
            let mut names = HashSet::new();
            for (j, r) in rs.iter().enumerate() {
                if !names.insert(r.as_str()) {
                    cx.err(
                        format!("{a}.routes[{j}]"),
                        format!("route {r:?} listed twice"),
                    );
                }
            }
        }
        d.partitions.push(PartitionD {
            name: p.name.clone(),
            description: p.description.clone().unwrap_or_default(),
            routes: p.routes.clone(),
        });
    }

    let mut seen = HashSet::new();
    for (i, c) in net.customers.iter().enumerate() {
        d.customers.push(customer(&mut cx, i, c, &mut seen));
    }

    let mut seen = HashSet::new();
    for (i, o) in net.overrides.iter().enumerate() {
        let a = format!("overrides[{i}]");
        cx.rule(
            rules::prefix(format!("{a}.prefix"), &o.prefix, true).map(|_| ()),
            (),
        );
        cx.name(&format!("{a}.route"), &o.route);
        let rate = o
            .rate
            .as_ref()
            .and_then(|r| cx.rule(rules::money(format!("{a}.rate"), &r.0).map(Some), None));
        let valid_from = cx.ts(&format!("{a}.valid_from"), o.valid_from.as_deref(), NEG_INF);
        let valid_until = cx.ts(
            &format!("{a}.valid_until"),
            o.valid_until.as_deref(),
            POS_INF,
        );
        cx.rule(
            rules::valid_until_after(format!("{a}.valid_until"), valid_from, valid_until),
            (),
        );
        let window = cx.window(
            &a,
            &o.days,
            o.start.as_deref(),
            o.end.as_deref(),
            o.tz.as_deref(),
        );
        let od = OverrideD {
            customer: opt_ban(&o.customer),
            prefix: o.prefix.clone(),
            route: o.route.clone(),
            rate,
            valid_from,
            valid_until,
            window,
            note: o.note.clone().unwrap_or_default(),
        };
        if !seen.insert((od.customer.clone(), od.prefix.clone(), od.route.clone())) {
            cx.err(a, format!("{} is listed twice", od.label()));
        }
        d.overrides.push(od);
    }

    let mut seen = HashSet::new();
    for (i, e) in net.exclusions.iter().enumerate() {
        let a = format!("exclusions[{i}]");
        cx.rule(
            rules::prefix(format!("{a}.prefix"), &e.prefix, true).map(|_| ()),
            (),
        );
        cx.rule(
            rules::exclusion_target(format!("{a}.prefix"), e.vendor.is_some(), &e.prefix),
            (),
        );
        let ed = ExclusionD {
            customer: opt_ban(&e.customer),
            prefix: e.prefix.clone(),
            vendor: e.vendor.clone(),
            note: e.note.clone().unwrap_or_default(),
        };
        if !seen.insert((ed.customer.clone(), ed.prefix.clone(), ed.vendor.clone())) {
            cx.err(a, format!("{} is listed twice", ed.label()));
        }
        d.exclusions.push(ed);
    }

    let mut seen = HashSet::new();
    for (i, m) in net.media_policies.iter().enumerate() {
        let pd = media_policy(&mut cx, i, m);
        if !seen.insert((pd.customer.clone(), pd.route.clone(), pd.trunk.clone())) {
            cx.err(
                format!("media_policies[{i}]"),
                format!("media policy for {} is listed twice", pd.label()),
            );
        }
        d.media_policies.push(pd);
    }

    if let Some(n) = &net.numbering {
        for (field, kind, path) in [
            ("numbering.npanxx", DeckKind::Npanxx, &n.npanxx),
            (
                "numbering.local_calling",
                DeckKind::LocalCalling,
                &n.local_calling,
            ),
            ("numbering.lnp", DeckKind::Lnp, &n.lnp),
            ("numbering.dno", DeckKind::Dno, &n.dno),
        ] {
            if let Some(p) = path {
                let src = cx.deck(field, kind, p, NEG_INF);
                d.numbering.push(src);
            }
        }
    }
    (d, cx.issues)
}

fn media_policy(cx: &mut Ctx<'_>, i: usize, m: &MediaPolicySpec) -> MediaPolicyD {
    let a = format!("media_policies[{i}]");
    if let Some(b) = &m.customer {
        cx.name(&format!("{a}.customer"), &b.0);
    }
    if let Some(r) = &m.route {
        cx.name(&format!("{a}.route"), r);
    }
    if let Some(t) = &m.trunk {
        if rules::trunk::trunk_name("", t).is_err() {
            cx.err(
                format!("{a}.trunk"),
                format!(
                    "{} is not a trunk name (1-64 of A-Z a-z 0-9 . _ -)",
                    crate::excerpt::excerpt(t)
                ),
            );
        }
        if m.customer.is_some() || m.route.is_some() {
            cx.err(
                format!("{a}.trunk"),
                "a trunk's policy names the trunk alone (it applies to the trunk's inbound calls)",
            );
        }
    } else if m.customer.is_none() && m.route.is_none() {
        cx.err(
            &a,
            "a media policy needs a customer, a route or both, or a trunk (it applies to their calls)",
        );
    }
    let t38_mode = m.t38_mode.as_deref().and_then(|t| {
        let mode = T38Mode::parse(t.trim()).map(T38Mode::as_str);
        if mode.is_none() {
            cx.err(
                format!("{a}.t38_mode"),
                format!("{t:?} is not one of none, passthrough, gateway"),
            );
        }
        mode
    });
    let mut codecs = |f: &str, list: &Option<Vec<String>>| {
        list.as_ref().map(|l| {
            let mut out: Vec<String> = vec![];
            for (j, c) in l.iter().enumerate() {
                let field = format!("{a}.{f}[{j}]");
                if let Err(m) = check_codec(c) {
                    cx.err(field, m);
                } else if out.iter().any(|o| o.eq_ignore_ascii_case(c)) {
                    cx.err(field, format!("codec {c} listed twice"));
                } else {
                    out.push(c.clone());
                }
            }
            out
        })
    };
    let codec_allow = codecs("codec_allow", &m.codec_allow);
    let codec_strip = codecs("codec_strip", &m.codec_strip);
    if m.record.is_none() && t38_mode.is_none() && codec_allow.is_none() && codec_strip.is_none() {
        cx.err(
            &a,
            "sets nothing: give at least one of record, t38_mode, codec_allow, codec_strip",
        );
    }
    MediaPolicyD {
        customer: opt_ban(&m.customer),
        route: m.route.clone(),
        trunk: m.trunk.clone(),
        record: m.record,
        t38_mode,
        codec_allow,
        codec_strip,
    }
}

/// An RTPEngine codec name (`PCMU`, `opus`, `telephone-event`, `G729a`).
fn check_codec(c: &str) -> Result<(), String> {
    let ok = !c.is_empty()
        && c.len() <= 32
        && c.chars()
            .all(|ch| ch.is_ascii_alphanumeric() || matches!(ch, '-' | '_' | '.' | '/'));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "{c:?} is not a codec name (letters, digits, - _ . /, e.g. \"PCMU\", \"opus\")"
        ))
    }
}

fn customer<'n>(
    cx: &mut Ctx<'_>,
    i: usize,
    c: &'n CustomerSpec,
    seen: &mut HashSet<&'n str>,
) -> CustomerD {
    let a = at("customers", i, &c.ban.0);
    cx.name(&format!("{a}.ban"), &c.ban.0);
    if !seen.insert(c.ban.0.as_str()) {
        cx.err(format!("{a}.ban"), "customer listed twice in this file");
    }
    let money = |cx: &mut Ctx<'_>, f: &str, v: &Option<Decimal>| -> Option<i64> {
        v.as_ref()
            .and_then(|d| cx.rule(rules::money(format!("{a}.{f}"), &d.0).map(Some), None))
    };
    let max_rate = money(cx, "max_rate", &c.max_rate);
    let fixed_fee = money(cx, "fixed_fee", &c.fixed_fee).unwrap_or(0);
    let margin_percent = c.margin_percent.as_ref().and_then(|d| {
        cx.rule(
            rules::percent(format!("{a}.margin_percent"), &d.0).map(Some),
            None,
        )
    });
    let mut blocked = vec![];
    for (j, p) in c.blocked_prefixes.iter().flatten().enumerate() {
        let field = format!("{a}.blocked_prefixes[{j}]");
        if let Some(p) = cx.rule(rules::blocked_prefix(field, p, &blocked).map(Some), None) {
            blocked.push(p);
        }
    }
    let classes = match &c.allowed_classes {
        None => rules::DEFAULT_CLASSES.to_vec(),
        Some(cs) => cs
            .iter()
            .enumerate()
            .filter_map(|(j, s)| {
                let field = format!("{a}.allowed_classes[{j}]");
                cx.rule(rules::dest_class(field, s).map(Some), None)
            })
            .collect(),
    };
    let allowed_classes = rules::canonical_classes(&classes)
        .iter()
        .map(|k| k.as_str())
        .collect();
    let source_ips = c.source_ips.as_ref().map(|ips| {
        let mut out: Vec<String> = vec![];
        for (j, s) in ips.iter().enumerate() {
            match rules::source_cidr(format!("{a}.source_ips[{j}]"), s) {
                Ok(n) if out.contains(&n) => {
                    cx.err(format!("{a}.source_ips[{j}]"), format!("{n} listed twice"))
                }
                Ok(n) => out.push(n),
                Err(e) => cx.rule(Err(e), ()),
            }
        }
        out
    });
    let partitions = c.partitions.as_ref().map(|ps| {
        let mut names = HashSet::new();
        ps.iter()
            .enumerate()
            .map(|(j, p)| {
                let pa = format!("{a}.partitions[{j}] {:?}", p.name);
                cx.name(&format!("{pa}.name"), &p.name);
                if !names.insert(p.name.as_str()) {
                    cx.err(
                        format!("{pa}.name"),
                        "partition listed twice for this customer",
                    );
                }
                let default_prio = 10 * (j as i64 + 1);
                CustPartD {
                    partition: p.name.clone(),
                    priority: cx.int_or(
                        &pa,
                        &rules::CUSTOMER_PARTITION_PRIORITY,
                        p.priority,
                        default_prio.min(i32::MAX.into()),
                    ),
                    window: cx.window(
                        &pa,
                        &p.days,
                        p.start.as_deref(),
                        p.end.as_deref(),
                        p.tz.as_deref(),
                    ),
                }
            })
            .collect()
    });
    let margin_rules = c.margin_rules.as_ref().map(|rs| {
        let mut prefixes = vec![];
        rs.iter()
            .enumerate()
            .map(|(j, r)| {
                let ra = format!("{a}.margin_rules[{j}]");
                let prefix = rules::margin_prefix(format!("{ra}.prefix"), &r.prefix, &prefixes);
                let prefix = cx.rule(prefix, r.prefix.trim().to_string());
                prefixes.push(prefix.clone());
                let pct = rules::percent(format!("{ra}.margin_percent"), &r.margin_percent.0);
                let fee = r
                    .fixed_fee
                    .as_ref()
                    .map_or(Ok(0), |f| rules::money(format!("{ra}.fixed_fee"), &f.0));
                MarginD {
                    prefix,
                    margin_percent: cx.rule(pct, 0),
                    fixed_fee: cx.rule(fee, 0),
                }
            })
            .collect()
    });
    let from = cx.ts(
        &format!("{a}.sell_rates_effective_from"),
        c.sell_rates_effective_from.as_deref(),
        NEG_INF,
    );
    if from == POS_INF {
        cx.err(
            format!("{a}.sell_rates_effective_from"),
            "must be before infinity",
        );
    }
    if c.sell_rates.is_none() && c.sell_rates_effective_from.is_some() {
        cx.err(
            format!("{a}.sell_rates_effective_from"),
            "given without sell_rates",
        );
    }
    let sell = c
        .sell_rates
        .as_ref()
        .map(|p| cx.deck(&format!("{a}.sell_rates"), DeckKind::CustomerRates, p, from));
    let [max_concurrent_calls, max_cps, billing_min_seconds, billing_inc_seconds] = [
        (&rules::MAX_CONCURRENT_CALLS, c.max_concurrent_calls),
        (&rules::MAX_CPS, c.max_cps),
        (&rules::BILLING_MIN_SECONDS, c.billing_min_seconds),
        (&rules::BILLING_INC_SECONDS, c.billing_inc_seconds),
    ]
    .map(|(rule, v)| cx.opt_int(&a, rule, v));
    CustomerD {
        ban: c.ban.0.clone(),
        name: c.name.clone().unwrap_or_default(),
        enabled: c.enabled.unwrap_or(rules::DEFAULT_ENABLED),
        max_rate,
        blocked_prefixes: blocked,
        allowed_classes,
        max_results: cx.int(&a, &rules::MAX_RESULTS, c.max_results),
        max_concurrent_calls,
        max_cps,
        billing_min_seconds,
        billing_inc_seconds,
        emergency_callback: c.emergency_callback.as_deref().and_then(|v| {
            cx.rule(
                rules::emergency_callback(format!("{a}.emergency_callback"), v).map(Some),
                None,
            )
        }),
        allow_negative_margin: c
            .allow_negative_margin
            .unwrap_or(rules::DEFAULT_ALLOW_NEGATIVE_MARGIN),
        margin_percent,
        fixed_fee,
        source_ips,
        partitions,
        margin_rules,
        sell,
    }
}

/// Checks references (vendor, route, partition, customer names) against the file and the database,
/// source-address ownership, and fixes the key layout of each route's deck from its vendor's billing
/// model. Returns warnings (things that are allowed but probably unintended).
pub fn check_refs(d: &mut Desired, st: &State, file: &str, issues: &mut Vec<Issue>) -> Vec<String> {
    let mut warnings = vec![];
    let mut err = |field: String, msg: String| issues.push(Issue::new(file, field, msg));
    let billing: HashMap<&str, BillingModel> = d
        .vendors
        .iter()
        .map(|v| (v.name.as_str(), v.billing))
        .chain(st.vendors.iter().map(|(n, v)| (n.as_str(), v.billing)))
        .fold(HashMap::new(), |mut m, (n, b)| {
            m.entry(n).or_insert(b);
            m
        });
    for (i, r) in d.routes.iter_mut().enumerate() {
        let a = at("routes", i, &r.name);
        match billing.get(r.vendor.as_str()) {
            None => err(format!("{a}.vendor"), unknown("vendor", &r.vendor)),
            Some(b) => {
                if let Some(deck) = &mut r.deck {
                    deck.ocn_lata = Some(*b == BillingModel::OcnLata);
                }
            }
        }
    }
    let file_routes: HashSet<&str> = d.routes.iter().map(|r| r.name.as_str()).collect();
    let route_known = |n: &str| file_routes.contains(n) || st.routes.contains_key(n);
    let file_parts: HashSet<&str> = d.partitions.iter().map(|p| p.name.as_str()).collect();
    let file_custs: HashSet<&str> = d.customers.iter().map(|c| c.ban.as_str()).collect();
    let cust_known = |b: &str| file_custs.contains(b) || st.customers.contains_key(b);

    // a vendor switching between prefix and OCN/LATA keys strands its routes' existing rates
    for v in &d.vendors {
        let Some(cur) = st.vendors.get(&v.name) else {
            continue;
        };
        if (cur.billing == BillingModel::OcnLata) == (v.billing == BillingModel::OcnLata) {
            continue;
        }
        for (name, r) in &st.routes {
            let reloaded = d
                .routes
                .iter()
                .any(|dr| &dr.name == name && dr.deck.is_some());
            if r.vendor_id == cur.id && st.routes_with_rates.contains(&r.id) && !reloaded {
                warnings.push(format!(
                    "vendor {:?} changes billing model {} -> {} but route {name:?} keeps its existing rates \
                     (keyed for {}); give the route a new rates deck",
                    v.name,
                    cur.billing.as_str(),
                    v.billing.as_str(),
                    cur.billing.as_str()
                ));
            }
        }
    }
    for (i, p) in d.partitions.iter().enumerate() {
        let a = at("partitions", i, &p.name);
        for (j, r) in p.routes.iter().flatten().enumerate() {
            if !route_known(r) {
                err(format!("{a}.routes[{j}]"), unknown("route", r));
            }
        }
    }
    let mut claimed: HashMap<&str, &str> = HashMap::new();
    for (i, c) in d.customers.iter().enumerate() {
        let a = at("customers", i, &c.ban);
        for (j, p) in c.partitions.iter().flatten().enumerate() {
            if !file_parts.contains(p.partition.as_str())
                && !st.partitions.contains_key(&p.partition)
            {
                err(
                    format!("{a}.partitions[{j}].name"),
                    unknown("partition", &p.partition),
                );
            }
        }
        for (j, ip) in c.source_ips.iter().flatten().enumerate() {
            if let Some(other) = claimed.insert(ip.as_str(), c.ban.as_str()) {
                err(
                    format!("{a}.source_ips[{j}]"),
                    format!("{ip} is also listed for customer {other}"),
                );
                continue;
            }
            let Some(owner) = st.cidr_owner.get(ip).and_then(|id| st.customer_ban.get(id)) else {
                continue;
            };
            if owner == &c.ban {
                continue;
            }
            // allowed only if this file also takes it away from its current owner
            let released = d
                .customers
                .iter()
                .any(|o| &o.ban == owner && o.source_ips.as_ref().is_some_and(|l| !l.contains(ip)));
            if !released {
                err(
                    format!("{a}.source_ips[{j}]"),
                    format!("{ip} belongs to customer {owner} in the database (list that customer's source_ips without it to move it)"),
                );
            }
        }
    }
    for (i, o) in d.overrides.iter().enumerate() {
        let a = format!("overrides[{i}]");
        if let Some(b) = &o.customer {
            if !cust_known(b) {
                err(format!("{a}.customer"), unknown("customer", b));
            }
        }
        if !route_known(&o.route) {
            err(format!("{a}.route"), unknown("route", &o.route));
        }
    }
    for (i, e) in d.exclusions.iter().enumerate() {
        let a = format!("exclusions[{i}]");
        if let Some(b) = &e.customer {
            if !cust_known(b) {
                err(format!("{a}.customer"), unknown("customer", b));
            }
        }
        if let Some(v) = &e.vendor {
            if !billing.contains_key(v.as_str()) {
                err(format!("{a}.vendor"), unknown("vendor", v));
            }
        }
    }
    for (i, m) in d.media_policies.iter().enumerate() {
        let a = format!("media_policies[{i}]");
        if let Some(b) = m.customer.as_deref().filter(|b| !cust_known(b)) {
            err(format!("{a}.customer"), unknown("customer", b));
        }
        if let Some(r) = m.route.as_deref().filter(|r| !route_known(r)) {
            err(format!("{a}.route"), unknown("route", r));
        }
    }
    warnings
}
