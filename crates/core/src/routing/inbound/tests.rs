//! The inbound procedure, the credential and trunk look-ups, and the parameters, as tables.

use super::params::*;
use super::route::{explain_inbound, failover_order};
use super::*;

fn net(s: &str) -> IpNet {
    s.parse::<IpNet>()
        .unwrap_or_else(|_| IpNet::from(s.parse::<IpAddr>().unwrap()))
}

/// Customer ids of the test BANs.
fn cid(ban: &str) -> Id {
    match ban {
        "C1" => 1,
        "C2" => 2,
        _ => 99,
    }
}

fn trunk(id: Id, name: &str, ban: &str) -> TrunkRow {
    TrunkRow {
        id,
        name: name.into(),
        customer_id: cid(ban),
        max_calls: None,
        max_cps: None,
        media_policy: None,
        enabled: true,
        sources: vec![],
    }
}

fn dest(id: Id, trunk_id: Id, host: &str, priority: i32, weight: u32) -> DestinationRow {
    DestinationRow {
        id,
        trunk_id,
        uri: None,
        host: Some(host.into()),
        port: 5060,
        transport: Transport::Udp,
        priority,
        weight,
        enabled: true,
    }
}

fn number(n: &str, ban: &str, trunk_id: Option<Id>, status: NumberStatus) -> NumberRow {
    NumberRow {
        number: n.into(),
        customer_id: cid(ban),
        trunk_id,
        status,
        voice: true,
        fax: false,
        destination: None,
        inbound_rate: Rate(50_000),
        cnam: None,
    }
}

/// Vendor V1 at 192.0.2.1 and 198.51.100.0/24 (V2, disabled, at 203.0.113.0/24); customer C1
/// with trunk t1 (two destinations of priority 10, one of 20, one disabled), t-off (disabled),
/// t-empty (no destination); customer C2 (disabled) with t-c2.
fn peers() -> Peers {
    let mut p = Peers::new();
    p.add_customer(1, "C1", true).add_customer(2, "C2", false);
    for (v, n) in [
        ("V1", "192.0.2.1"),
        ("V1", "198.51.100.0/24"),
        ("V2", "203.0.113.0/24"),
    ] {
        p.add_source(v, v == "V1", net(n));
    }
    p
}

fn data() -> Inbound {
    let mut b = InboundBuilder::new();
    let mut t1 = trunk(1, "t1", "C1");
    t1.sources = vec![net("10.9.0.0/16")];
    t1.max_calls = Some(2);
    b.trunk(t1);
    let mut off = trunk(2, "t-off", "C1");
    off.enabled = false;
    b.trunk(off);
    b.trunk(trunk(3, "t-empty", "C1"));
    b.trunk(trunk(4, "t-c2", "C2"));
    b.destination(dest(11, 1, "10.9.0.1", 10, 1));
    b.destination(dest(12, 1, "10.9.0.2", 10, 1));
    b.destination(dest(13, 1, "10.9.0.3", 20, 1));
    let mut d = dest(14, 1, "10.9.0.4", 5, 1);
    d.enabled = false;
    b.destination(d);
    b.destination(dest(21, 2, "10.9.1.1", 10, 1));
    b.destination(dest(41, 4, "10.9.4.1", 10, 1));
    b.credential(CredentialRow {
        trunk_id: 1,
        username: "alice".into(),
        realm: "sip.example.net".into(),
        ha1: "0123456789abcdef0123456789abcdef".into(),
    });
    b.credential(CredentialRow {
        trunk_id: 2,
        username: "bob".into(),
        realm: "sip.example.net".into(),
        ha1: "00000000000000000000000000000000".into(),
    });
    b.number(number("+12125550100", "C1", Some(1), NumberStatus::Active));
    b.number(number(
        "+12125550101",
        "C1",
        Some(1),
        NumberStatus::Disabled,
    ));
    b.number(number(
        "+12125550102",
        "C1",
        Some(1),
        NumberStatus::Reserved,
    ));
    b.number(number(
        "+12125550103",
        "C1",
        Some(1),
        NumberStatus::PortingIn,
    ));
    b.number(number("+12125550104", "C1", None, NumberStatus::Active));
    b.number(number("+12125550105", "C1", Some(2), NumberStatus::Active));
    b.number(number("+12125550106", "C1", Some(3), NumberStatus::Active));
    let mut o = number("+12125550107", "C1", Some(1), NumberStatus::Active);
    o.destination = Some("sip:${number}@override.example.net".into());
    b.number(o);
    b.number(number("+12125550108", "C2", Some(4), NumberStatus::Active));
    let mut nv = number("+12125550109", "C1", Some(1), NumberStatus::Active);
    nv.voice = false;
    b.number(nv);
    b.number(number("+442071234567", "C1", Some(1), NumberStatus::Active));
    b.origination(OriginationRow {
        vendor_id: 7,
        net: net("192.0.2.9"),
    });
    b.build().unwrap()
}

