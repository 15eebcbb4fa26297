//! The desired state of a provisioning file after validation ([`Desired`]): every object with
//! its defaults applied, as `validate` builds it and `diff` / `db` compare and write it.
//!
//! Owns: the desired-state types and their audit labels/fields. Must not touch: validation rules
//! (`crate::rules`), the database.

use super::deck::DeckSource;
use super::values::*;
use crate::routing::model::{BillingModel, Transport};

#[derive(Debug, Clone)]
pub struct VendorD {
    pub name: String,
    pub billing: BillingModel,
    pub dialstring: String,
    pub enabled: bool,
    pub gateways: Option<Vec<GatewayD>>,
}

impl VendorD {
    pub fn fields(&self) -> Fields {
        vec![
            ("billing_model", self.billing.as_str().into()),
            ("dialstring", self.dialstring.clone()),
            ("enabled", self.enabled.to_string()),
        ]
    }
}

#[derive(Debug, Clone)]
pub struct GatewayD {
    pub name: String,
    pub host: String,
    pub port: i32,
    pub transport: Transport,
    pub priority: i32,
    pub weight: i32,
    pub enabled: bool,
}

impl GatewayD {
    pub fn fields(&self) -> Fields {
        vec![
            ("host", self.host.clone()),
            ("port", self.port.to_string()),
            ("transport", self.transport.as_str().into()),
            ("priority", self.priority.to_string()),
            ("weight", self.weight.to_string()),
            ("enabled", self.enabled.to_string()),
        ]
    }
}

#[derive(Debug, Clone)]
pub struct RouteD {
    pub name: String,
    pub vendor: String,
    pub priority: i32,
    pub weight: i32,
    pub capacity: Option<i32>,
    pub enabled: bool,
    pub deck: Option<DeckSource>,
}

impl RouteD {
    pub fn fields(&self) -> Fields {
        vec![
            ("vendor", self.vendor.clone()),
            ("priority", self.priority.to_string()),
            ("weight", self.weight.to_string()),
            ("capacity", f_opt(self.capacity)),
            ("enabled", self.enabled.to_string()),
        ]
    }
}

#[derive(Debug, Clone)]
pub struct PartitionD {
    pub name: String,
    pub description: String,
    pub routes: Option<Vec<String>>,
}

impl PartitionD {
    pub fn fields(&self) -> Fields {
        vec![("description", self.description.clone())]
    }
}

/// A recurring local-time window (customer partitions, overrides).
#[derive(Debug, Clone, PartialEq)]
pub struct WindowD {
    /// ISO weekdays, sorted; empty = every day
    pub days: Vec<i16>,
    /// `HH:MM:SS`
    pub start: Option<String>,
    pub end: Option<String>,
    /// canonical IANA name
    pub tz: String,
}

impl WindowD {
    pub fn fields(&self) -> Fields {
        vec![
            ("days", f_list(&self.days)),
            ("start", f_opt(self.start.as_deref())),
            ("end", f_opt(self.end.as_deref())),
            ("tz", self.tz.clone()),
        ]
    }
}

#[derive(Debug, Clone)]
pub struct CustPartD {
    pub partition: String,
    pub priority: i32,
    pub window: WindowD,
}

impl CustPartD {
    pub fn fields(&self) -> Fields {
        let mut f = vec![("priority", self.priority.to_string())];
        f.extend(self.window.fields());
        f
    }
}

#[derive(Debug, Clone)]
pub struct MarginD {
    pub prefix: String,
    /// percent × 1e4
    pub margin_percent: i64,
    /// money × 1e7
    pub fixed_fee: i64,
}

impl MarginD {
    pub fn fields(&self) -> Fields {
        vec![
            ("margin_percent", f_pct(Some(self.margin_percent))),
            ("fixed_fee", f_money(Some(self.fixed_fee))),
        ]
    }
}

#[derive(Debug, Clone)]
pub struct CustomerD {
    pub ban: String,
    pub name: String,
    pub enabled: bool,
    pub max_rate: Option<i64>,
    pub blocked_prefixes: Vec<String>,
    /// canonical order (domestic, international, tollfree, premium, canada, caribbean)
    pub allowed_classes: Vec<&'static str>,
    pub max_results: i32,
    /// call limits (NULL = no limit)
    pub max_concurrent_calls: Option<i32>,
    pub max_cps: Option<i32>,
    /// billing increments (NULL = the vendor's terms)
    pub billing_min_seconds: Option<i32>,
    pub billing_inc_seconds: Option<i32>,
    /// E.164 digits (NULL = none)
    pub emergency_callback: Option<String>,
    pub allow_negative_margin: bool,
    pub margin_percent: Option<i64>,
    pub fixed_fee: i64,
    /// canonical CIDR text
    pub source_ips: Option<Vec<String>>,
    pub partitions: Option<Vec<CustPartD>>,
    pub margin_rules: Option<Vec<MarginD>>,
    pub sell: Option<DeckSource>,
}

