//! Rules of STIR/SHAKEN settings (issue 20), shared by `warpd apply` (`[[stir]]`) and the admin
//! API (`/v1/admin/stir/...`): the attestation cap, the reject code of failed verification, TN
//! ranges (E.164 bounds of one length, first ≤ last, at most [`MAX_RANGE_SIZE`] numbers, no two
//! of one customer overlapping).

use super::trunk::e164;
use super::RuleError;
use crate::routing::stir::AttestCap;

/// The largest TN range (numbers in it): a 10-million block (an NPA's worth of NXX-XXXX).
pub const MAX_RANGE_SIZE: u64 = 10_000_000;

/// `max_attest`: `A`, `B`, `C` or `off` (`A` when omitted: no cap).
pub fn max_attest(field: &str, v: Option<&str>) -> Result<AttestCap, RuleError> {
    match v {
        None => Ok(AttestCap::Max(crate::routing::stir::Attest::A)),
        Some(s) => AttestCap::parse(s).ok_or_else(|| RuleError::NotOneOf {
            field: field.to_string(),
            value: crate::excerpt::plain(s),
            allowed: "A, B, C, off",
        }),
    }
}

/// `verify_reject_code`: 436, 437 or 438 (RFC 8224), or none (deliver with verstat).
pub fn reject_code(field: &str, v: Option<i64>) -> Result<Option<u16>, RuleError> {
    match v {
        None => Ok(None),
        Some(c @ 436..=438) => Ok(Some(c as u16)),
        Some(c) => Err(RuleError::invalid(
            field,
            format!("{c} is not 436, 437 or 438 (RFC 8224 Identity failures)"),
        )),
    }
}

/// A TN range `"+first-+last"` (or one number `"+n"`): both E.164, of one length, first ≤
/// last, at most [`MAX_RANGE_SIZE`] numbers. Returns the bounds.
pub fn tn_range(field: &str, v: &str) -> Result<(String, String), RuleError> {
    let (a, b) = match v.split_once('-') {
        Some((a, b)) => (a.trim(), b.trim()),
        None => (v.trim(), v.trim()),
    };
    let first = e164(field, a)?;
    let last = e164(field, b)?;
    if first.len() != last.len() {
        return Err(RuleError::invalid(
            field,
            format!("{first} and {last} differ in length: a range is of numbers of one length"),
        ));
    }
    let (x, y) = (
        first[1..].parse::<u64>().unwrap_or(0),
        last[1..].parse::<u64>().unwrap_or(0),
    );
    if x > y {
        return Err(RuleError::invalid(
            field,
            format!("{first} is after {last}"),
        ));
    }
    if y - x >= MAX_RANGE_SIZE {
        return Err(RuleError::invalid(
            field,
            format!(
                "{} numbers: at most {MAX_RANGE_SIZE} in one range",
                y - x + 1
            ),
        ));
    }
    Ok((first, last))
}

/// Whether two ranges (as [`tn_range`] returns them) share a number.
pub fn ranges_overlap(a: &(String, String), b: &(String, String)) -> bool {
    a.0.len() == b.0.len() && a.0 <= b.1 && b.0 <= a.1
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tn_ranges_table() {
        let ok = |v: &str, a: &str, b: &str| {
            assert_eq!(
                tn_range("r", v).unwrap(),
                (a.to_string(), b.to_string()),
                "{v}"
            );
        };
        ok("+13125550000-+13125550999", "+13125550000", "+13125550999");
        ok(
            " +13125550000 - +13125550000 ",
            "+13125550000",
            "+13125550000",
        );
        ok("+13125550000", "+13125550000", "+13125550000");
        for (bad, why) in [
            ("+13125550999-+13125550000", "is after"),
            ("+1312555000-+13125550000", "differ in length"),
            ("13125550000-+13125550001", "not an E.164"),
            ("+13125550000-", "not an E.164"),
            ("+10000000000-+19999999999", "at most"),
            ("\u{1b}[31m", "not an E.164"),
        ] {
            let e = tn_range("stir[0].tn_ranges[1]", bad).unwrap_err();
            assert_eq!(e.field(), "stir[0].tn_ranges[1]");
            assert!(e.problem().contains(why), "{bad}: {}", e.problem());
            assert!(!e.problem().contains('\u{1b}'));
        }
        let r = |a: &str, b: &str| (a.to_string(), b.to_string());
        assert!(ranges_overlap(&r("+12", "+15"), &r("+15", "+19")));
        assert!(!ranges_overlap(&r("+12", "+15"), &r("+16", "+19")));
        assert!(!ranges_overlap(&r("+12", "+15"), &r("+120", "+159")));
    }

    #[test]
    fn caps_and_codes() {
        assert_eq!(max_attest("f", None).unwrap().as_str(), "A");
        assert_eq!(max_attest("f", Some("off")).unwrap(), AttestCap::Off);
        assert!(max_attest("f", Some("D"))
            .unwrap_err()
            .problem()
            .contains("A, B, C, off"));
        assert_eq!(reject_code("f", Some(438)).unwrap(), Some(438));
        assert_eq!(reject_code("f", None).unwrap(), None);
        assert!(reject_code("f", Some(403)).is_err());
    }
}
