//! `[[trunks]]` and `[[numbers]]` of a provisioning file (issue 19): validated with the shared
//! rules (`crate::rules::trunk`) into [`DesiredInbound`], every problem an [`Issue`] naming its
//! field path, before anything is written. Checks within the file: a trunk named twice, a
//! source network of two trunks (overlapping counts), credentials (user, realm) of two trunks,
//! a number listed twice or claimed by two customers, a number on a trunk of another customer.
//! What needs the database (unknown customer or trunk, a number of another customer without
//! `move_from`, a network or credential owned by a trunk not in the file) is checked by the
//! daemon inside the apply transaction.
//!
//! Upsert semantics: a trunk or number named by the file is created or updated; the lists of a
//! trunk (`source_ips`, `credentials`, `destinations`) are replaced when given, left alone when
//! omitted; trunks and numbers the file does not name are left alone.

use std::collections::HashMap;

use ipnet::IpNet;

use super::spec::{Decimal, NumberSpec, OriginationSourceSpec, TrunkSpec};
use super::Issue;
use crate::routing::inbound::NumberStatus;
use crate::rules::trunk::*;
use crate::rules::values::parse_rate;
use crate::rules::RuleError;

pub use crate::rules::trunk::Secret;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CredentialDesired {
    pub username: String,
    pub realm: String,
    pub secret: Secret,
}

/// A destination of a trunk: the shared rule's checked form.
pub type DestinationDesired = crate::rules::trunk::Destination;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TrunkDesired {
    /// the field path of the entry (`trunks[0]`)
    pub at: String,
    pub name: String,
    pub customer: String,
    pub enabled: bool,
    pub max_calls: Option<i32>,
    pub max_cps: Option<i32>,
    pub sources: Option<Vec<IpNet>>,
    pub credentials: Option<Vec<CredentialDesired>>,
    pub destinations: Option<Vec<DestinationDesired>>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NumberDesired {
    pub at: String,
    /// E.164 with '+'
    pub number: String,
    pub customer: String,
    pub trunk: Option<String>,
    pub status: NumberStatus,
    pub voice: bool,
    pub fax: bool,
    pub destination: Option<String>,
    /// 1e-7 units per minute
    pub inbound_rate: i64,
    pub monthly_fee: Option<i64>,
    pub cnam: Option<String>,
    pub move_from: Option<String>,
}

/// `[[origination_sources]]` entry `at`: the vendor's networks (replacing its list).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OriginationDesired {
    pub at: String,
    pub vendor: String,
    pub nets: Vec<IpNet>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DesiredInbound {
    pub trunks: Vec<TrunkDesired>,
    pub numbers: Vec<NumberDesired>,
    pub origination: Vec<OriginationDesired>,
}

impl DesiredInbound {
    pub fn is_empty(&self) -> bool {
        self.trunks.is_empty() && self.numbers.is_empty() && self.origination.is_empty()
    }
}

/// Validates `[[origination_sources]]` into `out`: each CIDR by the shared rule, a vendor named
/// once, no network in two entries (overlapping counts: a network belongs to one vendor).
pub fn build_origination(
    specs: &[OriginationSourceSpec],
    source: &str,
    issues: &mut Vec<Issue>,
    out: &mut DesiredInbound,
) {
    let mut cx = Cx { source, issues };
    let mut vendors: HashMap<&str, usize> = HashMap::new();
    let mut seen: Vec<(IpNet, String)> = Vec::new();
    for (i, o) in specs.iter().enumerate() {
        let at = format!("origination_sources[{i}]");
        if o.vendor.trim().is_empty() {
            cx.issue(format!("{at}.vendor"), "empty vendor name".into());
        } else if let Some(j) = vendors.insert(o.vendor.as_str(), i) {
            cx.issue(
                format!("{at}.vendor"),
                format!("vendor {:?} is also origination_sources[{j}]", o.vendor),
            );
        }
        let mut nets = Vec::new();
        for (j, c) in o.cidrs.iter().enumerate() {
            let field = format!("{at}.cidrs[{j}]");
            let Some(net) = cx.rule(source_cidr(&field, c)) else {
                continue;
            };
            if let Some((other, f)) = seen
                .iter()
                .find(|(n, _)| n.contains(&net.network()) || net.contains(&n.network()))
            {
                cx.issue(
                    field.clone(),
                    format!("{net} overlaps {other} ({f}): a network belongs to one vendor"),
                );
            }
            seen.push((net, field));
            nets.push(net);
        }
        out.origination.push(OriginationDesired {
            at,
            vendor: o.vendor.clone(),
            nets,
        });
    }
}

struct Cx<'a> {
    source: &'a str,
    issues: &'a mut Vec<Issue>,
}

