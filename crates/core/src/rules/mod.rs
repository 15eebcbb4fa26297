//! The ONE rule set of provisioned objects: defaults, ranges and cross-checks of vendors,
//! gateways, routes, partitions, customers (limits, margins, blocked prefixes, classes, source
//! addresses, partition windows), overrides and exclusions. Every write surface calls it:
//! `warpd apply` (`crate::provision::validate`) and the admin API (`crate::admin::resources`).
//!
//! Owns: what a valid value is and what an omitted one means. Must not touch: I/O, the database,
//! HTTP (pure: std, serde, chrono, ipnet, thiserror and `crate::routing::model` only).
//! Errors name the field (`port: 70000 is out of range 1..=65535`); callers prefix the path of
//! the object (`vendors[0] "Alpha".gateways[1] "gw2".port`).

mod account;
mod customer;
pub mod media;
mod network;
pub mod stir;
pub mod trunk;
pub mod values;

use std::fmt;

pub use account::*;
pub use customer::*;
pub use network::*;

/// A broken rule, naming the field (a path relative to what the caller checked).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RuleError {
    /// An integer outside its range.
    OutOfRange {
        field: String,
        value: i64,
        lo: i64,
        hi: i64,
    },
    /// A name that is empty or blank.
    Empty { field: String },
    /// A name with leading/trailing spaces.
    Spaces { field: String, value: String },
    /// A value not among the allowed words.
    NotOneOf {
        field: String,
        value: String,
        allowed: &'static str,
    },
    /// The same item twice in a list (`what` says which).
    Twice { field: String, what: String },
    /// A value that does not parse, or breaks a cross-check (`why` says how).
    Invalid { field: String, why: String },
}

impl RuleError {
    /// The field path of the error.
    pub fn field(&self) -> &str {
        match self {
            RuleError::OutOfRange { field, .. }
            | RuleError::Empty { field }
            | RuleError::Spaces { field, .. }
            | RuleError::NotOneOf { field, .. }
            | RuleError::Twice { field, .. }
            | RuleError::Invalid { field, .. } => field,
        }
    }

    /// What is wrong, without the field.
    pub fn problem(&self) -> String {
        match self {
            RuleError::OutOfRange { value, lo, hi, .. } => {
                format!("{value} is out of range {lo}..={hi}")
            }
            RuleError::Empty { .. } => "must not be empty".into(),
            RuleError::Spaces { value, .. } => format!("{value:?} has leading/trailing spaces"),
            RuleError::NotOneOf { value, allowed, .. } => {
                format!("{value:?} is not one of {allowed}")
            }
            RuleError::Twice { what, .. } => format!("{what} listed twice"),
            RuleError::Invalid { why, .. } => why.clone(),
        }
    }

    /// Shorthand for [`RuleError::Invalid`].
    pub fn invalid(field: impl Into<String>, why: impl Into<String>) -> RuleError {
        RuleError::Invalid {
            field: field.into(),
            why: why.into(),
        }
    }
}

impl fmt::Display for RuleError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field(), self.problem())
    }
}

/// `at.field`, or `field` when `at` is empty.
pub fn path(at: &str, field: &str) -> String {
    if at.is_empty() {
        field.to_string()
    } else {
        format!("{at}.{field}")
    }
}

/// An integer field: its default when omitted and its range (within `i32`: every such column is
/// an `integer`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IntRule {
    pub field: &'static str,
    pub default: i64,
    pub lo: i64,
    pub hi: i64,
}

const I32_MIN: i64 = i32::MIN as i64;
const I32_MAX: i64 = i32::MAX as i64;

impl IntRule {
    /// The value, or the default when omitted.
    pub fn value(&self, at: &str, v: Option<i64>) -> Result<i32, RuleError> {
        self.check(at, v.unwrap_or(self.default))
    }

    /// The value, or `default` (instead of the rule's) when omitted.
    pub fn value_or(&self, at: &str, v: Option<i64>, default: i64) -> Result<i32, RuleError> {
        self.check(at, v.unwrap_or(default))
    }

    /// An optional column: omitted stays `None` (NULL).
    pub fn optional(&self, at: &str, v: Option<i64>) -> Result<Option<i32>, RuleError> {
        v.map(|v| self.check(at, v)).transpose()
    }

    fn check(&self, at: &str, v: i64) -> Result<i32, RuleError> {
        let out = || RuleError::OutOfRange {
            field: path(at, self.field),
            value: v,
            lo: self.lo,
            hi: self.hi,
        };
        if !(self.lo..=self.hi).contains(&v) {
            return Err(out());
        }
        i32::try_from(v).map_err(|_| out())
    }
}

/// A name or key: not blank, no leading/trailing spaces.
pub fn name(field: impl Into<String>, v: &str) -> Result<(), RuleError> {
    if v.trim().is_empty() {
        Err(RuleError::Empty {
            field: field.into(),
        })
    } else if v.trim() != v {
        Err(RuleError::Spaces {
            field: field.into(),
            value: v.to_string(),
        })
    } else {
        Ok(())
    }
}

/// `Err(RuleError::Invalid)` from a value parser's message.
pub(crate) fn parsed<T>(field: impl Into<String>, r: Result<T, String>) -> Result<T, RuleError> {
    r.map_err(|why| RuleError::invalid(field, why))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn int_rules_default_and_range() {
        assert_eq!(GATEWAY_PORT.value("", None), Ok(5060));
        let e = GATEWAY_PORT.value("gateways[0]", Some(70000)).unwrap_err();
        assert_eq!(
            e.to_string(),
            "gateways[0].port: 70000 is out of range 1..=65535"
        );
        assert_eq!(e.field(), "gateways[0].port");
        assert_eq!(e.problem(), "70000 is out of range 1..=65535");
        assert_eq!(MAX_CPS.optional("", None), Ok(None));
        assert!(BILLING_INC_SECONDS.optional("", Some(0)).is_err());
        assert_eq!(CUSTOMER_PARTITION_PRIORITY.value_or("", None, 30), Ok(30));
    }

    #[test]
    fn names_are_trimmed_and_not_blank() {
        assert!(name("ban", "1001").is_ok());
        assert_eq!(name("ban", " ").unwrap_err().problem(), "must not be empty");
        assert!(name("ban", " 1001")
            .unwrap_err()
            .problem()
            .contains("spaces"));
    }
}
