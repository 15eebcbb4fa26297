use super::*;
use proptest::prelude::*;

macro_rules! vector {
    ($name:literal) => {
        (
            $name,
            include_bytes!(concat!("testdata/", $name, ".req")) as &[u8],
            include_bytes!(concat!("testdata/", $name, ".rsp")) as &[u8],
        )
    };
}

/// Exchanges captured from rtpengine-daemon 10.5.3.5 (Debian 12) on 127.0.0.1.
const VECTORS: &[(&str, &[u8], &[u8])] = &[
    vector!("ping"),
    vector!("unknown"),
    vector!("offer"),
    vector!("answer"),
    vector!("query"),
    vector!("list"),
    vector!("delete"),
    vector!("unknown_call"),
    vector!("t38_decode"),
    vector!("t38_delete"),
    vector!("statistics"),
    vector!("start_recording"),
    vector!("stop_recording"),
    vector!("start_forwarding"),
    vector!("stop_forwarding"),
    vector!("block_dtmf"),
    vector!("unblock_dtmf"),
    vector!("block_media"),
    vector!("unblock_media"),
];

#[test]
fn captured_call_commands_decode_to_their_command() {
    for (name, command) in [
        ("start_recording", Command::StartRecording),
        ("stop_recording", Command::StopRecording),
        ("start_forwarding", Command::StartForwarding),
        ("stop_forwarding", Command::StopForwarding),
        ("block_dtmf", Command::BlockDtmf),
        ("unblock_dtmf", Command::UnblockDtmf),
        ("block_media", Command::BlockMedia),
        ("unblock_media", Command::UnblockMedia),
    ] {
        let (_, req, rsp) = VECTORS.iter().find(|v| v.0 == name).unwrap();
        let (_, r) = NgRequest::decode(req).unwrap();
        assert_eq!(r.command, command, "{name}");
        assert_eq!(r.call_id(), Some("vec-call-2"), "{name}");
        let (_, a) = NgAnswer::decode(rsp).unwrap();
        assert_eq!(a.result, NgResult::Ok, "{name}");
    }
}

#[test]
fn captured_exchanges_round_trip_byte_exact() {
    for (name, req, rsp) in VECTORS {
        let (cookie, dict) = parse_datagram(req).unwrap();
        assert_eq!(&encode_datagram(cookie, &dict)[..], *req, "{name} request");
        let (rc, rdict) = parse_datagram(rsp).unwrap();
        assert_eq!(rc, cookie, "{name}: reply echoes the cookie");
        assert_eq!(&encode_datagram(rc, &rdict)[..], *rsp, "{name} response");
        let resp = NgResponse::from_dict(rdict).unwrap();
        assert_eq!(resp.encode(rc), *rsp, "{name} typed response");
        // the proxy's view: same result, the node's bytes under another cookie
        let (ac, answer) = NgAnswer::decode(rsp).unwrap();
        assert_eq!(ac, cookie, "{name}: answer cookie");
        assert_eq!(answer.result, resp.result, "{name}: answer result");
        let forwarded = answer.encode(b"kam_1");
        assert_eq!(&forwarded[..6], b"kam_1 ", "{name}");
        assert_eq!(
            &forwarded[6..],
            &rsp[rc.len() + 1..],
            "{name}: body forwarded as sent"
        );
        assert_eq!(
            answer.response().unwrap(),
            resp,
            "{name}: decoded on demand"
        );
        assert_eq!(
            NgAnswer::from(&resp),
            answer,
            "{name}: built from a response"
        );
        if *name != "unknown" {
            let (c2, typed) = NgRequest::decode(req).unwrap();
            assert_eq!(typed.encode(&c2), *req, "{name} typed request");
        }
    }
}

#[test]
fn a_delete_answers_quality_reads_the_same_in_place_and_decoded() {
    let (_, raw) = NgAnswer::decode(include_bytes!("testdata/delete.rsp")).unwrap();
    let (_, full) = NgResponse::decode(include_bytes!("testdata/delete.rsp")).unwrap();
    let want = Quality::from_response(&full.dict);
    assert_eq!(want.rtp_packets, 80, "the vector carries totals: {want:?}");
    assert_eq!(Quality::from_answer(&raw), want);
}

