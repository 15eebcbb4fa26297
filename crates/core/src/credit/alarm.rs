//! Fraud signal (issue 21 part 5): an account's spend rate. Spend in the last `window_min`
//! minutes = the call charges committed in that window (ledger rows of kind `call`) plus what the
//! account's live calls reserve now; at or over `threshold_e7` the account is in alarm, and with
//! `auto_block` a not-yet-blocked account is to be blocked (reason "spend rate").
//!
//! Owns: the window's bounds and the verdict. Must not touch: I/O, the clock (`now_us` is a
//! parameter).

/// Longest window (a day): a spend *rate* alarm, not a daily limit.
pub const WINDOW_MIN_MAX: u32 = 1440;

/// An account's spend-rate alarm (provisioned).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SpendAlarm {
    /// minutes looked back (1..=[`WINDOW_MIN_MAX`])
    pub window_min: u32,
    /// spend (1e-7 units) in the window that raises the alarm (> 0)
    pub threshold_e7: i64,
    /// block the account when the alarm is raised
    pub auto_block: bool,
}

/// What the daemon does about an account's spend rate.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// under the threshold
    Quiet,
    /// at or over the threshold: the metric only (no auto block, or blocked already)
    Alarm,
    /// at or over the threshold, `auto_block`, not blocked yet: block it now
    Block,
}

impl SpendAlarm {
    /// The window's first instant (µs): charges at or after it count.
    pub fn window_start_us(&self, now_us: i64) -> i64 {
        now_us.saturating_sub(i64::from(self.window_min.clamp(1, WINDOW_MIN_MAX)) * 60_000_000)
    }

    /// Spend in the window: charges committed in it plus live reservations (negative inputs,
    /// e.g. a refund, count as nothing).
    pub fn spend_e7(charged_e7: i64, reserved_e7: i64) -> i64 {
        charged_e7.max(0).saturating_add(reserved_e7.max(0))
    }

    /// The verdict for an account with `charged_e7` committed in the window, `reserved_e7` held
    /// by its live calls, blocked already or not.
    pub fn verdict(&self, charged_e7: i64, reserved_e7: i64, blocked: bool) -> Verdict {
        if Self::spend_e7(charged_e7, reserved_e7) < self.threshold_e7 {
            Verdict::Quiet
        } else if self.auto_block && !blocked {
            Verdict::Block
        } else {
            Verdict::Alarm
        }
    }
}

/// Charges `(at_us, amount_e7)` at or after the window's start (for callers holding the rows).
pub fn charged_in_window(charges: &[(i64, i64)], alarm: &SpendAlarm, now_us: i64) -> i64 {
    let from = alarm.window_start_us(now_us);
    charges
        .iter()
        .filter(|(at, _)| *at >= from && *at <= now_us)
        .fold(0i64, |s, (_, a)| s.saturating_add(*a))
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIN: i64 = 60_000_000;

    fn alarm(auto_block: bool) -> SpendAlarm {
        SpendAlarm {
            window_min: 10,
            threshold_e7: 100_0000000,
            auto_block,
        }
    }

    #[test]
    fn window_counts_only_the_last_n_minutes() {
        let now = 1_000 * MIN;
        let a = alarm(false);
        assert_eq!(a.window_start_us(now), now - 10 * MIN);
        let charges = [
            (now - 11 * MIN, 50_0000000), // before the window
            (now - 10 * MIN, 30_0000000), // its first instant counts
            (now - MIN, 20_0000000),
            (now + MIN, 99_0000000), // a clock skewed row from the future
        ];
        assert_eq!(charged_in_window(&charges, &a, now), 50_0000000);
        // ten minutes later only the newest is still in
        assert_eq!(charged_in_window(&charges, &a, now + 10 * MIN), 99_0000000);
    }

    #[test]
    fn verdicts() {
        let cases = [
            // (auto_block, charged, reserved, blocked, verdict)
            (false, 99_0000000, 0, false, Verdict::Quiet),
            (false, 100_0000000, 0, false, Verdict::Alarm),
            (true, 99_0000000, 0, false, Verdict::Quiet),
            (true, 60_0000000, 40_0000000, false, Verdict::Block), // reservations count
            (true, 100_0000000, 0, true, Verdict::Alarm),          // blocked already
            (true, -500_0000000, 99_0000000, false, Verdict::Quiet), // a refund is no credit here
            (true, i64::MAX, i64::MAX, false, Verdict::Block),     // saturates, no overflow
        ];
        for (auto, charged, reserved, blocked, want) in cases {
            assert_eq!(
                alarm(auto).verdict(charged, reserved, blocked),
                want,
                "{auto} {charged} {reserved} {blocked}"
            );
        }
    }

    #[test]
    fn window_is_clamped() {
        let a = SpendAlarm {
            window_min: 0,
            threshold_e7: 1,
            auto_block: false,
        };
        assert_eq!(a.window_start_us(10 * MIN), 9 * MIN);
        let b = SpendAlarm {
            window_min: u32::MAX,
            ..a
        };
        assert_eq!(b.window_start_us(0), -1440 * MIN);
    }
}
