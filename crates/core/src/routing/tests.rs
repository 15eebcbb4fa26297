//! Unit tests of the pure routing core over hand-built snapshots.

use super::*;
use chrono::TimeZone;

const T0: i64 = 1_780_000_000; // 2026-05-28T20:26:40Z, a Thursday

fn r(s: &str) -> Option<Rate> {
    Some(Rate::parse(s).unwrap())
}

fn row(inter: &str, intra: &str, local: &str) -> RateRow {
    RateRow {
        inter: r(inter),
        intra: r(intra),
        local: r(local),
        min_seconds: 6,
        inc_seconds: 6,
        effective_from: i64::MIN,
        effective_until: i64::MAX,
    }
}

fn flat(rate: &str) -> RateRow {
    row(rate, rate, rate)
}

fn info(state: &str, lata: &str, ocn: &str) -> NpaNxxInfo {
    NpaNxxInfo {
        state: state.into(),
        lata: lata.into(),
        ocn: ocn.into(),
        rate_center: String::new(),
    }
}

fn customer(id: Id, ban: &str, ip: &str, partitions: Vec<CustomerPartition>) -> Customer {
    Customer {
        id,
        ban: ban.into(),
        name: ban.into(),
        enabled: true,
        max_rate: None,
        blocked_prefixes: vec!["1900".into()],
        allowed_classes: [
            DestClass::Domestic,
            DestClass::Tollfree,
            DestClass::International,
        ]
        .into_iter()
        .collect(),
        max_results: 5,
        allow_negative_margin: false,
        margin: Some(MarginRule {
            prefix: String::new(),
            margin_ppm: 100_000,
            fixed_fee: Rate(0),
        }),
        margin_rules: vec![],
        partitions,
        source_cidrs: vec![ip.parse().unwrap()],
    }
}

fn part(id: Id, priority: i32) -> CustomerPartition {
    CustomerPartition {
        partition_id: id,
        priority,
        window: None,
    }
}

/// vendors: 1 LRN, 2 DNIS, 3 OCN_LATA, 4 INTERNATIONAL; one route each (10,20,30,40) + 50 (e911).
fn network() -> SnapshotBuilder {
    let settings = RoutingSettings {
        emergency_route: Some("e911".into()),
        ..Default::default()
    };
    let mut b = SnapshotBuilder::new(settings);
    for (id, name, billing) in [
        (1, "lrnco", BillingModel::Lrn),
        (2, "dnisco", BillingModel::Dnis),
        (3, "ocnco", BillingModel::OcnLata),
        (4, "intlco", BillingModel::International),
    ] {
        b.vendor(Vendor {
            id,
            name: name.into(),
            billing,
            dialstring: "sip:+${number}@${host}:${port};transport=${transport}".into(),
            enabled: true,
        });
        b.gateway(Gateway {
            id: id * 10,
            vendor_id: id,
            name: "gw1".into(),
            host: format!("10.1.0.{id}"),
            port: 5060,
            transport: Transport::Udp,
            priority: 1,
            weight: 1,
            enabled: true,
        });
    }
    b.gateway(Gateway {
        id: 11,
        vendor_id: 1,
        name: "gw2".into(),
        host: "10.1.0.100".into(),
        port: 5070,
        transport: Transport::Tcp,
        priority: 2,
        weight: 1,
        enabled: true,
    });
    for (id, name, vendor) in [
        (10, "lrn-a", 1),
        (20, "dnis-a", 2),
        (30, "ocn-a", 3),
        (40, "intl-a", 4),
        (50, "e911", 2),
    ] {
        b.route(Route {
            id,
            name: name.into(),
            vendor_id: vendor,
            priority: 10,
            weight: 1,
            capacity: None,
            enabled: true,
        });
    }
    b.partition(Partition {
        id: 100,
        name: "all".into(),
        route_ids: vec![10, 20, 30, 40],
    });
    b.partition(Partition {
        id: 200,
        name: "dnis-only".into(),
        route_ids: vec![20],
    });
    b.customer(customer(1, "C1", "10.0.0.1/32", vec![part(100, 1)]));
    b.customer(customer(2, "C2", "10.2.0.0/16", vec![part(200, 1)]));
    b.vendor_rate(
        10,
        RateKey::Prefix("1212"),
        row("0.0050", "0.0040", "0.0020"),
    )
    .unwrap();
    b.vendor_rate(
        10,
        RateKey::Prefix("1212555"),
        row("0.0030", "0.0030", "0.0030"),
    )
    .unwrap();
    b.vendor_rate(20, RateKey::Prefix("1212"), flat("0.0045"))
        .unwrap();
    b.vendor_rate(20, RateKey::Prefix("1312"), flat("0.0045"))
        .unwrap();
    b.vendor_rate(20, RateKey::Prefix("1800"), flat("0.0100"))
        .unwrap();
    b.vendor_rate(
        30,
        RateKey::OcnLata {
            ocn: "OCN1",
            lata: "132",
        },
        row("0.0060", "0.0035", "0.0010"),
    )
    .unwrap();
    b.vendor_rate(40, RateKey::Prefix("44"), flat("0.0200"))
        .unwrap();
    b.vendor_rate(40, RateKey::Prefix("4420"), flat("0.0150"))
        .unwrap();
    b.npanxx("212555", info("NY", "132", "OCN1")).unwrap();
    b.npanxx("212556", info("NY", "132", "OCN1")).unwrap();
    b.npanxx("518555", info("NY", "140", "OCN2")).unwrap();
    b.npanxx("312555", info("IL", "358", "OCN3")).unwrap();
    b.local_calling("212555", "212556").unwrap();
    b.lnp("3125550001", "2125550000").unwrap();
    b.dno("+15185550666").unwrap();
    b
}