#[test]
fn typed_views_of_captured_exchanges() {
    let (_, req) = NgRequest::decode(include_bytes!("testdata/offer.req")).unwrap();
    assert_eq!(req.command, Command::Offer);
    assert_eq!(req.call_id(), Some("vec-call"));
    assert_eq!(req.from_tag(), Some("ft1"));
    assert_eq!(req.flags(), vec!["trust-address"]);
    // Kamailio-style unsorted keys: sdp came first and stays first
    assert_eq!(req.dict.0[0].0, b"sdp");
    let (_, rsp) = NgResponse::decode(include_bytes!("testdata/offer.rsp")).unwrap();
    assert_eq!(rsp.result, NgResult::Ok);
    let sdp = String::from_utf8_lossy(rsp.sdp().unwrap()).into_owned();
    assert!(sdp.contains("m=audio 309"), "{sdp}");

    let (_, e) = NgResponse::decode(include_bytes!("testdata/unknown.rsp")).unwrap();
    assert_eq!(e.result, NgResult::Error("Unrecognized command".into()));
    let (_, e) = NgResponse::decode(include_bytes!("testdata/unknown_call.rsp")).unwrap();
    assert_eq!(e.result, NgResult::Error("Unknown call-id".into()));
    let (_, p) = NgResponse::decode(include_bytes!("testdata/ping.rsp")).unwrap();
    assert_eq!(p.result, NgResult::Pong);
    assert_eq!(
        NgRequest::decode(include_bytes!("testdata/unknown.req")).unwrap_err(),
        CodecError::UnknownCommand("foo".into())
    );
    let (_, t) = NgResponse::decode(include_bytes!("testdata/t38_decode.rsp")).unwrap();
    let sdp = String::from_utf8_lossy(t.sdp().unwrap()).into_owned();
    assert!(sdp.contains("RTP/AVP 0 8"), "T.38 decoded to audio: {sdp}");
}

#[test]
fn quality_from_captured_delete() {
    let (_, d) = NgResponse::decode(include_bytes!("testdata/delete.rsp")).unwrap();
    let q = Quality::from_response(&d.dict);
    assert_eq!(q.rtp_packets, 80, "40 packets each way were sent");
    assert_eq!(q.rtp_bytes, 80 * 172);
    assert_eq!(q.rtp_errors, 0);
    assert_eq!(q.mos_x10, None, "no RTCP was sent, so no MOS");
}

#[test]
fn quality_reads_ssrc_mos() {
    let text = b"d4:SSRCd4:4660d7:packetsi100e11:average MOSd3:MOSi41e6:jitteri3e11:packet lossi2eee5:22136d11:average MOSd3:MOSi43e6:jitteri5e11:packet lossi0eeee6:totalsd3:RTPd7:packetsi200e5:bytesi1e6:errorsi0eeee";
    let d = match Bencode::decode(text).unwrap() {
        Bencode::Dict(d) => d,
        _ => unreachable!(),
    };
    let q = Quality::from_response(&d);
    assert_eq!(q.mos_x10, Some(41));
    assert_eq!(q.jitter, Some(5));
    assert_eq!(q.packets_lost, Some(2));
    assert_eq!(q.ssrcs.len(), 2);
    assert_eq!(q.rtp_packets, 200);
}

#[test]
fn bad_input_is_a_typed_error() {
    let cases: &[(&[u8], CodecError)] = &[
        (b"", CodecError::Empty),
        (b"nospace", CodecError::NoCookie),
        (b" d7:command4:pinge", CodecError::NoCookie),
        (b"c d7:command4:ping", CodecError::Truncated { at: 16 }),
        (b"c d7:command40:pinge", CodecError::Truncated { at: 18 }),
        (b"c li1ee", CodecError::NotDict),
        (b"c d7:command4:pingee", CodecError::Trailing { at: 17 }),
        (
            b"c di1e4:pinge",
            CodecError::Unexpected { at: 1, byte: b'i' },
        ),
        (b"c d1:ai01ee", CodecError::BadInt { at: 5 }),
        (b"c d1:ai-0ee", CodecError::BadInt { at: 5 }),
        (b"c d1:aiee", CodecError::BadInt { at: 5 }),
        (b"c d1:ai-ee", CodecError::BadInt { at: 5 }),
        (b"c d1:ai+1ee", CodecError::BadInt { at: 5 }),
        (b"c d1:ai1-2ee", CodecError::BadInt { at: 5 }),
        (
            b"c d1:ai9223372036854775808ee",
            CodecError::BadInt { at: 5 },
        ),
        (
            b"c d1:ai-9223372036854775809ee",
            CodecError::BadInt { at: 5 },
        ),
        (b"c d01:a1:be", CodecError::BadLength { at: 1 }),
        (b"c x", CodecError::Unexpected { at: 0, byte: b'x' }),
    ];
    for (input, want) in cases {
        assert_eq!(
            parse_datagram(input).map(|_| ()).unwrap_err(),
            *want,
            "{:?}",
            String::from_utf8_lossy(input)
        );
    }
    for (text, n) in [
        ("0", 0),
        ("7", 7),
        ("-7", -7),
        ("9223372036854775807", i64::MAX),
        ("-9223372036854775808", i64::MIN),
    ] {
        let (_, d) = parse_datagram(format!("c d1:ai{text}ee").as_bytes()).unwrap();
        assert_eq!(d.int("a"), Some(n), "{text}");
    }
    let deep = format!("c {}{}", "l".repeat(100), "e".repeat(100));
    assert!(matches!(
        parse_datagram(deep.as_bytes()),
        Err(CodecError::TooDeep { .. }) | Err(CodecError::NotDict)
    ));
    assert_eq!(
        NgRequest::decode(b"c d4:call1:xe").unwrap_err(),
        CodecError::Missing("command")
    );
    assert_eq!(
        NgRequest::decode(b"c d7:commandi1ee").unwrap_err(),
        CodecError::NotString("command")
    );
    assert_eq!(
        NgRequest::decode(b"c d7:command5:offere").unwrap_err(),
        CodecError::Missing("call-id")
    );
    assert_eq!(
        NgResponse::decode(b"c d3:sdp0:e").unwrap_err(),
        CodecError::Missing("result")
    );
}

