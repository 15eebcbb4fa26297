//! Unit tests of call event parsing: the JSON-RPC params, form lines, and the persisted format.

#[test]
fn media_info_takes_node_stats_only_where_kamailio_sent_none() {
    use warpd_ng::{Quality, SsrcQuality};
    let q = Quality {
        mos_x10: Some(43),
        jitter: Some(12),
        packets_lost: Some(10),
        ssrcs: vec![
            SsrcQuality {
                packets: Some(490),
                ..Default::default()
            },
            SsrcQuality {
                packets: Some(500),
                ..Default::default()
            },
        ],
        ..Default::default()
    };
    let mut m = MediaInfo::default();
    m.fill_from(&q);
    assert_eq!(m.mos, Some(4.3));
    assert_eq!(m.jitter_ms, Some(12.0));
    assert_eq!(m.loss_pct, Some(1.0));
    // what Kamailio sent wins; no stats leaves the fields empty
    let mut sent = MediaInfo {
        mos: Some(3.9),
        ..Default::default()
    };
    sent.fill_from(&q);
    assert_eq!(sent.mos, Some(3.9));
    let mut none = MediaInfo::default();
    none.fill_from(&Quality::default());
    assert_eq!(none, MediaInfo::default());
    // RTPEngine 10.5: loss per SSRC, packet counts only in the totals
    let totals_only = Quality {
        rtp_packets: 300,
        packets_lost: Some(0),
        ..Default::default()
    };
    let mut m = MediaInfo::default();
    m.fill_from(&totals_only);
    assert_eq!(m.loss_pct, Some(0.0));
}
use super::*;
use proptest::prelude::*;

proptest! {
    // the parsers never panic, whatever the bytes
    #[test]
    fn parsers_never_panic(raw in proptest::collection::vec(any::<u8>(), 0..200)) {
        let _ = attempt_event(&raw, NOW);
        let _ = answer_event(&raw, NOW);
        let _ = end_event(&raw, NOW);
        let _ = Event::from_json(&raw);
    }

    // the form body parser never panics, whatever the bytes
    #[test]
    fn form_parser_never_panics(raw in proptest::collection::vec(any::<u8>(), 0..300)) {
        let _ = form_events(&raw, NOW);
    }

    // well-formed params with any text and numbers, as JSON-RPC params and as a form line
    // (URL-encoded the way Kamailio's {s.urlencode.param} does): the same event, which
    // survives the stored JSON round trip, or the same field refused
    #[test]
    fn form_line_equals_json_params(
        id in "\\PC{0,40}", route in "[a-z0-9-]{0,20}", n in 0u32..200, code in 0u16..800,
        ts in proptest::option::of(0f64..5e9), reason in proptest::option::of("\\PC{0,30}"),
    ) {
        let p = serde_json::json!({"call_id": id, "attempt": n, "route_id": route,
            "sip_code": code, "ts": ts, "reason": reason});
        let mut form = url::form_urlencoded::Serializer::new(String::new());
        form.append_pair("event", "attempt")
            .append_pair("call_id", &id)
            .append_pair("attempt", &n.to_string())
            .append_pair("route_id", &route)
            .append_pair("sip_code", &code.to_string());
        if let Some(ts) = ts {
            form.append_pair("ts", &ts.to_string());
        }
        if let Some(r) = &reason {
            form.append_pair("reason", r);
        }
        let line = form.finish();
        let from_json = attempt_event(p.to_string().as_bytes(), NOW);
        let from_form = form_events(line.as_bytes(), NOW);
        match (from_json, from_form) {
            (Ok(a), Ok(b)) => {
                prop_assert_eq!(Event::from_json(a.to_json().as_bytes()).ok(), Some(a.clone()));
                prop_assert_eq!(vec![a], b);
            }
            (Err(a), Err(b)) => {
                prop_assert!(
                    ["call_id", "route_id", "attempt", "sip_code", "ts", "reason"].contains(&a.field.as_str()),
                    "{}", a
                );
                prop_assert_eq!(format!("line 1: {}", a.field), b.field);
            }
            (a, b) => prop_assert!(false, "json {:?} but form {:?}", a, b),
        }
    }
}