fn req(src: &str, dnis: &str, call_id: Option<&str>) -> InboundRequest {
    InboundRequest {
        src_ip: src.parse().unwrap(),
        ani: "+13105550000".into(),
        dnis: dnis.into(),
        call_id: call_id.map(str::to_string),
        verify: None,
        identity: None,
    }
}

#[test]
fn answers_and_codes() {
    let (ib, dir) = (data(), peers());
    // (source, dnis, expected code (200 = route), trunk)
    let table: &[(&str, &str, u16, &str)] = &[
        ("192.0.2.1", "+12125550100", 200, "t1"),
        ("198.51.100.77", "2125550100", 200, "t1"),
        ("198.51.100.77", "12125550100", 200, "t1"),
        ("::ffff:192.0.2.1", "+1 (212) 555-0100", 200, "t1"),
        ("198.51.100.77", "011442071234567", 200, "t1"),
        ("192.0.2.2", "+12125550100", 403, ""),
        // a disabled vendor's source is no origination peer
        ("203.0.113.5", "+12125550100", 403, ""),
        // a customer trunk's source is not an origination peer either
        ("10.9.0.1", "+12125550100", 403, ""),
        ("192.0.2.1", "+12125550199", 404, ""),
        ("192.0.2.1", "911", 404, ""),
        ("192.0.2.1", "not-a-number", 404, ""),
        ("192.0.2.1", "+12125550101", 404, ""),
        ("192.0.2.1", "+12125550102", 404, ""),
        ("192.0.2.1", "+12125550103", 404, ""),
        ("192.0.2.1", "+12125550108", 404, ""),
        ("192.0.2.1", "+12125550109", 404, ""),
        ("192.0.2.1", "+12125550104", 480, ""),
        ("192.0.2.1", "+12125550105", 480, ""),
        ("192.0.2.1", "+12125550106", 480, ""),
    ];
    for (src, dnis, code, trunk) in table {
        match route_inbound(&ib, &dir, &req(src, dnis, Some("c1"))) {
            InboundAnswer::Route(r) => {
                assert_eq!((200, r.trunk.as_str()), (*code, *trunk), "{src} {dnis}");
                assert_eq!(r.direction, "inbound");
                assert_eq!(r.customer, "C1");
                assert_eq!(r.vendor, "V1");
                assert_eq!(r.rate, 0.005);
                assert_eq!(r.uris.len(), r.destination_ids.len());
                assert_eq!(r.limits.max_calls, Some(2));
            }
            InboundAnswer::Reject(r) => {
                assert_eq!(r.code, *code, "{src} {dnis}: {}", r.reason)
            }
        }
    }
}

