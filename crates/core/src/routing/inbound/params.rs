//! Parameters of the inbound dip (`did.route`, `GET /v1/inbound`) and of the credential
//! look-up (`GET /v1/credentials`) from caller input, with errors naming the field (fuzzed).
//!
//! Owns: input syntax. Must not touch: routing decisions (an unknown or malformed DNIS is a 404
//! answer, not a request error).

use std::net::IpAddr;

use crate::excerpt::{excerpt, plain};
use crate::routing::params::{from_json, restore_plus, set_once, ParamError};

use super::InboundRequest;

const FIELDS: &str = "src_ip, ani, dnis, call_id, verify, identity";

/// Longest ani/dnis accepted (a number with separators fits easily).
const MAX_NUMBER: usize = 64;
/// Longest call_id accepted (the calls layer tracks at most this long an id).
const MAX_CALL_ID: usize = 256;
/// Longest digest user name and realm (the schema's).
pub const MAX_USER: usize = 64;
pub const MAX_REALM: usize = 128;

fn bounded(field: &'static str, v: &str, max: usize) -> Result<(), ParamError> {
    if v.len() > max {
        return Err(ParamError::invalid(
            field,
            format!("longer than {max} bytes: {}", excerpt(v)),
        ));
    }
    Ok(())
}

fn finish(mut r: InboundRequest) -> Result<InboundRequest, ParamError> {
    bounded("ani", &r.ani, MAX_NUMBER)?;
    bounded("dnis", &r.dnis, MAX_NUMBER)?;
    if r.call_id.as_deref().is_some_and(str::is_empty) {
        r.call_id = None;
    }
    if let Some(c) = &r.call_id {
        bounded("call_id", c, MAX_CALL_ID)?;
    }
    if r.identity.as_deref().is_some_and(str::is_empty) {
        r.identity = None;
    }
    if let Some(i) = &r.identity {
        bounded(
            "identity",
            i,
            crate::routing::stir::verify::MAX_IDENTITY_LEN,
        )?;
    }
    Ok(r)
}

/// `did.route` params / a JSON body.
pub fn inbound_from_json(raw: &[u8], what: &'static str) -> Result<InboundRequest, ParamError> {
    finish(from_json(raw, what, FIELDS)?)
}

fn parse_ip(s: &str) -> Result<IpAddr, ParamError> {
    s.trim()
        .parse::<IpAddr>()
        .map_err(|_| ParamError::invalid("src_ip", format!("invalid IP address {}", excerpt(s))))
}

/// `GET /v1/inbound` query parameters.
pub fn inbound_from_query(query: Option<&str>) -> Result<InboundRequest, ParamError> {
    let mut src_ip: Option<IpAddr> = None;
    let mut ani: Option<String> = None;
    let mut dnis: Option<String> = None;
    let mut call_id: Option<String> = None;
    let mut verify: Option<Option<i64>> = None;
    let mut identity: Option<String> = None;
    for (k, v) in url::form_urlencoded::parse(query.unwrap_or("").as_bytes()) {
        match &*k {
            "verify" => set_once(&mut verify, "verify", parse_verify(&v)?)?,
            "identity" => set_once(&mut identity, "identity", v.into_owned())?,
            "src_ip" => set_once(&mut src_ip, "src_ip", parse_ip(&v)?)?,
            "ani" => set_once(&mut ani, "ani", restore_plus(v))?,
            "dnis" => set_once(&mut dnis, "dnis", restore_plus(v))?,
            "call_id" => set_once(&mut call_id, "call_id", v.into_owned())?,
            other => return Err(ParamError::Unknown(plain(other))),
        }
    }
    finish(InboundRequest {
        src_ip: src_ip.ok_or_else(|| ParamError::invalid("src_ip", "missing query parameter"))?,
        ani: ani.unwrap_or_default(),
        dnis: dnis.ok_or_else(|| ParamError::invalid("dnis", "missing query parameter"))?,
        call_id,
        verify: verify.flatten(),
        identity,
    })
}

/// The Identity header from its base64 form (RESP `INBOUND`), bounded before and after decoding.
fn identity_b64(b: &str) -> Result<String, ParamError> {
    use base64::Engine as _;
    let max = crate::routing::stir::verify::MAX_IDENTITY_LEN;
    if b.len() > max.div_ceil(3) * 4 {
        return Err(ParamError::invalid(
            "identity",
            format!("longer than {max} bytes"),
        ));
    }
    let raw = base64::engine::general_purpose::STANDARD
        .decode(b)
        .map_err(|_| ParamError::invalid("identity", "not base64"))?;
    String::from_utf8(raw).map_err(|_| ParamError::invalid("identity", "not UTF-8"))
}

