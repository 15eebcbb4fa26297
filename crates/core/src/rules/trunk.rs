//! Rules of customer trunks and numbers (issue 19), shared by `warpd apply` and the admin API:
//! names, source CIDRs, digest credentials (HA1 only: 32 lower-case hex digits; a password is
//! accepted to compute it and never kept), destinations, limits, E.164 numbers, number status,
//! inbound rates, CNAM.

use ipnet::IpNet;

use super::{path, IntRule, RuleError};
use crate::routing::inbound::NumberStatus;
use crate::routing::Transport;

pub const TRUNK_MAX_CALLS: IntRule = IntRule {
    field: "max_concurrent_calls",
    default: 0,
    lo: 0,
    hi: 1_000_000,
};
pub const TRUNK_MAX_CPS: IntRule = IntRule {
    field: "max_cps",
    default: 0,
    lo: 0,
    hi: 100_000,
};
pub const DEST_PORT: IntRule = IntRule {
    field: "port",
    default: 5060,
    lo: 1,
    hi: 65535,
};
pub const DEST_PRIORITY: IntRule = IntRule {
    field: "priority",
    default: 10,
    lo: 0,
    hi: 1000,
};
pub const DEST_WEIGHT: IntRule = IntRule {
    field: "weight",
    default: 1,
    lo: 0,
    hi: 1000,
};

/// A trunk name: 1-64 of `A-Z a-z 0-9 . _ -`, starting with a letter or digit (the schema's).
pub fn trunk_name(at: &str, v: &str) -> Result<String, RuleError> {
    let ok = !v.is_empty()
        && v.len() <= 64
        && v.as_bytes()[0].is_ascii_alphanumeric()
        && v.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    if !ok {
        return Err(RuleError::invalid(
            path(at, "name"),
            format!(
                "{} is not a trunk name (1-64 of A-Z a-z 0-9 . _ -)",
                crate::excerpt::excerpt(v)
            ),
        ));
    }
    Ok(v.to_string())
}

/// A source network (`10.0.0.0/24`, or an address for one host), canonical (host bits cleared).
pub fn source_cidr(field: &str, v: &str) -> Result<IpNet, RuleError> {
    v.trim()
        .parse::<IpNet>()
        .map(|n| n.trunc())
        .or_else(|_| v.trim().parse::<std::net::IpAddr>().map(IpNet::from))
        .map_err(|_| {
            RuleError::invalid(
                field,
                format!("{} is not a CIDR or IP address", crate::excerpt::excerpt(v)),
            )
        })
}

/// A digest user name: 1-64 characters of the SIP `user` set the schema allows.
pub fn digest_user(field: &str, v: &str) -> Result<String, RuleError> {
    let ok = !v.is_empty()
        && v.len() <= 64
        && v.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._~!$&'()*+,;=%-".contains(&b));
    if !ok {
        return Err(RuleError::invalid(
            field,
            format!(
                "{} is not a digest user name (1-64 characters, no spaces or ':' '@')",
                crate::excerpt::excerpt(v)
            ),
        ));
    }
    Ok(v.to_string())
}

/// A digest realm: a host-like name, 1-128 of `A-Z a-z 0-9 . -`.
pub fn digest_realm(field: &str, v: &str) -> Result<String, RuleError> {
    let ok = !v.is_empty()
        && v.len() <= 128
        && v.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-');
    if !ok {
        return Err(RuleError::invalid(
            field,
            format!(
                "{} is not a realm (1-128 of A-Z a-z 0-9 . -)",
                crate::excerpt::excerpt(v)
            ),
        ));
    }
    Ok(v.to_string())
}

/// An HA1: exactly 32 hex digits, stored lower-case. The value is never echoed (a secret).
pub fn ha1(field: &str, v: &str) -> Result<String, RuleError> {
    if v.len() != 32 || !v.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(RuleError::invalid(
            field,
            format!(
                "not an HA1: expected 32 hex digits (MD5 of user:realm:password), got {} characters",
                v.chars().count()
            ),
        ));
    }
    Ok(v.to_ascii_lowercase())
}

/// A password given to compute an HA1: 1-128 printable characters. Never echoed.
pub fn password(field: &str, v: &str) -> Result<(), RuleError> {
    if v.is_empty() || v.len() > 128 || v.chars().any(char::is_control) {
        return Err(RuleError::invalid(
            field,
            "a password must be 1-128 printable characters",
        ));
    }
    Ok(())
}

/// A SIP URI template of a destination (`sip:` or `sips:`, at most 250 characters, no spaces
/// or control characters; `${number}` stands for the E.164 digits).
pub fn sip_uri(field: &str, v: &str) -> Result<String, RuleError> {
    let body = v.strip_prefix("sip:").or_else(|| v.strip_prefix("sips:"));
    match body {
        Some(b)
            if !b.is_empty()
                && b.len() <= 250
                && !b.chars().any(|c| c.is_whitespace() || c.is_control()) =>
        {
            Ok(v.to_string())
        }
        _ => Err(RuleError::invalid(
            field,
            format!("{} is not a sip:/sips: URI", crate::excerpt::excerpt(v)),
        )),
    }
}

