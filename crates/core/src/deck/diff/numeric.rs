//! PostgreSQL's numeric arithmetic of the diff, exactly: a row's largest move in percent
//! ([`pct`], what `greatest(abs(b - a) / nullif(a, 0), …) * 100` followed by `::float8` gives)
//! and the threshold test ([`Threshold::over`], `abs(b - a) * 100 > t::float8::numeric * a`).
//! Rates are integers in units of 10^-7 (`numeric(12,7)`), so every step is integer arithmetic
//! on `i128` and the answers equal the database's to the last bit.
//!
//! Owns: those two computations. Must not touch: classification, paging.

use std::cmp::Ordering;

/// One zone's rate in 10^-7 units; `None` is SQL NULL.
pub type Rate = Option<i64>;

/// 10^k as i128, `None` beyond i128.
fn pow10(k: u32) -> Option<i128> {
    10i128.checked_pow(k)
}

/// The number of decimal digits of `v` (> 0).
fn digits(v: u128) -> i32 {
    v.ilog10() as i32 + 1
}

/// PostgreSQL's (weight, first base-10000 digit) of the numeric `v` × 10^-7 (`v` > 0): the
/// weight of its first non-zero base-10000 digit and that digit. Zero is (0, 0), as in
/// `select_div_scale`.
fn weight_first(v: u128) -> (i32, u128) {
    if v == 0 {
        return (0, 0);
    }
    let top = digits(v) - 1 - 7; // decimal exponent of the first digit
    let w = top.div_euclid(4);
    let shift = 4 * w + 7; // v's exponent of that base-10000 digit's units
    let first = if shift >= 0 {
        v / 10u128.pow(shift as u32)
    } else {
        v * 10u128.pow((-shift) as u32)
    };
    (w, first)
}

/// `select_div_scale` of PostgreSQL 15 for two numeric(…,7) operands: at least 16 significant
/// digits, at least the operands' display scale (7).
fn div_scale(num: u128, den: u128) -> u32 {
    let (w1, f1) = weight_first(num);
    let (w2, f2) = weight_first(den);
    let mut qweight = w1 - w2;
    if f1 <= f2 {
        qweight -= 1;
    }
    (16 - qweight * 4).clamp(7, 1000) as u32
}

/// An exact decimal `mant` × 10^-`scale`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Decimal {
    mant: i128,
    scale: u32,
}

impl Decimal {
    fn cmp(&self, o: &Decimal) -> Ordering {
        // bring both to the larger scale; a mantissa that overflows doing so is beyond the
        // other (which fits), in its own sign
        let (a, b) = match self.scale.cmp(&o.scale) {
            Ordering::Equal => (Some(self.mant), Some(o.mant)),
            Ordering::Less => (
                pow10(o.scale - self.scale).and_then(|p| self.mant.checked_mul(p)),
                Some(o.mant),
            ),
            Ordering::Greater => (
                Some(self.mant),
                pow10(self.scale - o.scale).and_then(|p| o.mant.checked_mul(p)),
            ),
        };
        match (a, b) {
            (Some(a), Some(b)) => a.cmp(&b),
            (None, _) => self.mant.cmp(&0),
            (_, None) => 0.cmp(&o.mant),
        }
    }

    /// `::float8`: the correctly rounded double of the decimal (PostgreSQL prints the numeric
    /// and reads it with strtod).
    fn to_f64(self) -> f64 {
        format!("{}e-{}", self.mant, self.scale)
            .parse()
            .unwrap_or(f64::NAN)
    }
}

/// `abs(b - a) / nullif(a, 0) * 100` as PostgreSQL's numeric computes it (`None` for NULL):
/// the quotient rounded half away from zero at `select_div_scale`'s scale, times 100.
fn zone_pct(a: Rate, b: Rate) -> Option<Decimal> {
    let (a, b) = (a?, b?);
    if a == 0 {
        return None;
    }
    let num = (i128::from(b) - i128::from(a)).unsigned_abs();
    let den = i128::from(a).unsigned_abs();
    let scale = div_scale(num, den);
    // round(num / den, scale) = floor((2 num 10^scale + den) / (2 den)) on magnitudes
    let q = (num as i128)
        .checked_mul(pow10(scale)?)?
        .checked_mul(2)?
        .checked_add(den as i128)?
        / (2 * den as i128);
    let q = if a < 0 { -q } else { q };
    Some(Decimal {
        mant: q.checked_mul(100)?,
        scale,
    })
}

