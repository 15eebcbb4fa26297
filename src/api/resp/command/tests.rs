use super::*;
use crate::routing::{Billing, RejectAnswer, RouteAnswer, RouteChoice, Zone};
use proptest::prelude::*;

/// The array on the wire, decoded back with the codec (what hiredis hands Kamailio); `with_stir`:
/// `LCR` was given its identity argument.
fn wire(a: &DipAnswer, with_stir: bool) -> Vec<Value> {
    let bytes = answer_array(a, with_stir).to_bytes();
    let limits = warpd_resp::Limits {
        max_array: 4096,
        ..Default::default()
    };
    match warpd_resp::decode(&bytes, &limits) {
        Ok(Some((Value::Array(v), n))) if n == bytes.len() => v,
        other => panic!("not one array: {other:?}"),
    }
}

fn text(v: &Value) -> String {
    match v {
        Value::Bulk(b) => String::from_utf8(b.clone()).unwrap(),
        other => panic!("not a bulk string: {other:?}"),
    }
}

fn int(v: &Value) -> i64 {
    match v {
        Value::Integer(i) => *i,
        other => panic!("not an integer: {other:?}"),
    }
}

/// (route_id, vendor, uri) per attempt as Kamailio reads them from the RESP array.
fn resp_attempts(v: &[Value], with_stir: bool) -> Vec<(String, String, String)> {
    let n = int(&v[7]) as usize;
    if with_stir {
        assert_eq!(
            v.len(),
            HEADER + 3 * n + 5,
            "size = header + 3 per attempt + max_duration_s + stir attest, origid, orig, dest"
        );
    } else {
        assert_eq!(
            v.len(),
            HEADER + 3 * n + 1,
            "size without identity = header + 3 per attempt + max_duration_s"
        );
    }
    (0..n)
        .map(|i| {
            let at = HEADER + 3 * i;
            (text(&v[at]), text(&v[at + 1]), text(&v[at + 2]))
        })
        .collect()
}

/// The same from the JSON answer, as kamailio.cfg's NEXT_GW walks it (routes[r].uris[g]).
fn json_attempts(a: &DipAnswer) -> Vec<(String, String, String)> {
    let j = serde_json::to_value(a).unwrap();
    let mut out = Vec::new();
    for r in j["routes"].as_array().cloned().unwrap_or_default() {
        let id = r["route_id"].as_str().unwrap().to_string();
        let vendor = r["vendor"].as_str().unwrap().to_string();
        let uris = r["uris"].as_array().cloned().unwrap_or_default();
        if uris.is_empty() {
            out.push((
                id.clone(),
                vendor.clone(),
                r["uri"].as_str().unwrap().to_string(),
            ));
        }
        for u in uris {
            out.push((id.clone(), vendor.clone(), u.as_str().unwrap().to_string()));
        }
    }
    out
}

fn choice(id: &str, vendor: &str, uris: &[&str]) -> RouteChoice {
    RouteChoice {
        route_id: id.into(),
        vendor: vendor.into(),
        uri: uris
            .first()
            .copied()
            .unwrap_or("sip:x@192.0.2.1")
            .to_string(),
        uris: uris.iter().map(|u| u.to_string()).collect(),
        rate: 0.01,
        customer_rate: 0.02,
        billing: Billing { min: 6, inc: 6 },
        forced: false,
        zone: None,
    }
}

