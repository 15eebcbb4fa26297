//! Cutting live calls at exhaustion (issue 21, `at_limit = cut`): when a change takes an
//! account's money or minutes away while its calls are up (a negative adjustment, a lower credit
//! or daily limit), the newest of its live calls end until what the others reserve fits
//! (`Credit::over_committed`, the arithmetic in `warpd_core::credit::calls_to_cut`). Runs with
//! the spend-rate alarm check ([`super::alarm::run`]): every `calls.limits_refresh_ms`, and early
//! when the books were refreshed with such an account.
//!
//! A call Kamailio cannot end yet (not answered: Kamailio 5.6 cannot end an early dialog) stays
//! and is tried again at the next round; an ended call is marked, so it is asked once.
//!
//! Owns: the effects. Must not touch: the arithmetic (warpd-core), the books (crate::credit).

use super::{now_us, CallService};

/// The cause an ended call's CDR names.
pub const CAUSE: &str = "credit exhausted";

/// One round: ends the calls the books say must end; returns how many were ended.
pub async fn run_once(s: &CallService) -> usize {
    let mut ended = 0;
    for (ban, calls) in s.shared.credit.over_committed(now_us()) {
        for id in calls {
            match s.hangup(&id, CAUSE).await {
                Ok(()) => {
                    s.shared.credit.mark_cut(&id);
                    ended += 1;
                    tracing::info!(ban = %ban, call_id = %id, "live call ended: the account's credit is exhausted");
                }
                Err(e) => {
                    tracing::warn!(ban = %ban, call_id = %id, error = %e, "live call of an exhausted account not ended yet; trying again at the next round");
                }
            }
        }
    }
    ended
}