fn req(ban: &str, ani: &str, dnis: &str) -> DipRequest {
    DipRequest {
        ban: Some(ban.into()),
        ani: ani.into(),
        dnis: dnis.into(),
        ..Default::default()
    }
}

fn routes(a: &DipAnswer) -> Vec<(String, f64)> {
    match a {
        DipAnswer::Route(r) => r
            .routes
            .iter()
            .map(|c| (c.route_id.to_string(), c.rate))
            .collect(),
        DipAnswer::Reject(r) => panic!("expected route, got reject {r:?}"),
    }
}

fn zone(a: &DipAnswer) -> Zone {
    match a {
        DipAnswer::Route(r) => r.zone,
        DipAnswer::Reject(r) => panic!("expected route, got reject {r:?}"),
    }
}

fn reject(a: &DipAnswer) -> (u16, String) {
    match a {
        DipAnswer::Reject(r) => (r.sip_code, r.reason.clone()),
        DipAnswer::Route(r) => panic!("expected reject, got {r:?}"),
    }
}

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

#[test]
fn blocked_prefix_class_dno_and_unknown_customer() {
    let s = network().build(T0).unwrap();
    assert_eq!(
        reject(&dip(&s, &req("C1", "2125551000", "19005551234"), T0)),
        (403, "blocked prefix 1900".into())
    );
    // 976 exchange is premium, not allowed for C1
    assert_eq!(
        reject(&dip(&s, &req("C1", "2125551000", "2129761234"), T0)),
        (403, "destination class premium not allowed".into())
    );
    assert_eq!(
        reject(&dip(&s, &req("C1", "5185550666", "2125551234"), T0)),
        (403, "ANI on do-not-originate list".into())
    );
    assert_eq!(
        reject(&dip(&s, &req("NOPE", "2125551000", "2125551234"), T0)).0,
        403
    );
    assert_eq!(
        reject(&dip(&s, &req("C1", "2125551000", "12345"), T0)),
        (484, "invalid number in dnis".into())
    );
    let mut q = req("C1", "2125551000", "2125551234");
    q.ban = None;
    assert_eq!(reject(&dip(&s, &q, T0)).0, 403);
    q.src_ip = Some("10.2.3.4".parse().unwrap());
    assert_eq!(
        routes(&dip(&s, &q, T0)),
        vec![("dnis-a".into(), 0.0045)],
        "C2 by CIDR uses only its partition"
    );
    q.src_ip = Some("10.0.0.1".parse().unwrap());
    assert_eq!(routes(&dip(&s, &q, T0)).len(), 3, "C1 by exact IP");
}

