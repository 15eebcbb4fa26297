//! Vendors, their gateways, routes and partitions: defaults and ranges.

use super::{path, IntRule, RuleError, I32_MAX, I32_MIN};
use crate::routing::model::{BillingModel, Transport};

/// The dialstring of a vendor that names none (placeholders `${number}`, `${host}`, `${port}`,
/// `${transport}`). The one copy: `warpd apply` and the admin API write it explicitly.
pub const DEFAULT_DIALSTRING: &str = "sip:+${number}@${host}:${port};transport=${transport}";

/// Vendors, gateways, routes and partitions are enabled unless they say otherwise.
pub const DEFAULT_ENABLED: bool = true;

pub const GATEWAY_PORT: IntRule = IntRule {
    field: "port",
    default: 5060,
    lo: 1,
    hi: 65535,
};
pub const GATEWAY_PRIORITY: IntRule = IntRule {
    field: "priority",
    default: 10,
    lo: I32_MIN,
    hi: I32_MAX,
};
pub const GATEWAY_WEIGHT: IntRule = IntRule {
    field: "weight",
    default: 1,
    lo: 0,
    hi: I32_MAX,
};
/// An omitted transport is UDP.
pub const DEFAULT_TRANSPORT: Transport = Transport::Udp;

pub const ROUTE_PRIORITY: IntRule = IntRule {
    field: "priority",
    ..GATEWAY_PRIORITY
};
pub const ROUTE_WEIGHT: IntRule = IntRule {
    field: "weight",
    ..GATEWAY_WEIGHT
};
/// Concurrent calls a route takes; omitted = no limit.
pub const ROUTE_CAPACITY: IntRule = IntRule {
    field: "capacity",
    default: 0,
    lo: 0,
    hi: I32_MAX,
};

/// A vendor's billing model: `LRN`, `OCN_LATA`, `DNIS` or `INTERNATIONAL`.
pub fn billing_model(at: &str, v: &str) -> Result<BillingModel, RuleError> {
    BillingModel::parse(v.trim()).ok_or_else(|| RuleError::NotOneOf {
        field: path(at, "billing_model"),
        value: v.to_string(),
        allowed: "LRN, OCN_LATA, DNIS, INTERNATIONAL",
    })
}

/// A vendor's dialstring ([`DEFAULT_DIALSTRING`] when omitted): it must place the number.
pub fn dialstring(at: &str, v: Option<&str>) -> Result<String, RuleError> {
    let d = v.unwrap_or(DEFAULT_DIALSTRING);
    if !d.contains("${number}") {
        return Err(RuleError::invalid(
            path(at, "dialstring"),
            format!("{d:?} has no ${{number}} placeholder"),
        ));
    }
    Ok(d.to_string())
}

/// A gateway's host: a name or address without spaces (trimmed).
pub fn gateway_host(at: &str, v: &str) -> Result<String, RuleError> {
    if v.trim().is_empty() || v.contains(char::is_whitespace) {
        return Err(RuleError::invalid(
            path(at, "host"),
            format!("{v:?} is not a host name or address"),
        ));
    }
    Ok(v.trim().to_string())
}

/// A gateway's transport ([`DEFAULT_TRANSPORT`] when omitted).
pub fn transport(at: &str, v: Option<&str>) -> Result<Transport, RuleError> {
    match v {
        None => Ok(DEFAULT_TRANSPORT),
        Some(t) => Transport::parse(t.trim()).ok_or_else(|| RuleError::NotOneOf {
            field: path(at, "transport"),
            value: t.to_string(),
            allowed: "udp, tcp, tls",
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vendor_rules() {
        assert_eq!(dialstring("", None).unwrap(), DEFAULT_DIALSTRING);
        assert_eq!(
            dialstring("vendors[0]", Some("sip:x@y"))
                .unwrap_err()
                .field(),
            "vendors[0].dialstring"
        );
        assert_eq!(
            billing_model("", "PIGEON").unwrap_err().to_string(),
            "billing_model: \"PIGEON\" is not one of LRN, OCN_LATA, DNIS, INTERNATIONAL"
        );
        assert_eq!(billing_model("", " LRN").unwrap(), BillingModel::Lrn);
        assert_eq!(transport("", None).unwrap(), Transport::Udp);
        assert!(transport("", Some("sctp")).is_err());
        assert!(gateway_host("", "a b").is_err());
        assert!(gateway_host("", " gw.example ").is_err());
        assert_eq!(gateway_host("", "gw.example").unwrap(), "gw.example");
        assert!(ROUTE_WEIGHT.value("", Some(-1)).is_err());
        assert_eq!(ROUTE_CAPACITY.optional("", None), Ok(None));
    }
}