impl Cx<'_> {
    fn rule<T>(&mut self, r: Result<T, RuleError>) -> Option<T> {
        match r {
            Ok(v) => Some(v),
            Err(e) => {
                self.issues
                    .push(Issue::new(self.source, e.field(), e.problem()));
                None
            }
        }
    }
    fn issue(&mut self, field: String, msg: String) {
        self.issues.push(Issue::new(self.source, field, msg));
    }
}

fn money(at: &str, field: &str, v: &Decimal) -> Result<i64, RuleError> {
    parse_rate(&v.0)
        .map(i64::from)
        .map_err(|why| RuleError::invalid(format!("{at}.{field}"), why))
}

/// Validates the file's trunks and numbers; every problem goes to `issues`.
pub fn build(
    trunks: &[TrunkSpec],
    numbers: &[NumberSpec],
    source: &str,
    issues: &mut Vec<Issue>,
) -> DesiredInbound {
    let mut cx = Cx { source, issues };
    let mut out = DesiredInbound::default();
    let mut names: HashMap<String, usize> = HashMap::new();
    let mut nets: Vec<(IpNet, (String, String))> = Vec::new();
    let mut creds: HashMap<(String, String), String> = HashMap::new();
    for (i, t) in trunks.iter().enumerate() {
        let at = format!("trunks[{i}]");
        let name = cx.rule(trunk_name(&at, &t.name));
        if let Some(n) = &name {
            if let Some(j) = names.insert(n.clone(), i) {
                cx.issue(
                    format!("{at}.name"),
                    format!("trunk {n:?} is also trunks[{j}]"),
                );
            }
        }
        let max_calls = cx.rule(TRUNK_MAX_CALLS.optional(&at, t.max_concurrent_calls));
        let max_cps = cx.rule(TRUNK_MAX_CPS.optional(&at, t.max_cps));
        let sources = t.source_ips.as_ref().map(|list| {
            list.iter()
                .enumerate()
                .filter_map(|(j, s)| {
                    let field = format!("{at}.source_ips[{j}]");
                    let net = cx.rule(source_cidr(&field, s))?;
                    nets.push((net, (t.name.clone(), field)));
                    Some(net)
                })
                .collect::<Vec<_>>()
        });
        let credentials = t.credentials.as_ref().map(|list| {
            list.iter()
                .enumerate()
                .filter_map(|(j, c)| {
                    let at = format!("{at}.credentials[{j}]");
                    let user = cx.rule(digest_user(&format!("{at}.username"), &c.username));
                    let realm = cx.rule(digest_realm(&format!("{at}.realm"), &c.realm));
                    let secret = cx.rule(secret(&at, c.ha1.as_deref(), c.password.as_deref()));
                    let (user, realm, secret) = (user?, realm?, secret?);
                    if let Some(other) = creds.insert((user.clone(), realm.clone()), t.name.clone())
                    {
                        cx.issue(
                            format!("{at}.username"),
                            format!(
                                "credentials {user:?}@{realm:?} also belong to trunk {other:?}"
                            ),
                        );
                    }
                    Some(CredentialDesired {
                        username: user,
                        realm,
                        secret,
                    })
                })
                .collect::<Vec<_>>()
        });
        let destinations = t.destinations.as_ref().map(|list| {
            list.iter()
                .enumerate()
                .filter_map(|(j, d)| {
                    let at = format!("{at}.destinations[{j}]");
                    cx.rule(destination(
                        &at,
                        DestinationIn {
                            uri: d.uri.as_deref(),
                            host: d.host.as_deref(),
                            port: d.port,
                            transport: d.transport.as_deref(),
                            priority: d.priority,
                            weight: d.weight,
                            enabled: d.enabled,
                        },
                    ))
                })
                .collect::<Vec<_>>()
        });
        if t.customer.0.is_empty() {
            cx.issue(format!("{at}.customer"), "must not be empty".into());
        }
        if let (Some(name), Some(max_calls), Some(max_cps)) = (name, max_calls, max_cps) {
            out.trunks.push(TrunkDesired {
                at,
                name,
                customer: t.customer.0.clone(),
                enabled: t.enabled.unwrap_or(true),
                max_calls,
                max_cps,
                sources,
                credentials,
                destinations,
            });
        }
    }
    // a network belongs to one trunk: overlapping networks of two trunks are refused
    for (i, a) in nets.iter().enumerate() {
        if let Some(b) = nets[i + 1..]
            .iter()
            .find(|b| b.1 .0 != a.1 .0 && (a.0.contains(&b.0) || b.0.contains(&a.0)))
        {
            cx.issue(
                b.1 .1.clone(),
                format!(
                    "{} overlaps {} of trunk {:?} ({}): a network belongs to one trunk",
                    b.0, a.0, a.1 .0, a.1 .1
                ),
            );
        }
    }
    let trunk_customer: HashMap<&str, &str> = out
        .trunks
        .iter()
        .map(|t| (t.name.as_str(), t.customer.as_str()))
        .collect();
    let mut seen: HashMap<String, (usize, String)> = HashMap::new();
    for (i, n) in numbers.iter().enumerate() {
        let at = format!("numbers[{i}]");
        let Some(number) = cx.rule(e164(&format!("{at}.number"), &n.number)) else {
            continue;
        };
        let customer = n.customer.0.clone();
        if let Some((j, other)) = seen.insert(number.clone(), (i, customer.clone())) {
            let msg = if other != customer {
                format!("{number} is claimed by customer {other:?} (numbers[{j}]) and {customer:?}: a number belongs to one customer")
            } else {
                format!("{number} is also numbers[{j}]")
            };
            cx.issue(format!("{at}.number"), msg);
        }
        if let Some(t) = &n.trunk {
            if let Some(owner) = trunk_customer.get(t.as_str()) {
                if *owner != customer {
                    cx.issue(
                        format!("{at}.trunk"),
                        format!("trunk {t:?} belongs to customer {owner:?}, not {customer:?}"),
                    );
                }
            }
        }
        let status = cx.rule(number_status(&format!("{at}.status"), n.status.as_deref()));
        let destination = match &n.destination {
            Some(u) => cx.rule(sip_uri(&format!("{at}.destination"), u)).map(Some),
            None => Some(None),
        };
        let rate = match &n.inbound_rate {
            Some(d) => cx.rule(money(&at, "inbound_rate", d)),
            None => Some(0),
        };
        let fee = match &n.monthly_fee {
            Some(d) => cx.rule(money(&at, "monthly_fee", d)).map(Some),
            None => Some(None),
        };
        let cnam_v = match &n.cnam {
            Some(c) => cx.rule(cnam(&format!("{at}.cnam"), c)).map(Some),
            None => Some(None),
        };
        if let (Some(status), Some(destination), Some(rate), Some(fee), Some(cnam_v)) =
            (status, destination, rate, fee, cnam_v)
        {
            out.numbers.push(NumberDesired {
                at,
                number,
                customer,
                trunk: n.trunk.clone(),
                status,
                voice: n.voice.unwrap_or(true),
                fax: n.fax.unwrap_or(false),
                destination,
                inbound_rate: rate,
                monthly_fee: fee,
                cnam: cnam_v,
                move_from: n.move_from.as_ref().map(|b| b.0.clone()),
            });
        }
    }
    out
}
