//! The spend-rate alarm check (issue 21 part 5, fraud signal): every `calls.limits_refresh_ms`,
//! and early when a dip or a committed charge may have crossed an account's threshold
//! (`Credit::alarm_wake`, at most every [`MIN_GAP`]), each account with an alarm is judged by
//! `warpd_core::credit::SpendAlarm::verdict` on its call charges committed in the window (from
//! the ledger: exact after a restart) plus its live reservations. An account in alarm shows in
//! the metrics and the log; with `auto_block` it is blocked (`credit::store::block_for`: audited,
//! no ledger row), the books refreshed at once (its next dip gets 403), and with
//! `at_limit = cut` its live calls end through `CallService::hangup_customer`.
//!
//! The same rounds end live calls of exhausted accounts ([`super::cut`]).
//!
//! Owns: the check's schedule and its effects. Must not touch: the arithmetic (warpd-core).

use std::sync::Weak;
use std::time::Duration;

use tokio_util::sync::CancellationToken;
use warpd_core::credit::{AtLimit, Verdict};

use super::{now_us, CallService};

/// Shortest time between two checks (a burst of dips wakes it once).
pub const MIN_GAP: Duration = Duration::from_millis(100);

/// Why warpd blocks an account for its spend rate (its `blocked_reason`, the hangup cause).
pub const REASON: &str = "spend rate";

/// Runs the check until `shutdown` (or the service is gone).
pub async fn run(svc: Weak<CallService>, every: Duration, shutdown: CancellationToken) {
    loop {
        let Some(s) = svc.upgrade() else { return };
        tokio::select! {
            _ = s.shared.credit.alarm_wake.notified() => {}
            _ = tokio::time::sleep(every) => {}
            _ = shutdown.cancelled() => return,
        }
        if let Err(e) = check(&s).await {
            tracing::warn!(error = %e, "spend-rate alarm check failed; retrying at the next one");
        }
        super::cut::run_once(&s).await;
        drop(s);
        tokio::select! {
            _ = tokio::time::sleep(MIN_GAP) => {}
            _ = shutdown.cancelled() => return,
        }
    }
}

/// One check of every account with a spend-rate alarm.
async fn check(s: &CallService) -> Result<(), super::CallsError> {
    let inputs = s.shared.credit.alarm_inputs();
    if inputs.is_empty() {
        s.shared.credit.note_alarms(&[], &[]);
        return Ok(());
    }
    let now = now_us();
    let bans: Vec<&str> = inputs.iter().map(|i| i.ban.as_str()).collect();
    let from: Vec<i64> = inputs
        .iter()
        .map(|i| i.alarm.window_start_us(now))
        .collect();
    let mut client = s.pool().get().await.map_err(crate::db::DbError::Pool)?;
    let charged = crate::credit::store::window_charges(&**client, &bans, &from)
        .await
        .map_err(crate::db::DbError::query("reading the spend-rate windows"))?;
    let charged_of = |ban: &str| {
        charged
            .iter()
            .find(|(b, _)| b == ban)
            .map_or(0, |(_, c)| *c)
    };
    let mut in_alarm = Vec::new();
    let mut block = Vec::new();
    for i in &inputs {
        match i
            .alarm
            .verdict(charged_of(&i.ban), i.reserved_e7, i.blocked)
        {
            Verdict::Quiet => {}
            Verdict::Alarm => in_alarm.push(i.ban.clone()),
            Verdict::Block => {
                in_alarm.push(i.ban.clone());
                block.push(i.ban.clone());
            }
        }
    }
    s.shared.credit.note_alarms(&charged, &in_alarm);
    let mut cut = Vec::new();
    for ban in &block {
        let r = crate::credit::store::block_for(&mut client, ban, REASON)
            .await
            .map_err(crate::db::DbError::query(
                "blocking an account for its spend rate",
            ))?;
        if let Some(at_limit) = r {
            tracing::warn!(ban = %ban, "account blocked automatically: spend rate");
            s.shared
                .credit
                .metrics
                .spend_alarms
                .with_label_values(&["block"])
                .inc();
            if at_limit == AtLimit::Cut {
                cut.push(ban);
            }
        }
    }
    drop(client);
    if !block.is_empty() {
        s.refresh_limits().await?;
    }
    for ban in cut {
        let n = s.hangup_customer(ban, REASON).await;
        tracing::info!(ban = %ban, calls = n, "account blocked for its spend rate: live calls ended");
    }
    Ok(())
}
