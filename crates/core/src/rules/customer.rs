//! Customers (limits, margins, blocked prefixes, destination classes, source addresses, partition
//! windows), overrides and exclusions: defaults, ranges and cross-checks.

use std::str::FromStr;

use ipnet::IpNet;

use super::values::{
    check_prefix, parse_days, parse_rate, parse_scaled, parse_time, parse_ts, Day,
};
use super::{parsed, IntRule, RuleError, I32_MAX, I32_MIN};
use crate::routing::model::DestClass;

/// Routes per answer when the dip does not say.
pub const MAX_RESULTS: IntRule = IntRule {
    field: "max_results",
    default: 5,
    lo: 1,
    hi: 100,
};
/// The call limits and billing increments: NULL (no limit / the vendor's terms) when omitted;
/// the lower bounds are the CHECK constraints of sql/0003_cdr.sql.
pub const MAX_CONCURRENT_CALLS: IntRule = IntRule {
    field: "max_concurrent_calls",
    default: 0,
    lo: 0,
    hi: I32_MAX,
};
pub const MAX_CPS: IntRule = IntRule {
    field: "max_cps",
    ..MAX_CONCURRENT_CALLS
};
pub const BILLING_MIN_SECONDS: IntRule = IntRule {
    field: "billing_min_seconds",
    ..MAX_CONCURRENT_CALLS
};
pub const BILLING_INC_SECONDS: IntRule = IntRule {
    field: "billing_inc_seconds",
    default: 1,
    lo: 1,
    hi: I32_MAX,
};
/// The priority of a customer's partition (`warpd apply` defaults to 10 × its position).
pub const CUSTOMER_PARTITION_PRIORITY: IntRule = IntRule {
    field: "priority",
    default: 10,
    lo: I32_MIN,
    hi: I32_MAX,
};
/// Destination classes a customer may call when it does not say.
pub const DEFAULT_CLASSES: [DestClass; 2] = [DestClass::Domestic, DestClass::Tollfree];
/// A customer may not be sold below cost unless it says so.
pub const DEFAULT_ALLOW_NEGATIVE_MARGIN: bool = false;
/// Time zone of a window that names none.
pub const DEFAULT_TZ: &str = "UTC";

/// Money per minute (≥ 0, at most 7 decimals), scaled by 10^7.
pub fn money(field: impl Into<String>, v: &str) -> Result<i64, RuleError> {
    parsed(field, parse_rate(v)).map(i64::from)
}

/// A margin percent (signed, at most 4 decimals and 5 integer digits), scaled by 10^4.
pub fn percent(field: impl Into<String>, v: &str) -> Result<i64, RuleError> {
    parsed(field, parse_scaled(v, 4, 5))
}

/// An E.164 digit prefix (exactly: no spaces); `allow_empty` for "every destination".
pub fn prefix(field: impl Into<String>, v: &str, allow_empty: bool) -> Result<String, RuleError> {
    parsed(field, check_prefix(v, allow_empty))?;
    Ok(v.to_string())
}

/// One blocked prefix (trimmed), not already in `seen`.
pub fn blocked_prefix(
    field: impl Into<String>,
    v: &str,
    seen: &[String],
) -> Result<String, RuleError> {
    let field = field.into();
    let p = prefix(field.clone(), v.trim(), false)?;
    if seen.contains(&p) {
        return Err(RuleError::Twice {
            field,
            what: format!("prefix {p}"),
        });
    }
    Ok(p)
}

/// A list of blocked prefixes: the first bad one is the error (`field[j]`).
pub fn blocked_prefixes(field: &str, ps: &[String]) -> Result<Vec<String>, RuleError> {
    let mut out = vec![];
    for (j, p) in ps.iter().enumerate() {
        let p = blocked_prefix(format!("{field}[{j}]"), p, &out)?;
        out.push(p);
    }
    Ok(out)
}

/// A customer's emergency callback number (sent for P-Asserted-Identity on its emergency calls):
/// any accepted number form (`+1NXXNXXXXXX`, `NXXNXXXXXX`, `+CC…`), kept as E.164 digits without
/// `+`.
pub fn emergency_callback(field: impl Into<String>, v: &str) -> Result<String, RuleError> {
    crate::numbering::normalize(v.trim())
        .map(|n| n.as_str().to_string())
        .ok_or_else(|| RuleError::Invalid {
            field: field.into(),
            why: format!("{v:?} is not a phone number (+1NXXNXXXXXX or +CC…)"),
        })
}

/// A destination class: domestic, international, tollfree (or toll-free), premium, canada,
/// caribbean; any case.
pub fn dest_class(field: impl Into<String>, v: &str) -> Result<DestClass, RuleError> {
    let t = v.trim().to_ascii_lowercase();
    let t = match t.as_str() {
        "toll-free" | "toll_free" => "tollfree",
        t => t,
    };
    DestClass::parse(t).ok_or_else(|| RuleError::NotOneOf {
        field: field.into(),
        value: v.to_string(),
        allowed: "domestic, international, tollfree, premium, canada, caribbean",
    })
}

/// Destination classes in their canonical order, without repeats.
pub fn canonical_classes(got: &[DestClass]) -> Vec<DestClass> {
    DestClass::ALL
        .iter()
        .filter(|k| got.contains(k))
        .copied()
        .collect()
}

/// A list of destination classes (`field[j]` names a bad one), in canonical order.
pub fn allowed_classes(field: &str, cs: &[String]) -> Result<Vec<DestClass>, RuleError> {
    let got = cs
        .iter()
        .enumerate()
        .map(|(j, s)| dest_class(format!("{field}[{j}]"), s))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(canonical_classes(&got))
}

