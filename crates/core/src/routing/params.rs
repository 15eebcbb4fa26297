//! Turning caller input into a [`DipRequest`]: JSON (JSON-RPC params, POST bodies) and URL query
//! strings (`GET /v1/route`), with errors that name the offending field.
//!
//! Owns: input syntax of the dip parameters. Must not touch: routing decisions (number validity
//! is the engine's business: a bad DNIS is a 484 reject, not a request error), metrics, I/O.

use std::borrow::Cow;
use std::net::IpAddr;

use serde_path_to_error::Segment;

use crate::excerpt::{excerpt, plain};
use crate::routing::DipRequest;

/// Why a dip request's parameters were refused: always the caller's mistake, and the message
/// names the field first (`"dnis: missing field"`). The daemon maps each variant to its HTTP
/// status / JSON-RPC code in one place (`warpd::api::ApiError`).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ParamError {
    /// A parameter is missing, has the wrong type or an invalid value.
    #[error("{field}: {why}")]
    Invalid { field: String, why: String },
    /// A parameter the API does not know.
    #[error("{0}: unknown parameter")]
    Unknown(String),
    /// Neither `ban`, `trunk` nor `src_ip` was given.
    #[error("ban, src_ip, trunk: one of them is required to identify the customer")]
    NoCustomerKey,
    /// The body (or JSON-RPC params) is not JSON at all.
    #[error("{what}: malformed JSON: {why}")]
    MalformedJson { what: &'static str, why: String },
}

impl ParamError {
    /// Shorthand for [`ParamError::Invalid`].
    pub fn invalid(field: impl Into<String>, why: impl Into<String>) -> ParamError {
        ParamError::Invalid {
            field: field.into(),
            why: why.into(),
        }
    }
}

/// Names of all dip parameters, for "expected one of" messages.
const FIELDS: &str = "ban, src_ip, trunk, ani, dnis, lrn, call_id, max_results, identity";

/// Parses dip parameters from JSON: an object, or a 1-element array holding that object.
/// `what` names the whole input ("params" or "body") in messages about it as a whole.
pub fn dip_from_json(raw: &[u8], what: &'static str) -> Result<DipRequest, ParamError> {
    finish(from_json(raw, what, FIELDS)?)
}

/// Any parameter object from JSON: an object, or a 1-element array holding it; `fields` lists
/// the parameters for "expected one of" messages.
pub(crate) fn from_json<T: serde::de::DeserializeOwned>(
    raw: &[u8],
    what: &'static str,
    fields: &'static str,
) -> Result<T, ParamError> {
    let first = raw.iter().copied().find(|b| !b.is_ascii_whitespace());
    let mut de = serde_json::Deserializer::from_slice(raw);
    let req = if first == Some(b'[') {
        serde_path_to_error::deserialize::<_, (T,)>(&mut de)
            .map(|(r,)| r)
            .map_err(|e| json_error(e, true, what, fields))?
    } else {
        serde_path_to_error::deserialize::<_, T>(&mut de)
            .map_err(|e| json_error(e, false, what, fields))?
    };
    de.end().map_err(|e| ParamError::MalformedJson {
        what,
        why: strip_location(&e.to_string()).to_string(),
    })?;
    Ok(req)
}

/// The common checks of every dip surface, for a request built field by field (the RESP `LCR`
/// command): see [`finish`].
pub fn dip_checked(req: DipRequest) -> Result<DipRequest, ParamError> {
    finish(req)
}

/// Common checks after parsing: an empty `ban` or `trunk` counts as absent; one of `ban` /
/// `trunk` / `src_ip` must be present, and not both `ban` and `trunk`; a trunk name is at most
/// 64 characters (the schema's).
fn finish(mut req: DipRequest) -> Result<DipRequest, ParamError> {
    if req.ban.as_deref().is_some_and(|b| b.trim().is_empty()) {
        req.ban = None;
    }
    if req.trunk.as_deref().is_some_and(|b| b.trim().is_empty()) {
        req.trunk = None;
    }
    if let Some(t) = &req.trunk {
        if t.len() > 64 {
            return Err(ParamError::invalid(
                "trunk",
                format!("longer than 64 characters: {}", excerpt(t)),
            ));
        }
        if req.ban.is_some() {
            return Err(ParamError::invalid(
                "trunk",
                "give either ban or trunk, not both",
            ));
        }
    }
    if req.ban.is_none() && req.src_ip.is_none() && req.trunk.is_none() {
        return Err(ParamError::NoCustomerKey);
    }
    Ok(req)
}

