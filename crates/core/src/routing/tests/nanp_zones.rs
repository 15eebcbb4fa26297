//! Issue 17: Canadian and Caribbean numbers rated the way the route's deck prices them:
//! international-style (one rate by dial code: zone `international`, no jurisdiction) or NPA-NXX
//! style (rates per zone: the interstate/intrastate/local jurisdiction, as for US numbers).

use super::*;

/// The test network plus, per vendor style, rows for Jamaica (+1 876), Barbados (+1 246) and
/// Toronto (+1 416), and one customer per route (`R10` .. `R40`) allowed canada and caribbean.
fn nanp_network() -> Snapshot {
    let mut b = network();
    // LRN vendor, NPA-NXX style: rates per zone
    b.vendor_rate(
        10,
        RateKey::Prefix("1876555"),
        row("0.0400", "0.0300", "0.0200"),
    )
    .unwrap();
    b.vendor_rate(
        10,
        RateKey::Prefix("1416"),
        row("0.0040", "0.0030", "0.0020"),
    )
    .unwrap();
    // DNIS vendor: single rates by dial code, and a `1` catch-all
    b.vendor_rate(20, RateKey::Prefix("1876"), flat("0.0500"))
        .unwrap();
    b.vendor_rate(20, RateKey::Prefix("1"), flat("0.0100"))
        .unwrap();
    // OCN/LATA vendor: the Jamaican block's carrier
    let key = RateKey::OcnLata {
        ocn: "OCNJ",
        lata: "999",
    };
    b.vendor_rate(30, key, row("0.0070", "0.0060", "0.0050"))
        .unwrap();
    // prefix-billed (INTERNATIONAL) vendor: a row with zone columns still prices by dial code
    b.vendor_rate(
        40,
        RateKey::Prefix("1876"),
        row("0.0600", "0.0800", "0.0900"),
    )
    .unwrap();
    b.npanxx("876555", info("JM", "999", "OCNJ")).unwrap();
    b.npanxx("416555", info("ON", "888", "OCNT")).unwrap();
    for route in [10, 20, 30, 40] {
        b.partition(Partition {
            id: 1000 + route,
            name: format!("only-{route}").as_str().into(),
            route_ids: vec![route],
        });
        b.customer(Customer {
            allowed_classes: [DestClass::Domestic, DestClass::Canada, DestClass::Caribbean]
                .into_iter()
                .collect(),
            ..customer(
                1000 + route,
                &format!("R{route}"),
                &format!("10.9.0.{route}/32"),
                vec![part(1000 + route, 1)],
            )
        });
    }
    b.customer(Customer {
        allowed_classes: [DestClass::Domestic, DestClass::Canada, DestClass::Caribbean]
            .into_iter()
            .collect(),
        ..customer(1999, "ALL", "10.9.1.1/32", vec![part(100, 1)])
    });
    b.build(T0).unwrap()
}

#[test]
fn non_us_nanp_is_rated_as_the_route_deck_prices_it() {
    let s = nanp_network();
    let ny = "+12125551000";
    // (customer → its one route's vendor style, number, expected (rate, zone) or no route)
    type Case = (&'static str, &'static str, Option<(f64, Zone)>);
    let table: &[Case] = &[
        // LRN vendor, zone rates by NPA-NXX: NY → Jamaica / Ontario is interstate
        ("R10", "+18765551234", Some((0.04, Zone::Interstate))),
        ("R10", "+14165551234", Some((0.004, Zone::Interstate))),
        ("R10", "+18765561234", None),
        // DNIS vendor, single rates by dial code: international-style
        ("R20", "+18765551234", Some((0.05, Zone::International))),
        ("R20", "+12465551234", Some((0.01, Zone::International))),
        ("R20", "+14165551234", Some((0.01, Zone::International))),
        // ... while a US number through the same single-rate deck keeps its jurisdiction
        ("R20", "+13125551234", Some((0.0045, Zone::Interstate))),
        // OCN/LATA vendor: NPA-NXX style by the block's carrier
        ("R30", "+18765551234", Some((0.007, Zone::Interstate))),
        // prefix-billed vendor: its dial-code rate (the `rate`/interstate column)
        ("R40", "+18765551234", Some((0.06, Zone::International))),
        ("R40", "+14165551234", None),
    ];
    for (ban, dnis, want) in table {
        let a = dip(&s, &req(ban, ny, dnis), T0);
        match want {
            Some((rate, z)) => {
                assert_eq!(routes(&a).len(), 1, "{ban} {dnis}: {a:?}");
                assert!((routes(&a)[0].1 - rate).abs() < 1e-9, "{ban} {dnis}: {a:?}");
                assert_eq!(zone(&a), *z, "{ban} {dnis}");
                let DipAnswer::Route(ra) = &a else {
                    unreachable!()
                };
                assert_eq!(ra.routes[0].zone, None, "one route: the answer's zone");
            }
            None => assert_eq!(reject(&a).0, 404, "{ban} {dnis}"),
        }
    }
    // the unknown-ANI policy does not apply to an international-style rate
    let a = dip(&s, &req("R20", "anonymous", "+18765551234"), T0);
    assert_eq!((zone(&a), routes(&a)[0].1), (Zone::International, 0.05));
}

/// Routes of both styles for one call: each is rated its way, cheapest first; the answer has the
/// first route's zone and a route rated in another zone names it (the CDR takes the carrying
/// route's).
#[test]
fn mixed_deck_styles_name_each_routes_zone() {
    let s = nanp_network();
    let a = dip(&s, &req("ALL", "+12125551000", "+18765551234"), T0);
    let DipAnswer::Route(ra) = &a else {
        panic!("{a:?}")
    };
    let got: Vec<(&str, f64, Option<Zone>)> = ra
        .routes
        .iter()
        .map(|c| (&*c.route_id, c.rate, c.zone))
        .collect();
    assert_eq!(
        got,
        [
            ("ocn-a", 0.007, None),
            ("lrn-a", 0.04, None),
            ("dnis-a", 0.05, Some(Zone::International)),
            ("intl-a", 0.06, Some(Zone::International)),
        ]
    );
    assert_eq!(ra.zone, Zone::Interstate);
    // a US call is untouched: no route names a zone of its own
    let a = dip(&s, &req("ALL", "+13125551000", "+12125551234"), T0);
    let DipAnswer::Route(ra) = &a else {
        panic!("{a:?}")
    };
    assert_eq!(ra.zone, Zone::Interstate);
    assert!(ra.routes.iter().all(|c| c.zone.is_none()), "{ra:?}");
}
