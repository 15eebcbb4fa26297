//! Issue 17, "Kamailio config gaps": ring time / PDD, the recording reference in the CDR, TCP
//! gateways, and 911 when the dip fails. Scenarios of the shared stack ([`super::Sip`]), run in
//! the order of `sip_calls_through_kamailio_are_routed_by_warpd`.

use super::*;

/// Milliseconds between two `timestamptz` values of a CDR row (as `row_to_json` prints them).
pub(super) fn ms_between(cdr: &Value, from: &str, to: &str) -> i64 {
    let at = |k: &str| {
        let s = cdr[k].as_str().unwrap_or_else(|| panic!("no {k} in {cdr}"));
        chrono::DateTime::parse_from_rfc3339(s).unwrap_or_else(|e| panic!("{k} = {s}: {e}"))
    };
    (at(to) - at(from)).num_milliseconds()
}

/// The gateway rings 300 ms after the INVITE and answers 300 ms later: Kamailio sends the first
/// 18x time with the attempt (`ring_ts`), so the CDR has `ring_at` and a PDD of at least the
/// gateway's delay, and `/v1/routes/quality` shows the PDD of that route (per destination group:
/// this DNIS's group, 1312, has no other call in the window).
pub(super) fn ringing_gateway_gives_the_cdr_ring_time_and_the_route_its_pdd(s: &Sip) {
    let (dir, main) = (s.dir.as_path(), s.main());
    let dnis = "+13125550177";
    let a = s.dip("127.0.0.1", dnis);
    assert_eq!(a["action"], "route", "{a}");
    let route = a["routes"][0]["route_id"]
        .as_str()
        .expect("route_id")
        .to_string();
    let port = gw_port(a["routes"][0]["uris"][0].as_str().unwrap_or_default());
    let gw = Uas::start(dir, port, "uas_ring_answer.xml", "ring");
    let r = call(dir, main, &s.uac, dnis, "ring");
    assert!(r.ok, "ringing call failed:\n{}", r.trace);
    assert_eq!(gw.invites(), 1);
    let call_id = call_id_of(&r.trace);
    let cdr =
        support::eventually_blocking("ring CDR", Duration::from_secs(10), || s.cdr_of(&call_id));
    assert_eq!(cdr["disposition"], "answered", "{cdr}");
    let pdd = cdr["pdd_ms"]
        .as_i64()
        .unwrap_or_else(|| panic!("no pdd_ms: {cdr}"));
    assert!((300..2300).contains(&pdd), "pdd {pdd} ms: {cdr}");
    assert_eq!(ms_between(&cdr, "started_at", "ring_at"), pdd, "{cdr}");
    let rang = ms_between(&cdr, "ring_at", "answered_at");
    assert!((280..2300).contains(&rang), "rang {rang} ms: {cdr}");
    // the attempt event carried it
    let ring_ts = s
        .events
        .lock()
        .expect("lock")
        .iter()
        .filter(|e| e["method"] == "call.attempt" && e["params"]["call_id"] == call_id.as_str())
        .find_map(|e| e["params"]["ring_ts"].as_f64());
    assert!(ring_ts.is_some(), "no ring_ts in the call's attempt event");
    // the route's PDD (destination group 1312: this call only)
    let api = &s.warpd.as_ref().expect("warpd running").api;
    let (status, q) = s.rt.block_on(api.get_json("/v1/routes/quality?by=prefix"));
    assert_eq!(status, 200, "{q}");
    let row = q
        .as_array()
        .into_iter()
        .flatten()
        .find(|r| r["route_id"] == route.as_str() && r["prefix"] == "1312")
        .unwrap_or_else(|| panic!("no {route} x 1312 in {q}"));
    let pdd = row["pdd_ms"]
        .as_f64()
        .unwrap_or_else(|| panic!("no pdd: {row}"));
    assert!((300.0..2300.0).contains(&pdd), "route pdd {pdd}: {row}");
}

/// The static `cdr.api_token` of the stack (CDR API and export).
pub(super) const E2E_CDR_TOKEN: &str = "e2e-cdr-token-0123456789";