#[test]
fn setters_keep_key_order() {
    let (_, mut req) = NgRequest::decode(include_bytes!("testdata/offer.req")).unwrap();
    let keys_before: Vec<Vec<u8>> = req.dict.0.iter().map(|(k, _)| k.clone()).collect();
    req.dict.set("call-id", Bencode::str("other"));
    req.dict.set("record call", Bencode::str("yes"));
    let keys_after: Vec<Vec<u8>> = req.dict.0.iter().map(|(k, _)| k.clone()).collect();
    assert_eq!(&keys_after[..keys_before.len()], &keys_before[..]);
    assert_eq!(keys_after.last().unwrap(), b"record call");
    assert_eq!(req.call_id(), Some("other"));
}

#[test]
fn command_names_round_trip() {
    for c in Command::ALL {
        assert_eq!(Command::parse(c.as_str()), Some(c));
        let req = NgRequest::new(c).with("call-id", "x");
        let (_, back) = NgRequest::decode(&req.encode(b"k")).unwrap();
        assert_eq!(back, req);
    }
}

fn arb_bencode() -> impl Strategy<Value = Bencode> {
    let leaf = prop_oneof![
        any::<i64>().prop_map(Bencode::Int),
        proptest::collection::vec(any::<u8>(), 0..24).prop_map(Bencode::Bytes),
    ];
    leaf.prop_recursive(5, 64, 6, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..6).prop_map(Bencode::List),
            proptest::collection::vec((proptest::collection::vec(any::<u8>(), 0..10), inner), 0..6)
                .prop_map(|p| Bencode::Dict(Dict(p))),
        ]
    })
}

