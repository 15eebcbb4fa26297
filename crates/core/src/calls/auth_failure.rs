//! Failed digest authentications Kamailio reports (issue 19): `event=auth_failure` lines of
//! `POST /v1/events`, e.g. `event=auth_failure&ts=1700000000.25&src_ip=192.0.2.7&user=acme&
//! realm=warpd&blocked=0`. Not call events (no call, no Call-ID to key them): warpd counts them
//! (`warpd_auth_failures_total`) and logs them; the call events of the same body go on as usual.
//!
//! Owns: the line syntax. Must not touch: counting, logging (the daemon's `api::cdrs`).

use std::net::IpAddr;

use super::events::EventError;

/// Longest user or realm kept (longer values are refused: Kamailio sends what a caller put in
/// its credentials).
pub const MAX_NAME_LEN: usize = 128;

/// One failed authentication.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuthFailure {
    /// the INVITE's source address
    pub src_ip: IpAddr,
    /// the digest user name and realm the caller gave (empty: none)
    pub user: String,
    pub realm: String,
    /// this failure blocked the source (Kamailio's AUTH_MAX_FAILURES reached)
    pub blocked: bool,
}

fn err(field: &str, why: impl Into<String>) -> EventError {
    EventError {
        field: field.to_string(),
        why: why.into(),
    }
}

/// Whether a form line is an auth failure (`event=auth_failure`), without parsing the rest.
pub fn is_auth_failure_line(line: &[u8]) -> bool {
    url::form_urlencoded::parse(line).any(|(k, v)| k == "event" && v == "auth_failure")
}

/// One `event=auth_failure` form line. Fields: `src_ip` (required, an IP address), `user`,
/// `realm` (at most [`MAX_NAME_LEN`] bytes each), `blocked` (`0`/`1`, default 0), `ts` (taken,
/// not used). Unknown fields and repeated fields are refused, naming the field.
pub fn parse_line(line: &[u8]) -> Result<AuthFailure, EventError> {
    let mut src_ip = None;
    let mut user = None;
    let mut realm = None;
    let mut blocked = None;
    let mut ts = None;
    for (k, v) in url::form_urlencoded::parse(line) {
        let slot: &mut Option<String> = match k.as_ref() {
            "event" => continue,
            "src_ip" => &mut src_ip,
            "user" => &mut user,
            "realm" => &mut realm,
            "blocked" => &mut blocked,
            "ts" => &mut ts,
            other => {
                return Err(err(
                    &other.chars().take(32).collect::<String>(),
                    "unknown field of an auth_failure event",
                ))
            }
        };
        if slot.replace(v.into_owned()).is_some() {
            return Err(err(&k, "given twice"));
        }
    }
    let src_ip = src_ip
        .ok_or_else(|| err("src_ip", "missing"))?
        .trim()
        .parse::<IpAddr>()
        .map_err(|_| err("src_ip", "not an IP address"))?;
    for (field, v) in [("user", &user), ("realm", &realm)] {
        if let Some(v) = v {
            if v.len() > MAX_NAME_LEN {
                return Err(err(field, format!("longer than {MAX_NAME_LEN} bytes")));
            }
        }
    }
    let blocked = match blocked.as_deref().map(str::trim) {
        None | Some("0") => false,
        Some("1") => true,
        Some(_) => return Err(err("blocked", "expected 0 or 1")),
    };
    if let Some(ts) = ts {
        let ok = ts
            .trim()
            .parse::<f64>()
            .is_ok_and(|t| t.is_finite() && t >= 0.0);
        if !ok {
            return Err(err("ts", "not a time in seconds"));
        }
    }
    Ok(AuthFailure {
        src_ip,
        user: user.unwrap_or_default(),
        realm: realm.unwrap_or_default(),
        blocked,
    })
}

/// Splits the auth failures out of a `POST /v1/events` body: returns them and the body with
/// their lines left empty (the call-event parser skips empty lines, and the lines keep their
/// numbers in its errors). A bad auth_failure line refuses the body, naming its line and field.
pub fn split_form_body(body: &[u8]) -> Result<(Vec<AuthFailure>, Vec<u8>), EventError> {
    let mut failures = Vec::new();
    let mut rest = Vec::with_capacity(body.len());
    for (i, line) in body.split(|b| *b == b'\n').enumerate() {
        if i > 0 {
            rest.push(b'\n');
        }
        let trimmed = line.strip_suffix(b"\r").unwrap_or(line);
        if is_auth_failure_line(trimmed) {
            let f = parse_line(trimmed).map_err(|e| EventError {
                field: format!("line {}: {}", i + 1, e.field),
                why: e.why,
            })?;
            failures.push(f);
        } else {
            rest.extend_from_slice(line);
        }
    }
    Ok((failures, rest))
}

/// Whether a body has anything but empty lines.
pub fn has_lines(body: &[u8]) -> bool {
    body.split(|b| *b == b'\n')
        .any(|l| !l.iter().all(u8::is_ascii_whitespace))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failure_line_is_split_out_and_the_call_lines_keep_their_numbers() {
        let body = b"event=end&call_id=a&hangup=caller\nevent=auth_failure&ts=1700000000.5&src_ip=192.0.2.7&user=acme&realm=warpd&blocked=1\r\nevent=end&call_id=b&hangup=caller\n";
        let (f, rest) = split_form_body(body).unwrap();
        assert_eq!(
            f,
            vec![AuthFailure {
                src_ip: "192.0.2.7".parse().unwrap(),
                user: "acme".into(),
                realm: "warpd".into(),
                blocked: true,
            }]
        );
        let lines: Vec<&[u8]> = rest.split(|b| *b == b'\n').collect();
        assert_eq!(lines[0], b"event=end&call_id=a&hangup=caller");
        assert_eq!(lines[1], b"");
        assert_eq!(lines[2], b"event=end&call_id=b&hangup=caller");
        assert!(has_lines(&rest));
        let (f, rest) = split_form_body(b"event=auth_failure&src_ip=::1\n").unwrap();
        assert_eq!((f.len(), f[0].blocked, f[0].user.as_str()), (1, false, ""));
        assert!(!has_lines(&rest));
    }

    #[test]
    fn bad_failure_lines_name_the_line_and_field() {
        let long = format!(
            "event=auth_failure&src_ip=192.0.2.7&user={}",
            "u".repeat(129)
        );
        for (line, field) in [
            ("event=auth_failure&user=acme", "src_ip"),
            ("event=auth_failure&src_ip=not-an-ip", "src_ip"),
            ("event=auth_failure&src_ip=192.0.2.7&blocked=yes", "blocked"),
            ("event=auth_failure&src_ip=192.0.2.7&ts=soon", "ts"),
            (
                "event=auth_failure&src_ip=192.0.2.7&src_ip=192.0.2.8",
                "src_ip",
            ),
            ("event=auth_failure&src_ip=192.0.2.7&password=x", "password"),
            (long.as_str(), "user"),
        ] {
            let body = format!("event=end&call_id=a&hangup=caller\n{line}\n");
            let e = split_form_body(body.as_bytes()).unwrap_err();
            assert_eq!(e.field, format!("line 2: {field}"), "{line}: {e}");
        }
    }
}
