//! Partitions (priority order, time windows across midnight and time zones), result limits,
//! gateways (weights, disabled ones) and route capacity.

use super::*;

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
