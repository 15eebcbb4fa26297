//! Issue 19 B through Kamailio: a vendor (SIPp bound to 127.0.0.2, an origination source of the
//! demo's northstar) delivers calls to a number of customer 10001's trunk, whose destinations are
//! SIPp UAS processes; a trunk that is not known by address authenticates with SIP digest (SIPp
//! bound to 127.0.0.3, `[authentication]`). Scenarios of the shared stack ([`super::Sip`]), each
//! bounded; the trunk, its number, credentials and the origination source are added here.

use super::*;

const NUMBER: &str = "+12125550188";
const VENDOR_IP: &str = "127.0.0.2";
const TRUNK_IP: &str = "127.0.0.3";
const VENDOR_ANI: &str = "+13105550000";
const USER: &str = "e2e-acme";
const PASSWORD: &str = "s3cret-e2e";

/// [`call`] from another loopback address, with extra SIPp arguments.
pub(super) fn call_from(
    dir: &Path,
    kam: &Kamailio,
    ip: &str,
    scenario: &Path,
    (ani, dnis): (&str, &str),
    tag: &str,
    extra: &[&str],
) -> CallResult {
    let trace = dir.join(format!("uac-{tag}.msg"));
    let port = UdpSocket::bind((ip, 0))
        .and_then(|s| s.local_addr())
        .map(|a| a.port())
        .expect("free udp port");
    let t = Instant::now();
    let out = Command::new("sipp")
        .arg(format!("127.0.0.1:{}", kam.port))
        .arg("-sf")
        .arg(scenario)
        .args(["-key", "ani", ani, "-key", "dnis", dnis])
        .args(["-m", "1", "-d", "100", "-i", ip, "-p"])
        .arg(port.to_string())
        .args(extra)
        .args(["-nostdin", "-timeout", "15s", "-timeout_error"])
        .args(["-recv_timeout", "8000", "-trace_msg", "-message_file"])
        .arg(&trace)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .output()
        .expect("run sipp uac");
    CallResult {
        ok: out.status.success(),
        elapsed: t.elapsed(),
        trace: std::fs::read_to_string(&trace).unwrap_or_default()
            + &String::from_utf8_lossy(&out.stderr),
    }
}