/// serde_json appends " at line L column C"; the position is noise for a one-line request.
fn strip_location(msg: &str) -> &str {
    match msg.rfind(" at line ") {
        Some(i)
            if msg[i + 9..]
                .split(" column ")
                .all(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit())) =>
        {
            &msg[..i]
        }
        _ => msg,
    }
}

/// The text between the first pair of backticks (serde quotes field names that way).
fn backticked(msg: &str) -> Option<&str> {
    let start = msg.find('`')? + 1;
    let len = msg[start..].find('`')?;
    Some(&msg[start..start + len])
}

fn json_error(
    e: serde_path_to_error::Error<serde_json::Error>,
    in_array: bool,
    what: &'static str,
    fields: &'static str,
) -> ParamError {
    let inner = e.inner();
    let msg = strip_location(&inner.to_string()).to_string();
    let whole = || {
        ParamError::invalid(
            what,
            format!("expected an object {{{fields}}} or a 1-element array holding it"),
        )
    };
    if inner.is_syntax() || inner.is_eof() {
        // inside a well-formed array, "trailing characters" means a second element
        if in_array && msg.starts_with("trailing characters") && e.path().iter().next().is_none() {
            return whole();
        }
        return ParamError::MalformedJson { what, why: msg };
    }
    // the path from the top, minus the array index when the object came wrapped in an array
    let mut segments = e.path().iter().peekable();
    if in_array && matches!(segments.peek(), Some(Segment::Seq { .. })) {
        segments.next();
    }
    let mut path = String::new();
    for s in segments {
        match s {
            Segment::Seq { index } => path.push_str(&format!("[{index}]")),
            Segment::Map { key } | Segment::Enum { variant: key } => {
                if !path.is_empty() {
                    path.push('.');
                }
                path.push_str(key);
            }
            Segment::Unknown => path.push('?'),
        }
    }
    // serde_path_to_error already ends the path with an unknown key, not with a missing one
    let join = |field: &str| {
        if path.is_empty() {
            field.to_string()
        } else if path == field || path.ends_with(&format!(".{field}")) {
            path.clone()
        } else {
            format!("{path}.{field}")
        }
    };
    if msg.starts_with("missing field") {
        if let Some(f) = backticked(&msg) {
            return ParamError::invalid(join(f), "missing field");
        }
    }
    if msg.starts_with("unknown field") {
        if let Some(f) = backticked(&msg) {
            return ParamError::Unknown(plain(&join(f)));
        }
    }
    if path.is_empty() {
        if in_array {
            return whole();
        }
        return ParamError::invalid(what, msg);
    }
    ParamError::Invalid {
        field: path,
        why: msg,
    }
}

/// Form encoding turns an unencoded '+' into a space. A value that starts with a space followed
/// by a digit is a number whose '+' was not percent-encoded (Kamailio scripts rarely encode it).
pub(crate) fn restore_plus(v: Cow<'_, str>) -> String {
    let b = v.as_bytes();
    if b.len() >= 2 && b[0] == b' ' && b[1].is_ascii_digit() {
        let mut s = String::with_capacity(v.len());
        s.push('+');
        s.push_str(&v[1..]);
        s
    } else {
        v.into_owned()
    }
}

pub(crate) fn set_once<T>(
    slot: &mut Option<T>,
    field: &'static str,
    v: T,
) -> Result<(), ParamError> {
    if slot.is_some() {
        return Err(ParamError::invalid(field, "given more than once"));
    }
    *slot = Some(v);
    Ok(())
}