/// A destination's host: a name or address without spaces (1-253 characters).
pub fn dest_host(field: &str, v: &str) -> Result<String, RuleError> {
    let ok = !v.is_empty()
        && v.len() <= 253
        && v.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b".:[]-".contains(&b));
    if !ok {
        return Err(RuleError::invalid(
            field,
            format!(
                "{} is not a host name or address",
                crate::excerpt::excerpt(v)
            ),
        ));
    }
    Ok(v.to_string())
}

/// A destination's transport (`udp` when omitted).
pub fn dest_transport(field: &str, v: Option<&str>) -> Result<Transport, RuleError> {
    match v {
        None => Ok(Transport::Udp),
        Some(s) => Transport::parse(s).ok_or_else(|| RuleError::NotOneOf {
            field: field.to_string(),
            value: crate::excerpt::plain(s),
            allowed: "udp, tcp, tls",
        }),
    }
}

/// A credential's secret: the HA1, or a password the database hashes (never kept).
#[derive(Clone, PartialEq, Eq)]
pub enum Secret {
    Ha1(String),
    Password(String),
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Secret::Ha1(_) => "Ha1(..)",
            Secret::Password(_) => "Password(..)",
        })
    }
}

/// A credential's secret at `at` (`trunks[0].credentials[1]`, or "" in the admin API): exactly
/// one of `ha1` and `password`, each by its rule. Neither value is ever echoed.
pub fn secret(
    at: &str,
    ha1_in: Option<&str>,
    password_in: Option<&str>,
) -> Result<Secret, RuleError> {
    match (ha1_in, password_in) {
        (Some(h), None) => ha1(&path(at, "ha1"), h).map(Secret::Ha1),
        (None, Some(p)) => {
            password(&path(at, "password"), p).map(|()| Secret::Password(p.to_string()))
        }
        _ => Err(RuleError::invalid(
            path(at, "ha1"),
            "give exactly one of ha1 and password",
        )),
    }
}

/// A trunk destination as given (a provisioning file's entry or an admin API body).
#[derive(Clone, Copy, Debug, Default)]
pub struct DestinationIn<'a> {
    pub uri: Option<&'a str>,
    pub host: Option<&'a str>,
    pub port: Option<i64>,
    pub transport: Option<&'a str>,
    pub priority: Option<i64>,
    pub weight: Option<i64>,
    pub enabled: Option<bool>,
}

/// A trunk destination checked, defaults filled.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Destination {
    pub uri: Option<String>,
    pub host: Option<String>,
    pub port: i32,
    pub transport: Transport,
    pub priority: i32,
    pub weight: i32,
    pub enabled: bool,
}

/// A destination at `at`: a `uri` template or a `host` (with port and transport), priority
/// (ascending) and weight (within a priority; 0 = last) in their ranges.
pub fn destination(at: &str, d: DestinationIn<'_>) -> Result<Destination, RuleError> {
    if d.uri.is_none() && d.host.is_none() {
        return Err(RuleError::invalid(path(at, "host"), "give uri or host"));
    }
    Ok(Destination {
        uri: d.uri.map(|u| sip_uri(&path(at, "uri"), u)).transpose()?,
        host: d
            .host
            .map(|h| dest_host(&path(at, "host"), h))
            .transpose()?,
        port: DEST_PORT.value(at, d.port)?,
        transport: dest_transport(&path(at, "transport"), d.transport)?,
        priority: DEST_PRIORITY.value(at, d.priority)?,
        weight: DEST_WEIGHT.value(at, d.weight)?,
        enabled: d.enabled.unwrap_or(true),
    })
}

/// A number: E.164 with '+' (7-15 digits, no leading 0), returned as stored (`+…`).
pub fn e164(field: &str, v: &str) -> Result<String, RuleError> {
    let d = v.strip_prefix('+').unwrap_or("");
    let ok =
        (7..=15).contains(&d.len()) && d.bytes().all(|b| b.is_ascii_digit()) && !d.starts_with('0');
    if !ok {
        return Err(RuleError::invalid(
            field,
            format!(
                "{} is not an E.164 number (+ and 7-15 digits)",
                crate::excerpt::excerpt(v)
            ),
        ));
    }
    Ok(v.to_string())
}

/// A number's status (`active` when omitted).
pub fn number_status(field: &str, v: Option<&str>) -> Result<NumberStatus, RuleError> {
    match v {
        None => Ok(NumberStatus::Active),
        Some(s) => NumberStatus::parse(s).ok_or_else(|| RuleError::NotOneOf {
            field: field.to_string(),
            value: crate::excerpt::plain(s),
            allowed: "active, reserved, disabled, porting-in",
        }),
    }
}

/// A CNAM / display name: 1-15 characters, no control characters.
pub fn cnam(field: &str, v: &str) -> Result<String, RuleError> {
    if v.is_empty() || v.chars().count() > 15 || v.chars().any(char::is_control) {
        return Err(RuleError::invalid(
            field,
            format!(
                "{} is not a CNAM (1-15 printable characters)",
                crate::excerpt::excerpt(v)
            ),
        ));
    }
    Ok(v.to_string())
}
