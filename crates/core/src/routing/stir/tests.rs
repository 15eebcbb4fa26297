//! The attestation procedure as a table, the origids, the dip's `stir` answer over a small
//! network, and the verification outcome as a table.

use std::sync::Arc;

use super::verify::{outcome, FailReason, Verstat};
use super::*;
use crate::routing::inbound::{InboundBuilder, NumberRow, NumberStatus, TrunkRow};
use crate::routing::{DipAnswer, DipRequest, Rate};

const A: Option<AttestCap> = Some(AttestCap::Max(Attest::A));
const B: Option<AttestCap> = Some(AttestCap::Max(Attest::B));
const C: Option<AttestCap> = Some(AttestCap::Max(Attest::C));
const OFF: Option<AttestCap> = Some(AttestCap::Off);

fn facts(
    auth: Auth,
    ani: AniKind,
    owner: AniOwner,
    transit: bool,
    caps: (Option<AttestCap>, Option<AttestCap>),
    identity: IdentityIn,
) -> Facts {
    Facts {
        auth,
        ani,
        owner,
        transit,
        customer_cap: caps.0,
        trunk_cap: caps.1,
        identity,
    }
}

#[test]
fn attestation_table() {
    use AniKind::*;
    use AniOwner::*;
    use Auth::*;
    use Decision::*;
    use IdentityIn::{Invalid as Bad, None as NoId, Valid};
    let sign = |a| Sign(a);
    #[rustfmt::skip]
    let table: &[(Facts, Decision, &str)] = &[
        // A: authenticated, own number or range, by every kind of authentication
        (facts(Source, Nanp, Number, false, (None, None), NoId), sign(Attest::A), "one of its numbers"),
        (facts(Digest, Nanp, Number, false, (None, None), NoId), sign(Attest::A), "digest"),
        (facts(Named, Nanp, Range, false, (None, None), NoId), sign(Attest::A), "TN ranges"),
        (facts(Source, Nanp, Range, false, (A, A), NoId), sign(Attest::A), "in one of its TN ranges"),
        // B: a foreign ANI
        (facts(Source, Nanp, Foreign, false, (None, None), NoId), sign(Attest::B), "none of its numbers"),
        (facts(Digest, Nanp, Foreign, false, (None, None), NoId), sign(Attest::B), "digest credentials but"),
        // C: transit, international ANI
        (facts(Source, Nanp, Number, true, (None, None), NoId), sign(Attest::C), "transit"),
        (facts(Source, International, Foreign, false, (None, None), NoId), sign(Attest::C), "international"),
        (facts(Source, International, Number, false, (None, None), NoId), sign(Attest::C), "international"),
        // caps: the lower of customer and trunk, and which one lowered it
        (facts(Source, Nanp, Number, false, (B, None), NoId), sign(Attest::B), "A capped by the customer"),
        (facts(Source, Nanp, Number, false, (None, B), NoId), sign(Attest::B), "A capped by the trunk"),
        (facts(Source, Nanp, Number, false, (B, C), NoId), sign(Attest::C), "A capped by the trunk"),
        (facts(Source, Nanp, Foreign, false, (B, None), NoId), sign(Attest::B), "none of its numbers"),
        (facts(Source, Nanp, Foreign, false, (C, A), NoId), sign(Attest::C), "B capped by the customer"),
        (facts(Source, International, Number, false, (B, B), NoId), sign(Attest::C), "international"),
        // signing off
        (facts(Source, Nanp, Number, false, (OFF, None), NoId), Unsigned, "off for this customer"),
        (facts(Source, Nanp, Number, false, (A, OFF), NoId), Unsigned, "off for this trunk"),
        (facts(Source, Nanp, Number, true, (OFF, OFF), NoId), Unsigned, "off for this customer"),
        // not a telephone number
        (facts(Source, Invalid, Foreign, false, (None, None), NoId), Unsigned, "not a telephone number"),
        // an upstream Identity: kept when valid (even with signing off), replaced when not
        (facts(Source, Nanp, Foreign, false, (None, None), Valid), Keep, "Kamailio verified"),
        (facts(Source, Nanp, Number, false, (OFF, None), Valid), Keep, "Kamailio verified"),
        (facts(Source, Nanp, Number, false, (None, None), Bad), sign(Attest::A), "failed verification and is replaced"),
        (facts(Source, Nanp, Number, false, (OFF, None), Bad), Unsigned, "failed verification and is replaced"),
    ];
    for (i, (f, want, why)) in table.iter().enumerate() {
        let v = decide(f);
        assert_eq!(v.decision, *want, "row {i}: {f:?}");
        let text = v.to_string();
        assert!(text.contains(why), "row {i}: {text:?} lacks {why:?}");
    }
}

