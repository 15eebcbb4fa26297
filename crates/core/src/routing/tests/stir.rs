//! STIR/SHAKEN (issue 20) in the dip: the `stir` answer over the routing tests' network (own
//! number, TN range, foreign, international, a trunk's cap and origid, a BAN dip, an ANI that is
//! no number, a kept upstream Identity), the simulation's explanation, and bad TN ranges.

use std::sync::Arc;

use super::*;
use crate::routing::inbound::{InboundBuilder, NumberRow, NumberStatus, TrunkRow};
use crate::routing::stir::*;

fn trunk(id: i64, name: &str, customer_id: Id, cidr: &str) -> TrunkRow {
    TrunkRow {
        id,
        name: name.into(),
        customer_id,
        max_calls: None,
        max_cps: None,
        media_policy: None,
        enabled: true,
        sources: vec![cidr.parse().unwrap()],
    }
}

fn number(n: &str, customer_id: Id, status: NumberStatus) -> NumberRow {
    NumberRow {
        number: n.into(),
        customer_id,
        trunk_id: None,
        status,
        voice: true,
        fax: false,
        destination: None,
        inbound_rate: Rate(0),
        cnam: None,
    }
}

fn policy(customer_id: Id, trunk_id: Option<i64>, cap: &str, transit: bool) -> StirPolicyRow {
    StirPolicyRow {
        customer_id,
        trunk_id,
        max_attest: AttestCap::parse(cap).unwrap(),
        transit,
        verify_reject_code: None,
    }
}

/// The routing tests' network (C1 id 1 at 10.0.0.1, C2 id 2 at 10.2.0.0/16) with: C1's number
/// +12125550100 (and a disabled one), C1's range +13125550000-+13125550999, C1's trunk t-b
/// (10.9.0.0/16) capped at B, C2 capped at B, customer C3 (BAN named only) transit.
fn snapshot() -> crate::routing::Snapshot {
    let mut b = network();
    let mut ib = InboundBuilder::new();
    ib.trunk(trunk(1, "t-b", 1, "10.9.0.0/16"));
    ib.number(number("+12125550100", 1, NumberStatus::Active));
    ib.number(number("+12125550101", 1, NumberStatus::Disabled));
    ib.number(number("+12125550102", 2, NumberStatus::Active));
    ib.tn_range(TnRangeRow {
        customer_id: 1,
        first: "+13125550000".into(),
        last: "+13125550999".into(),
    });
    ib.stir_policy(policy(1, Some(1), "B", false));
    ib.stir_policy(policy(2, None, "B", false));
    b.set_inbound(Arc::new(ib.build().unwrap()));
    b.build(0).unwrap()
}

fn stir_of(s: &crate::routing::Snapshot, req: &DipRequest) -> Option<StirAnswer> {
    match crate::routing::dip(s, req, 0) {
        DipAnswer::Route(r) => r.stir,
        DipAnswer::Reject(r) => panic!("{req:?}: rejected {r:?}"),
    }
}