const NOW: i64 = 1_700_000_000_000_000;

#[test]
fn attempt_ok_and_defaults() {
    let e = attempt_event(
        br#"{"call_id":"c1","attempt":1,"route_id":"r1","sip_code":503,"reason":"busy here","ts":1700000001.5,"ring_ts":1700000001.0}"#,
        NOW,
    )
    .unwrap();
    assert_eq!(e.ts_us, 1_700_000_001_500_000);
    assert_eq!(e.kind(), "attempt");
    assert_eq!(e.attempt_key(), 1);
    let back = Event::from_json(e.to_json().as_bytes()).unwrap();
    assert_eq!(back, e);
    let e = answer_event(br#"[{"call_id":"c1"}]"#, NOW).unwrap();
    assert_eq!(e.ts_us, NOW);
}

#[test]
fn bad_input_names_the_field() {
    let cases: &[(&[u8], &str)] = &[
        (br#"{"attempt":1,"route_id":"r","sip_code":200}"#, "call_id"),
        (br#"{"call_id":"c","route_id":"r","sip_code":200}"#, "attempt"),
        (br#"{"call_id":"c","attempt":0,"route_id":"r","sip_code":200}"#, "attempt"),
        (br#"{"call_id":"c","attempt":1,"route_id":"r","sip_code":99}"#, "sip_code"),
        (br#"{"call_id":"","attempt":1,"route_id":"r","sip_code":200}"#, "call_id"),
        (br#"{"call_id":"c","attempt":1,"route_id":"r","sip_code":200,"ts":"x"}"#, "ts"),
        (br#"{"call_id":"c","attempt":1,"route_id":"r","sip_code":200,"ts":5}"#, "ts"),
        (br#"{"call_id":"c","attempt":1,"route_id":"r","sip_code":200,"ts":1700000000,"ring_ts":1700000001}"#, "ring_ts"),
        (br#"{"call_id":"c","attempt":1,"route_id":"r","sip_code":200,"bogus":1}"#, "bogus"),
        (b"not json", "params"),
    ];
    for (raw, field) in cases {
        let e = attempt_event(raw, NOW).unwrap_err();
        assert_eq!(&e.field, field, "{}: {e}", String::from_utf8_lossy(raw));
    }
    let e = end_event(br#"{"call_id":"c","hangup":"nobody"}"#, NOW).unwrap_err();
    assert_eq!(e.field, "hangup");
    let e = end_event(br#"{"call_id":"c","mos":7}"#, NOW).unwrap_err();
    assert_eq!(e.field, "mos");
}

#[test]
fn form_lines_in_order() {
    let body = b"event=attempt&call_id=a%2Bb%22c%5C%3B&attempt=2&route_id=r1&sip_code=200&reason=OK+then&ts=1700000001.5\r\n\
event=answer&call_id=a%2Bb%22c%5C%3B&attempt=2&route_id=r1&ts=1700000001.5\n\n";
    let evs = form_events(body, NOW).unwrap();
    assert_eq!(evs.len(), 2);
    assert_eq!(evs[0].call_id, "a+b\"c\\;");
    assert_eq!(evs[0].ts_us, 1_700_000_001_500_000);
    assert_eq!(
        evs[0].data,
        EventData::Attempt(AttemptInfo {
            attempt: 2,
            route_id: "r1".into(),
            sip_code: 200,
            reason: Some("OK then".into()),
            ring_us: None,
        })
    );
    assert_eq!(
        evs[1].data,
        EventData::Answer(AnswerInfo {
            attempt: Some(2),
            route_id: Some("r1".into()),
        })
    );
    let end = form_events(
        b"event=end&call_id=c&hangup=callee&cause=486+Busy+Here&mos=4.1&ts=1700000002",
        NOW,
    )
    .unwrap();
    assert_eq!(end[0].ts_us, 1_700_000_002_000_000);
    let EventData::End(e) = &end[0].data else {
        panic!("not an end: {end:?}");
    };
    assert_eq!(e.hangup.as_deref(), Some("callee"));
    assert_eq!(e.cause.as_deref(), Some("486 Busy Here"));
    assert_eq!(e.media.mos, Some(4.1));
    // no ts: the time it arrived
    let e = form_events(b"event=answer&call_id=c", NOW).unwrap();
    assert_eq!(e[0].ts_us, NOW);
}

#[test]
fn reason_and_cause_are_free_text() {
    // a tab is legal in a SIP reason phrase; a long phrase is cut, not refused
    let long = "é".repeat(200);
    let e = attempt_event(
        format!(r#"{{"call_id":"c","attempt":1,"route_id":"r","sip_code":503,"reason":"Service\tUnavailable\u0000{long}"}}"#).as_bytes(),
        NOW,
    )
    .unwrap();
    let EventData::Attempt(a) = &e.data else {
        panic!("{e:?}");
    };
    let r = a.reason.as_deref().unwrap();
    assert!(r.starts_with("Service Unavailable é"), "{r}");
    assert!(r.len() <= MAX_TEXT && r.len() > MAX_TEXT - 2, "{}", r.len());
    let evs = form_events(b"event=end&call_id=c&cause=486%09Busy%0AHere", NOW).unwrap();
    let EventData::End(end) = &evs[0].data else {
        panic!("{evs:?}");
    };
    assert_eq!(end.cause.as_deref(), Some("486 Busy Here"));
    assert_eq!(free_text("plain".into()), "plain");
    assert_eq!(free_text(String::new()), "");
}

#[test]
fn bad_form_lines_name_line_and_field() {
    let ok = "event=answer&call_id=c";
    let cases: &[(&str, &str)] = &[
        ("", "body"),
        ("\n\n", "body"),
        ("call_id=c", "line 1: event"),
        ("event=start&call_id=c", "line 1: event"),
        ("event=answer&event=end&call_id=c", "line 1: event"),
        ("event=answer", "line 1: call_id"),
        ("event=answer&call_id=c&call_id=d", "line 1: call_id"),
        ("event=answer&call_id=c&bogus=1", "line 1: bogus"),
        (
            "event=attempt&call_id=c&attempt=x&route_id=r&sip_code=200",
            "line 1: attempt",
        ),
        (
            "event=attempt&call_id=c&attempt=1.5&route_id=r&sip_code=200",
            "line 1: attempt",
        ),
        (
            "event=attempt&call_id=c&attempt=1&route_id=r&sip_code=99",
            "line 1: sip_code",
        ),
        ("event=end&call_id=c&ts=NaN", "line 1: ts"),
        ("event=end&call_id=c&ts=5", "line 1: ts"),
        ("event=end&call_id=c&hangup=nobody", "line 1: hangup"),
        ("event=end&call_id=c%01", "line 1: call_id"),
        // an encoded line break stays inside its value (and is refused there)
        ("event=end&call_id=c%0Aevent=end", "line 1: call_id"),
    ];
    for (body, field) in cases {
        let e = form_events(body.as_bytes(), NOW).unwrap_err();
        assert_eq!(&e.field, field, "{body:?}: {e}");
    }
    // the line number counts every line, empty ones too
    let e = form_events(format!("{ok}\n\nevent=end").as_bytes(), NOW).unwrap_err();
    assert_eq!(e.field, "line 3: call_id");
    let many = vec![ok; MAX_FORM_EVENTS + 1].join("\n");
    assert_eq!(form_events(many.as_bytes(), NOW).unwrap_err().field, "body");
    let most = vec![ok; MAX_FORM_EVENTS].join("\n");
    assert_eq!(
        form_events(most.as_bytes(), NOW).unwrap().len(),
        MAX_FORM_EVENTS
    );
}

#[test]
fn event_times_far_ahead_of_the_clock_are_refused() {
    let now = 1_800_000_000_000_000i64;
    let secs = now / 1_000_000;
    let end = |ts: i64| format!(r#"{{"call_id":"c1","ts":{ts}}}"#);
    assert!(end_event(end(secs + MAX_FUTURE_SKEW_S).as_bytes(), now).is_ok());
    let e = end_event(end(secs + 30 * 86_400).as_bytes(), now).unwrap_err();
    assert_eq!(e.field, "ts", "{e:?}");
    assert!(end_event(end(secs - 3600).as_bytes(), now).is_ok());
}

#[test]
fn a_refused_value_is_never_echoed() {
    // a number in the wrong field (e.g. a DNIS where the SIP code goes) must not reach the
    // error, which is logged and answered
    let cases: [&[u8]; 3] = [
        br#"{"call_id":"c","attempt":1,"route_id":"r","sip_code":12125551234}"#,
        br#"{"call_id":"c","attempt":1,"route_id":"r","sip_code":"+12125551234"}"#,
        b"event=attempt&call_id=c&attempt=1&route_id=r&sip_code=12125551234",
    ];
    for raw in cases {
        let e = if raw.starts_with(b"{") {
            attempt_event(raw, NOW).err()
        } else {
            form_events(raw, NOW).err()
        };
        let e = e.unwrap_or_else(|| panic!("{} accepted", String::from_utf8_lossy(raw)));
        assert!(e.field.ends_with("sip_code"), "{e}");
        assert!(!e.to_string().contains("2125551234"), "{e}");
    }
}

#[test]
fn events_of_a_call_never_dipped_have_a_lower_time_bound() {
    let now = 1_800_000_000_000_000i64;
    let secs = now / 1_000_000;
    const MAX: u64 = 4 * 3600;
    let bound = MAX as i64 + MAX_FUTURE_SKEW_S;
    let attempt = |ts: i64, ring: Option<i64>| {
        let ring = ring.map_or(String::new(), |r| format!(r#","ring_ts":{r}"#));
        attempt_event(
            format!(
                r#"{{"call_id":"c","attempt":1,"route_id":"r","sip_code":200,"ts":{ts}{ring}}}"#
            )
            .as_bytes(),
            now,
        )
        .unwrap()
    };
    let end =
        |ts: i64| end_event(format!(r#"{{"call_id":"c","ts":{ts}}}"#).as_bytes(), now).unwrap();
    let answer =
        |ts: i64| answer_event(format!(r#"{{"call_id":"c","ts":{ts}}}"#).as_bytes(), now).unwrap();
    // (event, refused field or None)
    let cases: Vec<(&str, Event, Option<&str>)> = vec![
        ("end now", end(secs), None),
        ("end at the bound", end(secs - bound), None),
        ("end 1 s past the bound", end(secs - bound - 1), Some("ts")),
        ("end 30 days ago", end(secs - 30 * 86_400), Some("ts")),
        ("end in 2000", end(946_684_800), Some("ts")),
        ("end ahead within skew", end(secs + MAX_FUTURE_SKEW_S), None),
        ("answer an hour ago", answer(secs - 3600), None),
        ("answer 5 h ago", answer(secs - 5 * 3600), Some("ts")),
        ("attempt now", attempt(secs, Some(secs - 10)), None),
        (
            "attempt ring too old",
            attempt(secs - 60, Some(secs - bound - 60)),
            Some("ring_ts"),
        ),
        (
            "attempt too old",
            attempt(secs - bound - 60, None),
            Some("ts"),
        ),
    ];
    for (what, ev, want) in cases {
        let got = check_undipped_age(&ev, now, MAX);
        match want {
            None => assert!(got.is_ok(), "{what}: {got:?}"),
            Some(field) => {
                let e = got.expect_err(what);
                assert_eq!(e.field, field, "{what}");
                assert!(e.why.contains("max_call_duration_s"), "{what}: {e}");
            }
        }
    }
}
