//! Plain routing data as loaded from the database: no I/O, no behaviour beyond small helpers.
//!
//! Money is integral: [`Rate`] counts units of 1e-7 currency per minute, so `$0.0045/min` is
//! `Rate(45_000)`. Times are unix seconds (`i64`); an open start/end is `i64::MIN` / `i64::MAX`.

use std::fmt;

use chrono_tz::Tz;
use serde::{Deserialize, Serialize};

/// Database id of a row (vendors.id, routes.id, ...).
pub type Id = i64;

/// Rate in units of 1e-7 per minute.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Rate(pub u32);

impl Rate {
    pub const SCALE: f64 = 10_000_000.0;
    /// Largest representable rate (~429.49/min); also the in-memory "no rate" sentinel, so real
    /// rates are capped one below it.
    pub const MAX: Rate = Rate(u32::MAX - 1);

    pub fn as_f64(self) -> f64 {
        self.0 as f64 / Self::SCALE
    }

    /// Converts a scaled integer (as produced by `round(x * 1e7)::bigint` in SQL) to a rate.
    pub fn from_scaled(v: i64) -> Option<Rate> {
        if (0..=Self::MAX.0 as i64).contains(&v) {
            Some(Rate(v as u32))
        } else {
            None
        }
    }

    /// Parses a decimal like `0.0045` exactly (no float rounding); at most 7 fractional digits.
    pub fn parse(s: &str) -> Option<Rate> {
        let s = s.trim();
        let (int, frac) = match s.split_once('.') {
            Some((i, f)) => (i, f),
            None => (s, ""),
        };
        if int.is_empty() && frac.is_empty() {
            return None;
        }
        if !int.bytes().all(|b| b.is_ascii_digit()) || !frac.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let frac = frac.trim_end_matches('0');
        if frac.len() > 7 {
            return None;
        }
        let int_v: u64 = if int.is_empty() { 0 } else { int.parse().ok()? };
        let mut frac_v: u64 = if frac.is_empty() {
            0
        } else {
            frac.parse().ok()?
        };
        for _ in frac.len()..7 {
            frac_v *= 10;
        }
        let v = int_v.checked_mul(10_000_000)?.checked_add(frac_v)?;
        Self::from_scaled(i64::try_from(v).ok()?)
    }
}

impl fmt::Display for Rate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = format!("{}.{:07}", self.0 / 10_000_000, self.0 % 10_000_000);
        let s = s.trim_end_matches('0');
        let s = s
            .strip_suffix('.')
            .map(|x| format!("{x}.0"))
            .unwrap_or(s.to_string());
        f.write_str(&s)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum BillingModel {
    Lrn,
    OcnLata,
    Dnis,
    International,
}

impl BillingModel {
    pub fn as_str(self) -> &'static str {
        match self {
            BillingModel::Lrn => "LRN",
            BillingModel::OcnLata => "OCN_LATA",
            BillingModel::Dnis => "DNIS",
            BillingModel::International => "INTERNATIONAL",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "LRN" => Some(Self::Lrn),
            "OCN_LATA" => Some(Self::OcnLata),
            "DNIS" => Some(Self::Dnis),
            "INTERNATIONAL" => Some(Self::International),
            _ => None,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Transport {
    Udp,
    Tcp,
    Tls,
}

impl Transport {
    pub fn as_str(self) -> &'static str {
        match self {
            Transport::Udp => "udp",
            Transport::Tcp => "tcp",
            Transport::Tls => "tls",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "udp" => Some(Self::Udp),
            "tcp" => Some(Self::Tcp),
            "tls" => Some(Self::Tls),
            _ => None,
        }
    }
}

/// Destination class a customer may be allowed to call.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DestClass {
    /// US geographic NANP (states, DC, US territories)
    Domestic,
    International,
    Tollfree,
    Premium,
    /// Canadian NANP numbers (`numbering::nanp_countries`)
    Canada,
    /// the other NANP countries: Caribbean and Bermuda (+1 876, +1 809, …)
    Caribbean,
}

impl DestClass {
    pub const ALL: [DestClass; 6] = [
        DestClass::Domestic,
        DestClass::International,
        DestClass::Tollfree,
        DestClass::Premium,
        DestClass::Canada,
        DestClass::Caribbean,
    ];
    pub fn as_str(self) -> &'static str {
        match self {
            DestClass::Domestic => "domestic",
            DestClass::International => "international",
            DestClass::Tollfree => "tollfree",
            DestClass::Premium => "premium",
            DestClass::Canada => "canada",
            DestClass::Caribbean => "caribbean",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.as_str() == s)
    }
    fn bit(self) -> u8 {
        1 << (self as u8)
    }
}

/// A set of [`DestClass`] as a bitmask.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct ClassSet(u8);

impl ClassSet {
    pub fn contains(self, c: DestClass) -> bool {
        self.0 & c.bit() != 0
    }
    pub fn insert(&mut self, c: DestClass) {
        self.0 |= c.bit();
    }
}

impl FromIterator<DestClass> for ClassSet {
    fn from_iter<I: IntoIterator<Item = DestClass>>(iter: I) -> Self {
        let mut s = ClassSet::default();
        for c in iter {
            s.insert(c);
        }
        s
    }
}

/// Rating zone of a call.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Zone {
    Interstate,
    Intrastate,
    Local,
    International,
    Tollfree,
    Emergency,
}

