//! The RESP commands of the Kamailio surface and the dip answer's array layout.
//!
//! | command | answer |
//! |---|---|
//! | `PING [msg]` | `+PONG` (or `msg` as a bulk string) |
//! | `AUTH <secret>` / `AUTH <user> <secret>` | `+OK`; wrong: `-WRONGPASS …`, connection closed |
//! | `SELECT 0` | `+OK` (any other index: error) |
//! | `ECHO <msg>` | `msg` |
//! | `QUIT` | `+OK`, connection closed |
//! | `LCR <src_ip\|ban\|trunk:name> <ani> <dnis> [call_id] [lrn] [max_results] [identity]` | [`answer_array`] |
//! | `INBOUND <src_ip> <ani> <dnis> [call_id]` | `inbound::inbound_array` |
//! | `CRED <user> <realm>` | `[:1, ha1, trunk, customer]` or `[:0, "", "", ""]` |
//! | `SOURCE <src_ip>` | `[customer\|vendor\|unknown]` (STIR/SHAKEN: verify a known source's Identity only) |
//!
//! `LCR`'s first argument is a source address when it parses as an IP address, `trunk:<name>`
//! for a digest-authenticated customer trunk, else a BAN; an
//! empty `call_id`, `lrn` or `max_results` counts as absent. The request goes through the same
//! checks ([`dip_checked`]) and the same [`Api::dip`] as `GET /v1/route` and `lcr.route`: limits,
//! emergency bypass, capacity, the rejected-call CDR all behave identically. An error (a bad
//! argument, not ready) is a RESP error reply (`-ERR invalid_param …`, `-LOADING …`), chosen in
//! `error.rs`; the connection stays open.
//!
//! Owns: command semantics and the answer layout. Must not touch: sockets (see `mod.rs`).

use std::net::IpAddr;

use warpd_core::routing::params::dip_checked;
use warpd_resp::Value;

use super::super::context::Api;
use super::super::{ApiError, Surface};
use crate::routing::stir::IdentityIn;
use crate::routing::{DipAnswer, DipRequest};

/// Elements before the first attempt in a dip answer (see [`answer_array`]).
pub const HEADER: usize = 8;

/// What the connection does after a command.
pub(super) enum Step {
    Continue,
    Close,
}

/// One connection's state: whether it has authenticated, and its source (the dip-as rule).
pub(super) struct Session {
    authed: bool,
    source: std::net::IpAddr,
}

impl Session {
    /// `authed` from the start when no secret is configured; `source` the peer's address
    /// (127.0.0.1 for the unix socket: a local peer).
    pub(super) fn new(authed: bool, source: std::net::IpAddr) -> Session {
        Session { authed, source }
    }

