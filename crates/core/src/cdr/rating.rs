//! Rating: billed seconds under a (minimum, increment) pair and money from a per-minute rate.
//! Pure integer arithmetic; money is in 1e-7 currency units (the routing engine's `Rate` unit).

/// Billable seconds of a call lasting `duration_ms` under `min`/`inc` seconds (e.g. 6/6, 60/60,
/// 30/6). A started second counts as a whole second; a zero-length call bills nothing; otherwise the
/// first `min` seconds are billed at least, then whole increments.
pub fn billed_seconds(duration_ms: i64, min: u32, inc: u32) -> u32 {
    if duration_ms <= 0 {
        return 0;
    }
    let secs = ((duration_ms + 999) / 1000).min(u32::MAX as i64) as u64;
    let min = min as u64;
    let inc = (inc as u64).max(1);
    let billed = if secs <= min {
        min
    } else {
        min + (secs - min).div_ceil(inc) * inc
    };
    billed.min(u32::MAX as u64) as u32
}

/// Money for `billed` seconds at `rate_e7` (1e-7 units per minute), in 1e-7 units, rounded half up.
pub fn amount_e7(billed: u32, rate_e7: i64) -> i64 {
    let num = billed as i128 * rate_e7 as i128;
    ((num + 30) / 60) as i64
}

/// Formats 1e-7 units as a decimal string with 7 places ("0.0045000").
pub fn fmt_e7(v: i64) -> String {
    let sign = if v < 0 { "-" } else { "" };
    let a = v.unsigned_abs();
    format!("{sign}{}.{:07}", a / 10_000_000, a % 10_000_000)
}

/// A per-minute rate given as a float on the dip answer, back in 1e-7 units.
pub fn rate_to_e7(rate: f64) -> i64 {
    if rate.is_finite() && rate >= 0.0 {
        (rate * 1e7).round() as i64
    } else {
        0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn increments() {
        // 6/6
        assert_eq!(billed_seconds(0, 6, 6), 0);
        assert_eq!(billed_seconds(1, 6, 6), 6);
        assert_eq!(billed_seconds(6_000, 6, 6), 6);
        assert_eq!(billed_seconds(6_001, 6, 6), 12);
        assert_eq!(billed_seconds(61_000, 6, 6), 66);
        // 60/60
        assert_eq!(billed_seconds(1_000, 60, 60), 60);
        assert_eq!(billed_seconds(60_000, 60, 60), 60);
        assert_eq!(billed_seconds(61_000, 60, 60), 120);
        // 30/6
        assert_eq!(billed_seconds(10_000, 30, 6), 30);
        assert_eq!(billed_seconds(31_000, 30, 6), 36);
        assert_eq!(billed_seconds(36_500, 30, 6), 42);
        // 1/1 and 0/1
        assert_eq!(billed_seconds(1_500, 1, 1), 2);
        assert_eq!(billed_seconds(1_500, 0, 1), 2);
    }

    #[test]
    fn money() {
        // 66 s at $0.0045/min = $0.00495
        assert_eq!(amount_e7(66, 45_000), 49_500);
        assert_eq!(fmt_e7(49_500), "0.0049500");
        assert_eq!(fmt_e7(12_345_678_901), "1234.5678901");
        // rounding half up: 1 s at 1e-7/min = 1/60 -> 0; 30 s -> 0.5 -> 1
        assert_eq!(amount_e7(1, 1), 0);
        assert_eq!(amount_e7(30, 1), 1);
        assert_eq!(rate_to_e7(0.0045), 45_000);
        assert_eq!(rate_to_e7(f64::NAN), 0);
    }

    proptest! {
        #[test]
        fn billed_is_at_least_duration_and_min(ms in 1i64..10_000_000, min in 0u32..120, inc in 1u32..120) {
            let b = billed_seconds(ms, min, inc) as i64;
            prop_assert!(b * 1000 >= ms);
            prop_assert!(b >= min as i64);
            if b > min as i64 {
                prop_assert_eq!((b - min as i64) % inc as i64, 0);
                prop_assert!((b - inc as i64) * 1000 < ms);
            }
        }
    }
}
