//! The provisioning file as written by an operator: plain serde structs (TOML or YAML), every struct
//! `deny_unknown_fields`. Values are kept close to the text (names, strings, loose numbers) so that
//! validation in [`super::validate`] can report every problem with its field path at once.
//!
//! Owns: the file syntax. Must not touch: the database, CSV files, validation rules.

use std::fmt;

use serde::de::{self, Deserializer, Visitor};
use serde::Deserialize;

/// A whole provisioning file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Network {
    #[serde(default)]
    pub vendors: Vec<VendorSpec>,
    #[serde(default)]
    pub routes: Vec<RouteSpec>,
    #[serde(default)]
    pub partitions: Vec<PartitionSpec>,
    #[serde(default)]
    pub customers: Vec<CustomerSpec>,
    #[serde(default)]
    pub overrides: Vec<OverrideSpec>,
    #[serde(default)]
    pub exclusions: Vec<ExclusionSpec>,
    #[serde(default)]
    pub media_policies: Vec<MediaPolicySpec>,
    pub numbering: Option<NumberingSpec>,
    /// customer trunks (issue 19): upserted by name; see `super::trunks`
    #[serde(default)]
    pub trunks: Vec<TrunkSpec>,
    /// numbers (DIDs): upserted by number
    #[serde(default)]
    pub numbers: Vec<NumberSpec>,
    /// networks a vendor (or peer) delivers inbound calls from, besides its gateways
    #[serde(default)]
    pub origination_sources: Vec<OriginationSourceSpec>,
    /// STIR/SHAKEN settings and TN ranges per customer or trunk (issue 20); see `super::stir`
    #[serde(default)]
    pub stir: Vec<StirSpec>,
}

/// `[[stir]]`: a customer's (or, with `trunk`, one of its trunks') STIR/SHAKEN settings.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StirSpec {
    pub customer: Ban,
    pub trunk: Option<String>,
    /// `A` (default, no cap), `B`, `C` or `off`
    pub max_attest: Option<String>,
    /// customer only: its calls are transit traffic (attestation C)
    pub transit: Option<bool>,
    /// customer only: refuse inbound calls failing verification with 436/437/438
    pub verify_reject_code: Option<i64>,
    /// customer only: `"+first-+last"` ranges it owns elsewhere; `None` leaves them as they are
    pub tn_ranges: Option<Vec<String>>,
}

/// `[[origination_sources]]`: the vendor's list replaced by `cidrs`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OriginationSourceSpec {
    pub vendor: String,
    pub cidrs: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrunkSpec {
    pub name: String,
    pub customer: Ban,
    pub enabled: Option<bool>,
    pub max_concurrent_calls: Option<i64>,
    pub max_cps: Option<i64>,
    /// `None`: left as they are; `Some`: replaced to match (also for the two lists below)
    pub source_ips: Option<Vec<String>>,
    pub credentials: Option<Vec<CredentialSpec>>,
    pub destinations: Option<Vec<DestinationSpec>>,
}

/// Digest credentials: `ha1`, or `password` to compute it (MD5(user:realm:password)) when
/// applied; the password itself is never stored, logged or shown in a plan.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CredentialSpec {
    pub username: String,
    pub realm: String,
    pub ha1: Option<String>,
    pub password: Option<String>,
}