/// The sum of a metric's series (every label set), 0 when absent.
fn metric_sum(s: &Sip, name: &str) -> f64 {
    let text =
        s.rt.block_on(s.warpd.as_ref().expect("warpd running").metrics());
    text.lines()
        .filter(|l| l.starts_with(name) && !l.starts_with('#'))
        .filter(|l| l[name.len()..].starts_with(['{', ' ']))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

fn cdr_checked(s: &Sip, r: &CallResult, tag: &str) -> Value {
    assert!(r.ok, "{tag} call failed:\n{}", r.trace);
    let call_id = call_id_of(&r.trace);
    support::eventually_blocking(format!("{tag} CDR"), Duration::from_secs(10), || {
        s.cdr_of(&call_id)
    })
}

pub(super) fn inbound_calls_and_digest_trunks(s: &Sip) {
    let dir = s.dir.as_path();
    let (d1, d2) = (free_udp_port(), free_udp_port());
    s.sql(&format!(
        "INSERT INTO trunks (name, customer_id) SELECT 'e2e-trunk', id FROM customers WHERE ban = '10001';
         INSERT INTO trunk_destinations (trunk_id, host, port, priority)
             SELECT id, '127.0.0.1', p, prio FROM trunks, (VALUES ({d1}, 10), ({d2}, 20)) AS d(p, prio)
             WHERE name = 'e2e-trunk';
         INSERT INTO trunk_credentials (trunk_id, username, realm, ha1)
             SELECT id, '{USER}', 'warpd', md5('{USER}:warpd:{PASSWORD}') FROM trunks WHERE name = 'e2e-trunk';
         INSERT INTO numbers (number, customer_id, trunk_id, inbound_rate)
             SELECT '{NUMBER}', c.id, t.id, 0.006 FROM customers c JOIN trunks t ON t.customer_id = c.id
             WHERE c.ban = '10001' AND t.name = 'e2e-trunk';
         INSERT INTO origination_sources SELECT id, '{VENDOR_IP}/32' FROM vendors WHERE name = 'northstar'
             ON CONFLICT DO NOTHING;"
    ));
    let inbound_dip = |dnis: &str| {
        let url = format!(
            "{}/v1/inbound?src_ip={VENDOR_IP}&ani=%2B1&dnis={}",
            s.base,
            dnis.replace('+', "%2B")
        );
        s.rt.block_on(async {
            match s.http.get(&url).send().await {
                Ok(r) => r.json::<Value>().await.unwrap_or(Value::Null),
                Err(_) => Value::Null,
            }
        })
    };
    support::eventually_blocking(
        "the trunk and number loaded",
        Duration::from_secs(15),
        || (inbound_dip(NUMBER)["action"] == "route").then_some(()),
    );
    let defines = || {
        let mut d = s.base_defines();
        d.extend([
            "AUTH_MAX_FAILURES=3".to_string(),
            "GW_PROBE_TIMER=\"name=gwprobe;interval=1;mode=1\"".to_string(),
        ]);
        d
    };
    let kam = Kamailio::start(dir, "inbound", &defines());
    let vendor = (VENDOR_ANI, NUMBER);

    // 1. a vendor's call to the number: the trunk's first destination answers; its CDR says
    // inbound, the trunk, the number, the customer and the number's rate
    {
        let first = Uas::start(dir, d1, "uas.xml", "in-first");
        let second = Uas::start(dir, d2, "uas.xml", "in-first");
        let r = call_from(dir, &kam, VENDOR_IP, &s.uac, vendor, "in-first", &[]);
        let cdr = cdr_checked(s, &r, "inbound");
        assert_eq!((first.invites(), second.invites()), (1, 0));
        let seen = std::fs::read_to_string(&first.msgs).unwrap_or_default();
        assert!(seen.contains(&format!("INVITE sip:{NUMBER}@")), "{seen}");
        assert_eq!(cdr["direction"], "inbound", "{cdr}");
        assert_eq!(cdr["trunk"], "e2e-trunk", "{cdr}");
        assert_eq!(cdr["number"], &NUMBER[1..], "{cdr}");
        assert_eq!(cdr["customer_ban"], "10001", "{cdr}");
        assert_eq!(cdr["disposition"], "answered", "{cdr}");
        assert!(
            same_rate(&cdr["customer_rate"], &serde_json::json!(0.006)),
            "{cdr}"
        );
    }
    // 2. the first destination answers 503: the second completes the call
    {
        let first = Uas::start(dir, d1, "uas_503.xml", "in-503");
        let second = Uas::start(dir, d2, "uas.xml", "in-503");
        let r = call_from(dir, &kam, VENDOR_IP, &s.uac, vendor, "in-503", &[]);
        let cdr = cdr_checked(s, &r, "inbound failover");
        assert_eq!((first.invites(), second.invites()), (1, 1));
        assert_eq!(cdr["attempt_count"], 2, "{cdr}");
        assert_eq!(cdr["attempts"][0]["sip_code"], 503, "{cdr}");
        assert_eq!(cdr["direction"], "inbound", "{cdr}");
    }
    // 3. an unknown number: 404 back to the vendor, no destination sees it
    {
        let first = Uas::start(dir, d1, "uas.xml", "in-404");
        let r = call_from(
            dir,
            &kam,
            VENDOR_IP,
            &reject_scenario(dir, 404),
            (VENDOR_ANI, "+12125550199"),
            "in-404",
            &[],
        );
        assert!(r.ok, "expected 404:\n{}", r.trace);
        assert_eq!(first.invites(), 0);
    }
    // 4. a destination that stopped answering OPTIONS is skipped without the gateway timer
    {
        let probing = Kamailio::start_probing(dir, "inbound-probing", &defines());
        let dead = UdpSocket::bind(("127.0.0.1", d1)).expect("bind dead destination");
        let second = Uas::start(dir, d2, "uas_options.xml", "in-dead");
        let r = call_from(dir, &probing, VENDOR_IP, &s.uac, vendor, "in-dead-1", &[]);
        let before = r.elapsed;
        cdr_checked(s, &r, "dead destination, before");
        let down = format!("gateway sip:127.0.0.1:{d1} is down");
        support::eventually_blocking(
            "the dead destination marked down",
            Duration::from_secs(10),
            || {
                let log = std::fs::read_to_string(&probing.log).unwrap_or_default();
                log.contains(&down).then_some(())
            },
        );
        let r = call_from(dir, &probing, VENDOR_IP, &s.uac, vendor, "in-dead-2", &[]);
        let cdr = cdr_checked(s, &r, "dead destination, after");
        eprintln!(
            "inbound call with a dead first destination: {before:?} before its probe failed, {:?} after",
            r.elapsed
        );
        assert!(before >= Duration::from_millis(1900), "{before:?}");
        assert!(
            r.elapsed < Duration::from_millis(1500),
            "{:?}: {cdr}",
            r.elapsed
        );
        assert_eq!(cdr["attempts"][0]["sip_code"], 503, "{cdr}");
        assert_eq!(second.invites(), 2);
        drop(dead);
    }

    // 5. an unknown source with good digest credentials: 407, then routed outbound as the
    // trunk's customer (the cheapest vendor gateway answers); the CDR names the trunk
    let gw = Uas::start(dir, s.cheapest, "uas.xml", "digest");
    let auth = repo().join("tests/sipp/uac_auth.xml");
    let creds = ["-au", USER, "-ap", PASSWORD];
    let r = call_from(dir, &kam, TRUNK_IP, &auth, (ANI, DNIS), "digest", &creds);
    let cdr = cdr_checked(s, &r, "digest");
    assert!(r.trace.contains("SIP/2.0 407"), "{}", r.trace);
    assert!(
        r.trace.contains("Proxy-Authorization: Digest"),
        "{}",
        r.trace
    );
    assert_eq!(gw.invites(), 1);
    assert_eq!(cdr["trunk"], "e2e-trunk", "{cdr}");
    assert_eq!(cdr["customer_ban"], "10001", "{cdr}");
    assert_eq!(cdr["direction"], "outbound", "{cdr}");
    assert_eq!(cdr["route_id"], s.routes[0]["route_id"], "{cdr}");

    // 6. a wrong password: 403, no dip at all (the source is known to be nobody's, so its
    // unauthenticated INVITE is challenged without asking warpd), no CDR; warpd counts the failure
    let dips = metric_sum(s, "warpd_dips_total");
    let bad = ["-au", USER, "-ap", "not-the-password"];
    let refused = repo().join("tests/sipp/uac_auth_403.xml");
    let r = call_from(
        dir,
        &kam,
        TRUNK_IP,
        &refused,
        (ANI, DNIS),
        "digest-403",
        &bad,
    );
    assert!(r.ok, "expected 407 then 403:\n{}", r.trace);
    support::eventually_blocking("the auth failure counted", Duration::from_secs(10), || {
        (metric_sum(s, "warpd_auth_failures_total") >= 1.0).then_some(())
    });
    assert_eq!(
        metric_sum(s, "warpd_dips_total"),
        dips,
        "a dip for a refused trunk"
    );
    assert!(
        s.cdr_of(&call_id_of(&r.trace)).is_none(),
        "a CDR for a refused trunk"
    );
    assert_eq!(gw.invites(), 1);

    // 7. AUTH_MAX_FAILURES (3 here) failures block the source: even the right password gets 403
    for i in 0..2 {
        let r = call_from(
            dir,
            &kam,
            TRUNK_IP,
            &refused,
            (ANI, DNIS),
            &format!("digest-403-{i}"),
            &bad,
        );
        assert!(r.ok, "expected 407 then 403:\n{}", r.trace);
    }
    let blocked = r#"warpd_auth_failures_total{blocked="true"}"#;
    support::eventually_blocking("the block counted", Duration::from_secs(10), || {
        (metric_sum(s, blocked) >= 1.0).then_some(())
    });
    let r = call_from(
        dir,
        &kam,
        TRUNK_IP,
        &reject_scenario(dir, 403),
        (ANI, DNIS),
        "digest-blocked",
        &creds,
    );
    assert!(r.ok, "a blocked source must get 403 at once:\n{}", r.trace);
    assert_eq!(gw.invites(), 1);
}
