//! The SIP scenarios, in the order the test runs them on one stack ([`super::Sip`]).

use super::*;

/// 1. the cheapest vendor's gateway gets the call
pub(super) fn cheapest_gateway_gets_the_call(s: &Sip) {
    let Sip {
        dir,
        uac,
        routes,
        order,
        ..
    } = s;
    let (dir, cheapest) = (dir.as_path(), s.cheapest);
    let main = s.main();
    let cdr_of = |call_id: &str| s.cdr_of(call_id);
    let gws: Vec<Uas> = order
        .iter()
        .map(|p| Uas::start(dir, *p, "uas.xml", "cheapest"))
        .collect();
    let r = call(dir, main, uac, DNIS, "cheapest");
    assert!(r.ok, "call failed:\n{}", r.trace);
    let got: Vec<usize> = gws.iter().map(Uas::invites).collect();
    assert_eq!(
        got[0], 1,
        "cheapest gateway {cheapest} got {got:?} (order {order:?})"
    );
    assert_eq!(got.iter().sum::<usize>(), 1, "{got:?}");
    // the dip went over RESP (kamailio.cfg's default transport), not HTTP
    let metrics =
        s.rt.block_on(s.warpd.as_ref().expect("warpd running").metrics());
    let resp_dips = metrics
        .lines()
        .find(|l| l.contains("dip_duration_seconds_count") && l.contains("surface=\"resp\""))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|n| n.parse::<f64>().ok())
        .unwrap_or(0.0);
    assert!(resp_dips >= 1.0, "no dip over RESP:\n{metrics}");
    // its CDR: the cheapest route carried it at the dip's buy and sell rates
    let call_id = call_id_of(&r.trace);
    let cdr =
        support::eventually_blocking("cheapest CDR", Duration::from_secs(10), || cdr_of(&call_id));
    assert_eq!(cdr["disposition"], "answered", "{cdr}");
    assert_eq!(cdr["route_id"], routes[0]["route_id"], "{cdr}");
    assert_eq!(cdr["attempt_count"], 1, "{cdr}");
    assert_eq!(cdr["customer_ban"], "10001", "{cdr}");
    assert!(same_rate(&cdr["vendor_rate"], &routes[0]["rate"]), "{cdr}");
    assert!(
        same_rate(&cdr["customer_rate"], &routes[0]["customer_rate"]),
        "{cdr}"
    );
    let held = cdr["duration_ms"].as_i64().unwrap_or(-1);
    assert!((50..5000).contains(&held), "duration {held} ms: {cdr}");
    assert_eq!(cdr["vendor_billed_s"], routes[0]["billing"]["min"], "{cdr}");
}