impl fmt::Debug for CredentialSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CredentialSpec")
            .field("username", &self.username)
            .field("realm", &self.realm)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DestinationSpec {
    pub uri: Option<String>,
    pub host: Option<String>,
    pub port: Option<i64>,
    pub transport: Option<String>,
    pub priority: Option<i64>,
    pub weight: Option<i64>,
    pub enabled: Option<bool>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NumberSpec {
    pub number: String,
    pub customer: Ban,
    pub trunk: Option<String>,
    pub status: Option<String>,
    pub voice: Option<bool>,
    pub fax: Option<bool>,
    pub destination: Option<String>,
    pub inbound_rate: Option<Decimal>,
    pub monthly_fee: Option<Decimal>,
    pub cnam: Option<String>,
    /// moving a number to `customer` is explicit: the BAN it belongs to now
    pub move_from: Option<Ban>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VendorSpec {
    pub name: String,
    pub billing_model: String,
    pub dialstring: Option<String>,
    pub enabled: Option<bool>,
    /// `None`: the vendor's gateways are left as they are; `Some`: replaced to match.
    pub gateways: Option<Vec<GatewaySpec>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GatewaySpec {
    pub name: String,
    pub host: String,
    pub port: Option<i64>,
    pub transport: Option<String>,
    pub priority: Option<i64>,
    pub weight: Option<i64>,
    pub enabled: Option<bool>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouteSpec {
    pub name: String,
    pub vendor: String,
    pub priority: Option<i64>,
    pub weight: Option<i64>,
    pub capacity: Option<i64>,
    pub enabled: Option<bool>,
    /// CSV rate deck, relative to the provisioning file
    pub rates: Option<String>,
    /// RFC 3339 timestamp (or `-infinity`) stamped on every row of `rates`
    pub rates_effective_from: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PartitionSpec {
    pub name: String,
    pub description: Option<String>,
    /// `None`: membership left as it is; `Some`: replaced to match.
    pub routes: Option<Vec<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CustomerSpec {
    pub ban: Ban,
    pub name: Option<String>,
    pub enabled: Option<bool>,
    pub max_rate: Option<Decimal>,
    pub blocked_prefixes: Option<Vec<String>>,
    pub allowed_classes: Option<Vec<String>>,
    pub max_results: Option<i64>,
    /// call limits; omitted = no limit (NULL)
    pub max_concurrent_calls: Option<i64>,
    pub max_cps: Option<i64>,
    /// billing increments; omitted = the vendor's terms of the carrying route (NULL)
    pub billing_min_seconds: Option<i64>,
    pub billing_inc_seconds: Option<i64>,
    /// answered with the customer's emergency calls (P-Asserted-Identity); omitted = none
    pub emergency_callback: Option<String>,
    pub allow_negative_margin: Option<bool>,
    pub margin_percent: Option<Decimal>,
    pub fixed_fee: Option<Decimal>,
    pub source_ips: Option<Vec<String>>,
    pub partitions: Option<Vec<CustomerPartitionSpec>>,
    pub margin_rules: Option<Vec<MarginRuleSpec>>,
    /// CSV sell deck, relative to the provisioning file
    pub sell_rates: Option<String>,
    pub sell_rates_effective_from: Option<String>,
    /// credit account terms (issue 21); omitted = the account, if any, is left as it is
    pub account: Option<AccountSpec>,
}

/// A customer's `account` table, as written (money as decimals).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccountSpec {
    pub mode: Option<String>,
    pub credit_limit: Option<Decimal>,
    pub daily_spend_limit: Option<Decimal>,
    pub monthly_minutes: Option<i64>,
    pub per_call_cost_cap: Option<Decimal>,
    pub at_limit: Option<String>,
    pub tz: Option<String>,
    pub blocked: Option<bool>,
    pub spend_alarm_minutes: Option<i64>,
    pub spend_alarm_threshold: Option<Decimal>,
    pub auto_block: Option<bool>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CustomerPartitionSpec {
    pub name: String,
    pub priority: Option<i64>,
    #[serde(default)]
    pub days: Vec<Day>,
    pub start: Option<String>,
    pub end: Option<String>,
    pub tz: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MarginRuleSpec {
    #[serde(default)]
    pub prefix: String,
    pub margin_percent: Decimal,
    pub fixed_fee: Option<Decimal>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OverrideSpec {
    pub customer: Option<Ban>,
    #[serde(default)]
    pub prefix: String,
    pub route: String,
    pub rate: Option<Decimal>,
    pub valid_from: Option<String>,
    pub valid_until: Option<String>,
    #[serde(default)]
    pub days: Vec<Day>,
    pub start: Option<String>,
    pub end: Option<String>,
    pub tz: Option<String>,
    pub note: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExclusionSpec {
    pub customer: Option<Ban>,
    #[serde(default)]
    pub prefix: String,
    pub vendor: Option<String>,
    pub note: Option<String>,
}

/// A media policy (`media_policies` table), keyed by customer BAN and/or route name, or by a
/// customer trunk alone (its inbound calls). Settings omitted here are NULL: inherited from a
/// less specific policy.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MediaPolicySpec {
    pub customer: Option<Ban>,
    pub route: Option<String>,
    pub trunk: Option<String>,
    pub record: Option<bool>,
    /// `none`, `passthrough` or `gateway`
    pub t38_mode: Option<String>,
    pub codec_allow: Option<Vec<String>>,
    pub codec_strip: Option<Vec<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NumberingSpec {
    pub npanxx: Option<String>,
    pub local_calling: Option<String>,
    pub lnp: Option<String>,
    pub dno: Option<String>,
}

pub use crate::rules::values::Day;

/// A decimal written as a string (`"0.0045"`, exact) or a TOML/YAML number. Kept as text; parsed
/// exactly during validation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decimal(pub String);

impl<'de> Deserialize<'de> for Decimal {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Decimal;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a decimal number (e.g. 0.0045 or \"0.0045\")")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Decimal, E> {
                Ok(Decimal(v.trim().to_string()))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Decimal, E> {
                Ok(Decimal(v.to_string()))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Decimal, E> {
                Ok(Decimal(v.to_string()))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Decimal, E> {
                if !v.is_finite() {
                    return Err(E::custom("decimal must be finite"));
                }
                // Display of f64 is the shortest string that round-trips and never uses exponents
                Ok(Decimal(format!("{v}")))
            }
        }
        d.deserialize_any(V)
    }
}

/// A billing account number: a string, or an integer (`ban = 10001`) taken as its digits.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Ban(pub String);

impl<'de> Deserialize<'de> for Ban {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Ban;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a billing account number (string or integer)")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Ban, E> {
                Ok(Ban(v.trim().to_string()))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Ban, E> {
                Ok(Ban(v.to_string()))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Ban, E> {
                Ok(Ban(v.to_string()))
            }
        }
        d.deserialize_any(V)
    }
}