#[test]
fn a_capped_customer_never_gets_a() {
    // every combination of facts under a B cap (customer or trunk): never A
    for auth in [Auth::Source, Auth::Digest, Auth::Named] {
        for ani in [AniKind::Invalid, AniKind::Nanp, AniKind::International] {
            for owner in [AniOwner::Number, AniOwner::Range, AniOwner::Foreign] {
                for transit in [false, true] {
                    for caps in [(B, None), (None, B), (B, A), (A, B)] {
                        for identity in [IdentityIn::None, IdentityIn::Invalid] {
                            let f = facts(auth, ani, owner, transit, caps, identity);
                            assert_ne!(decide(&f).decision, Decision::Sign(Attest::A), "{f:?}");
                        }
                    }
                }
            }
        }
    }
}

#[test]
fn origids_are_stable_per_customer_and_trunk() {
    let ns = DEFAULT_ORIGID_NAMESPACE;
    let other = uuid::Uuid::from_u128(1);
    assert_eq!(customer_origid(&ns, "C1"), customer_origid(&ns, "C1"));
    assert_ne!(customer_origid(&ns, "C1"), customer_origid(&ns, "C2"));
    assert_ne!(customer_origid(&ns, "t1"), trunk_origid(&ns, "t1"));
    assert_ne!(customer_origid(&ns, "C1"), customer_origid(&other, "C1"));
    assert_eq!(customer_origid(&ns, "C1").get_version_num(), 5);
}

#[test]
fn cap_and_identity_parse() {
    for (text, cap) in [
        ("A", A),
        ("B", B),
        ("C", C),
        ("off", OFF),
        ("a", None),
        ("", None),
    ] {
        assert_eq!(AttestCap::parse(text), cap, "{text:?}");
        if let Some(c) = cap {
            assert_eq!(c.as_str(), text);
        }
    }
    assert_eq!(IdentityIn::parse("valid"), Some(IdentityIn::Valid));
    assert_eq!(IdentityIn::parse(""), Some(IdentityIn::None));
    assert_eq!(IdentityIn::parse("yes"), None);
}

fn trunk(id: i64, name: &str, ban: &str, cidr: &str) -> TrunkRow {
    TrunkRow {
        id,
        name: name.into(),
        customer_ban: ban.into(),
        customer_enabled: true,
        max_calls: None,
        max_cps: None,
        media_policy: None,
        enabled: true,
        sources: vec![cidr.parse().unwrap()],
    }
}

fn number(n: &str, ban: &str, status: NumberStatus) -> NumberRow {
    NumberRow {
        number: n.into(),
        customer_ban: ban.into(),
        trunk_id: None,
        status,
        voice: true,
        fax: false,
        destination: None,
        inbound_rate: Rate(0),
        cnam: None,
    }
}

fn policy(ban: &str, trunk_id: Option<i64>, cap: &str, transit: bool) -> StirPolicyRow {
    StirPolicyRow {
        customer_ban: ban.into(),
        trunk_id,
        max_attest: AttestCap::parse(cap).unwrap(),
        transit,
        verify_reject_code: None,
    }
}

/// The routing tests' network (C1 at 10.0.0.1, C2 at 10.2.0.0/16) with: C1's number
/// +12125550100 (and a disabled one), C1's range +13125550000-+13125550999, C1's trunk t-b
/// (10.9.0.0/16) capped at B, C2 capped at B, customer C3 (BAN named only) transit.
fn snapshot() -> crate::routing::Snapshot {
    let mut b = crate::routing::tests::network();
    let mut ib = InboundBuilder::new();
    ib.trunk(trunk(1, "t-b", "C1", "10.9.0.0/16"));
    ib.number(number("+12125550100", "C1", NumberStatus::Active));
    ib.number(number("+12125550101", "C1", NumberStatus::Disabled));
    ib.number(number("+12125550102", "C2", NumberStatus::Active));
    ib.tn_range(TnRangeRow {
        customer_ban: "C1".into(),
        first: "+13125550000".into(),
        last: "+13125550999".into(),
    });
    ib.stir_policy(policy("C1", Some(1), "B", false));
    ib.stir_policy(policy("C2", None, "B", false));
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
        (super::super::tests::req("C1", "+12125550100", "+12125551234"), sign(Attest::A, c1)),
        // an ANI that is no number: unsigned
        (by_ip("10.0.0.1", "anonymous"), none),
        // a valid upstream Identity: kept
        (keep, keep_),
    ];
    let short = |a: Option<StirAnswer>| match a {
        None => none,
        Some(StirAnswer::Keep) => keep_,
        Some(StirAnswer::Sign { attest, origid, orig, dest }) => {
            // canonical TNs: E.164 digits without '+'
            assert!(orig.bytes().all(|b| b.is_ascii_digit()), "{orig}");
            assert_eq!(dest, "12125551234");
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
        Some(StirAnswer::Sign { orig, .. }) => assert_eq!(orig, "12125550102"),
        other => panic!("{other:?}"),
    }
    // the simulation says why
    let sim = crate::routing::simulate(&s, &c2, 0);
    let why = sim.stir.unwrap();
    assert!(why.contains("attest B") && why.contains("A capped by the customer"), "{why}");
}