    /// Runs one command (`args` non-empty), appending its reply to `out`.
    pub(super) fn run(&mut self, api: &Api, args: &[Vec<u8>], out: &mut Vec<u8>) -> Step {
        let name = args[0].to_ascii_uppercase();
        let rest = &args[1..];
        let reply = |v: Value, out: &mut Vec<u8>| v.encode(out);
        match name.as_slice() {
            b"PING" => match rest {
                [] => reply(Value::Simple("PONG".into()), out),
                [msg] => reply(Value::Bulk(msg.clone()), out),
                _ => reply(arity("ping"), out),
            },
            b"QUIT" => {
                reply(Value::Simple("OK".into()), out);
                return Step::Close;
            }
            b"AUTH" => {
                let secret = match rest {
                    [s] | [_, s] => s,
                    _ => {
                        reply(arity("auth"), out);
                        return Step::Continue;
                    }
                };
                let auth = &api.state.kamailio_auth;
                if !auth.requires_secret() {
                    reply(
                        Value::Error(
                            "ERR AUTH <password> called without any password configured \
                             (server.kamailio_secret is not set)"
                                .into(),
                        ),
                        out,
                    );
                } else if auth.secret_matches(secret) {
                    self.authed = true;
                    reply(Value::Simple("OK".into()), out);
                } else {
                    super::refused(api, "bad_secret");
                    reply(
                        Value::Error(
                            "WRONGPASS invalid username-password pair or user is disabled.".into(),
                        ),
                        out,
                    );
                    return Step::Close;
                }
            }
            _ if !self.authed => {
                super::refused(api, "no_secret");
                reply(Value::Error("NOAUTH Authentication required.".into()), out);
            }
            b"SELECT" => match rest {
                [db] if db.as_slice() == b"0" => reply(Value::Simple("OK".into()), out),
                [_] => reply(Value::Error("ERR DB index is out of range".into()), out),
                _ => reply(arity("select"), out),
            },
            b"ECHO" => match rest {
                [msg] => reply(Value::Bulk(msg.clone()), out),
                _ => reply(arity("echo"), out),
            },
            b"INBOUND" | b"CRED" | b"SOURCE" => {
                super::inbound::run(api, &name, rest, self.source, out)
            }
            b"LCR" => {
                let answer =
                    dip_request(rest).and_then(|req| api.dip(&req, Surface::Resp, self.source));
                match answer {
                    // the STIR/SHAKEN fields only for a caller that signs: one that passes
                    // LCR's 7th argument, identity (kamailio.cfg WITH_STIR)
                    Ok(a) => reply(answer_array(&a, rest.len() >= LCR_IDENTITY_ARG), out),
                    Err(e) => {
                        if e.is_client_error() {
                            api.bad_request(Surface::Resp, e.kind());
                        }
                        reply(Value::Error(e.resp_error()), out)
                    }
                }
            }
            _ => {
                api.bad_request(Surface::Resp, "unknown_command");
                reply(
                    Value::Error(format!(
                        "ERR unknown command {}",
                        warpd_core::excerpt::excerpt(&String::from_utf8_lossy(&args[0]))
                    )),
                    out,
                )
            }
        }
        Step::Continue
    }
}

fn arity(cmd: &str) -> Value {
    Value::Error(format!("ERR wrong number of arguments for '{cmd}' command"))
}

/// `LCR`'s argument count from which the answer carries the STIR/SHAKEN fields (its 7th
/// argument, identity, is given).
const LCR_IDENTITY_ARG: usize = 7;

/// `LCR`'s arguments as a dip request, checked as every surface checks it.
fn dip_request(args: &[Vec<u8>]) -> Result<DipRequest, ApiError> {
    const FIELDS: [&str; 7] = [
        "src_ip|ban",
        "ani",
        "dnis",
        "call_id",
        "lrn",
        "max_results",
        "identity",
    ];
    if !(3..=FIELDS.len()).contains(&args.len()) {
        return Err(ApiError::invalid(
            "LCR",
            format!(
                "expected 3 to 7 arguments (src_ip|ban ani dnis [call_id] [lrn] [max_results] [identity]), got {}",
                args.len()
            ),
        ));
    }
    let mut text = Vec::with_capacity(args.len());
    for (i, a) in args.iter().enumerate() {
        let s = std::str::from_utf8(a).map_err(|_| ApiError::invalid(FIELDS[i], "not UTF-8"))?;
        text.push(s.trim());
    }
    // lrn, max_results and identity may also be `-` for absent (ndb_redis's format can pass
    // an empty argument only through %s, and redis_cmd takes at most three)
    let opt = |i: usize| {
        text.get(i)
            .filter(|s| !(s.is_empty() || (i >= 4 && **s == "-")))
            .map(|s| s.to_string())
    };
    let (ban, src_ip, trunk) = match text[0].parse::<IpAddr>() {
        Ok(ip) => (None, Some(ip), None),
        Err(_) => match text[0].strip_prefix("trunk:") {
            Some(t) => (None, None, Some(t.to_string())),
            None => (Some(text[0].to_string()), None, None),
        },
    };
    let max_results = match opt(5) {
        None => None,
        Some(s) => Some(s.parse::<u16>().map_err(|_| {
            ApiError::invalid(
                "max_results",
                format!(
                    "expected an integer 0-65535, got {}",
                    warpd_core::excerpt::excerpt(&s)
                ),
            )
        })?),
    };
    let req = DipRequest {
        ban,
        src_ip,
        trunk,
        ani: text[1].to_string(),
        dnis: text[2].to_string(),
        call_id: opt(3),
        lrn: opt(4),
        max_results,
        identity: match opt(6) {
            None => None,
            Some(v) => Some(IdentityIn::parse(&v).ok_or_else(|| {
                ApiError::invalid(
                    "identity",
                    format!(
                        "expected valid, invalid or none, got {}",
                        warpd_core::excerpt::excerpt(&v)
                    ),
                )
            })?),
        },
    };
    Ok(dip_checked(req)?)
}