#[test]
fn emergency_is_never_blocked_or_priced_out() {
    let mut b = network();
    b.customer(Customer {
        enabled: false,
        allowed_classes: ClassSet::default(),
        max_rate: Some(Rate(0)),
        ..customer(3, "C3", "10.3.0.1/32", vec![])
    });
    let s = b.build(T0).unwrap();
    for ban in ["C1", "C3"] {
        let a = dip(&s, &req(ban, "5185550666", "911"), T0);
        let DipAnswer::Route(ra) = &a else {
            panic!("{a:?}")
        };
        assert_eq!(ra.zone, Zone::Emergency);
        assert_eq!(ra.routes.len(), 1);
        assert_eq!(ra.routes[0].route_id, "e911");
        assert_eq!(ra.routes[0].uri, "sip:+911@10.1.0.2:5060;transport=udp");
    }
    // without a configured emergency route: 503, not a silent drop
    let s = {
        let mut b = network();
        b.settings_mut().emergency_route = None;
        b.build(T0).unwrap()
    };
    assert_eq!(reject(&dip(&s, &req("C1", "2125551000", "933"), T0)).0, 503);
}

#[test]
fn exclusions_global_customer_destination_and_vendor() {
    let mut b = network();
    b.exclusion(Exclusion {
        id: 1,
        customer_id: None,
        prefix: "1212".into(),
        vendor_id: Some(1),
    });
    b.exclusion(Exclusion {
        id: 2,
        customer_id: Some(1),
        prefix: "4420".into(),
        vendor_id: None,
    });
    let s = b.build(T0).unwrap();
    let rs = routes(&dip(&s, &req("C1", "3125551000", "2125551234"), T0));
    assert!(!rs.iter().any(|(n, _)| n == "lrn-a"), "{rs:?}");
    assert_eq!(rs.len(), 2);
    assert_eq!(
        reject(&dip(&s, &req("C1", "3125551000", "+442071234567"), T0)),
        (403, "destination excluded by prefix 4420".into())
    );
    // another destination of the same customer is fine
    assert_eq!(
        routes(&dip(&s, &req("C1", "3125551000", "+441611234567"), T0)).len(),
        1
    );
    let sim = simulate(&s, &req("C1", "3125551000", "2125551234"), T0);
    let c = sim
        .candidates
        .iter()
        .find(|c| c.route_id == "lrn-a")
        .unwrap();
    assert!(!c.kept && c.reason.contains("vendor excluded"), "{c:?}");
}

#[test]
fn overrides_force_a_route_first_within_validity_and_window() {
    let mut b = network();
    b.override_rule(Override {
        id: 7,
        customer_id: Some(1),
        prefix: "1212".into(),
        route_id: 30,
        rate: r("0.0090"),
        valid_from: T0 - 10,
        valid_until: T0 + 10,
        window: None,
    });
    let s = b.build(T0).unwrap();
    let q = req("C1", "3125551000", "2125551234");
    let a = dip(&s, &q, T0);
    assert_eq!(routes(&a)[0], ("ocn-a".into(), 0.009));
    let DipAnswer::Route(ra) = &a else { panic!() };
    assert!(ra.routes[0].forced && !ra.routes[1].forced);
    assert_eq!(
        routes(&a).iter().filter(|(n, _)| n == "ocn-a").count(),
        1,
        "not listed twice"
    );
    // expired: plain LCR again
    assert_eq!(routes(&dip(&s, &q, T0 + 10))[0], ("lrn-a".into(), 0.003));
    // a different customer is not affected
    let mut b = network();
    b.override_rule(Override {
        id: 8,
        customer_id: None,
        prefix: String::new(),
        route_id: 40,
        rate: None,
        valid_from: i64::MIN,
        valid_until: i64::MAX,
        window: Some(TimeWindow {
            days: 0,
            start_min: 22 * 60,
            end_min: 6 * 60,
            tz: chrono_tz::UTC,
        }),
    });
    let s = b.build(T0).unwrap();
    // 20:26 UTC: window closed
    assert_eq!(routes(&dip(&s, &q, T0))[0].0, "lrn-a");
    // 23:00 UTC: forced, but intl-a has no rate for a NANP number -> dropped, LCR continues
    let late = T0 + (2 * 3600 + 34 * 60);
    let sim = simulate(&s, &q, late);
    assert!(
        sim.candidates
            .iter()
            .any(|c| c.route_id == "intl-a" && !c.kept && c.reason.contains("no interstate rate")),
        "{:?}",
        sim.candidates
    );
    assert_eq!(routes(&dip(&s, &q, late))[0].0, "lrn-a");
}