/// A call recorded by the customer's media policy (RTPEngine `record call`, through warpd's ng
/// proxy): its CDR names the pcap file RTPEngine wrote and the node holding it, in the database,
/// the CDR API and the CSV export.
pub(super) fn recorded_calls_cdr_says_where_its_recording_is(s: &Sip, cdr: &Value) {
    let file = cdr["recording"]
        .as_str()
        .unwrap_or_else(|| panic!("no recording reference: {cdr}"));
    let path = Path::new(file);
    assert!(
        path.starts_with(s.dir.join("rec/pcaps")) && path.is_file(),
        "{file} is not a recording RTPEngine wrote: {cdr}"
    );
    let node = format!("127.0.0.1:{}", s.rtp_ng);
    assert_eq!(cdr["recording_node"], node.as_str(), "{cdr}");
    let call_id = cdr["call_id"].as_str().expect("call_id");
    let api = &s.warpd.as_ref().expect("warpd running").api;
    let (status, page) = s.rt.block_on(api.request(
        "GET",
        "/v1/cdrs?ban=10001&limit=1000",
        Some(E2E_CDR_TOKEN),
        None,
    ));
    assert_eq!(status, 200, "{page}");
    let row = page["cdrs"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|c| c["call_id"] == call_id)
        .unwrap_or_else(|| panic!("{call_id} not in {page}"));
    assert_eq!(row["recording"], file, "{row}");
    assert_eq!(row["recording_node"], node.as_str(), "{row}");
    let csv = s.rt.block_on(async {
        let r = reqwest::Client::new()
            .get(api.url("/v1/cdrs/export?format=csv&ban=10001"))
            .bearer_auth(E2E_CDR_TOKEN)
            .send()
            .await
            .expect("export");
        r.text().await.expect("export body")
    });
    let mut rows = csv::Reader::from_reader(csv.as_bytes());
    let header = rows.headers().expect("export header").clone();
    let line = rows
        .records()
        .flatten()
        .find(|r| r.get(0) == Some(call_id))
        .unwrap_or_else(|| panic!("{call_id} not in the export:\n{csv}"));
    for (col, want) in [("recording", file), ("recording_node", node.as_str())] {
        let i = header
            .iter()
            .position(|h| h == col)
            .unwrap_or_else(|| panic!("no {col} column: {header:?}"));
        assert_eq!(line.get(i), Some(want), "{col} in {line:?}");
    }
}

/// A gateway provisioned with transport=tcp (a SIPp UAS listening on TCP only, `-t t1`) gets
/// the call over TCP: kamailio.cfg listens on TCP too (it had `disable_tcp=yes`, so such a
/// gateway was unreachable). The gateway is put back to UDP afterwards.
pub(super) fn tcp_gateway_gets_the_call_over_tcp(s: &Sip) {
    let (dir, main, port) = (s.dir.as_path(), s.main(), s.cheapest);
    set_transport(s, port, "tcp");
    let msgs = dir.join(format!("uas-{port}-tcp.msg"));
    let mut cmd = Command::new("sipp");
    cmd.arg("-sf")
        .arg(repo().join("tests/sipp/uas.xml"))
        .args([
            "-t",
            "t1",
            "-p",
            &port.to_string(),
            "-i",
            "127.0.0.1",
            "-nostdin",
        ])
        .args(["-trace_msg", "-message_file"])
        .arg(&msgs);
    let proc = Proc::spawn(
        "uas-tcp",
        &mut cmd,
        &dir.join(format!("uas-{port}-tcp.out")),
    );
    support::eventually_blocking(
        format!("something listening on tcp {port}"),
        Duration::from_secs(10),
        || TcpListener::bind(("127.0.0.1", port)).is_err(),
    );
    let gw = Uas { msgs, _proc: proc };
    let r = call(dir, main, &s.uac, DNIS, "tcp");
    assert!(r.ok, "call to the TCP gateway failed:\n{}", r.trace);
    assert_eq!(gw.invites(), 1);
    let seen = std::fs::read_to_string(&gw.msgs).unwrap_or_default();
    assert!(seen.contains("Via: SIP/2.0/TCP"), "not over TCP:\n{seen}");
    drop(gw);
    set_transport(s, port, "udp");
}

/// Provisions the gateway on `port` (the first of the DNIS's dip) with `transport` and waits
/// until the dip answers it.
fn set_transport(s: &Sip, port: u16, transport: &str) {
    s.sql(&format!(
        "UPDATE gateways SET transport = '{transport}' WHERE port = {port}"
    ));
    support::eventually_blocking(
        format!("the gateway on {transport}"),
        Duration::from_secs(15),
        || {
            let a = s.dip("127.0.0.1", DNIS);
            let uri = a["routes"][0]["uris"][0].as_str().unwrap_or_default();
            (gw_port(uri) == port && uri.ends_with(&format!(";transport={transport}")))
                .then_some(())
        },
    );
}