/// The largest move of a row's zone rates, percent of the old rate, as the diff statement's
/// `greatest(…) * 100` cast to float8: `None` when no zone has an old rate other than 0 and a
/// new one.
pub fn pct(a: &[Rate; 3], b: &[Rate; 3]) -> Option<f64> {
    (0..3)
        .filter_map(|z| zone_pct(a[z], b[z]))
        .max_by(Decimal::cmp)
        .map(Decimal::to_f64)
}

/// The warning threshold as PostgreSQL reads `$3::float8::numeric` (`%.15g`, then exact).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Threshold {
    /// `mant` × 10^`exp`
    Finite {
        mant: i128,
        exp: i32,
    },
    PosInf,
    NegInf,
    NaN,
}

impl Threshold {
    pub fn new(t: f64) -> Threshold {
        if t.is_nan() {
            return Threshold::NaN;
        }
        if t.is_infinite() {
            return if t > 0.0 {
                Threshold::PosInf
            } else {
                Threshold::NegInf
            };
        }
        // 15 significant digits, as float8_numeric's "%.15g"
        let s = format!("{t:.14e}");
        let (m, e) = s.split_once('e').unwrap_or((&s, "0"));
        let neg = m.starts_with('-');
        let digits: String = m.chars().filter(char::is_ascii_digit).collect();
        let mant: i128 = digits.parse().unwrap_or(0);
        let exp: i32 = e.parse().unwrap_or(0);
        Threshold::Finite {
            mant: if neg { -mant } else { mant },
            exp: exp - 14,
        }
    }

    /// `$3::float8 < 0`
    pub fn negative(self) -> bool {
        match self {
            Threshold::Finite { mant, .. } => mant < 0,
            Threshold::NegInf => true,
            Threshold::PosInf | Threshold::NaN => false,
        }
    }

    /// One zone: `abs(b - a) * 100 > t * a AND a <> 0` (NULL, when a rate is NULL, is false).
    fn zone_over(self, a: Rate, b: Rate) -> bool {
        let (Some(a), Some(b)) = (a, b) else {
            return false;
        };
        if a == 0 {
            return false;
        }
        let lhs = (i128::from(b) - i128::from(a)).abs() * 100;
        let a = i128::from(a);
        match self {
            Threshold::NaN => false,    // NaN is above every numeric
            Threshold::PosInf => a < 0, // lhs > +inf × a
            Threshold::NegInf => a > 0, // lhs > -inf × a
            Threshold::Finite { mant, exp } => {
                let rhs = mant * a; // |mant| < 10^15, |a| < 2^63: fits
                if exp >= 0 {
                    match pow10(exp as u32).and_then(|p| rhs.checked_mul(p)) {
                        Some(r) => lhs > r,
                        None => rhs < 0,
                    }
                } else {
                    match pow10(exp.unsigned_abs()).and_then(|p| lhs.checked_mul(p)) {
                        Some(l) => l > rhs,
                        None => lhs > 0,
                    }
                }
            }
        }
    }

    /// Some zone moved by more than the threshold percent of its old rate (other than 0).
    pub fn over(self, a: &[Rate; 3], b: &[Rate; 3]) -> bool {
        (0..3).any(|z| self.zone_over(a[z], b[z]))
    }
}