impl CustomerD {
    pub fn fields(&self) -> Fields {
        vec![
            ("name", self.name.clone()),
            ("enabled", self.enabled.to_string()),
            ("max_rate", f_money(self.max_rate)),
            ("blocked_prefixes", f_list(&self.blocked_prefixes)),
            ("allowed_classes", f_list(&self.allowed_classes)),
            ("max_results", self.max_results.to_string()),
            ("max_concurrent_calls", f_opt(self.max_concurrent_calls)),
            ("max_cps", f_opt(self.max_cps)),
            ("billing_min_seconds", f_opt(self.billing_min_seconds)),
            ("billing_inc_seconds", f_opt(self.billing_inc_seconds)),
            (
                "emergency_callback",
                f_opt(self.emergency_callback.as_ref()),
            ),
            (
                "allow_negative_margin",
                self.allow_negative_margin.to_string(),
            ),
            ("margin_percent", f_pct(self.margin_percent)),
            ("fixed_fee", f_money(Some(self.fixed_fee))),
        ]
    }
}

#[derive(Debug, Clone)]
pub struct OverrideD {
    pub customer: Option<String>,
    pub prefix: String,
    pub route: String,
    pub rate: Option<i64>,
    pub valid_from: i64,
    pub valid_until: i64,
    pub window: WindowD,
    pub note: String,
}

impl OverrideD {
    pub fn fields(&self) -> Fields {
        let mut f = vec![
            ("rate", f_money(self.rate)),
            ("valid_from", fmt_ts(self.valid_from)),
            ("valid_until", fmt_ts(self.valid_until)),
        ];
        f.extend(self.window.fields());
        f.push(("note", self.note.clone()));
        f
    }

    pub fn label(&self) -> String {
        identity_label(
            self.customer.as_deref(),
            &self.prefix,
            &format!("route {}", self.route),
        )
    }
}

#[derive(Debug, Clone)]
pub struct ExclusionD {
    pub customer: Option<String>,
    pub prefix: String,
    pub vendor: Option<String>,
    pub note: String,
}

impl ExclusionD {
    pub fn fields(&self) -> Fields {
        vec![("note", self.note.clone())]
    }

    pub fn label(&self) -> String {
        let v = match &self.vendor {
            Some(v) => format!("vendor {v}"),
            None => "destination blocked".into(),
        };
        identity_label(self.customer.as_deref(), &self.prefix, &v)
    }
}

/// A media policy; keyed by (customer, route), at least one of them set.
#[derive(Debug, Clone)]
pub struct MediaPolicyD {
    pub customer: Option<String>,
    pub route: Option<String>,
    /// a customer trunk (alone): its inbound calls
    pub trunk: Option<String>,
    pub record: Option<bool>,
    /// `none` | `passthrough` | `gateway`
    pub t38_mode: Option<&'static str>,
    pub codec_allow: Option<Vec<String>>,
    pub codec_strip: Option<Vec<String>>,
}

impl MediaPolicyD {
    pub fn fields(&self) -> Fields {
        vec![
            ("record", f_opt(self.record)),
            ("t38_mode", f_opt(self.t38_mode)),
            ("codec_allow", f_opt_list(self.codec_allow.as_deref())),
            ("codec_strip", f_opt_list(self.codec_strip.as_deref())),
        ]
    }

    /// `customer 10001 route ks-ocn` / `customer 10001` / `route ks-ocn`
    pub fn label(&self) -> String {
        match &self.trunk {
            Some(t) => format!("trunk {t}"),
            None => media_policy_label(self.customer.as_deref(), self.route.as_deref()),
        }
    }
}

pub fn media_policy_label(customer: Option<&str>, route: Option<&str>) -> String {
    let c = customer.map(|b| format!("customer {b}"));
    let r = route.map(|r| format!("route {r}"));
    [c, r].into_iter().flatten().collect::<Vec<_>>().join(" ")
}

/// `customer 10001 prefix 1312 route ks-ocn` / `all customers prefix '' ...`
pub fn identity_label(customer: Option<&str>, prefix: &str, what: &str) -> String {
    let c = match customer {
        Some(b) => format!("customer {b}"),
        None => "all customers".into(),
    };
    let p = if prefix.is_empty() { "*" } else { prefix };
    format!("{c} prefix {p} {what}")
}

/// The validated desired state of everything the file names.
#[derive(Debug, Default)]
pub struct Desired {
    pub vendors: Vec<VendorD>,
    pub routes: Vec<RouteD>,
    pub partitions: Vec<PartitionD>,
    pub customers: Vec<CustomerD>,
    pub overrides: Vec<OverrideD>,
    pub exclusions: Vec<ExclusionD>,
    pub media_policies: Vec<MediaPolicyD>,
    pub numbering: Vec<DeckSource>,
}
