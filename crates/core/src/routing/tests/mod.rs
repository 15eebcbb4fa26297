//! Unit tests of the pure routing core over hand-built snapshots. This file holds the fixtures
//! (the test network, request and answer helpers); the tests are grouped by subject in
//! [`zones`], [`policy`], [`partitions`] and [`engine`].

mod engine;
mod golden;
mod nanp_zones;
mod partitions;
mod parts;
mod policy;
mod stir;
mod zones;

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
        emergency_callback: None,
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
