//! Customer policy: blocked prefixes and classes, DNO, emergency calls, exclusions, overrides,
//! rate ceilings, margin rules and sell decks.

use super::*;

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
        assert_eq!(ra.routes[0].uri, "sip:911@10.1.0.2:5060;transport=udp");
        assert_eq!(ra.emergency_callback, None, "none configured");
    }
    // the customer's emergency callback number comes with the answer (P-Asserted-Identity)
    let mut b = network();
    b.customer(Customer {
        emergency_callback: Some("12125550100".into()),
        ..customer(3, "C3", "10.3.0.1/32", vec![])
    });
    let s = b.build(T0).unwrap();
    let a = dip(&s, &req("C3", "2125551000", "911"), T0);
    let DipAnswer::Route(ra) = &a else {
        panic!("{a:?}")
    };
    assert_eq!(ra.emergency_callback.as_deref(), Some("+12125550100"));
    // without a configured emergency route: 503, not a silent drop
    let s = {
        let mut b = network();
        b.settings_mut().emergency_route = None;
        b.build(T0).unwrap()
    };
    assert_eq!(reject(&dip(&s, &req("C1", "2125551000", "933"), T0)).0, 503);
}

/// Issue 17: Caribbean and Canadian NANP numbers are not `domestic`: a customer reaches them
/// only with the class allowed, even through a vendor deck with a `1` catch-all prefix.
#[test]
fn non_us_nanp_needs_its_class() {
    let mut b = network();
    b.vendor_rate(20, RateKey::Prefix("1"), flat("0.0050"))
        .unwrap();
    let s = b.build(T0).unwrap();
    for (dnis, class) in [
        ("+18765551234", "caribbean"),
        ("18095551234", "caribbean"),
        ("2465551234", "caribbean"),
        ("4165551234", "canada"),
    ] {
        assert_eq!(
            reject(&dip(&s, &req("C1", "2125551000", dnis), T0)),
            (403, format!("destination class {class} not allowed")),
            "{dnis}"
        );
    }
    // Puerto Rico is a US number: domestic
    assert!(matches!(
        dip(&s, &req("C1", "2125551000", "7875551234"), T0),
        DipAnswer::Route(_)
    ));
    let mut b = network();
    b.vendor_rate(20, RateKey::Prefix("1"), flat("0.0050"))
        .unwrap();
    b.customer(Customer {
        allowed_classes: [DestClass::Domestic, DestClass::Caribbean]
            .into_iter()
            .collect(),
        blocked_prefixes: vec![],
        ..customer(3, "C3", "10.3.0.1/32", vec![part(200, 1)])
    });
    let s = b.build(T0).unwrap();
    let a = dip(&s, &req("C3", "2125551000", "+18765551234"), T0);
    assert!(
        matches!(a, DipAnswer::Route(_)),
        "allowed explicitly: {a:?}"
    );
    assert_eq!(
        reject(&dip(&s, &req("C3", "2125551000", "4165551234"), T0)).0,
        403,
        "canada is its own class"
    );
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