#[test]
fn uris_priority_first_then_weighted_and_deterministic() {
    let (ib, dir) = (data(), peers());
    let uris =
        |cid: &str| match route_inbound(&ib, &dir, &req("192.0.2.1", "+12125550100", Some(cid))) {
            InboundAnswer::Route(r) => r.uris,
            other => panic!("{other:?}"),
        };
    let a = uris("call-a");
    assert_eq!(a.len(), 3, "the disabled destination is left out");
    assert_eq!(a[2], "sip:+12125550100@10.9.0.3:5060;transport=udp");
    assert_eq!(a, uris("call-a"), "the same call_id, the same order");
    let mut firsts = std::collections::HashSet::new();
    for i in 0..64 {
        firsts.insert(uris(&format!("call-{i}"))[0].clone());
    }
    assert_eq!(
        firsts.len(),
        2,
        "both priority-10 destinations come first for some call"
    );
    // the number's override replaces the trunk's destinations
    match route_inbound(&ib, &dir, &req("192.0.2.1", "+12125550107", None)) {
        InboundAnswer::Route(r) => {
            assert_eq!(r.uris, vec!["sip:12125550107@override.example.net"]);
            assert_eq!(r.destination_ids, vec![Name::from("number")]);
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn weights_share_the_first_place_and_zero_goes_last() {
    let d = |id: &str, p, w| DestC::compile(Name::from(id), "sip:${number}@h", p, w);
    let dests = vec![d("a", 1, 3), d("b", 1, 1), d("z", 1, 0), d("c", 2, 1)];
    let mut a_first = 0;
    for i in 0..1000 {
        let o = failover_order(&dests, Some(&format!("x{i}")));
        let ids: Vec<&str> = o.iter().map(|d| d.id.as_str()).collect();
        assert_eq!(&ids[2..], ["z", "c"]);
        a_first += usize::from(ids[0] == "a");
    }
    assert!(
        (650..850).contains(&a_first),
        "weight 3:1 → about 750 of 1000, got {a_first}"
    );
}

#[test]
fn credentials_and_trunks() {
    let (ib, dir) = (data(), peers());
    let c = ib.credential(&dir, "alice", "sip.example.net").unwrap();
    assert_eq!(
        (c.ha1.as_str(), c.trunk.as_str(), c.customer.as_str()),
        ("0123456789abcdef0123456789abcdef", "t1", "C1")
    );
    assert_eq!(ib.credential(&dir, "alice", "other.example.net"), None);
    assert_eq!(ib.credential(&dir, "Alice", "sip.example.net"), None);
    assert_eq!(
        ib.credential(&dir, "bob", "sip.example.net"),
        None,
        "disabled trunk"
    );
    assert_eq!(
        ib.trunk(&dir, "t1").map(|t| t.customer),
        Some(Name::from("C1"))
    );
    assert!(!ib.trunk(&dir, "t-off").unwrap().usable);
    assert!(!ib.trunk(&dir, "t-c2").unwrap().usable);
    assert_eq!(
        ib.trunk_by_source(&dir, "10.9.200.1".parse().unwrap())
            .map(|t| t.name),
        Some(Name::from("t1"))
    );
    assert_eq!(ib.trunk_by_source(&dir, "10.10.0.1".parse().unwrap()), None);
    assert_eq!(
        ib.stats(),
        InboundStats {
            trunks: 4,
            numbers: 11,
            credentials: 2,
            origination_sources: 1
        }
    );
}

/// The part names customers by id: their BAN and `enabled` come from the directory at answer
/// time, so a customer's change shows without rebuilding the part (issue 23).
#[test]
fn customers_are_resolved_at_answer_time() {
    let ib = data();
    let mut dir = peers();
    let answer = |dir: &Peers| route_inbound(&ib, dir, &req("192.0.2.1", "+12125550100", None));
    assert!(matches!(answer(&dir), InboundAnswer::Route(ref r) if r.customer == "C1"));
    dir.add_customer(1, "C1-renamed", true);
    assert!(matches!(answer(&dir), InboundAnswer::Route(ref r) if r.customer == "C1-renamed"));
    assert_eq!(
        ib.credential(&dir, "alice", "sip.example.net")
            .map(|c| c.customer),
        Some(Name::from("C1-renamed"))
    );
    dir.add_customer(1, "C1-renamed", false);
    assert!(matches!(answer(&dir), InboundAnswer::Reject(ref r) if r.code == 404));
    assert_eq!(ib.credential(&dir, "alice", "sip.example.net"), None);
    assert!(!ib.trunk(&dir, "t1").unwrap().usable);
    // a customer gone from the directory: its numbers are not in service, its trunks unknown
    let mut gone = Peers::new();
    gone.add_source("V1", true, net("192.0.2.1"));
    assert!(matches!(answer(&gone), InboundAnswer::Reject(ref r) if r.code == 404));
    assert_eq!(ib.trunk(&gone, "t1"), None);
}

#[test]
fn explanation_names_each_step() {
    let (ib, dir) = (data(), peers());
    let (a, tr) = explain_inbound(&ib, &dir, &req("192.0.2.1", "+12125550101", None), true);
    assert!(matches!(a, InboundAnswer::Reject(ref r) if r.code == 404));
    let text = tr.steps.join("\n");
    for needle in ["vendor V1", "customer C1, status disabled", "reject 404"] {
        assert!(text.contains(needle), "{needle:?} not in {text}");
    }
}

#[test]
fn build_errors_name_the_item() {
    type Edit = Box<dyn Fn(&mut InboundBuilder)>;
    let bad: Vec<(Edit, &str)> = vec![
        (
            Box::new(|b| b.number(number("+12125550100", "C2", Some(1), NumberStatus::Active))),
            "belongs to customer id 2 but its trunk \"t1\" to customer id 1",
        ),
        (
            Box::new(|b| b.number(number("12125550100", "C1", None, NumberStatus::Active))),
            "not an E.164 number",
        ),
        (
            Box::new(|b| b.destination(dest(99, 42, "h", 1, 1))),
            "trunk destination id 99 references unknown trunk id 42",
        ),
    ];
    for (f, needle) in bad {
        let mut b = InboundBuilder::new();
        b.trunk(trunk(1, "t1", "C1"));
        f(&mut b);
        let e = b.build().unwrap_err().to_string();
        assert!(e.contains(needle), "{e}");
    }
}

#[test]
fn bad_parameters_name_the_field() {
    let table: &[(Option<&str>, &str)] = &[
        (Some("ani=1&dnis=2"), "src_ip: missing query parameter"),
        (Some("src_ip=x&dnis=2"), "src_ip: invalid IP address"),
        (Some("src_ip=192.0.2.1"), "dnis: missing query parameter"),
        (
            Some("src_ip=192.0.2.1&dnis=2&dnis=3"),
            "dnis: given more than once",
        ),
        (
            Some("src_ip=192.0.2.1&dnis=2&ban=3"),
            "ban: unknown parameter",
        ),
        (None, "src_ip: missing query parameter"),
    ];
    for (q, want) in table {
        let e = inbound_from_query(*q).unwrap_err().to_string();
        assert!(e.starts_with(want), "{q:?}: {e}");
    }
    let long = format!("src_ip=192.0.2.1&dnis={}", "1".repeat(65));
    assert!(inbound_from_query(Some(&long))
        .unwrap_err()
        .to_string()
        .starts_with("dnis: longer than 64"));
    let ok = inbound_from_query(Some(
        "src_ip=192.0.2.1&ani=+13105550000&dnis=+12125550100&call_id=",
    ))
    .unwrap();
    assert_eq!((ok.ani.as_str(), ok.call_id), ("+13105550000", None));
    let j = inbound_from_json(
        br#"[{"src_ip":"192.0.2.1","dnis":"1","call_id":"c"}]"#,
        "params",
    )
    .unwrap();
    assert_eq!(j.call_id.as_deref(), Some("c"));
    let e = inbound_from_json(br#"{"src_ip":"192.0.2.1","dnis":"1","x":1}"#, "params")
        .unwrap_err()
        .to_string();
    assert_eq!(e, "x: unknown parameter");
    let creds: &[(Option<&str>, &str)] = &[
        (Some("user=a"), "realm: missing"),
        (Some("realm=r"), "user: missing"),
        (Some("user=&realm=r"), "user: empty"),
        (Some("user=a&realm=r&x=1"), "x: unknown parameter"),
    ];
    for (q, want) in creds {
        let e = credential_from_query(*q).unwrap_err().to_string();
        assert!(e.starts_with(want), "{q:?}: {e}");
    }
    assert!(credential_from_args(&["a"]).is_err());
    assert_eq!(
        credential_from_args(&["a", "r"]).unwrap(),
        CredentialQuery {
            user: "a".into(),
            realm: "r".into()
        }
    );
    assert!(inbound_from_args(&["192.0.2.1", "1"]).is_err());
}

#[test]
fn source_params_name_the_field() {
    let bad_query: &[(Option<&str>, &str)] = &[
        (None, "src_ip: missing"),
        (Some("src_ip=1.2.3"), "src_ip: invalid IP address"),
        (Some("src_ip=192.0.2.1&src_ip=192.0.2.2"), "src_ip:"),
        (Some("src_ip=192.0.2.1&x=1"), "x: unknown parameter"),
    ];
    for (q, want) in bad_query {
        let e = source_from_query(*q).unwrap_err().to_string();
        assert!(e.starts_with(want), "{q:?}: {e}");
    }
    let bad_args: &[(&[&str], &str)] = &[
        (&[], "SOURCE: expected 1 argument"),
        (&["192.0.2.1", "x"], "SOURCE: expected 1 argument"),
        (&["nope"], "src_ip: invalid IP address"),
    ];
    for (args, want) in bad_args {
        let e = source_from_args(args).unwrap_err().to_string();
        assert!(e.starts_with(want), "{args:?}: {e}");
    }
    let ip: std::net::IpAddr = "2001:db8::1".parse().unwrap();
    assert_eq!(source_from_query(Some("src_ip=2001:db8::1")).unwrap(), ip);
    assert_eq!(source_from_args(&["2001:db8::1"]).unwrap(), ip);
}