/// 2. cheapest answers 503 → the call completes on the next gateway; events in order
pub(super) fn failover_after_503_completes_on_the_next_gateway_with_events_in_order(s: &Sip) {
    let Sip {
        dir,
        uac,
        routes,
        events,
        ..
    } = s;
    let (dir, cheapest, second) = (dir.as_path(), s.cheapest, s.second);
    let main = s.main();
    let cdr_of = |call_id: &str| s.cdr_of(call_id);
    let first = Uas::start(dir, cheapest, "uas_503.xml", "failover");
    let next = Uas::start(dir, second, "uas.xml", "failover");
    events.lock().expect("lock").clear();
    let r = call(dir, main, uac, DNIS, "failover");
    assert!(r.ok, "call failed:\n{}", r.trace);
    assert_eq!((first.invites(), next.invites()), (1, 1));
    let call_id = call_id_of(&r.trace);
    let evs = support::eventually_blocking("call events", Duration::from_secs(5), || {
        let evs = events.lock().expect("lock").clone();
        let mine: Vec<Value> = evs
            .into_iter()
            .filter(|e| e["params"]["call_id"] == call_id.as_str())
            .collect();
        (mine.len() >= 4).then_some(mine)
    });
    // the ordering that matters: the answering attempt before call.answer (one task), and
    // call.end last (warpd writes the CDR on it)
    let methods: Vec<&str> = evs
        .iter()
        .map(|e| e["method"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(methods.last(), Some(&"call.end"), "{evs:?}");
    let pos = |m: &str, attempt: i64| {
        evs.iter()
            .position(|e| e["method"] == m && e["params"]["attempt"] == attempt)
            .unwrap_or(usize::MAX)
    };
    assert!(pos("call.attempt", 2) < pos("call.answer", 2), "{evs:?}");
    let by = |m: &str| -> Vec<&Value> { evs.iter().filter(|e| e["method"] == m).collect() };
    let mut attempts = by("call.attempt");
    attempts.sort_by_key(|e| e["params"]["attempt"].as_i64());
    assert_eq!(attempts.len(), 2, "{evs:?}");
    assert_eq!(attempts[0]["params"]["attempt"], 1);
    assert_eq!(attempts[0]["params"]["sip_code"], 503);
    assert_eq!(attempts[0]["params"]["route_id"], routes[0]["route_id"]);
    assert_eq!(attempts[1]["params"]["attempt"], 2);
    assert_eq!(attempts[1]["params"]["sip_code"], 200);
    let answers = by("call.answer");
    assert_eq!(answers.len(), 1, "{evs:?}");
    assert_eq!(answers[0]["params"]["attempt"], 2);
    assert_eq!(
        answers[0]["params"]["route_id"],
        attempts[1]["params"]["route_id"]
    );
    let ends = by("call.end");
    assert_eq!(ends.len(), 1, "{evs:?}");
    assert_eq!(ends[0]["params"]["hangup"], "caller");
    assert!(evs.iter().all(|e| e["params"]["ts"].is_f64()), "{evs:?}");

    // the CDR in PostgreSQL: carried by the second attempt's route, rated with its terms
    let carrier = routes
        .iter()
        .find(|r| r["route_id"] == attempts[1]["params"]["route_id"])
        .expect("carrying route in the dip answer");
    let cdr =
        support::eventually_blocking("failover CDR", Duration::from_secs(10), || cdr_of(&call_id));
    assert_eq!(cdr["disposition"], "answered", "{cdr}");
    assert_eq!(cdr["route_id"], carrier["route_id"], "{cdr}");
    assert_eq!(cdr["attempt_count"], 2, "{cdr}");
    assert_eq!(cdr["hangup"], "caller", "{cdr}");
    assert_eq!(cdr["customer_ban"], "10001", "{cdr}");
    assert!(same_rate(&cdr["vendor_rate"], &carrier["rate"]), "{cdr}");
    assert!(
        same_rate(&cdr["customer_rate"], &carrier["customer_rate"]),
        "{cdr}"
    );
    let held = cdr["duration_ms"].as_i64().unwrap_or(-1);
    assert!((50..5000).contains(&held), "duration {held} ms: {cdr}");
    // a sub-second call bills the vendor's minimum
    assert_eq!(cdr["vendor_billed_s"], carrier["billing"]["min"], "{cdr}");
    let cost = carrier["billing"]["min"].as_f64().unwrap_or(0.0) / 60.0
        * carrier["rate"].as_f64().unwrap_or(0.0);
    assert!(
        (cdr["cost"].as_f64().unwrap_or(-1.0) - cost).abs() < 2e-7,
        "cost {cost}: {cdr}"
    );
}

/// 2b. the cheapest gateway is busy (486, never failed over) → 486 to the customer, CDR busy
pub(super) fn busy_cheapest_gateway_gives_486_without_failover(s: &Sip) {
    let Sip { dir, .. } = s;
    let (dir, cheapest, second) = (dir.as_path(), s.cheapest, s.second);
    let main = s.main();
    let cdr_of = |call_id: &str| s.cdr_of(call_id);
    let busy = Uas::start(dir, cheapest, "uas_486.xml", "busy");
    let next = Uas::start(dir, second, "uas.xml", "busy");
    let r = call(dir, main, &reject_scenario(dir, 486), DNIS, "busy");
    assert!(r.ok, "expected 486:\n{}", r.trace);
    assert_eq!((busy.invites(), next.invites()), (1, 0));
    let cdr = support::eventually_blocking("busy CDR", Duration::from_secs(10), || {
        cdr_of(&call_id_of(&r.trace))
    });
    assert_eq!(cdr["disposition"], "busy", "{cdr}");
    assert_eq!(cdr["attempt_count"], 1, "{cdr}");
    assert_eq!(cdr["hangup"], "callee", "{cdr}");
    assert_eq!(cdr["duration_ms"], 0, "{cdr}");
}

/// 2d. the cheapest gateway never answers → 408 after the gateway timer (GW_FR_TIMER_MS, 2 s
/// here) → the next gateway
/// completes the call; the CDR has both attempts
pub(super) fn silent_gateway_times_out_and_the_next_gateway_completes_the_call(s: &Sip) {
    let Sip { dir, uac, .. } = s;
    let (dir, cheapest, second) = (dir.as_path(), s.cheapest, s.second);
    let main = s.main();
    let cdr_of = |call_id: &str| s.cdr_of(call_id);
    let silent = std::net::UdpSocket::bind(("127.0.0.1", cheapest)).expect("bind silent gw");
    silent.set_nonblocking(true).expect("nonblocking");
    let next = Uas::start(dir, second, "uas.xml", "silent");
    let r = call(dir, main, uac, DNIS, "silent");
    assert!(r.ok, "call failed:\n{}", r.trace);
    assert!(
        r.elapsed >= Duration::from_millis(1900),
        "failed over after {:?}, before the gateway timer",
        r.elapsed
    );
    let mut buf = [0u8; 4096];
    let mut invites = 0;
    while let Ok(n) = silent.recv(&mut buf) {
        invites += usize::from(buf[..n].starts_with(b"INVITE "));
    }
    assert!(invites >= 1, "the silent gateway saw no INVITE");
    assert_eq!(next.invites(), 1);
    let cdr = support::eventually_blocking("408 failover CDR", Duration::from_secs(10), || {
        cdr_of(&call_id_of(&r.trace))
    });
    assert_eq!(cdr["disposition"], "answered", "{cdr}");
    assert_eq!(cdr["attempt_count"], 2, "{cdr}");
    assert_eq!(cdr["attempts"][0]["sip_code"], 408, "{cdr}");
    assert_eq!(cdr["attempts"][1]["sip_code"], 200, "{cdr}");
}

/// 2e. the customer hangs up while the cheapest gateway rings: the CANCEL reaches the
/// gateway, no other gateway is tried, the CDR is cancelled by the caller
pub(super) fn caller_cancel_while_ringing_reaches_the_gateway_only(s: &Sip) {
    let Sip { dir, .. } = s;
    let (dir, cheapest, second) = (dir.as_path(), s.cheapest, s.second);
    let main = s.main();
    let cdr_of = |call_id: &str| s.cdr_of(call_id);
    let ringing = Uas::start(dir, cheapest, "uas_ring.xml", "cancel");
    let next = Uas::start(dir, second, "uas.xml", "cancel");
    let cancel = repo().join("tests/sipp/uac_cancel.xml");
    let r = call(dir, main, &cancel, DNIS, "cancel");
    assert!(r.ok, "cancelled call failed:\n{}", r.trace);
    let gw_saw =
        support::eventually_blocking("CANCEL at the gateway", Duration::from_secs(5), || {
            let m = std::fs::read_to_string(&ringing.msgs).unwrap_or_default();
            m.contains("CANCEL sip:").then_some(m)
        });
    assert_eq!(ringing.invites(), 1, "{gw_saw}");
    assert_eq!(next.invites(), 0, "a cancelled call was failed over");
    let cdr = support::eventually_blocking("cancelled CDR", Duration::from_secs(10), || {
        cdr_of(&call_id_of(&r.trace))
    });
    assert_eq!(cdr["disposition"], "cancelled", "{cdr}");
    assert_eq!(cdr["hangup"], "caller", "{cdr}");
    assert_eq!(cdr["attempt_count"], 1, "{cdr}");
    assert_eq!(cdr["attempts"][0]["sip_code"], 487, "{cdr}");
    assert_eq!(cdr["duration_ms"], 0, "{cdr}");
}

/// 2c. warpd's event endpoint unavailable (503) while a call completes: Kamailio keeps the
/// events and sends them again; the CDR appears once warpd takes them
pub(super) fn events_refused_by_warpd_are_resent_and_the_cdr_appears_once_taken(s: &Sip) {
    let Sip {
        dir,
        uac,
        events,
        sink_down,
        ..
    } = s;
    let (dir, cheapest) = (dir.as_path(), s.cheapest);
    let main = s.main();
    let cdr_of = |call_id: &str| s.cdr_of(call_id);
    let gw = Uas::start(dir, cheapest, "uas.xml", "events-later");
    sink_down.store(true, Ordering::SeqCst);
    events.lock().expect("lock").clear();
    let r = call(dir, main, uac, DNIS, "events-later");
    assert!(r.ok, "call failed:\n{}", r.trace);
    assert_eq!(gw.invites(), 1);
    let call_id = call_id_of(&r.trace);
    // part of the scenario, not synchronisation: time for Kamailio's event posts to reach the
    // (refusing) sink, to show that no CDR appears while they are refused
    std::thread::sleep(Duration::from_millis(500));
    assert!(
        cdr_of(&call_id).is_none(),
        "no CDR while events are refused"
    );
    sink_down.store(false, Ordering::SeqCst);
    let cdr = support::eventually_blocking(
        "CDR after the events are resent",
        Duration::from_secs(10),
        || cdr_of(&call_id),
    );
    assert_eq!(cdr["disposition"], "answered", "{cdr}");
    assert_eq!(cdr["attempt_count"], 1, "{cdr}");
    assert_eq!(cdr["hangup"], "caller", "{cdr}");
    let held = cdr["duration_ms"].as_i64().unwrap_or(-1);
    assert!((50..5000).contains(&held), "duration {held} ms: {cdr}");
    // each event arrived once, in order, the end last
    let evs = events.lock().expect("lock").clone();
    let methods: Vec<&str> = evs
        .iter()
        .filter(|e| e["params"]["call_id"] == call_id.as_str())
        .map(|e| e["method"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(
        methods,
        ["call.attempt", "call.answer", "call.end"],
        "{evs:?}"
    );
}

/// 3. blocked prefix → warpd's 403 from Kamailio, no gateway sees it
pub(super) fn blocked_prefix_gets_warpds_403_and_no_gateway_sees_it(s: &Sip) {
    let Sip { dir, .. } = s;
    let (dir, cheapest) = (dir.as_path(), s.cheapest);
    let main = s.main();
    let gw = Uas::start(dir, cheapest, "uas.xml", "blocked");
    let r = call(
        dir,
        main,
        &reject_scenario(dir, 403),
        "+19005550100",
        "blocked",
    );
    assert!(r.ok, "expected 403:\n{}", r.trace);
    assert!(
        r.trace.contains("SIP/2.0 403 blocked prefix 1900"),
        "{}",
        r.trace
    );
    assert_eq!(gw.invites(), 0);
}

/// Issue 17: a customer at its concurrent-call limit still reaches 911 through Kamailio: the
/// emergency gateway gets `INVITE sip:911@…` (no `+`) with the customer's callback number as
/// P-Asserted-Identity, while an ordinary call of the same customer gets warpd's 503. The limit
/// is put back afterwards.
pub(super) fn emergency_call_at_the_limit_is_routed_with_its_callback_number(s: &Sip) {
    let Sip {
        dir, uac, ports, ..
    } = s;
    let dir = dir.as_path();
    let main = s.main();
    s.sql(
        "UPDATE customers SET max_concurrent_calls = 0, emergency_callback = '12125550100' \
         WHERE ban = '10001'",
    );
    let mut n = 0;
    support::eventually_blocking("the limit in force", Duration::from_secs(15), || {
        n += 1;
        let a = s.dip_call("127.0.0.1", DNIS, &format!("e911-probe-{n}"));
        (a["sip_code"] == 503).then_some(())
    });
    support::eventually_blocking(
        "the callback number loaded",
        Duration::from_secs(15),
        || {
            let a = s.dip("127.0.0.1", "911");
            (a["emergency_callback"] == "+12125550100").then_some(())
        },
    );
    let psap = Uas::start(dir, ports[&5087], "uas.xml", "e911");
    let r = call(dir, main, uac, "911", "e911");
    assert!(r.ok, "911 at the limit failed:\n{}", r.trace);
    let seen = std::fs::read_to_string(&psap.msgs).unwrap_or_default();
    assert!(seen.contains("INVITE sip:911@"), "{seen}");
    assert!(
        seen.contains("P-Asserted-Identity: <tel:+12125550100>"),
        "{seen}"
    );
    drop(psap);
    let r = call(dir, main, &reject_scenario(dir, 503), DNIS, "e911-limited");
    assert!(
        r.ok,
        "an ordinary call at the limit must get 503:\n{}",
        r.trace
    );
    s.sql(
        "UPDATE customers SET max_concurrent_calls = 100, emergency_callback = NULL \
         WHERE ban = '10001'",
    );
    support::eventually_blocking("the limit lifted", Duration::from_secs(15), || {
        n += 1;
        let a = s.dip_call("127.0.0.1", DNIS, &format!("e911-probe-{n}"));
        (a["action"] == "route").then_some(())
    });
}

/// 4. media: SDP towards the customer is RTPEngine's; a T.38 re-INVITE on a fax call too
pub(super) fn media_sdp_and_t38_reinvite_go_through_rtpengine(s: &Sip) {
    let Sip {
        dir,
        rtpengine_sock,
        so_define,
        resp_define,
        base,
        events_url,
        routes,
        ..
    } = s;
    let (dir, cheapest, rtp_min) = (dir.as_path(), s.cheapest, s.rtp_min);
    let dip = |src_ip: &str, dnis: &str| s.dip(src_ip, dnis);
    let cdr_of = |call_id: &str| s.cdr_of(call_id);
    let kam = Kamailio::start(
        dir,
        "media",
        &[
            so_define.clone(),
            resp_define.clone(),
            format!("WARPD_URL=\"{base}\""),
            format!("WARPD_SECRET=\"{E2E_SECRET}\""),
            format!(
                "WARPD_EVENTS_HTTPCON=\"events=>{}\"",
                with_secret(events_url)
            ),
            "WITH_MEDIA".to_string(),
            format!("RTPENGINE_SOCK=\"{rtpengine_sock}\""),
        ],
    );
    let relayed = |port: u16| (rtp_min..=rtp_min + 99).contains(&port);
    {
        let _gw = Uas::start(dir, cheapest, "uas.xml", "media");
        // the customer streams 1 s of PCMU (50 packets) once the call is up
        let uac_rtp = repo().join("tests/sipp/uac_rtp.xml");
        let r = call(dir, &kam, &uac_rtp, DNIS, "media");
        assert!(r.ok, "media call failed:\n{}", r.trace);
        let ports = received_200_ports(&r.trace, "audio");
        assert!(
            !ports.is_empty() && ports.iter().all(|p| relayed(*p)),
            "SDP not rewritten by RTPEngine (ports {ports:?}, range {rtp_min}..):\n{}",
            r.trace
        );
        // the demo records customer 10001's calls (media_policies). Kamailio dips by source
        // address only; warpd still knows the customer, so the call leaves a recording
        // whose metadata names the BAN and the route
        {
            let want = format!(
                "ban:10001|route:{}",
                routes[0]["route_id"].as_str().unwrap_or("?")
            );
            support::eventually_blocking(
                format!(
                    "recording metadata with {want} in {}",
                    dir.join("rec").display()
                ),
                Duration::from_secs(5),
                || {
                    let meta: Vec<String> = std::fs::read_dir(dir.join("rec/metadata"))
                        .map(|d| {
                            d.flatten()
                                .filter_map(|e| std::fs::read_to_string(e.path()).ok())
                                .collect()
                        })
                        .unwrap_or_default();
                    meta.into_iter().find(|m| m.contains(&want))
                },
            );
            // Kamailio names the route it tries (`warpd-route=` flag, sent by its rtpengine
            // module as a dictionary key): warpd takes it out before RTPEngine sees it
            let rtp_log = std::fs::read_to_string(dir.join("rtpengine.log")).unwrap_or_default();
            assert!(
                !rtp_log.contains("'warpd-route'"),
                "warpd-route reached RTPEngine:\n{rtp_log}"
            );
            // RTP flowed through RTPEngine: the call's recording holds the customer's packets
            let packets = pcap_packets_max(&dir.join("rec/pcaps"));
            assert!(
                packets >= 40,
                "the recording holds {packets} packets; the customer sent 50 RTP packets"
            );
        }
        // the media call is a CDR like any other (SIPp sends no RTCP, so RTPEngine reports
        // no loss or MOS to carry; tests/media_e2e.rs covers those with RTCP)
        let call_id = call_id_of(&r.trace);
        let cdr =
            support::eventually_blocking("media CDR", Duration::from_secs(10), || cdr_of(&call_id));
        assert_eq!(cdr["disposition"], "answered", "{cdr}");
        assert_eq!(cdr["route_id"], routes[0]["route_id"], "{cdr}");
        recorded_calls_cdr_says_where_its_recording_is(s, &cdr);
    }
    {
        let _gw = Uas::start(dir, cheapest, "uas_t38.xml", "t38");
        let t38 = repo().join("tests/sipp/uac_t38.xml");
        let r = call(dir, &kam, &t38, DNIS, "t38");
        assert!(r.ok, "T.38 call failed:\n{}", r.trace);
        let ports = received_200_ports(&r.trace, "image");
        assert!(
            ports.len() == 1 && relayed(ports[0]),
            "T.38 answer not through RTPEngine ({ports:?}):\n{}",
            r.trace
        );
    }
    // a fax call on a T.38-gateway trunk (the demo's bw-intl, forced for Mexico City 5255):
    // the customer's T.38 re-INVITE reaches the vendor as G.711 (RTPEngine decodes it), and
    // the customer still gets T.38 back, from RTPEngine
    {
        let mexico = "+525512345678";
        let a = dip("127.0.0.1", mexico);
        assert_eq!(a["routes"][0]["route_id"], "bw-intl", "{a}");
        let port = gw_port(a["routes"][0]["uri"].as_str().unwrap_or_default());
        let gw = Uas::start(dir, port, "uas_t38_gw.xml", "t38-gw");
        let t38 = repo().join("tests/sipp/uac_t38.xml");
        let r = call(dir, &kam, &t38, mexico, "t38-gw");
        assert!(r.ok, "T.38 gateway call failed:\n{}", r.trace);
        let ports = received_200_ports(&r.trace, "image");
        assert!(
            ports.len() == 1 && relayed(ports[0]),
            "T.38 answer not from RTPEngine ({ports:?}):\n{}",
            r.trace
        );
        let vendor = std::fs::read_to_string(&gw.msgs).unwrap_or_default();
        assert_eq!(gw.invites(), 2, "INVITE and re-INVITE:\n{vendor}");
        assert!(
            !vendor.contains("m=image"),
            "the vendor behind the gateway trunk got T.38:\n{vendor}"
        );
    }
}

/// 5. fallback dip mode (no http_async_client): async_task_route + http_connect
pub(super) fn fallback_dip_mode_without_http_async_client_routes(s: &Sip) {
    let Sip {
        dir,
        base,
        events_url,
        uac,
        order,
        ..
    } = s;
    let dir = dir.as_path();
    let gws: Vec<Uas> = order
        .iter()
        .map(|p| Uas::start(dir, *p, "uas.xml", "taskmode"))
        .collect();
    let kam = Kamailio::start(
        dir,
        "task",
        &[
            // the HTTP dip in an async task worker (the RESP dip off)
            "WITHOUT_RESP_DIP".to_string(),
            "WITHOUT_HTTP_ASYNC".to_string(),
            format!("WARPD_HTTPCON=\"warpd=>{}\"", with_secret(base)),
            format!(
                "WARPD_EVENTS_HTTPCON=\"events=>{}\"",
                with_secret(events_url)
            ),
        ],
    );
    let r = call(dir, &kam, uac, DNIS, "taskmode");
    assert!(r.ok, "call failed:\n{}", r.trace);
    assert_eq!(gws[0].invites(), 1);
}

/// 5b. -A WITH_HTTP_DIP: the RESP dip fails (nothing listens on its port) and the call is routed
/// by the HTTP dip (http_async_query) instead of getting the dip fallback
pub(super) fn http_dip_is_the_fallback_of_a_failed_resp_dip(s: &Sip) {
    let Sip {
        dir,
        so_define,
        base,
        events_url,
        uac,
        order,
        ..
    } = s;
    let dir = dir.as_path();
    let gws: Vec<Uas> = order
        .iter()
        .map(|p| Uas::start(dir, *p, "uas.xml", "httpfallback"))
        .collect();
    let dead = super::free_tcp_port();
    let kam = Kamailio::start(
        dir,
        "httpfallback",
        &[
            "WITH_HTTP_DIP".to_string(),
            so_define.clone(),
            format!("WARPD_RESP_SERVER=\"name=warpd;addr=127.0.0.1;port={dead}\""),
            format!("WARPD_URL=\"{base}\""),
            format!("WARPD_SECRET=\"{E2E_SECRET}\""),
            format!(
                "WARPD_EVENTS_HTTPCON=\"events=>{}\"",
                with_secret(events_url)
            ),
        ],
    );
    let r = call(dir, &kam, uac, DNIS, "httpfallback");
    assert!(r.ok, "call failed:\n{}", r.trace);
    assert_eq!(gws[0].invites(), 1);
    let log = std::fs::read_to_string(&kam.log).unwrap_or_default();
    assert!(
        log.contains("RESP dip failed: trying the HTTP dip"),
        "not routed by the HTTP fallback:\n{log}"
    );
}

/// Scenario 6, a source that is no customer's: 10001 no longer owns 127.0.0.1. Since issue 19
/// such a call takes the inbound path, and 127.0.0.1 is the demo vendors' gateway address (an
/// origination source): +12125550100 is no number of the carrier's → 404, no gateway sees it.
/// (A source that is nobody's is challenged for digest credentials: `inbound.rs`.)
pub(super) fn customer_source_moved_away_takes_the_inbound_path(s: &Sip) {
    let Sip {
        dir, rt, pg, ports, ..
    } = s;
    let (dir, cheapest) = (dir.as_path(), s.cheapest);
    let main = s.main();
    let dip = |src_ip: &str, dnis: &str| s.dip(src_ip, dnis);
    let moved = demo_copy(&dir.join("moved"), ports, Some("192.0.2.1/32"));
    rt.block_on(async {
        let mut client = warpd::db::connect(&pg.url()).await.expect("connect");
        warpd::provision::apply(&mut client, &moved, false)
            .await
            .expect("apply moved source");
    });
    support::eventually_blocking(
        "reload after source change",
        Duration::from_secs(10),
        || (dip("127.0.0.1", DNIS)["action"] == "reject").then_some(()),
    );
    let gw = Uas::start(dir, cheapest, "uas.xml", "unknown");
    let r = call(dir, main, &reject_scenario(dir, 404), DNIS, "unknown");
    assert!(r.ok, "expected 404 for a vendor's source:\n{}", r.trace);
    assert_eq!(gw.invites(), 0);
    let back = demo_copy(&dir.join("back"), ports, None);
    rt.block_on(async {
        let mut client = warpd::db::connect(&pg.url()).await.expect("connect");
        warpd::provision::apply(&mut client, &back, false)
            .await
            .expect("apply back");
    });
}

/// 7. warpd stopped → documented fallback (503) at once; with DIP_FALLBACK_URI → static route
pub(super) fn warpd_stopped_gives_503_at_once_or_the_static_fallback_route(s: &mut Sip) {
    if let Some(w) = s.warpd.take() {
        let _ = s.rt.block_on(w.join());
    }
    let s = &*s;
    let Sip {
        dir,
        so_define,
        resp_define,
        base,
        events_url,
        uac,
        ..
    } = s;
    let dir = dir.as_path();
    let main = s.main();
    let r = call(dir, main, &reject_scenario(dir, 503), DNIS, "stopped");
    assert!(r.ok, "expected 503 with warpd stopped:\n{}", r.trace);
    assert!(
        r.elapsed < Duration::from_millis(DIP_TIMEOUT_MS + 2000),
        "fallback took {:?}",
        r.elapsed
    );

    let fallback_port = free_udp_port();
    let gw = Uas::start(dir, fallback_port, "uas.xml", "static");
    let kam = Kamailio::start(
        dir,
        "static",
        &[
            so_define.clone(),
            resp_define.clone(),
            format!("WARPD_URL=\"{base}\""),
            format!("WARPD_SECRET=\"{E2E_SECRET}\""),
            format!(
                "WARPD_EVENTS_HTTPCON=\"events=>{}\"",
                with_secret(events_url)
            ),
            format!("DIP_FALLBACK_URI=\"sip:fallback@127.0.0.1:{fallback_port}\""),
        ],
    );
    let r = call(dir, &kam, uac, DNIS, "static");
    assert!(r.ok, "static fallback call failed:\n{}", r.trace);
    assert_eq!(gw.invites(), 1);
}

/// 8. warpd hanging (accepts, never answers) → 503 after the dip time-out, not before
pub(super) fn warpd_hanging_gives_503_after_the_dip_timeout(s: &Sip) {
    let Sip { dir, .. } = s;
    let (dir, warpd_port) = (dir.as_path(), s.warpd_port);
    let main = s.main();
    let held: Arc<Mutex<Vec<std::net::TcpStream>>> = Arc::default();
    let held_unix: Arc<Mutex<Vec<std::os::unix::net::UnixStream>>> = Arc::default();
    // both of warpd's Kamailio listeners: the RESP dip's unix socket (the default transport; a
    // socket file warpd left behind is replaced) and HTTP
    let _ = std::fs::remove_file(&s.resp_socket);
    let hang = std::os::unix::net::UnixListener::bind(&s.resp_socket).expect("rebind RESP socket");
    let keep = held_unix.clone();
    std::thread::spawn(move || {
        for s in hang.incoming().flatten().take(64) {
            keep.lock().expect("lock").push(s);
        }
    });
    let hang = TcpListener::bind(("127.0.0.1", warpd_port)).expect("rebind warpd port");
    let keep = held.clone();
    std::thread::spawn(move || {
        for s in hang.incoming().flatten().take(64) {
            keep.lock().expect("lock").push(s);
        }
    });
    // part of the scenario, not synchronisation: the stopped-warpd calls before this opened
    // ndb_redis's breaker in the SIP workers (kamailio.cfg: the first failed dip opens it for
    // RESP_DISABLE_TIME_S = 2 s); it must have closed for this call to meet the hanging warpd
    std::thread::sleep(Duration::from_millis(2500));
    let r = call(dir, main, &reject_scenario(dir, 503), DNIS, "hanging");
    assert!(r.ok, "expected 503 with warpd hanging:\n{}", r.trace);
    assert!(
        r.elapsed >= Duration::from_millis(DIP_TIMEOUT_MS - 50)
            && r.elapsed < Duration::from_millis(DIP_TIMEOUT_MS + 2000),
        "time-out fallback took {:?}",
        r.elapsed
    );
    assert!(
        !held_unix.lock().expect("lock").is_empty(),
        "the RESP dip never connected"
    );

    // the RESP dip's breaker (ndb_redis allowed_timeouts = 0, per Kamailio process): while warpd
    // keeps hanging, no call waits longer than the time-outs (the command, then the reconnect's
    // PING), and once every SIP worker has seen its first failure, calls get the fallback at
    // once instead of waiting for warpd
    let mut fast = None;
    for i in 0..24 {
        let r = call(
            dir,
            main,
            &reject_scenario(dir, 503),
            DNIS,
            &format!("breaker-{i}"),
        );
        assert!(r.ok, "expected 503 with warpd hanging:\n{}", r.trace);
        assert!(
            r.elapsed < Duration::from_millis(3 * DIP_TIMEOUT_MS + 2000),
            "call {i} waited {:?} for a hanging warpd",
            r.elapsed
        );
        if r.elapsed < Duration::from_millis(DIP_TIMEOUT_MS / 2) {
            fast = Some(i);
            break;
        }
    }
    let log = std::fs::read_to_string(&main.log).unwrap_or_default();
    assert!(
        fast.is_some() && log.contains("REDIS server warpd disabled"),
        "the breaker never opened (fast call: {fast:?}); log:\n{log}"
    );
}