/// A dip answer as the flat array Kamailio indexes (`$redis(r=>value[i])`):
///
/// | index | route | reject |
/// |---|---|---|
/// | 0 | `route` | `reject` |
/// | 1 | 200 (integer) | the SIP code (integer) |
/// | 2 | `""` | the reason |
/// | 3 | the zone | `""` |
/// | 4 | the LRN used, or `""` | `""` |
/// | 5 | the partition, or `""` | `""` |
/// | 6 | the emergency callback number, or `""` | `""` |
/// | 7 | N, the number of attempts (integer) | 0 |
/// | 8 + 3i, 9 + 3i, 10 + 3i | attempt i: route id, vendor, gateway URI | |
/// | 8 + 3N | `max_duration_s` (integer; 0 = no limit, e.g. an emergency call) | |
/// | 9 + 3N | STIR/SHAKEN: the attestation to sign with (`A`/`B`/`C`), `keep`, or `""` | |
/// | 10 + 3N | STIR/SHAKEN: the origid to sign with, or `""` | |
/// | 11 + 3N | STIR/SHAKEN: the PASSporT's orig TN (canonical: E.164 digits), or `""` | |
/// | 12 + 3N | STIR/SHAKEN: the PASSporT's dest TN, or `""` | |
///
/// The attempts are every route's gateways in failover order (`routes[0].uris[0..]`, then
/// `routes[1].uris[0..]`, …): the JSON answer's routes, in the same order. The four STIR/SHAKEN
/// fields are there only `with_stir` (`LCR` given its 7th argument, identity): without them the
/// array ends at `max_duration_s` (9 + 3N elements), four fewer for Kamailio's hiredis to
/// allocate and free on every call that does not sign.
pub fn answer_array(a: &DipAnswer, with_stir: bool) -> Value {
    let s = |v: &str| Value::bulk(v.as_bytes());
    let empty = || Value::bulk("");
    match a {
        DipAnswer::Reject(r) => super::reject_array(r.sip_code, &r.reason),
        DipAnswer::Route(r) => {
            let n: usize = r.routes.iter().map(|c| c.uris.len().max(1)).sum();
            let mut v = Vec::with_capacity(HEADER + 3 * n + 5);
            v.extend([
                s("route"),
                Value::Integer(200),
                empty(),
                s(r.zone.as_str()),
                s(r.lrn.as_deref().unwrap_or("")),
                s(r.partition.as_ref().map(|p| p.as_str()).unwrap_or("")),
                s(r.emergency_callback.as_deref().unwrap_or("")),
                Value::Integer(n as i64),
            ]);
            for c in &r.routes {
                let uris: &[String] = if c.uris.is_empty() {
                    std::slice::from_ref(&c.uri)
                } else {
                    &c.uris
                };
                for u in uris {
                    v.extend([s(c.route_id.as_str()), s(c.vendor.as_str()), s(u)]);
                }
            }
            // appended after the attempts, so no earlier index moves
            v.push(Value::Integer(i64::from(r.max_duration_s.unwrap_or(0))));
            // STIR/SHAKEN (issue 20), appended after max_duration_s for the same reason
            if !with_stir {
                return Value::Array(v);
            }
            match r.stir.as_ref().map(|a| a.resp_fields()) {
                Some(f) => v.extend([
                    s(f.attest),
                    Value::bulk(f.origid.into_bytes()),
                    s(f.orig),
                    s(f.dest),
                ]),
                None => v.extend([empty(), empty(), empty(), empty()]),
            }
            Value::Array(v)
        }
    }
}

#[cfg(test)]
mod tests;