/// A rate as `trim_scale(rate)::text` prints it: no trailing zeros, no trailing point.
pub fn rate_text(v: i64) -> String {
    let neg = v < 0;
    let m = v.unsigned_abs();
    let int = m / 10_000_000;
    let frac = m % 10_000_000;
    let mut s = if neg {
        format!("-{int}")
    } else {
        int.to_string()
    };
    if frac != 0 {
        let f = format!("{frac:07}");
        s.push('.');
        s.push_str(f.trim_end_matches('0'));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(s: &str) -> Rate {
        // "0.025" -> 250000
        let (i, f) = s.split_once('.').unwrap_or((s, ""));
        let f = format!("{f:0<7}");
        Some(i.parse::<i64>().unwrap() * 10_000_000 + f.parse::<i64>().unwrap())
    }

    #[test]
    fn pct_is_postgres_numeric_then_float8() {
        // (old, new, what PostgreSQL 15 answers for
        //  (abs(new - old) / nullif(old, 0) * 100)::float8, from psql)
        let table: &[(&str, &str, Option<f64>)] = &[
            ("0.03", "0.025", Some(16.666666666666668)),
            ("0.03", "0.03", Some(0.0)),
            ("0.01", "0.02", Some(100.0)),
            ("3", "1", Some(66.66666666666667)),
            ("0.0000001", "429.4967295", Some(429496729400.0)),
            ("429.4967295", "0.0000001", Some(99.99999997671694)),
            ("0.0000003", "0.0000001", Some(66.66666666666667)),
            ("0.0700000", "0.0100000", Some(85.71428571428571)),
            ("0", "0.01", None),
            ("0.0000007", "429.4967295", Some(61356675542.85714)),
            ("9999.1234567", "0.0000001", Some(99.99999999899991)),
            ("0.0000001", "0.0000002", Some(100.0)),
        ];
        for (a, b, want) in table {
            let got = pct(&[r(a), None, None], &[r(b), None, None]);
            assert_eq!(got, *want, "{a} -> {b}");
        }
        // the greatest zone wins; NULL zones are skipped
        assert_eq!(
            pct(&[r("1"), r("1"), None], &[r("1.5"), r("3"), r("2")]),
            Some(200.0)
        );
        assert_eq!(pct(&[None, None, None], &[r("1"), None, None]), None);
    }

    #[test]
    fn threshold_is_exact() {
        // (threshold, old, new, over?)
        let table: &[(f64, &str, &str, bool)] = &[
            (25.0, "0.04", "0.05", false), // exactly 25 %
            (25.0, "0.04", "0.0500001", true),
            (25.0, "0.04", "0.03", false),
            (0.0, "0.04", "0.04", false),
            (0.0, "0.04", "0.0400001", true),
            (-1.0, "0.04", "0.04", true),
            (12.5, "0.08", "0.09", false), // exactly 12.5 %
            (12.5, "0.08", "0.0900001", true),
            (f64::NAN, "0.01", "9", false),
            (f64::INFINITY, "0.01", "9", false),
            (f64::NEG_INFINITY, "0.01", "0.01", true),
            (1e300, "0.01", "9", false),
            (1e-300, "0.01", "0.0100001", true),
            (1e-300, "0.01", "0.01", false),
            (25.0, "0", "9", false), // no old rate: no percentage
        ];
        for (t, a, b, want) in table {
            let got = Threshold::new(*t).over(&[r(a), None, None], &[r(b), None, None]);
            assert_eq!(got, *want, "{t}: {a} -> {b}");
        }
        assert!(!Threshold::new(25.0).over(&[None, None, None], &[r("1"), None, None]));
        assert!(Threshold::new(-0.5).negative());
        assert!(!Threshold::new(-0.0).negative());
        assert!(!Threshold::new(f64::NAN).negative());
    }

    #[test]
    fn rate_text_is_trim_scale() {
        for (v, want) in [
            (250_000, "0.025"),
            (0, "0"),
            (10_000_000, "1"),
            (4_294_967_295, "429.4967295"),
            (1, "0.0000001"),
            (-5_000_000, "-0.5"),
        ] {
            assert_eq!(rate_text(v), want);
        }
    }

    proptest::proptest! {
        /// The exact percentage is within float rounding of the plain ratio.
        #[test]
        fn pct_close_to_ratio(a in 1i64..5_000_000_000, b in 0i64..5_000_000_000) {
            let p = pct(&[Some(a), None, None], &[Some(b), None, None]).unwrap();
            let want = (b - a).abs() as f64 / a as f64 * 100.0;
            proptest::prop_assert!((p - want).abs() <= want.abs() * 1e-12 + 1e-12, "{p} {want}");
        }
    }
}