/// `verify`: Kamailio's `secsipid_check_identity` return code (an integer), or empty.
fn parse_verify(s: &str) -> Result<Option<i64>, ParamError> {
    match s.trim() {
        "" => Ok(None),
        t => t.parse::<i64>().map(Some).map_err(|_| {
            ParamError::invalid("verify", format!("expected an integer, got {}", excerpt(t)))
        }),
    }
}

/// RESP `INBOUND <src_ip> <ani> <dnis> [call_id] [verify] [identity]` (arguments already
/// UTF-8 and trimmed; an empty or `-` `verify`/`identity` is absent). Over RESP the Identity
/// header is base64-encoded (standard alphabet: Kamailio's `{s.encode.base64}`), so that
/// ndb_redis passes it as one argument whatever it contains.
pub fn inbound_from_args(args: &[&str]) -> Result<InboundRequest, ParamError> {
    if !(3..=6).contains(&args.len()) {
        return Err(ParamError::invalid(
            "INBOUND",
            format!(
                "expected 3 to 6 arguments (src_ip ani dnis [call_id] [verify] [identity]), got {}",
                args.len()
            ),
        ));
    }
    finish(InboundRequest {
        src_ip: parse_ip(args[0])?,
        ani: args[1].to_string(),
        dnis: args[2].to_string(),
        call_id: args.get(3).map(|s| s.to_string()),
        verify: match args.get(4).filter(|v| **v != "-") {
            Some(v) => parse_verify(v)?,
            None => None,
        },
        identity: match args.get(5).filter(|v| !v.is_empty() && **v != "-") {
            Some(b) => Some(identity_b64(b)?),
            None => None,
        },
    })
}

/// A credential look-up's user and realm.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CredentialQuery {
    pub user: String,
    pub realm: String,
}

fn credential_checked(user: String, realm: String) -> Result<CredentialQuery, ParamError> {
    if user.is_empty() {
        return Err(ParamError::invalid("user", "empty"));
    }
    if realm.is_empty() {
        return Err(ParamError::invalid("realm", "empty"));
    }
    bounded("user", &user, MAX_USER)?;
    bounded("realm", &realm, MAX_REALM)?;
    Ok(CredentialQuery { user, realm })
}

/// `GET /v1/credentials?user=…&realm=…`.
pub fn credential_from_query(query: Option<&str>) -> Result<CredentialQuery, ParamError> {
    let mut user: Option<String> = None;
    let mut realm: Option<String> = None;
    for (k, v) in url::form_urlencoded::parse(query.unwrap_or("").as_bytes()) {
        match &*k {
            "user" => set_once(&mut user, "user", v.into_owned())?,
            "realm" => set_once(&mut realm, "realm", v.into_owned())?,
            other => return Err(ParamError::Unknown(plain(other))),
        }
    }
    credential_checked(
        user.ok_or_else(|| ParamError::invalid("user", "missing query parameter"))?,
        realm.ok_or_else(|| ParamError::invalid("realm", "missing query parameter"))?,
    )
}

/// RESP `CRED <user> <realm>`.
pub fn credential_from_args(args: &[&str]) -> Result<CredentialQuery, ParamError> {
    match args {
        [u, r] => credential_checked(u.to_string(), r.to_string()),
        _ => Err(ParamError::invalid(
            "CRED",
            format!("expected 2 arguments (user realm), got {}", args.len()),
        )),
    }
}

/// `GET /v1/source?src_ip=…` (STIR/SHAKEN: what a source is, `stir::SourceKind`).
pub fn source_from_query(query: Option<&str>) -> Result<IpAddr, ParamError> {
    let mut src_ip: Option<IpAddr> = None;
    for (k, v) in url::form_urlencoded::parse(query.unwrap_or("").as_bytes()) {
        match &*k {
            "src_ip" => set_once(&mut src_ip, "src_ip", parse_ip(&v)?)?,
            other => return Err(ParamError::Unknown(plain(other))),
        }
    }
    src_ip.ok_or_else(|| ParamError::invalid("src_ip", "missing query parameter"))
}

/// RESP `SOURCE <src_ip>`.
pub fn source_from_args(args: &[&str]) -> Result<IpAddr, ParamError> {
    match args {
        [ip] => parse_ip(ip),
        _ => Err(ParamError::invalid(
            "SOURCE",
            format!("expected 1 argument (src_ip), got {}", args.len()),
        )),
    }
}
