//! Rating zones and numbering: least-cost order per zone, unknown ANIs, LNP, toll-free and
//! international numbers, effective dates.

use super::*;

#[test]
fn interstate_lcr_orders_by_rate_with_longest_prefix_per_route() {
    let s = network().build(T0).unwrap();
    // ANI in IL, DNIS in NY 212555: lrn-a has 1212555 (0.0030) beating its own 1212 (0.0050)
    let a = dip(&s, &req("C1", "+13125551000", "+12125551234"), T0);
    assert_eq!(zone(&a), Zone::Interstate);
    assert_eq!(
        routes(&a),
        vec![
            ("lrn-a".into(), 0.003),
            ("dnis-a".into(), 0.0045),
            ("ocn-a".into(), 0.006)
        ]
    );
    // a 212-556 number only matches lrn-a's 1212 prefix
    let a = dip(&s, &req("C1", "+13125551000", "2125561234"), T0);
    assert_eq!(routes(&a)[0], ("dnis-a".into(), 0.0045));
    assert_eq!(routes(&a)[1], ("lrn-a".into(), 0.005));
}

#[test]
fn intrastate_and_local_zones() {
    let s = network().build(T0).unwrap();
    let a = dip(&s, &req("C1", "5185551000", "2125561234"), T0);
    assert_eq!(zone(&a), Zone::Intrastate);
    assert_eq!(routes(&a)[0], ("ocn-a".into(), 0.0035));
    let a = dip(&s, &req("C1", "2125551000", "2125561234"), T0);
    assert_eq!(zone(&a), Zone::Local);
    assert_eq!(routes(&a)[0], ("ocn-a".into(), 0.001));
    assert_eq!(routes(&a)[1], ("lrn-a".into(), 0.002));
}

#[test]
fn unknown_ani_follows_policy() {
    let mut b = network();
    b.settings_mut().unknown_ani_policy = UnknownAniPolicy::Higher;
    let s = b.build(T0).unwrap();
    let a = dip(&s, &req("C1", "anonymous", "2125561234"), T0);
    assert_eq!(zone(&a), Zone::Interstate);
    // higher of inter/intra: lrn-a 0.0050 vs 0.0040 -> 0.0050; ocn-a 0.0060 vs 0.0035 -> 0.0060
    assert_eq!(
        routes(&a),
        vec![
            ("dnis-a".into(), 0.0045),
            ("lrn-a".into(), 0.005),
            ("ocn-a".into(), 0.006)
        ]
    );
    let s = network().build(T0).unwrap();
    let a = dip(&s, &req("C1", "anonymous", "2125561234"), T0);
    assert_eq!(zone(&a), Zone::Interstate);
}

#[test]
fn lnp_ported_number_routes_on_its_lrn() {
    let s = network().build(T0).unwrap();
    // 312-555-0001 is ported to LRN 212-555-0000 (NY): LRN vendor rates it on 1212555, and the
    // call from NY 212555 is local by the LRN, not interstate by the dialed number.
    let a = dip(&s, &req("C1", "2125561000", "3125550001"), T0);
    let DipAnswer::Route(ra) = &a else {
        panic!("{a:?}")
    };
    assert_eq!(ra.lrn.as_deref(), Some("2125550000"));
    assert_eq!(ra.zone, Zone::Local);
    assert_eq!(routes(&a)[0], ("ocn-a".into(), 0.001));
    assert!(routes(&a).contains(&("lrn-a".into(), 0.003)));
    // the dialstring carries the dialed number, not the LRN
    assert!(ra.routes.iter().all(|c| c.uri.contains("+13125550001")));
    // an LRN passed by Kamailio wins over the LNP table
    let mut q = req("C1", "2125561000", "3125550001");
    q.lrn = Some("3125559999".into());
    let DipAnswer::Route(ra) = dip(&s, &q, T0) else {
        panic!()
    };
    assert_eq!(ra.lrn.as_deref(), Some("3125559999"));
    q.lrn = Some("12".into());
    assert_eq!(
        reject(&dip(&s, &q, T0)),
        (484, "invalid number in lrn".into())
    );
}

#[test]
fn tollfree_and_international() {
    let s = network().build(T0).unwrap();
    let a = dip(&s, &req("C1", "2125551000", "18005551212"), T0);
    assert_eq!(zone(&a), Zone::Tollfree);
    assert_eq!(routes(&a), vec![("dnis-a".into(), 0.01)]);
    let a = dip(&s, &req("C1", "2125551000", "011442071234567"), T0);
    assert_eq!(zone(&a), Zone::International);
    assert_eq!(routes(&a), vec![("intl-a".into(), 0.015)]);
    let a = dip(&s, &req("C1", "2125551000", "+441611234567"), T0);
    assert_eq!(routes(&a), vec![("intl-a".into(), 0.02)]);
    // no vendor prices Germany
    assert_eq!(
        reject(&dip(&s, &req("C1", "2125551000", "+4930123456"), T0)).0,
        404
    );
}

#[test]
fn effective_dates_past_and_future() {
    let mut b = network();
    // the current 0.0045 on dnis-a 1312 ends at T0+100; from then 0.0025
    b.vendor_rate(
        20,
        RateKey::Prefix("1312555"),
        RateRow {
            effective_until: T0 + 100,
            ..flat("0.0045")
        },
    )
    .unwrap();
    b.vendor_rate(
        20,
        RateKey::Prefix("1312555"),
        RateRow {
            effective_from: T0 + 100,
            ..flat("0.0025")
        },
    )
    .unwrap();
    // an expired, cheaper rate on lrn-a must never be used
    b.vendor_rate(
        10,
        RateKey::Prefix("1312"),
        RateRow {
            effective_until: T0 - 1,
            ..flat("0.0001")
        },
    )
    .unwrap();
    let s = b.build(T0).unwrap();
    let q = req("C1", "2125551000", "3125551234");
    assert_eq!(routes(&dip(&s, &q, T0)), vec![("dnis-a".into(), 0.0045)]);
    assert_eq!(
        routes(&dip(&s, &q, T0 + 99)),
        vec![("dnis-a".into(), 0.0045)]
    );
    assert_eq!(
        routes(&dip(&s, &q, T0 + 100)),
        vec![("dnis-a".into(), 0.0025)]
    );
    // a prefix whose only row is future falls back to the shorter prefix of the same route
    let mut b = network();
    b.vendor_rate(
        20,
        RateKey::Prefix("1212556"),
        RateRow {
            effective_from: T0 + 50,
            ..flat("0.0001")
        },
    )
    .unwrap();
    let s = b.build(T0).unwrap();
    let q = req("C1", "3125551000", "2125561234");
    assert_eq!(routes(&dip(&s, &q, T0))[0], ("dnis-a".into(), 0.0045));
    assert_eq!(routes(&dip(&s, &q, T0 + 50))[0], ("dnis-a".into(), 0.0001));
}