#[test]
fn ceiling_margin_rules_and_sell_deck() {
    let mut b = network();
    b.customer(Customer {
        max_rate: r("0.0045"),
        margin: Some(MarginRule {
            prefix: String::new(),
            margin_ppm: 200_000,
            fixed_fee: Rate(1000),
        }),
        margin_rules: vec![MarginRule {
            prefix: "1212556".into(),
            margin_ppm: 0,
            fixed_fee: Rate(0),
        }],
        ..customer(3, "C3", "10.3.0.1/32", vec![part(100, 1)])
    });
    let s = b.build(T0).unwrap();
    let a = dip(&s, &req("C3", "3125551000", "2125551234"), T0);
    let DipAnswer::Route(ra) = &a else { panic!() };
    // ocn-a at 0.0060 is above the 0.0045 ceiling; dnis-a at exactly 0.0045 stays
    assert_eq!(
        routes(&a),
        vec![("lrn-a".into(), 0.003), ("dnis-a".into(), 0.0045)]
    );
    // 0.0030 * 1.2 + 0.0001 = 0.0037
    assert_eq!(ra.routes[0].customer_rate, 0.0037);
    let DipAnswer::Route(ra) = dip(&s, &req("C3", "3125551000", "2125561234"), T0) else {
        panic!()
    };
    assert_eq!(
        ra.routes[0].customer_rate, ra.routes[0].rate,
        "more specific 0% rule"
    );
    // a sell deck below some vendors' cost drops those routes unless negative margin is allowed
    let mut b = network();
    b.customer_rate(
        1,
        CustomerRate {
            prefix: "1212".into(),
            inter: r("0.0046"),
            intra: r("0.0046"),
            local: r("0.0046"),
            effective_from: i64::MIN,
            effective_until: i64::MAX,
        },
    );
    let s = b.build(T0).unwrap();
    let q = req("C1", "3125551000", "2125551234");
    assert_eq!(
        routes(&dip(&s, &q, T0)),
        vec![("lrn-a".into(), 0.003), ("dnis-a".into(), 0.0045)]
    );
    let sim = simulate(&s, &q, T0);
    assert!(sim
        .candidates
        .iter()
        .any(|c| c.route_id == "ocn-a" && c.reason.starts_with("negative margin")));
    let mut b = network();
    b.customer_rate(
        1,
        CustomerRate {
            prefix: "1212".into(),
            inter: r("0.0046"),
            intra: None,
            local: None,
            effective_from: i64::MIN,
            effective_until: i64::MAX,
        },
    );
    b.customer(Customer {
        allow_negative_margin: true,
        ..customer(3, "C3", "10.3.0.1/32", vec![part(100, 1)])
    });
    let s = b.build(T0).unwrap();
    assert_eq!(
        routes(&dip(&s, &req("C3", "3125551000", "2125551234"), T0)).len(),
        3
    );
}