#[test]
fn the_answer_wire_forms() {
    let origid = uuid::Uuid::from_u128(0x1234);
    let sign = StirAnswer::Sign {
        attest: Attest::A,
        origid,
        orig: "13105550000".into(),
        dest: "12125551234".into(),
    };
    assert_eq!(
        serde_json::to_string(&sign).unwrap(),
        r#"{"attest":"A","origid":"00000000-0000-0000-0000-000000001234","orig":"13105550000","dest":"12125551234"}"#
    );
    assert_eq!(
        serde_json::to_string(&StirAnswer::Keep).unwrap(),
        r#"{"keep":true}"#
    );
    let f = sign.resp_fields();
    assert_eq!((f.attest, f.orig, f.dest), ("A", "13105550000", "12125551234"));
    let k = StirAnswer::Keep.resp_fields();
    assert_eq!((k.attest, k.origid.as_str(), k.orig), ("keep", "", ""));
    assert_eq!(canonical_tn("+1 (212) 555-1234"), "12125551234");
    assert_eq!(canonical_tn("911"), "911");
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
            customer_ban: "C1".into(),
            first: first.into(),
            last: last.into(),
        });
        assert!(ib.build().is_err(), "{first}-{last}");
    }
}

fn jwt(payload: &str) -> String {
    use base64::Engine as _;
    let e = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    format!(
        "{}.{}.sig;info=<https://cert.example/c.pem>;alg=ES256;ppt=shaken",
        e.encode(r#"{"alg":"ES256","ppt":"shaken","typ":"passport","x5u":"https://cert.example/c.pem"}"#),
        e.encode(payload)
    )
}

#[test]
fn verification_table() {
    let good = jwt(
        r#"{"attest":"A","dest":{"tn":["12125551234"]},"iat":1,"orig":{"tn":"13105550000"},"origid":"abc"}"#,
    );
    let other_dest = jwt(
        r#"{"attest":"B","dest":{"tn":["12125559999"]},"iat":1,"orig":{"tn":"13105550000"},"origid":"abc"}"#,
    );
    let (ani, dnis) = ("+13105550000", "12125551234");
    let table: &[(Option<i64>, Option<&str>, Verstat, Option<FailReason>, Option<Attest>)] = &[
        (None, None, Verstat::None, None, None),
        (Some(1), Some(&good), Verstat::Passed, None, Some(Attest::A)),
        (Some(1), Some(&other_dest), Verstat::Failed, Some(FailReason::TnMismatch), Some(Attest::B)),
        (Some(-232), Some(&good), Verstat::Failed, Some(FailReason::ExpiredIat), Some(Attest::A)),
        (Some(-251), Some(&good), Verstat::Failed, Some(FailReason::BadSignature), Some(Attest::A)),
        (Some(-101), Some(&good), Verstat::Failed, Some(FailReason::UntrustedCertificate), Some(Attest::A)),
        (Some(-402), Some(&good), Verstat::Failed, Some(FailReason::CertificateUnavailable), Some(Attest::A)),
        (Some(-301), Some("garbage"), Verstat::Failed, Some(FailReason::Malformed), None),
        (Some(1), Some("garbage"), Verstat::Failed, Some(FailReason::Malformed), None),
        (Some(-1), None, Verstat::Failed, Some(FailReason::Other), None),
    ];
    for (i, (code, identity, verstat, reason, attest)) in table.iter().enumerate() {
        let v = outcome(*code, *identity, ani, dnis);
        assert_eq!(
            (v.verstat, v.reason, v.attest),
            (*verstat, *reason, *attest),
            "row {i}"
        );
    }
    assert_eq!(
        outcome(Some(1), Some(&good), ani, dnis).origid.as_deref(),
        Some("abc")
    );
    // an oversized header is not read
    let huge = "a".repeat(super::verify::MAX_IDENTITY_LEN + 1);
    assert_eq!(
        outcome(Some(1), Some(&huge), ani, dnis).reason,
        Some(FailReason::Malformed)
    );
}
