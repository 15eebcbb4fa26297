//! Issue 19, gateway and destination health: Kamailio probes every gateway a dip names with SIP
//! OPTIONS (a timer sending them with the uac module) and skips one that stopped answering at once, instead of costing
//! every call the gateway timer (`GW_FR_TIMER_MS`, 2 s in these tests). A scenario of the shared
//! stack ([`super::Sip`]) with a Kamailio of its own (probing every second).

use super::*;

/// The cheapest gateway is dead (a socket that takes INVITEs and OPTIONS and never answers):
/// the first call waits out the gateway timer before the next gateway answers (the set-up time
/// of today's behaviour); once the probe has failed, Kamailio logs the gateway down and the next
/// call goes to the second gateway at once (its CDR shows the skipped attempt as 503 Gateway
/// Down); when the gateway answers OPTIONS again it gets calls again.
pub(super) fn dead_gateway_is_skipped_at_once_once_its_probe_fails(s: &Sip) {
    let (dir, cheapest, second) = (s.dir.as_path(), s.cheapest, s.second);
    let kam = Kamailio::start_probing(
        dir,
        "health",
        &[
            s.base_defines(),
            vec!["GW_PROBE_TIMER=\"name=gwprobe;interval=1;mode=1\"".to_string()],
        ]
        .concat(),
    );
    let setup_ms = |tag: &str, r: &CallResult| -> (i64, Value) {
        assert!(r.ok, "{tag} call failed:\n{}", r.trace);
        let call_id = call_id_of(&r.trace);
        let cdr =
            support::eventually_blocking(format!("{tag} CDR"), Duration::from_secs(10), || {
                s.cdr_of(&call_id)
            });
        (ms_between(&cdr, "started_at", "answered_at"), cdr)
    };
    let dead = std::net::UdpSocket::bind(("127.0.0.1", cheapest)).expect("bind dead gw");
    dead.set_nonblocking(true).expect("nonblocking");
    let dead_invites = || {
        let mut buf = [0u8; 4096];
        let mut n = 0;
        while let Ok(len) = dead.recv(&mut buf) {
            n += usize::from(buf[..len].starts_with(b"INVITE "));
        }
        n
    };
    let next = Uas::start(dir, second, "uas_options.xml", "health");

    // before: nothing known about the gateway, the call waits for its timer
    let r = call(dir, &kam, &s.uac, DNIS, "health-before");
    let (before, cdr) = setup_ms("before", &r);
    assert!(
        before >= 1900,
        "set-up {before} ms, before the gateway timer: {cdr}"
    );
    assert_eq!(cdr["attempts"][0]["sip_code"], 408, "{cdr}");
    // (the INVITE and its retransmissions)
    assert!(dead_invites() >= 1, "the dead gateway saw no INVITE");

    // the probe fails (no answer within the gateway timer): down
    let down = format!("gateway sip:127.0.0.1:{cheapest} is down");
    support::eventually_blocking(
        "the dead gateway marked down",
        Duration::from_secs(10),
        || {
            let log = std::fs::read_to_string(&kam.log).unwrap_or_default();
            log.contains(&down).then_some(())
        },
    );

    // after: skipped at once
    let r = call(dir, &kam, &s.uac, DNIS, "health-after");
    let (after, cdr) = setup_ms("after", &r);
    eprintln!("set-up time with a dead cheapest gateway: {before} ms before its probe failed, {after} ms after");
    assert!(
        after < 500,
        "set-up {after} ms with the dead gateway known down: {cdr}"
    );
    assert_eq!(dead_invites(), 0, "the down gateway got an INVITE");
    assert_eq!(next.invites(), 2);
    assert_eq!(cdr["attempt_count"], 2, "{cdr}");
    assert_eq!(cdr["attempts"][0]["sip_code"], 503, "{cdr}");
    assert_eq!(cdr["attempts"][1]["sip_code"], 200, "{cdr}");

    // the gateway answers OPTIONS again: up, and it carries the next call
    drop(dead);
    let back = Uas::start(dir, cheapest, "uas_options.xml", "health-back");
    let up = format!("gateway sip:127.0.0.1:{cheapest} is up");
    support::eventually_blocking("the gateway up again", Duration::from_secs(10), || {
        let log = std::fs::read_to_string(&kam.log).unwrap_or_default();
        log.contains(&up).then_some(())
    });
    let r = call(dir, &kam, &s.uac, DNIS, "health-back");
    let (_, cdr) = setup_ms("back", &r);
    assert_eq!(back.invites(), 1, "{cdr}");
    assert_eq!(cdr["attempt_count"], 1, "{cdr}");
}