proptest! {
    #[test]
    fn prop_round_trip(v in arb_bencode()) {
        let bytes = v.encode();
        prop_assert_eq!(Bencode::decode(&bytes).unwrap(), v.clone());
        let d = Dict(vec![(b"k".to_vec(), v)]);
        let dg = encode_datagram(b"cookie", &d);
        let (c, back) = parse_datagram(&dg).unwrap();
        prop_assert_eq!(c, b"cookie");
        prop_assert_eq!(back, d);
    }

    #[test]
    fn prop_garbage_never_panics(data in proptest::collection::vec(any::<u8>(), 0..256)) {
        let _ = parse_datagram(&data);
        let _ = NgRequest::decode(&data);
        let _ = NgResponse::decode(&data);
        prop_assert_eq!(answer_view(&data), response_view(&data));
    }

    #[test]
    fn prop_answer_scan_agrees_with_the_full_decode(v in arb_bencode(), extra in arb_bencode()) {
        // any dictionary, with and without a result, and with results of every kind
        for result in [None, Some(Bencode::str("ok")), Some(Bencode::str("error")),
                       Some(Bencode::Int(1)), Some(v.clone())] {
            let mut d = Dict(vec![(b"x".to_vec(), extra.clone())]);
            if let Some(r) = result {
                d.0.push((b"result".to_vec(), r));
            }
            d.0.push((b"error-reason".to_vec(), v.clone()));
            d.0.push((b"result".to_vec(), Bencode::str("second")));
            let dg = encode_datagram(b"c", &d);
            prop_assert_eq!(answer_view(&dg), response_view(&dg));
            if let Ok((_, a)) = NgAnswer::decode(&dg) {
                prop_assert_eq!(a.encode(b"c"), dg.clone());
                prop_assert_eq!(a.response().map(|r| r.dict), Ok(d));
            }
        }
        let dg = [b"c ".as_slice(), &v.encode()].concat();
        prop_assert_eq!(answer_view(&dg), response_view(&dg));
    }

    #[test]
    fn prop_quality_read_in_place_equals_the_decoded_reading(
        packets in arb_bencode(), mos in arb_bencode(), extra in arb_bencode(),
        n in any::<i64>(), ssrcs in proptest::collection::vec(any::<u8>(), 0..4)
    ) {
        let int = |i: i64| Bencode::Int(i);
        let d = |pairs: Vec<(&str, Bencode)>| {
            Bencode::Dict(Dict(pairs.into_iter().map(|(k, v)| (k.as_bytes().to_vec(), v)).collect()))
        };
        let ssrc = |i: u8| {
            let avg = d(vec![("MOS", if i % 2 == 0 { mos.clone() } else { int(n) }),
                             ("jitter", int(n / 3)), ("packet loss", int(i64::from(i) - 1))]);
            (format!("{i}"), d(vec![("packets", packets.clone()), ("average MOS", avg)]))
        };
        let mut ss: Vec<(String, Bencode)> = ssrcs.iter().map(|&i| ssrc(i)).collect();
        ss.push(("odd".into(), extra.clone()));
        let ssrc_dict = Bencode::Dict(Dict(ss.into_iter().map(|(k, v)| (k.into_bytes(), v)).collect()));
        let body = Dict(vec![
            (b"result".to_vec(), Bencode::str("ok")),
            (b"extra".to_vec(), extra.clone()),
            (b"totals".to_vec(), d(vec![("RTP", d(vec![("packets", int(n)), ("bytes", packets.clone()),
                                                        ("errors", int(n.wrapping_neg()))])),
                                        ("RTCP", d(vec![("packets", packets.clone())]))])),
            (b"SSRC".to_vec(), ssrc_dict),
            (b"totals".to_vec(), d(vec![])),
        ]);
        let dg = encode_datagram(b"c", &body);
        let (_, a) = NgAnswer::decode(&dg).unwrap();
        prop_assert_eq!(Quality::from_answer(&a), Quality::from_response(&body));
    }

    #[test]
    fn prop_truncations_and_flips_of_real_vectors_never_panic(
        i in 0usize..11, cut in 0usize..2000, flip in 0usize..2000, byte in any::<u8>()
    ) {
        let (_, req, rsp) = VECTORS[i];
        for v in [req, rsp] {
            let cut = cut % (v.len() + 1);
            let _ = NgResponse::decode(&v[..cut]);
            prop_assert_eq!(answer_view(&v[..cut]), response_view(&v[..cut]));
            let mut m = v.to_vec();
            let at = flip % m.len();
            m[at] = byte;
            if let Ok((c, d)) = parse_datagram(&m) {
                // whatever decodes re-encodes to the same bytes
                prop_assert_eq!(encode_datagram(c, &d), m.clone());
            }
            let _ = NgRequest::decode(&m);
            prop_assert_eq!(answer_view(&m), response_view(&m));
        }
    }
}

/// What the proxy learns from an answer: cookie and result, or the error.
fn answer_view(d: &[u8]) -> Result<(Vec<u8>, NgResult), CodecError> {
    NgAnswer::decode(d).map(|(c, a)| (c.to_vec(), a.result))
}

fn response_view(d: &[u8]) -> Result<(Vec<u8>, NgResult), CodecError> {
    NgResponse::decode(d).map(|(c, r)| (c, r.result))
}

/// An `offer` answer of rtpengine-daemon 10.5.3.5 for a call offered with `record call: yes`
/// (`--recording-method=pcap`): it names the pcap file under `recordings`.
#[test]
fn a_recorded_offers_answer_names_its_recording_files() {
    let data = include_bytes!("testdata/recorded_offer.rsp");
    let (_, answer) = NgAnswer::decode(data).expect("decodes");
    assert_eq!(
        answer.recordings(),
        vec!["/tmp/rtpx/rec/pcaps/cid-x1-e96efee2b992a38d.pcap".to_string()]
    );
    for (name, _, rsp) in VECTORS {
        let (_, a) = NgAnswer::decode(rsp).expect("decodes");
        assert!(a.recordings().is_empty(), "{name}");
    }
}
