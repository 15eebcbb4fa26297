//! RESP `INBOUND` and `CRED` (issue 19): the inbound dip and the credential look-up for
//! Kamailio's ndb_redis, through the same [`Api::inbound`] / [`Api::credential`] as HTTP and
//! JSON-RPC; `SOURCE` (issue 20) through the same [`Api::source_kind`] as `GET /v1/source`.
//!
//! `INBOUND <src_ip> <ani> <dnis> [call_id] [verify] [identity]` answers [`inbound_array`]; `CRED <user> <realm>`
//! answers `[:1, ha1, trunk, customer]` or `[:0, "", "", ""]`; `SOURCE <src_ip>` answers
//! `[kind]` (`customer`, `vendor` or `unknown`; later fields will be appended).
//!
//! Owns: these commands' arguments and answer layouts. Must not touch: sockets, the procedure.

use std::net::IpAddr;

use warpd_resp::Value;

use super::super::context::Api;
use super::super::{ApiError, Surface};
use crate::routing::inbound::params::{credential_from_args, inbound_from_args, source_from_args};
use crate::routing::inbound::InboundAnswer;

/// Elements before the first destination in an inbound answer (see [`inbound_array`]).
pub const HEADER: usize = 8;

/// Runs `INBOUND`, `CRED` or `SOURCE` (`name` upper-case), appending the reply to `out`.
pub(super) fn run(api: &Api, name: &[u8], rest: &[Vec<u8>], source: IpAddr, out: &mut Vec<u8>) {
    let result = text_args(name, rest).and_then(|args| match name {
        b"INBOUND" => {
            let req = inbound_from_args(&args)?;
            api.inbound(&req, Surface::Resp, source)
                .map(|a| inbound_array(&a))
        }
        b"SOURCE" => {
            let ip = source_from_args(&args)?;
            api.source_kind(ip)
                .map(|k| Value::Array(vec![Value::bulk(k.as_str().as_bytes())]))
        }
        _ => {
            let q = credential_from_args(&args)?;
            api.credential(&q, source).map(|c| match c.credential {
                Some(c) => Value::Array(vec![
                    Value::Integer(1),
                    Value::bulk(c.ha1.as_bytes()),
                    Value::bulk(c.trunk.as_bytes()),
                    Value::bulk(c.customer.as_bytes()),
                ]),
                None => Value::Array(vec![
                    Value::Integer(0),
                    Value::bulk(""),
                    Value::bulk(""),
                    Value::bulk(""),
                ]),
            })
        }
    });
    match result {
        Ok(v) => v.encode(out),
        Err(e) => {
            if e.is_client_error() {
                api.bad_request(Surface::Resp, e.kind());
            }
            Value::Error(e.resp_error()).encode(out)
        }
    }
}

fn text_args<'a>(name: &[u8], rest: &'a [Vec<u8>]) -> Result<Vec<&'a str>, ApiError> {
    let what = match name {
        b"INBOUND" => "INBOUND",
        b"SOURCE" => "SOURCE",
        _ => "CRED",
    };
    if rest.len() > 6 {
        return Err(ApiError::invalid(
            what,
            format!("too many arguments ({})", rest.len()),
        ));
    }
    rest.iter()
        .enumerate()
        .map(|(i, a)| {
            std::str::from_utf8(a)
                .map(str::trim)
                .map_err(|_| ApiError::invalid(format!("{what} argument {}", i + 1), "not UTF-8"))
        })
        .collect()
}

/// An inbound answer as the flat array Kamailio indexes, laid out like `LCR`'s:
///
/// | index | route | reject |
/// |---|---|---|
/// | 0 | `route` | `reject` |
/// | 1 | 200 (integer) | the SIP code (integer) |
/// | 2 | `""` | the reason |
/// | 3 | the customer's BAN | `""` |
/// | 4 | the trunk | `""` |
/// | 5 | the number (E.164 with '+') | `""` |
/// | 6 | STIR/SHAKEN `verstat` (`TN-Validation-Passed`, `TN-Validation-Failed`, `No-TN-Validation`) | `""` |
/// | 7 | N, the number of destinations (integer) | 0 |
/// | 8 + 3i, 9 + 3i, 10 + 3i | destination i: id, trunk, SIP URI | |
/// | 8 + 3N | the caller (ANI) in E.164 with '+', or `""` (STIR/SHAKEN's verstat identity) | |
pub fn inbound_array(a: &InboundAnswer) -> Value {
    let s = |v: &str| Value::bulk(v.as_bytes());
    let empty = || Value::bulk("");
    match a {
        InboundAnswer::Reject(r) => super::reject_array(r.code, &r.reason),
        InboundAnswer::Route(r) => {
            let mut v = Vec::with_capacity(HEADER + 3 * r.uris.len() + 1);
            v.extend([
                s("route"),
                Value::Integer(200),
                empty(),
                s(r.customer.as_str()),
                s(r.trunk.as_str()),
                s(&r.number),
                s(r.stir.verstat.as_str()),
                Value::Integer(r.uris.len() as i64),
            ]);
            for (i, u) in r.uris.iter().enumerate() {
                let id = r.destination_ids.get(i).map(|n| n.as_str()).unwrap_or("");
                v.extend([s(id), s(r.trunk.as_str()), s(u)]);
            }
            // appended after the destinations, so no earlier index moves (issue 20)
            v.push(s(r.caller.as_deref().unwrap_or("")));
            Value::Array(v)
        }
    }
}