/// The prefix of a margin rule ("" = every destination), not already in `seen`.
pub fn margin_prefix(
    field: impl Into<String>,
    v: &str,
    seen: &[String],
) -> Result<String, RuleError> {
    let field = field.into();
    let p = prefix(field.clone(), v.trim(), true)?;
    if seen.contains(&p) {
        return Err(RuleError::Twice {
            field,
            what: format!("margin rule for prefix {p:?}"),
        });
    }
    Ok(p)
}

/// A source address of a customer: a CIDR or a bare address (a /32 or /128).
pub fn source_net(field: impl Into<String>, v: &str) -> Result<IpNet, RuleError> {
    let t = v.trim();
    IpNet::from_str(t)
        .or_else(|_| std::net::IpAddr::from_str(t).map(IpNet::from))
        .map_err(|_| {
            RuleError::invalid(
                field,
                format!("{v:?} is not a CIDR like 203.0.113.0/24 or an IP address"),
            )
        })
}

/// A source address as canonical text, refusing host bits (`10.0.0.7/24`).
pub fn source_cidr(field: impl Into<String>, v: &str) -> Result<String, RuleError> {
    let field = field.into();
    let net = source_net(field.clone(), v)?;
    if net.trunc() != net {
        return Err(RuleError::invalid(
            field,
            format!("{v:?} has host bits set; did you mean {}?", net.trunc()),
        ));
    }
    Ok(net.to_string())
}

/// Weekdays of a window as ISO numbers, sorted; empty = every day.
pub fn days(field: impl Into<String>, v: &[Day]) -> Result<Vec<i16>, RuleError> {
    parsed(field, parse_days(v))
}

/// A local time of a window, as `HH:MM:SS`.
pub fn local_time(field: impl Into<String>, v: &str) -> Result<String, RuleError> {
    parsed(field, parse_time(v))
}

/// A window's time zone: an IANA name (canonical spelling), [`DEFAULT_TZ`] when omitted.
pub fn time_zone(field: impl Into<String>, v: Option<&str>) -> Result<String, RuleError> {
    match v {
        None => Ok(DEFAULT_TZ.to_string()),
        Some(t) => match chrono_tz::Tz::from_str(t.trim()) {
            Ok(z) => Ok(z.name().to_string()),
            Err(_) => Err(RuleError::invalid(
                field,
                format!(
                    "{} is not an IANA time zone (e.g. \"America/New_York\", \"UTC\")",
                    crate::excerpt::excerpt(t)
                ),
            )),
        },
    }
}

/// A window's start and end go together.
pub fn start_and_end(field: impl Into<String>, start: bool, end: bool) -> Result<(), RuleError> {
    if start != end {
        return Err(RuleError::invalid(
            field,
            "start and end go together: give both or neither",
        ));
    }
    Ok(())
}

/// A timestamp (RFC 3339, `-infinity`, `infinity`) as unix microseconds; `default` when omitted.
pub fn timestamp(
    field: impl Into<String>,
    v: Option<&str>,
    default: i64,
) -> Result<i64, RuleError> {
    match v {
        None => Ok(default),
        Some(s) => parsed(field, parse_ts(s)),
    }
}

/// An override's validity ends after it starts.
pub fn valid_until_after(field: impl Into<String>, from: i64, until: i64) -> Result<(), RuleError> {
    if until <= from {
        return Err(RuleError::invalid(field, "must be after valid_from"));
    }
    Ok(())
}

/// An exclusion without a vendor blocks a destination: it needs a prefix.
pub fn exclusion_target(
    field: impl Into<String>,
    has_vendor: bool,
    prefix: &str,
) -> Result<(), RuleError> {
    if !has_vendor && prefix.is_empty() {
        return Err(RuleError::invalid(
            field,
            "an exclusion without a vendor blocks a destination and needs a prefix",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn customer_rules() {
        assert_eq!(
            blocked_prefixes("blocked_prefixes", &["1900".into(), " 1976".into()]).unwrap(),
            ["1900", "1976"]
        );
        let e = blocked_prefixes("blocked_prefixes", &["1900".into(), "1900".into()]).unwrap_err();
        assert_eq!(
            e.to_string(),
            "blocked_prefixes[1]: prefix 1900 listed twice"
        );
        assert_eq!(
            allowed_classes("c", &["premium".into(), "Toll-Free".into()]).unwrap(),
            [DestClass::Tollfree, DestClass::Premium]
        );
        assert_eq!(
            allowed_classes("c", &["x".into()]).unwrap_err().field(),
            "c[0]"
        );
        assert!(margin_prefix("p", "", &["".into()]).is_err());
        assert_eq!(source_cidr("s", "10.0.0.1").unwrap(), "10.0.0.1/32");
        assert!(source_cidr("s", "10.0.0.7/24")
            .unwrap_err()
            .problem()
            .contains("host bits"));
        assert_eq!(
            source_net("s", "10.0.0.7/24").unwrap().trunc().to_string(),
            "10.0.0.0/24"
        );
        assert!(start_and_end("start", true, false).is_err());
        assert!(valid_until_after("valid_until", 5, 5).is_err());
        assert!(exclusion_target("prefix", false, "").is_err());
        assert!(exclusion_target("prefix", true, "").is_ok());
        assert!(money("max_rate", "-0.01").is_err());
        assert_eq!(percent("m", "12.5"), Ok(125_000));
    }

    #[test]
    fn emergency_callback_is_a_number_in_e164_digits() {
        assert_eq!(
            emergency_callback("c", "+1 (212) 555-0100").unwrap(),
            "12125550100"
        );
        assert_eq!(
            emergency_callback("c", "2125550100").unwrap(),
            "12125550100"
        );
        let e = emergency_callback("c", "911").unwrap_err();
        assert_eq!(e.field(), "c");
        assert!(emergency_callback("c", "").is_err());
    }
}
