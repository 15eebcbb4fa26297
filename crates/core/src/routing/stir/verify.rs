//! Verification of an inbound call's Identity (issue 20), the pure half: Kamailio runs
//! `secsipid_check_identity` (signature, `iat` freshness, certificate from `x5u` checked against
//! the STI-CA trust store) and passes its return code and the header; [`outcome`] turns them
//! into the RFC 8224 `verstat` value, the PASSporT's attestation and origid, and the reason of a
//! failure, and checks what secsipid does not: that the PASSporT's `orig` and `dest` TNs are the
//! call's ANI and DNIS.
//!
//! Owns: the mapping of libsecsipid's codes, the PASSporT payload reading. Must not touch:
//! signatures (Kamailio checked them), I/O.

use base64::Engine as _;
use serde::{Deserialize, Serialize};

use super::Attest;
use crate::numbering;

/// The longest Identity header value warpd reads (a SHAKEN PASSporT with its parameters is
/// well under 1 KB).
pub const MAX_IDENTITY_LEN: usize = 2048;

/// RFC 8224 / 3GPP TS 24.229 verification status.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
pub enum Verstat {
    #[serde(rename = "TN-Validation-Passed")]
    Passed,
    #[serde(rename = "TN-Validation-Failed")]
    Failed,
    #[serde(rename = "No-TN-Validation")]
    None,
}

impl Verstat {
    pub fn as_str(self) -> &'static str {
        match self {
            Verstat::Passed => "TN-Validation-Passed",
            Verstat::Failed => "TN-Validation-Failed",
            Verstat::None => "No-TN-Validation",
        }
    }
    /// Metric label.
    pub fn label(self) -> &'static str {
        match self {
            Verstat::Passed => "passed",
            Verstat::Failed => "failed",
            Verstat::None => "none",
        }
    }
}

/// Why verification failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FailReason {
    /// the PASSporT's `iat` is older than the allowed age (or missing)
    ExpiredIat,
    /// the signature does not verify with the certificate's key
    BadSignature,
    /// the certificate does not chain to the trust store, is expired or revoked
    UntrustedCertificate,
    /// the certificate could not be fetched from `x5u`
    CertificateUnavailable,
    /// the header or the PASSporT is malformed
    Malformed,
    /// the PASSporT's orig TN is not the ANI, or its dest TNs do not contain the DNIS
    TnMismatch,
    /// any other failure code
    Other,
}

impl FailReason {
    pub fn as_str(self) -> &'static str {
        match self {
            FailReason::ExpiredIat => "expired_iat",
            FailReason::BadSignature => "bad_signature",
            FailReason::UntrustedCertificate => "untrusted_certificate",
            FailReason::CertificateUnavailable => "certificate_unavailable",
            FailReason::Malformed => "malformed",
            FailReason::TnMismatch => "tn_mismatch",
            FailReason::Other => "other",
        }
    }

    /// libsecsipid's return codes (secsipid.go, v1.2) to reasons.
    pub fn of_code(code: i64) -> FailReason {
        match code {
            -232 => FailReason::ExpiredIat,
            -254..=-251 => FailReason::BadSignature,
            -199..=-101 => FailReason::UntrustedCertificate,
            -499..=-401 => FailReason::CertificateUnavailable,
            -399..=-201 => FailReason::Malformed,
            _ => FailReason::Other,
        }
    }
}

/// What verification concluded about one inbound call.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Verification {
    pub verstat: Verstat,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub attest: Option<Attest>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub origid: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<FailReason>,
}

impl Verification {
    pub fn none() -> Verification {
        Verification {
            verstat: Verstat::None,
            attest: None,
            origid: None,
            reason: None,
        }
    }
}

#[derive(Deserialize)]
struct Orig {
    #[serde(default)]
    tn: String,
}

#[derive(Deserialize)]
struct Dest {
    #[serde(default)]
    tn: Vec<String>,
}

#[derive(Deserialize)]
struct Payload {
    #[serde(default)]
    attest: Option<String>,
    #[serde(default)]
    origid: Option<String>,
    orig: Option<Orig>,
    dest: Option<Dest>,
}

fn payload(identity: &str) -> Option<Payload> {
    if identity.len() > MAX_IDENTITY_LEN {
        return None;
    }
    let token = identity.split(';').next()?.trim();
    let mut parts = token.split('.');
    let (_, body) = (parts.next()?, parts.next()?);
    let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(body.trim_end_matches('='))
        .ok()?;
    serde_json::from_slice(&raw).ok()
}

fn same_tn(a: &str, b: &str) -> bool {
    match (numbering::normalize(a), numbering::normalize(b)) {
        (Some(x), Some(y)) => x.digits() == y.digits(),
        _ => false,
    }
}

/// The outcome of a call's verification. `code`: Kamailio's `secsipid_check_identity` return
/// (1 = verified; negative: libsecsipid's error; None: the call had no Identity header);
/// `identity`: the header's value (read only for the PASSporT's claims).
pub fn outcome(code: Option<i64>, identity: Option<&str>, ani: &str, dnis: &str) -> Verification {
    let Some(code) = code else {
        return Verification::none();
    };
    let p = identity.and_then(payload);
    let attest = p
        .as_ref()
        .and_then(|p| p.attest.as_deref())
        .and_then(Attest::parse);
    let origid = p
        .as_ref()
        .and_then(|p| p.origid.as_deref())
        .filter(|o| o.len() <= 64 && o.bytes().all(|b| b.is_ascii_graphic()))
        .map(str::to_string);
    let failed = |reason| Verification {
        verstat: Verstat::Failed,
        attest,
        origid: origid.clone(),
        reason: Some(reason),
    };
    if code != 1 {
        return failed(FailReason::of_code(code));
    }
    let Some(p) = &p else {
        return failed(FailReason::Malformed);
    };
    let orig_ok = p.orig.as_ref().is_some_and(|o| same_tn(&o.tn, ani));
    let dest_ok = p
        .dest
        .as_ref()
        .is_some_and(|d| d.tn.iter().any(|t| same_tn(t, dnis)));
    if !orig_ok || !dest_ok {
        return failed(FailReason::TnMismatch);
    }
    Verification {
        verstat: Verstat::Passed,
        attest,
        origid,
        reason: None,
    }
}
