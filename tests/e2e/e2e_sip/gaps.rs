//! Issue 17, "Kamailio config gaps": ring time / PDD, the recording reference in the CDR, TCP
//! gateways, and 911 when the dip fails. Scenarios of the shared stack ([`super::Sip`]), run in
//! the order of `sip_calls_through_kamailio_are_routed_by_warpd`.

use super::*;

/// Milliseconds between two `timestamptz` values of a CDR row (as `row_to_json` prints them).
fn ms_between(cdr: &Value, from: &str, to: &str) -> i64 {
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
    let route = a["routes"][0]["route_id"].as_str().expect("route_id").to_string();
    let port = gw_port(a["routes"][0]["uris"][0].as_str().unwrap_or_default());
    let gw = Uas::start(dir, port, "uas_ring_answer.xml", "ring");
    let r = call(dir, main, &s.uac, dnis, "ring");
    assert!(r.ok, "ringing call failed:\n{}", r.trace);
    assert_eq!(gw.invites(), 1);
    let call_id = call_id_of(&r.trace);
    let cdr = support::eventually_blocking("ring CDR", Duration::from_secs(10), || {
        s.cdr_of(&call_id)
    });
    assert_eq!(cdr["disposition"], "answered", "{cdr}");
    let pdd = cdr["pdd_ms"].as_i64().unwrap_or_else(|| panic!("no pdd_ms: {cdr}"));
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
    let pdd = row["pdd_ms"].as_f64().unwrap_or_else(|| panic!("no pdd: {row}"));
    assert!((300.0..2300.0).contains(&pdd), "route pdd {pdd}: {row}");
}