/// Byte-exact: the documented layout of a route answer and of a reject.
#[test]
fn layout_vectors() {
    let route = DipAnswer::Route(RouteAnswer {
        zone: Zone::Interstate,
        lrn: Some("2125550000".into()),
        partition: Some("retail".into()),
        routes: vec![
            choice("lumen-east", "lumen", &["sip:1@10.0.0.1", "sip:1@10.0.0.2"]),
            choice("bw", "bandwidth", &["sip:1@10.0.0.3"]),
        ],
        emergency_callback: None,
        max_duration_s: Some(30),
        stir: Some(crate::routing::stir::StirAnswer::Sign {
            attest: crate::routing::stir::Attest::A,
            origid: crate::routing::stir::Uuid::from_u128(0x1234),
            orig: crate::routing::stir::canonical_tn("+13125551000"),
            dest: crate::routing::stir::canonical_tn("+12125551234"),
        }),
    });
    let want: &[u8] =
        b"*22\r\n$5\r\nroute\r\n:200\r\n$0\r\n\r\n$10\r\ninterstate\r\n$10\r\n2125550000\r\n\
$6\r\nretail\r\n$0\r\n\r\n:3\r\n\
$10\r\nlumen-east\r\n$5\r\nlumen\r\n$14\r\nsip:1@10.0.0.1\r\n\
$10\r\nlumen-east\r\n$5\r\nlumen\r\n$14\r\nsip:1@10.0.0.2\r\n\
$2\r\nbw\r\n$9\r\nbandwidth\r\n$14\r\nsip:1@10.0.0.3\r\n:30\r\n\
$1\r\nA\r\n$36\r\n00000000-0000-0000-0000-000000001234\r\n$11\r\n13125551000\r\n$11\r\n12125551234\r\n";
    assert_eq!(
        String::from_utf8_lossy(&answer_array(&route, true).to_bytes()),
        String::from_utf8_lossy(want)
    );
    // LCR without its identity argument: the same up to max_duration_s, no STIR/SHAKEN fields
    let want_no_stir: &[u8] =
        b"*18\r\n$5\r\nroute\r\n:200\r\n$0\r\n\r\n$10\r\ninterstate\r\n$10\r\n2125550000\r\n\
$6\r\nretail\r\n$0\r\n\r\n:3\r\n\
$10\r\nlumen-east\r\n$5\r\nlumen\r\n$14\r\nsip:1@10.0.0.1\r\n\
$10\r\nlumen-east\r\n$5\r\nlumen\r\n$14\r\nsip:1@10.0.0.2\r\n\
$2\r\nbw\r\n$9\r\nbandwidth\r\n$14\r\nsip:1@10.0.0.3\r\n:30\r\n";
    assert_eq!(
        String::from_utf8_lossy(&answer_array(&route, false).to_bytes()),
        String::from_utf8_lossy(want_no_stir)
    );
    let reject = DipAnswer::Reject(RejectAnswer {
        sip_code: 403,
        reason: "blocked prefix 1900".into(),
    });
    // a reject is the same either way
    for with_stir in [true, false] {
        assert_eq!(
            answer_array(&reject, with_stir).to_bytes(),
            b"*8\r\n$6\r\nreject\r\n:403\r\n$19\r\nblocked prefix 1900\r\n$0\r\n\r\n$0\r\n\r\n$0\r\n\r\n$0\r\n\r\n:0\r\n"
        );
    }
    let e911 = DipAnswer::Route(RouteAnswer {
        zone: Zone::Emergency,
        lrn: None,
        partition: None,
        routes: vec![choice("psap", "e911co", &["sip:911@10.9.9.9"])],
        emergency_callback: Some("+13125551000".into()),
        max_duration_s: None,
        stir: None,
    });
    let v = wire(&e911, false);
    assert_eq!(text(&v[3]), "emergency");
    assert_eq!(text(&v[6]), "+13125551000");
    // no limit: 0 at 8 + 3N
    assert_eq!(int(&v[8 + 3]), 0);
}

fn name() -> impl Strategy<Value = String> {
    "[a-z][a-z0-9-]{0,11}"
}

fn route_answer() -> impl Strategy<Value = DipAnswer> {
    let c = (
        name(),
        name(),
        proptest::collection::vec("sip:[0-9]{1,6}@10\\.[0-9]\\.[0-9]\\.[0-9]{1,3}", 0..4),
    );
    (
        proptest::collection::vec(c, 0..6),
        proptest::option::of("[0-9]{10}"),
        proptest::option::of("\\+1[0-9]{10}"),
        proptest::option::of(1u32..100_000),
        proptest::option::of((0u8..4, any::<u128>())),
    )
        .prop_map(|(routes, lrn, ecb, max, stir)| {
            DipAnswer::Route(RouteAnswer {
                zone: Zone::Intrastate,
                lrn,
                partition: None,
                routes: routes
                    .iter()
                    .map(|(id, vendor, uris)| {
                        let uris: Vec<&str> = uris.iter().map(String::as_str).collect();
                        choice(id, vendor, &uris)
                    })
                    .collect(),
                emergency_callback: ecb,
                max_duration_s: max,
                stir: stir.map(|(a, u)| {
                    use crate::routing::stir::{Attest, StirAnswer};
                    match a {
                        0 => StirAnswer::Keep,
                        a => StirAnswer::Sign {
                            attest: [Attest::A, Attest::B, Attest::C][usize::from(a - 1)],
                            origid: crate::routing::stir::Uuid::from_u128(u),
                            orig: crate::routing::stir::canonical_tn(&format!(
                                "1{}",
                                u % 10_000_000_000
                            )),
                            dest: crate::routing::stir::canonical_tn("911"),
                        },
                    }
                }),
            })
        })
}

