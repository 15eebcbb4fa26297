//! Snapshot build errors, rate values, and the engine: snapshot swaps, the dip cache and its
//! generations.

use super::*;

#[test]
fn build_errors_name_the_item() {
    let mut b = network();
    b.partition(Partition {
        id: 500,
        name: "broken".into(),
        route_ids: vec![999],
    });
    let e = b.build(T0).unwrap_err().to_string();
    assert!(e.contains("broken") && e.contains("999"), "{e}");
    let mut b = network();
    assert!(b
        .vendor_rate(999, RateKey::Prefix("1"), flat("0.1"))
        .is_err());
    assert!(b
        .vendor_rate(10, RateKey::Prefix("12a"), flat("0.1"))
        .unwrap_err()
        .to_string()
        .contains("12a"));
    let mut b = network();
    b.vendor(Vendor {
        id: 9,
        name: "bad".into(),
        billing: BillingModel::Dnis,
        dialstring: "sip:x@y".into(),
        enabled: true,
    });
    b.gateway(Gateway {
        id: 99,
        vendor_id: 9,
        name: "g".into(),
        host: "h".into(),
        port: 1,
        transport: Transport::Udp,
        priority: 1,
        weight: 1,
        enabled: true,
    });
    assert!(b.build(T0).unwrap_err().to_string().contains("bad"));
    let mut b = network();
    b.settings_mut().emergency_route = Some("nope".into());
    let s = b.build(T0).unwrap();
    assert_eq!(s.stats().warnings.len(), 1);
}

#[test]
fn rate_parse_and_display() {
    assert_eq!(Rate::parse("0.0045"), Some(Rate(45_000)));
    assert_eq!(Rate::parse("1"), Some(Rate(10_000_000)));
    assert_eq!(Rate::parse(".5"), Some(Rate(5_000_000)));
    assert_eq!(Rate::parse("0.00000001"), None);
    assert_eq!(Rate::parse("0.12345670"), Some(Rate(1_234_567)));
    for bad in ["", "-1", "1e3", "abc", ".", "1.2.3", "99999999999"] {
        assert_eq!(Rate::parse(bad), None, "{bad}");
    }
    assert_eq!(Rate(45_000).to_string(), "0.0045");
    assert_eq!(Rate(10_000_000).to_string(), "1.0");
}

#[test]
fn engine_swaps_and_invalidates_cache() {
    let e = Engine::new(RoutingSettings::default());
    assert!(!e.is_ready());
    let q = req("C1", "3125551000", "2125551234");
    assert_eq!(reject(&e.dip_at(&q, T0)).0, 403);
    assert_eq!(e.install(network().build(T0).unwrap()), 1);
    assert!(e.is_ready());
    assert_eq!(routes(&e.dip_at(&q, T0))[0].0, "lrn-a");
    let mut b = network();
    b.vendor_rate(20, RateKey::Prefix("1212555"), flat("0.0001"))
        .unwrap();
    let old = e.snapshot();
    e.install(b.build(T0).unwrap());
    assert_eq!(
        routes(&e.dip_at(&q, T0))[0],
        ("dnis-a".into(), 0.0001),
        "cache must not serve the old answer"
    );
    // a dip in flight keeps its loaded snapshot
    assert_eq!(routes(&dip(&old, &q, T0))[0].0, "lrn-a");
}

#[test]
fn a_request_reads_one_snapshot_and_its_cached_dip_stays_with_that_generation() {
    let e = Engine::new(RoutingSettings::default());
    assert!(
        e.settings().dip_cache_ttl_ms > 0,
        "this test needs the dip cache on"
    );
    let q = req("C1", "3125551000", "2125551234");
    e.install(network().build(T0).unwrap());
    // a request loads the snapshot once ...
    let snap = e.load();
    // ... and a swap lands before it dips
    let mut b = network();
    b.vendor_rate(20, RateKey::Prefix("1212555"), flat("0.0001"))
        .unwrap();
    assert_eq!(e.install(b.build(T0).unwrap()), 2);
    assert_eq!((snap.generation(), e.generation()), (1, 2));
    // the request answers from its own snapshot, and names its customer from it too
    assert_eq!(routes(&e.dip_on(&snap, &q, &[], T0))[0].0, "lrn-a");
    let by_ip = DipRequest {
        ban: None,
        src_ip: Some("10.2.3.4".parse().unwrap()),
        ..q.clone()
    };
    assert_eq!(snap.ban_for(&by_ip).as_deref(), Some("C2"));
    assert_eq!(snap.ban_for(&q).as_deref(), Some("C1"));
    // that answer was cached under generation 1, so the new snapshot's dips never see it
    assert_eq!(
        routes(&e.dip_at(&q, T0))[0],
        ("dnis-a".into(), 0.0001),
        "an answer computed on generation 1 served on generation 2"
    );
    // and generation 1's cached answer is still its own
    assert_eq!(routes(&e.dip_on(&snap, &q, &[], T0))[0].0, "lrn-a");
}

/// The Kamailio surface's answer carries what Kamailio reads (route ids, vendors, dialstrings,
/// zone, LRN, partition) and no margin data; a reject is unchanged.
#[test]
fn kamailio_answer_has_no_margin_data() {
    let s = network().build(T0).unwrap();
    let a = dip(&s, &req("C1", "+13125551000", "+12125551234"), T0);
    let full = serde_json::to_value(&a).unwrap();
    let wire = serde_json::to_value(KamailioAnswer(&a)).unwrap();
    assert_eq!(wire["action"], "route", "{wire}");
    assert!(full["routes"][0]["rate"].is_number(), "{full}");
    for (i, r) in wire["routes"].as_array().unwrap().iter().enumerate() {
        let f = &full["routes"][i];
        for k in ["route_id", "vendor", "uri", "uris", "forced", "zone"] {
            assert_eq!(r[k], f[k], "{k}");
        }
        for k in ["rate", "customer_rate", "billing"] {
            assert!(r.get(k).is_none(), "{k} in {wire}");
        }
    }
    for k in ["zone", "lrn", "partition", "emergency_callback"] {
        assert_eq!(wire.get(k), full.get(k), "{k}");
    }
    let rej = dip(&s, &req("nobody", "+13125551000", "+12125551234"), T0);
    assert_eq!(
        serde_json::to_value(KamailioAnswer(&rej)).unwrap(),
        serde_json::to_value(&rej).unwrap()
    );
}