#[test]
fn partitions_in_priority_order_with_time_windows_across_midnight_and_timezones() {
    let ny = chrono_tz::America::New_York;
    // business hours 08:00-18:00 New York, Mon-Fri -> partition "all"; else "dnis-only"
    let mut b = network();
    b.customer(customer(
        3,
        "C3",
        "10.3.0.1/32",
        vec![
            CustomerPartition {
                partition_id: 100,
                priority: 1,
                window: Some(TimeWindow {
                    days: 0b0011111,
                    start_min: 8 * 60,
                    end_min: 18 * 60,
                    tz: ny,
                }),
            },
            part(200, 2),
        ],
    ));
    let s = b.build(T0).unwrap();
    let q = req("C3", "3125551000", "2125551234");
    let at = |y, mo, d, h, mi| ny.with_ymd_and_hms(y, mo, d, h, mi, 0).unwrap().timestamp();
    assert_eq!(
        routes(&dip(&s, &q, at(2026, 5, 28, 9, 0))).len(),
        3,
        "Thursday 09:00 NY"
    );
    assert_eq!(
        routes(&dip(&s, &q, at(2026, 5, 28, 18, 0))),
        vec![("dnis-a".into(), 0.0045)],
        "18:00 is closed"
    );
    assert_eq!(
        routes(&dip(&s, &q, at(2026, 5, 30, 9, 0))),
        vec![("dnis-a".into(), 0.0045)],
        "Saturday"
    );
    let sim = simulate(&s, &q, at(2026, 5, 30, 9, 0));
    assert_eq!(
        sim.partitions,
        vec!["all (window closed)".to_string(), "dnis-only".into()]
    );
    // the answer names the partition that supplied the routes (the CDR keeps it)
    let partition_of = |now| match dip(&s, &q, now) {
        DipAnswer::Route(r) => r.partition.map(|p| p.to_string()),
        DipAnswer::Reject(_) => None,
    };
    assert_eq!(partition_of(at(2026, 5, 28, 9, 0)).as_deref(), Some("all"));
    assert_eq!(
        partition_of(at(2026, 5, 30, 9, 0)).as_deref(),
        Some("dnis-only")
    );
    // night window 22:00-06:00 Friday only: Saturday 03:00 belongs to Friday's window
    let w = TimeWindow {
        days: 1 << 4,
        start_min: 22 * 60,
        end_min: 6 * 60,
        tz: ny,
    };
    assert!(window_open(&w, at(2026, 5, 29, 23, 0)));
    assert!(window_open(&w, at(2026, 5, 30, 3, 0)));
    assert!(!window_open(&w, at(2026, 5, 30, 6, 0)));
    assert!(!window_open(&w, at(2026, 5, 30, 23, 0)));
    assert!(
        !window_open(&w, at(2026, 5, 29, 3, 0)),
        "Friday 03:00 is Thursday's night"
    );
    // same instant, different zone: 09:00 New York is 06:00 Los Angeles
    let la = TimeWindow {
        days: 0,
        start_min: 8 * 60,
        end_min: 18 * 60,
        tz: chrono_tz::America::Los_Angeles,
    };
    assert!(!window_open(&la, at(2026, 5, 28, 9, 0)));
    assert!(window_open(&la, at(2026, 5, 28, 11, 0)));
    // a partition without usable routes falls through to the next one
    let mut b = network();
    b.partition(Partition {
        id: 300,
        name: "intl-only".into(),
        route_ids: vec![40],
    });
    b.customer(customer(
        3,
        "C3",
        "10.3.0.1/32",
        vec![part(300, 1), part(200, 2)],
    ));
    let s = b.build(T0).unwrap();
    assert_eq!(routes(&dip(&s, &q, T0)), vec![("dnis-a".into(), 0.0045)]);
}

#[test]
fn max_results_gateways_and_disabled_things() {
    let s = network().build(T0).unwrap();
    let mut q = req("C1", "3125551000", "2125551234");
    q.max_results = Some(1);
    let DipAnswer::Route(ra) = dip(&s, &q, T0) else {
        panic!()
    };
    assert_eq!(ra.routes.len(), 1);
    assert_eq!(
        ra.routes[0].uris,
        vec![
            "sip:+12125551234@10.1.0.1:5060;transport=udp".to_string(),
            "sip:+12125551234@10.1.0.100:5070;transport=tcp".to_string(),
        ]
    );
    assert_eq!(ra.routes[0].billing, Billing { min: 6, inc: 6 });
    let mut b = network();
    b.route(Route {
        id: 60,
        name: "off".into(),
        vendor_id: 2,
        priority: 1,
        weight: 1,
        capacity: None,
        enabled: false,
    });
    b.partition(Partition {
        id: 400,
        name: "p4".into(),
        route_ids: vec![60, 20],
    });
    b.customer(customer(4, "C4", "10.4.0.1/32", vec![part(400, 1)]));
    let s = b.build(T0).unwrap();
    let sim = simulate(&s, &req("C4", "3125551000", "2125551234"), T0);
    assert_eq!(
        sim.candidates
            .iter()
            .find(|c| c.route_id == "off")
            .unwrap()
            .reason,
        "route disabled"
    );
}