/// A gateway provisioned with transport=tls while Kamailio runs without `WITH_TLS` cannot be
/// sent to: that attempt fails at once (a `call.attempt` with 503) and the next gateway
/// completes the call, instead of the call failing on Kamailio's relay error.
pub(super) fn tls_gateway_without_tls_fails_over_to_the_next_gateway(s: &Sip) {
    let (dir, main) = (s.dir.as_path(), s.main());
    set_transport(s, s.cheapest, "tls");
    let next = Uas::start(dir, s.second, "uas.xml", "after-tls");
    let r = call(dir, main, &s.uac, DNIS, "tls-unreachable");
    assert!(
        r.ok,
        "call with an unreachable TLS gateway failed:\n{}",
        r.trace
    );
    assert_eq!(next.invites(), 1);
    let call_id = call_id_of(&r.trace);
    support::eventually_blocking(
        "the TLS attempt's 503 event",
        Duration::from_secs(10),
        || {
            s.events.lock().expect("lock").iter().any(|e| {
                e["method"] == "call.attempt"
                    && e["params"]["call_id"] == call_id.as_str()
                    && e["params"]["attempt"] == 1
                    && e["params"]["sip_code"] == 503
            })
        },
    );
    let cdr = support::eventually_blocking("the call's CDR", Duration::from_secs(10), || {
        s.cdr_of(&call_id)
    });
    assert_eq!(cdr["disposition"], "answered", "{cdr}");
    assert_eq!(cdr["attempt_count"], 2, "{cdr}");
    drop(next);
    set_transport(s, s.cheapest, "udp");
}

/// warpd down (the dip fails): with EMERGENCY_FALLBACK_URI a 911 call reaches the static
/// emergency route (its user part the dialed number) instead of the dip fallback's 503, while an
/// ordinary call still gets the 503.
pub(super) fn emergency_call_reaches_the_static_emergency_route_when_the_dip_fails(s: &Sip) {
    let dir = s.dir.as_path();
    let psap_port = free_udp_port();
    let psap = Uas::start(dir, psap_port, "uas.xml", "e911-fallback");
    let kam = Kamailio::start(
        dir,
        "e911-fallback",
        &[
            s.base_defines(),
            vec![format!(
                "EMERGENCY_FALLBACK_URI=\"sip:psap@127.0.0.1:{psap_port}\""
            )],
        ]
        .concat(),
    );
    let r = call(dir, &kam, &s.uac, "911", "e911-fallback");
    assert!(r.ok, "911 with the dip down failed:\n{}", r.trace);
    let seen = std::fs::read_to_string(&psap.msgs).unwrap_or_default();
    assert!(seen.contains("INVITE sip:911@127.0.0.1"), "{seen}");
    let r = call(
        dir,
        &kam,
        &reject_scenario(dir, 503),
        DNIS,
        "e911-fallback-normal",
    );
    assert!(r.ok, "an ordinary call must get 503:\n{}", r.trace);
    assert_eq!(psap.invites(), 1);
}

/// Ring time is per attempt: the cheapest gateway rings and then refuses (503), the next one
/// rings 300 ms after its INVITE and answers. Attempt 1's `call.attempt` carries its own ring
/// time, attempt 2's a later one (the second gateway's 180, not the first's kept over).
pub(super) fn each_failover_attempt_carries_its_own_ring_time(s: &Sip) {
    let (dir, main) = (s.dir.as_path(), s.main());
    let first = Uas::start(dir, s.cheapest, "uas_ring_503.xml", "ring-failover");
    let next = Uas::start(dir, s.second, "uas_ring_answer.xml", "ring-failover");
    let r = call(dir, main, &s.uac, DNIS, "ring-failover");
    assert!(r.ok, "failover call failed:\n{}", r.trace);
    assert_eq!((first.invites(), next.invites()), (1, 1));
    let call_id = call_id_of(&r.trace);
    let attempt = |n: u64| {
        support::eventually_blocking(format!("call.attempt {n}"), Duration::from_secs(10), || {
            s.events.lock().expect("lock").iter().find_map(|e| {
                (e["method"] == "call.attempt"
                    && e["params"]["call_id"] == call_id.as_str()
                    && e["params"]["attempt"] == n)
                    .then(|| e["params"].clone())
            })
        })
    };
    let (a1, a2) = (attempt(1), attempt(2));
    let num = |a: &Value, k: &str| {
        a[k].as_f64()
            .unwrap_or_else(|| panic!("no {k} in attempt {a}"))
    };
    assert_eq!(a1["sip_code"], 503, "{a1}");
    assert!(num(&a1, "ring_ts") <= num(&a1, "ts"), "{a1}");
    // the second gateway rang 300 ms after its INVITE, which followed the first's 503
    assert!(
        num(&a2, "ring_ts") >= num(&a1, "ts") + 0.28,
        "attempt 2 {a2} rang with attempt 1's ring time? attempt 1 {a1}"
    );
    assert!(num(&a2, "ring_ts") <= num(&a2, "ts"), "{a2}");
}
