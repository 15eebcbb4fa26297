//! The attestation procedure as a table, the origids, the answer's wire forms, and the
//! verification outcome as a table (the dip's `stir` answer over a network: `routing::tests::stir`).

use super::verify::{outcome, FailReason, Verstat};
use super::*;

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

#[test]
fn the_answer_wire_forms() {
    let origid = uuid::Uuid::from_u128(0x1234);
    let sign = StirAnswer::Sign {
        attest: Attest::A,
        origid,
        orig: canonical_tn("+13105550000"),
        dest: canonical_tn("12125551234"),
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
    assert_eq!(
        (f.attest, f.orig, f.dest),
        ("A", "13105550000", "12125551234")
    );
    let k = StirAnswer::Keep.resp_fields();
    assert_eq!((k.attest, k.origid.as_str(), k.orig), ("keep", "", ""));
    assert_eq!(canonical_tn("+1 (212) 555-1234").as_str(), "12125551234");
    assert_eq!(canonical_tn("911").as_str(), "911");
}

fn jwt(payload: &str) -> String {
    use base64::Engine as _;
    let e = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    format!(
        "{}.{}.sig;info=<https://cert.example/c.pem>;alg=ES256;ppt=shaken",
        e.encode(
            r#"{"alg":"ES256","ppt":"shaken","typ":"passport","x5u":"https://cert.example/c.pem"}"#
        ),
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
    type Row<'a> = (
        Option<i64>,
        Option<&'a str>,
        Verstat,
        Option<FailReason>,
        Option<Attest>,
    );
    let table: &[Row] = &[
        (None, None, Verstat::None, None, None),
        (Some(1), Some(&good), Verstat::Passed, None, Some(Attest::A)),
        (
            Some(1),
            Some(&other_dest),
            Verstat::Failed,
            Some(FailReason::TnMismatch),
            Some(Attest::B),
        ),
        (
            Some(-232),
            Some(&good),
            Verstat::Failed,
            Some(FailReason::ExpiredIat),
            Some(Attest::A),
        ),
        (
            Some(-251),
            Some(&good),
            Verstat::Failed,
            Some(FailReason::BadSignature),
            Some(Attest::A),
        ),
        (
            Some(-101),
            Some(&good),
            Verstat::Failed,
            Some(FailReason::UntrustedCertificate),
            Some(Attest::A),
        ),
        (
            Some(-402),
            Some(&good),
            Verstat::Failed,
            Some(FailReason::CertificateUnavailable),
            Some(Attest::A),
        ),
        (
            Some(-301),
            Some("garbage"),
            Verstat::Failed,
            Some(FailReason::Malformed),
            None,
        ),
        (
            Some(1),
            Some("garbage"),
            Verstat::Failed,
            Some(FailReason::Malformed),
            None,
        ),
        (
            Some(-1),
            None,
            Verstat::Failed,
            Some(FailReason::Other),
            None,
        ),
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