#[test]
fn the_dip_answers_the_attestation() {
    let s = snapshot();
    let ns = DEFAULT_ORIGID_NAMESPACE;
    let by_ip = |ip: &str, ani: &str| DipRequest {
        src_ip: Some(ip.parse().unwrap()),
        ani: ani.into(),
        dnis: "+12125551234".into(),
        ..Default::default()
    };
    let sign = |attest, origid| (Some(attest), origid);
    let c1 = customer_origid(&ns, "C1");
    let tb = trunk_origid(&ns, "t-b");
    let mut keep = by_ip("10.0.0.1", "+13105550000");
    keep.identity = Some(IdentityIn::Valid);
    let none = (None, uuid::Uuid::nil());
    let keep_ = (None, uuid::Uuid::max());
    let table: &[(DipRequest, (Option<Attest>, uuid::Uuid))] = &[
        // C1 by its own source: own number A, range A, foreign B, disabled number B
        (by_ip("10.0.0.1", "+12125550100"), sign(Attest::A, c1)),
        (by_ip("10.0.0.1", "12125550100"), sign(Attest::A, c1)),
        (by_ip("10.0.0.1", "+13125550500"), sign(Attest::A, c1)),
        (by_ip("10.0.0.1", "+13125551000"), sign(Attest::B, c1)),
        (by_ip("10.0.0.1", "+12125550101"), sign(Attest::B, c1)),
        (by_ip("10.0.0.1", "+12125550102"), sign(Attest::B, c1)),
        // international ANI: C
        (by_ip("10.0.0.1", "+442071234567"), sign(Attest::C, c1)),
        // over trunk t-b (capped at B): its origid, never A
        (by_ip("10.9.1.1", "+12125550100"), sign(Attest::B, tb)),
        // by BAN: named by Kamailio, own number A
        (
            req("C1", "+12125550100", "+12125551234"),
            sign(Attest::A, c1),
        ),
        // an ANI that is no number: unsigned
        (by_ip("10.0.0.1", "anonymous"), none),
        // a valid upstream Identity: kept
        (keep, keep_),
    ];
    let short = |a: Option<StirAnswer>| match a {
        None => none,
        Some(StirAnswer::Keep) => keep_,
        Some(StirAnswer::Sign {
            attest,
            origid,
            orig,
            dest,
        }) => {
            // canonical TNs: E.164 digits without '+'
            assert!(
                orig.as_str().bytes().all(|b| b.is_ascii_digit()),
                "{orig:?}"
            );
            assert_eq!(dest.as_str(), "12125551234");
            (Some(attest), origid)
        }
    };
    for (req, want) in table {
        assert_eq!(&short(stir_of(&s, req)), want, "{req:?}");
    }
    // C2 is capped at B: its own number still gets B (C2's partition routes 1212 numbers)
    let c2 = by_ip("10.2.0.9", "+12125550102");
    assert_eq!(
        short(stir_of(&s, &c2)),
        sign(Attest::B, customer_origid(&ns, "C2"))
    );
    match stir_of(&s, &c2) {
        Some(StirAnswer::Sign { orig, .. }) => assert_eq!(orig.as_str(), "12125550102"),
        other => panic!("{other:?}"),
    }
    // the simulation says why
    let sim = crate::routing::simulate(&s, &c2, 0);
    let why = sim.stir.unwrap();
    assert!(
        why.contains("attest B") && why.contains("A capped by the customer"),
        "{why}"
    );
}

#[test]
fn bad_tn_ranges_are_build_errors() {
    for (first, last) in [
        ("+13125550999", "+13125550000"),
        ("+1312555", "+13125550000"),
        ("13125550000", "+13125550001"),
        ("+0312555000", "+0312555999"),
    ] {
        let mut ib = InboundBuilder::new();
        ib.tn_range(TnRangeRow {
            customer_id: 1,
            first: first.into(),
            last: last.into(),
        });
        assert!(ib.build().is_err(), "{first}-{last}");
    }
}

/// Which sources' Identity Kamailio may verify: a customer's (its own address or network, its
/// trunk's network) or a vendor gateway's; nobody else's.
#[test]
fn sources_are_classified_for_verification() {
    let s = snapshot();
    let table = [
        ("10.0.0.1", SourceKind::Customer),
        ("10.2.3.4", SourceKind::Customer),
        ("10.9.1.1", SourceKind::Customer),
        ("10.1.0.1", SourceKind::Vendor),
        ("10.1.0.100", SourceKind::Vendor),
        ("10.0.0.2", SourceKind::Unknown),
        ("192.0.2.1", SourceKind::Unknown),
        ("::1", SourceKind::Unknown),
    ];
    for (ip, want) in table {
        assert_eq!(s.source_kind(ip.parse().unwrap()), want, "{ip}");
    }
}