impl Zone {
    pub fn as_str(self) -> &'static str {
        match self {
            Zone::Interstate => "interstate",
            Zone::Intrastate => "intrastate",
            Zone::Local => "local",
            Zone::International => "international",
            Zone::Tollfree => "tollfree",
            Zone::Emergency => "emergency",
        }
    }
}

/// A recurring local-time window: on `days` (bit 0 = Monday .. bit 6 = Sunday; 0 = every day),
/// from `start_min` to `end_min` minutes after local midnight in `tz`. `end_min <= start_min`
/// means the window crosses midnight (it belongs to the day it starts on).
#[derive(Clone, Debug, PartialEq)]
pub struct TimeWindow {
    pub days: u8,
    pub start_min: u16,
    pub end_min: u16,
    pub tz: Tz,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Vendor {
    pub id: Id,
    pub name: String,
    pub billing: BillingModel,
    pub dialstring: String,
    pub enabled: bool,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Gateway {
    pub id: Id,
    pub vendor_id: Id,
    pub name: String,
    pub host: String,
    pub port: u16,
    pub transport: Transport,
    pub priority: i32,
    pub weight: u32,
    pub enabled: bool,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Route {
    pub id: Id,
    pub name: String,
    pub vendor_id: Id,
    pub priority: i32,
    pub weight: u32,
    pub capacity: Option<u32>,
    pub enabled: bool,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Partition {
    pub id: Id,
    pub name: String,
    pub route_ids: Vec<Id>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct CustomerPartition {
    pub partition_id: Id,
    pub priority: i32,
    pub window: Option<TimeWindow>,
}

/// sell = buy × (1 + margin_ppm / 1e6) + fixed_fee. `prefix` "" matches everything.
#[derive(Clone, Debug, PartialEq)]
pub struct MarginRule {
    pub prefix: String,
    /// margin in parts per million of the buy rate (12.5% = 125_000)
    pub margin_ppm: i64,
    pub fixed_fee: Rate,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Customer {
    pub id: Id,
    pub ban: String,
    pub name: String,
    pub enabled: bool,
    pub max_rate: Option<Rate>,
    pub blocked_prefixes: Vec<String>,
    pub allowed_classes: ClassSet,
    pub max_results: u16,
    pub allow_negative_margin: bool,
    /// Default margin rule (prefix ""), if any; more specific ones in `margin_rules`.
    pub margin: Option<MarginRule>,
    pub margin_rules: Vec<MarginRule>,
    pub partitions: Vec<CustomerPartition>,
    pub source_cidrs: Vec<ipnet::IpNet>,
    /// E.164 digits (no '+') answered with the customer's emergency calls, for
    /// P-Asserted-Identity
    pub emergency_callback: Option<String>,
}

/// A customer sell-deck row (prefix of the dialed E.164 digits).
#[derive(Clone, Debug, PartialEq)]
pub struct CustomerRate {
    pub prefix: String,
    pub inter: Option<Rate>,
    pub intra: Option<Rate>,
    pub local: Option<Rate>,
    pub effective_from: i64,
    pub effective_until: i64,
}

/// Key of a vendor rate row.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum RateKey<'a> {
    /// digits of the E.164 number without '+', e.g. "1212555"
    Prefix(&'a str),
    OcnLata {
        ocn: &'a str,
        lata: &'a str,
    },
}

/// One vendor rate row. International / toll-free rows carry the same rate in all zones.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RateRow {
    pub inter: Option<Rate>,
    pub intra: Option<Rate>,
    pub local: Option<Rate>,
    pub min_seconds: u16,
    pub inc_seconds: u16,
    pub effective_from: i64,
    pub effective_until: i64,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Override {
    pub id: Id,
    pub customer_id: Option<Id>,
    pub prefix: String,
    pub route_id: Id,
    /// used as the route's buy rate instead of its deck rate
    pub rate: Option<Rate>,
    pub valid_from: i64,
    pub valid_until: i64,
    pub window: Option<TimeWindow>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Exclusion {
    pub id: Id,
    pub customer_id: Option<Id>,
    pub prefix: String,
    /// None: the destination prefix itself is excluded (reject 403)
    pub vendor_id: Option<Id>,
}

// NANP block data lives with the numbering tables; routing reads it.
pub use crate::numbering::NpaNxxInfo;

/// A name shared between the snapshot and the answers built from it (route ids, vendor names):
/// cloning it is a reference-count bump, not an allocation. Compares and prints like a string.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Name(std::sync::Arc<str>);

impl Name {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::ops::Deref for Name {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

impl AsRef<str> for Name {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl std::borrow::Borrow<str> for Name {
    fn borrow(&self) -> &str {
        &self.0
    }
}

impl From<&str> for Name {
    fn from(s: &str) -> Name {
        Name(s.into())
    }
}

impl From<String> for Name {
    fn from(s: String) -> Name {
        Name(s.into())
    }
}

impl From<Name> for String {
    fn from(n: Name) -> String {
        n.0.to_string()
    }
}

impl std::fmt::Display for Name {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::fmt::Debug for Name {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Debug::fmt(&*self.0, f)
    }
}

impl PartialEq<str> for Name {
    fn eq(&self, o: &str) -> bool {
        &*self.0 == o
    }
}

impl PartialEq<&str> for Name {
    fn eq(&self, o: &&str) -> bool {
        &*self.0 == *o
    }
}

impl PartialEq<String> for Name {
    fn eq(&self, o: &String) -> bool {
        *self.0 == **o
    }
}

impl serde::Serialize for Name {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de> serde::Deserialize<'de> for Name {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Name, D::Error> {
        String::deserialize(d).map(Name::from)
    }
}