#[test]
fn weighted_gateways_spread_by_call_id_and_stay_stable() {
    let mut b = network();
    for (id, w) in [(21, 3), (22, 1)] {
        b.gateway(Gateway {
            id,
            vendor_id: 2,
            name: format!("g{id}"),
            host: format!("10.2.0.{id}"),
            port: 5060,
            transport: Transport::Udp,
            priority: 1,
            weight: w,
            enabled: true,
        });
    }
    let s = b.build(T0).unwrap();
    let mut firsts = std::collections::HashMap::new();
    for i in 0..400 {
        let mut q = req("C2", "3125551000", "2125551234");
        q.call_id = Some(format!("call-{i}"));
        let DipAnswer::Route(ra) = dip(&s, &q, T0) else {
            panic!()
        };
        assert_eq!(ra.routes[0].uris.len(), 3);
        let DipAnswer::Route(again) = dip(&s, &q, T0) else {
            panic!()
        };
        assert_eq!(
            again.routes[0].uris, ra.routes[0].uris,
            "same call, same order"
        );
        *firsts.entry(ra.routes[0].uri.clone()).or_insert(0) += 1;
    }
    let heavy = firsts
        .get("sip:+12125551234@10.2.0.21:5060;transport=udp")
        .copied()
        .unwrap_or(0);
    // weights 1 (gw1), 3 (g21), 1 (g22): g21 first ~60% of the time
    assert!((180..300).contains(&heavy), "{firsts:?}");
}

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

#[test]
fn routes_at_capacity_drop_out_before_the_partition_choice_and_the_cut() {
    let mut b = network();
    // dnis-only first, then all
    b.customer(customer(
        5,
        "C5",
        "10.5.0.1/32",
        vec![part(200, 1), part(100, 2)],
    ));
    let s = b.build(T0).unwrap();
    let mut q = req("C1", "+13125551000", "+12125551234");
    q.max_results = Some(1);
    assert_eq!(routes(&dip(&s, &q, T0)), vec![("lrn-a".into(), 0.003)]);
    // lrn-a is full: still one route, the next best (not an empty or shorter answer)
    let full = [Name::from("lrn-a")];
    assert_eq!(
        routes(&dip_with_full(&s, &q, T0, &full)),
        vec![("dnis-a".into(), 0.0045)]
    );
    q.max_results = None;
    assert_eq!(
        routes(&dip_with_full(&s, &q, T0, &full)),
        vec![("dnis-a".into(), 0.0045), ("ocn-a".into(), 0.006)]
    );
    // every usable route full: congestion (503), not "no route" (404)
    let all = ["lrn-a", "dnis-a", "ocn-a"].map(Name::from);
    assert_eq!(
        reject(&dip_with_full(&s, &q, T0, &all)),
        (503, "all routes at capacity".into())
    );
    // a full route that could not carry the call anyway leaves "no route" as it was
    let q_none = req("C1", "+13125551000", "+13055551234");
    let plain = dip(&s, &q_none, T0);
    assert_eq!(reject(&plain).0, 404);
    assert_eq!(plain, dip_with_full(&s, &q_none, T0, &all));
    // the first partition whose routes are all full does not win: the next one does
    let q5 = req("C5", "+13125551000", "+12125551234");
    let DipAnswer::Route(ra) = dip(&s, &q5, T0) else {
        panic!()
    };
    assert_eq!(ra.partition.as_deref(), Some("dnis-only"));
    let DipAnswer::Route(ra) = dip_with_full(&s, &q5, T0, &[Name::from("dnis-a")]) else {
        panic!()
    };
    assert_eq!(ra.partition.as_deref(), Some("all"));
    assert_eq!(
        ra.routes
            .iter()
            .map(|r| r.route_id.as_str())
            .collect::<Vec<_>>(),
        vec!["lrn-a", "ocn-a"]
    );
}