proptest! {
    /// The RESP answer carries the same routes, vendors and gateway URIs in the same order as the
    /// JSON answer, and the same header fields.
    #[test]
    fn resp_and_json_answers_agree(a in route_answer()) {
        let v = wire(&a, true);
        let j = serde_json::to_value(&a).unwrap();
        prop_assert_eq!(resp_attempts(&v, true), json_attempts(&a));
        // without LCR's identity argument: the same array up to max_duration_s, nothing after
        let short = wire(&a, false);
        prop_assert_eq!(resp_attempts(&short, false), json_attempts(&a));
        prop_assert_eq!(&short[..], &v[..short.len()]);
        prop_assert_eq!(text(&v[0]), j["action"].as_str().unwrap());
        prop_assert_eq!(text(&v[3]), j["zone"].as_str().unwrap());
        prop_assert_eq!(text(&v[4]), j["lrn"].as_str().unwrap_or(""));
        prop_assert_eq!(text(&v[6]), j["emergency_callback"].as_str().unwrap_or(""));
        // appended fields: max_duration_s at 8 + 3N, then the STIR attestation and origid
        let n = int(&v[7]) as usize;
        prop_assert_eq!(int(&v[HEADER + 3 * n]), j["max_duration_s"].as_i64().unwrap_or(0));
        let attest = match (j["stir"]["attest"].as_str(), j["stir"]["keep"].as_bool()) {
            (Some(a), _) => a,
            (None, Some(true)) => "keep",
            _ => "",
        };
        prop_assert_eq!(text(&v[HEADER + 3 * n + 1]), attest);
        prop_assert_eq!(text(&v[HEADER + 3 * n + 2]), j["stir"]["origid"].as_str().unwrap_or(""));
        prop_assert_eq!(text(&v[HEADER + 3 * n + 3]), j["stir"]["orig"].as_str().unwrap_or(""));
        prop_assert_eq!(text(&v[HEADER + 3 * n + 4]), j["stir"]["dest"].as_str().unwrap_or(""));
    }
}

/// `LCR` arguments: what becomes which request field, and which are refused (naming the field).
#[test]
fn lcr_arguments() {
    let a = |v: &[&str]| -> Vec<Vec<u8>> { v.iter().map(|s| s.as_bytes().to_vec()).collect() };
    let r = dip_request(&a(&["10.0.0.1", "+13125551000", "12125551234", "abc"])).unwrap();
    assert_eq!(r.src_ip, Some("10.0.0.1".parse().unwrap()));
    assert_eq!((r.ban, r.call_id.as_deref()), (None, Some("abc")));
    let r = dip_request(&a(&[
        "10001",
        "3125551000",
        "2125551234",
        "",
        "2125550000",
        "3",
    ]))
    .unwrap();
    assert_eq!(r.ban.as_deref(), Some("10001"));
    assert_eq!(
        (r.call_id, r.lrn.as_deref(), r.max_results),
        (None, Some("2125550000"), Some(3))
    );
    let bad: Vec<(Vec<Vec<u8>>, &str)> = vec![
        (a(&["10.0.0.1", "1"]), "LCR"),
        (
            a(&["10.0.0.1", "1", "2", "c", "l", "9", "valid", "x"]),
            "LCR",
        ),
        (
            a(&["10.0.0.1", "1", "2", "c", "-", "-", "maybe"]),
            "identity",
        ),
        (a(&["", "1", "2"]), "ban"),
        (a(&["10.0.0.1", "1", "2", "c", "", "many"]), "max_results"),
        (
            vec![b"10.0.0.1".to_vec(), vec![0xff, 0xfe], b"2".to_vec()],
            "ani",
        ),
    ];
    // issue 20: identity, and `-` for an absent lrn / max_results / identity
    let r = dip_request(&a(&["10.0.0.1", "1", "2", "c", "-", "-", "valid"])).unwrap();
    assert_eq!(
        (r.lrn, r.max_results, r.identity),
        (None, None, Some(crate::routing::stir::IdentityIn::Valid))
    );
    let r = dip_request(&a(&["10.0.0.1", "1", "2", "c", "-", "-", "-"])).unwrap();
    assert_eq!((r.call_id.as_deref(), r.identity), (Some("c"), None));
    for (args, field) in bad {
        let e = dip_request(&args).unwrap_err();
        assert!(e.to_string().contains(field), "{args:?}: {e}");
        assert!(e.is_client_error());
    }
}