/// Parses `GET /v1/route` query parameters. Empty optional values count as absent.
pub fn dip_from_query(query: Option<&str>) -> Result<DipRequest, ParamError> {
    let mut ban: Option<String> = None;
    let mut trunk: Option<String> = None;
    let mut src_ip: Option<Option<IpAddr>> = None;
    let mut ani: Option<String> = None;
    let mut dnis: Option<String> = None;
    let mut lrn: Option<Option<String>> = None;
    let mut call_id: Option<Option<String>> = None;
    let mut max_results: Option<Option<u16>> = None;
    let mut identity: Option<Option<super::stir::IdentityIn>> = None;
    for (k, v) in url::form_urlencoded::parse(query.unwrap_or("").as_bytes()) {
        match &*k {
            "ban" => set_once(&mut ban, "ban", v.into_owned())?,
            "trunk" => set_once(&mut trunk, "trunk", v.into_owned())?,
            "ani" => set_once(&mut ani, "ani", restore_plus(v))?,
            "dnis" => set_once(&mut dnis, "dnis", restore_plus(v))?,
            "lrn" => {
                let val = (!v.is_empty()).then(|| restore_plus(v));
                set_once(&mut lrn, "lrn", val)?
            }
            "call_id" => {
                let val = (!v.is_empty()).then(|| v.into_owned());
                set_once(&mut call_id, "call_id", val)?
            }
            "src_ip" => {
                let val = match v.trim() {
                    "" => None,
                    s => Some(s.parse::<IpAddr>().map_err(|_| {
                        ParamError::invalid("src_ip", format!("invalid IP address {}", excerpt(s)))
                    })?),
                };
                set_once(&mut src_ip, "src_ip", val)?
            }
            "max_results" => {
                let val = match v.trim() {
                    "" => None,
                    s => Some(s.parse::<u16>().map_err(|_| {
                        ParamError::invalid(
                            "max_results",
                            format!("expected an integer 0-65535, got {}", excerpt(s)),
                        )
                    })?),
                };
                set_once(&mut max_results, "max_results", val)?
            }
            "identity" => {
                let val = match v.trim() {
                    "" => None,
                    s => Some(super::stir::IdentityIn::parse(s).ok_or_else(|| {
                        ParamError::invalid(
                            "identity",
                            format!("expected valid, invalid or none, got {}", excerpt(s)),
                        )
                    })?),
                };
                set_once(&mut identity, "identity", val)?
            }
            other => return Err(ParamError::Unknown(plain(other))),
        }
    }
    let req = DipRequest {
        ban,
        trunk,
        src_ip: src_ip.flatten(),
        ani: ani.ok_or_else(|| ParamError::invalid("ani", "missing query parameter"))?,
        dnis: dnis.ok_or_else(|| ParamError::invalid("dnis", "missing query parameter"))?,
        lrn: lrn.flatten(),
        call_id: call_id.flatten(),
        max_results: max_results.flatten(),
        identity: identity.flatten(),
    };
    finish(req)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err_json(s: &str) -> String {
        match dip_from_json(s.as_bytes(), "params") {
            Ok(r) => panic!("expected an error for {s}, got {r:?}"),
            Err(e) => e.to_string(),
        }
    }

    fn err_query(q: &str) -> String {
        match dip_from_query(Some(q)) {
            Ok(r) => panic!("expected an error for {q}, got {r:?}"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn json_object_and_one_element_array() {
        let a = dip_from_json(
            br#"{"ban":"1001","ani":"+13105551234","dnis":"+12125551234","max_results":3}"#,
            "params",
        )
        .unwrap();
        assert_eq!(a.ban.as_deref(), Some("1001"));
        assert_eq!(a.max_results, Some(3));
        let b = dip_from_json(
            br#" [{"ban":"1001","ani":"+13105551234","dnis":"+12125551234","max_results":3}]"#,
            "params",
        )
        .unwrap();
        assert_eq!(a, b);
    }

    #[test]
    fn json_errors_name_the_field() {
        assert_eq!(err_json(r#"{"ban":"1","ani":"1"}"#), "dnis: missing field");
        assert_eq!(
            err_json(r#"[{"ban":"1","ani":"1"}]"#),
            "dnis: missing field"
        );
        assert_eq!(
            err_json(r#"{"ban":"1","ani":"1","dnis":"2","max_results":"x"}"#),
            r#"max_results: invalid type: string "x", expected u16"#
        );
        assert_eq!(
            err_json(r#"[{"ban":"1","ani":"1","dnis":"2","max_results":"x"}]"#),
            r#"max_results: invalid type: string "x", expected u16"#
        );
        assert_eq!(
            err_json(r#"{"ban":"1","ani":"1","dnis":"2","foo":1}"#),
            "foo: unknown parameter"
        );
        assert!(err_json(r#"{"src_ip":"nope","ani":"1","dnis":"2"}"#).starts_with("src_ip: "));
        assert!(
            err_json(r#"{"ban":"1","ani":null,"dnis":"2"}"#).starts_with("ani: invalid type: null")
        );
        assert!(err_json(r#"{"ani":"1","dnis":"2"}"#).starts_with("ban, src_ip, trunk:"));
        assert!(err_json(r#"{"ban":"","ani":"1","dnis":"2"}"#).starts_with("ban, src_ip, trunk:"));
        assert!(err_json("42").starts_with("params: invalid type: integer `42`"));
        assert!(err_json("[]").starts_with("params: expected an object"));
        assert!(
            err_json(r#"{"ban":"1","ani":"1","dnis":"2"} x"#).starts_with("params: malformed JSON")
        );
        assert!(err_json(r#"{"ban":"1","#).starts_with("params: malformed JSON"));
        assert!(err_json(r#"[{"ban":"1","#).starts_with("params: malformed JSON"));
    }

    #[test]
    fn two_element_array_is_rejected() {
        let e = err_json(r#"[{"ban":"1","ani":"1","dnis":"2"},{}]"#);
        assert!(e.starts_with("params: expected an object"), "{e}");
    }

    #[test]
    fn query_parses_and_restores_plus() {
        let r = dip_from_query(Some(
            "ban=1001&ani=+13105551234&dnis=%2B12125551234&max_results=2&lrn=&call_id=abc",
        ))
        .unwrap();
        assert_eq!(r.ani, "+13105551234");
        assert_eq!(r.dnis, "+12125551234");
        assert_eq!(r.max_results, Some(2));
        assert_eq!(r.lrn, None);
        assert_eq!(r.call_id.as_deref(), Some("abc"));
        let r = dip_from_query(Some("src_ip=127.0.0.1&ani=&dnis=+442071234567")).unwrap();
        assert_eq!(r.src_ip, Some("127.0.0.1".parse().unwrap()));
        assert_eq!(r.ani, "");
        assert_eq!(r.dnis, "+442071234567");
        // a space not followed by a digit is left alone
        let r = dip_from_query(Some("ban=1&ani=+anonymous&dnis=2125551234")).unwrap();
        assert_eq!(r.ani, " anonymous");
    }

    #[test]
    fn query_errors_name_the_field() {
        assert_eq!(err_query("ban=1&ani=1"), "dnis: missing query parameter");
        assert_eq!(err_query("ban=1&dnis=1"), "ani: missing query parameter");
        assert_eq!(
            err_query("ban=1&ani=1&dnis=2&bogus=3"),
            "bogus: unknown parameter"
        );
        assert!(err_query("ban=1&ani=1&dnis=2&max_results=x").starts_with("max_results: "));
        assert!(err_query("ani=1&dnis=2&src_ip=1.2.3").starts_with("src_ip: "));
        assert!(err_query("ani=1&dnis=2").starts_with("ban, src_ip, trunk:"));
        assert_eq!(
            err_query("ban=1&ban=2&ani=1&dnis=2"),
            "ban: given more than once"
        );
    }

    #[test]
    fn strip_location_only_strips_positions() {
        assert_eq!(
            strip_location("missing field `x` at line 1 column 20"),
            "missing field `x`"
        );
        assert_eq!(strip_location("text at line one"), "text at line one");
    }
}
