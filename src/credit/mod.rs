//! Credit control, the daemon's half: the books in memory (every account's terms, its committed
//! standing and what its live calls reserve), kept exact against PostgreSQL.
//!
//! - Terms and standings are read from `accounts` at start and every `calls.limits_refresh_ms`
//!   (a standing replaces the one in memory only when its `seq` is newer: the ledger trigger of
//!   sql/0014 orders an account's rows).
//! - A dip with a `call_id` of a customer with an account is granted its duration and reserves
//!   its cost atomically ([`Credit::admit`], under one lock): concurrent dips cannot both spend
//!   the same money. The grant itself is the pure `warpd_core::credit::grant`.
//! - The call's charge is a ledger row written in the CDR's transaction (`store::charge`); the
//!   writer then applies the standing that transaction returned and releases the reservation
//!   ([`Credit::settle`]).
//! - After a restart or a kill -9: standings come from `accounts` (transactional with the CDRs),
//!   and live calls' reservations from their start events (`StartInfo::credit_hold`).
//!
//! Owns: the books. Must not touch: HTTP, the dip procedure, the call table.

pub mod store;

/// Most accounts the `account_spend_alarm{ban}` gauge names at once; more in alarm at the same
/// time are counted under `ban="other"` (the label's cardinality is bounded whatever the number
/// of accounts; the log names every one).
pub const ALARM_SERIES_MAX: usize = 100;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use prometheus::{IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry};
use warpd_core::calls::events::CreditHold;
use warpd_core::credit::{calls_to_cut, grant, Account, AtLimit, Grant, Refusal, Reserved};
use warpd_core::credit::{SpendAlarm, Verdict};
use warpd_core::credit::{Standing, Tariff};

/// One account in memory.
#[derive(Clone, Debug)]
pub struct Book {
    pub account: Arc<Account>,
    pub standing: Standing,
    pub reserved: Reserved,
    /// call charges in the spend-rate alarm's window at its last check
    pub window_charged_e7: i64,
}

/// An account with a spend-rate alarm, as the alarm check needs it.
#[derive(Clone, Debug)]
pub struct AlarmInput {
    pub ban: String,
    pub alarm: SpendAlarm,
    pub reserved_e7: i64,
    pub blocked: bool,
}

/// A live call's reservation.
#[derive(Clone, Debug)]
struct Hold {
    ban: String,
    hold: CreditHold,
    max_duration_s: u32,
    /// admission order (the newest calls end first when an account must cut)
    order: u64,
    /// Kamailio was asked to end the call for credit (its reservation goes when its CDR does)
    cut: bool,
}

#[derive(Default)]
struct Books {
    accounts: HashMap<String, Book>,
    holds: HashMap<String, Hold>,
    next_order: u64,
}

impl Books {
    fn insert_hold(&mut self, call_id: &str, ban: &str, hold: CreditHold, max_duration_s: u32) {
        self.next_order += 1;
        let order = self.next_order;
        self.holds.insert(
            call_id.to_string(),
            Hold {
                ban: ban.to_string(),
                hold,
                max_duration_s,
                order,
                cut: false,
            },
        );
    }
}

/// Metrics of credit control.
pub struct CreditMetrics {
    /// dips refused for credit, by reason
    pub refused: IntCounterVec,
    /// live reservations
    pub holds: IntGauge,
    /// 1 per account in spend-rate alarm (at most [`ALARM_SERIES_MAX`] BANs, then `other`)
    pub spend_alarm: IntGaugeVec,
    /// spend-rate alarms raised, by action (`alarm`, `block`)
    pub spend_alarms: IntCounterVec,
}

/// Static, valid metric definitions (prometheus only rejects invalid names).
fn metric<T>(r: Result<T, prometheus::Error>) -> T {
    r.unwrap_or_else(|e| panic!("static metric definition rejected by prometheus: {e}"))
}

impl CreditMetrics {
    fn new(reg: &Registry) -> CreditMetrics {
        let m = CreditMetrics {
            refused: metric(IntCounterVec::new(
                Opts::new("credit_refused_total", "Dips refused for credit, by reason"),
                &["reason"],
            )),
            holds: metric(IntGauge::new(
                "credit_holds",
                "Live calls holding a credit reservation",
            )),
            spend_alarm: metric(IntGaugeVec::new(
                Opts::new(
                    "account_spend_alarm",
                    "Accounts whose spend rate is at or over their alarm threshold (1), by BAN (bounded: the rest under ban=other)",
                ),
                &["ban"],
            )),
            spend_alarms: metric(IntCounterVec::new(
                Opts::new(
                    "account_spend_alarms_total",
                    "Spend-rate alarms raised, by action (alarm, block)",
                ),
                &["action"],
            )),
        };
        let _ = reg.register(Box::new(m.spend_alarm.clone()));
        let _ = reg.register(Box::new(m.spend_alarms.clone()));
        let _ = reg.register(Box::new(m.refused.clone()));
        let _ = reg.register(Box::new(m.holds.clone()));
        m
    }
}

/// The credit books.
pub struct Credit {
    books: Mutex<Books>,
    pub metrics: CreditMetrics,
    /// wakes the spend-rate alarm check early (a dip or a charge may have crossed a threshold)
    pub alarm_wake: tokio::sync::Notify,
    /// accounts in alarm at the last check (the gauge's series)
    alarmed: Mutex<std::collections::BTreeSet<String>>,
}

impl Credit {
    pub fn new(reg: &Registry) -> Credit {
        Credit {
            books: Mutex::new(Books::default()),
            metrics: CreditMetrics::new(reg),
            alarm_wake: tokio::sync::Notify::new(),
            alarmed: Mutex::new(Default::default()),
        }
    }

    fn books(&self) -> MutexGuard<'_, Books> {
        self.books.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Replaces the accounts' terms with `rows` (an account no longer listed is dropped), and
    /// each standing with the row's when the row's is newer.
    pub fn refresh(&self, rows: Vec<(String, Account, Standing)>) {
        let mut b = self.books();
        let mut next = HashMap::with_capacity(rows.len());
        for (ban, account, standing) in rows {
            let old = b.accounts.remove(&ban);
            let window_charged_e7 = old.as_ref().map_or(0, |o| o.window_charged_e7);
            let standing = match old {
                Some(old) if old.standing.seq > standing.seq => old.standing,
                _ => standing,
            };
            next.insert(
                ban,
                Book {
                    account: Arc::new(account),
                    standing,
                    reserved: Reserved::default(),
                    window_charged_e7,
                },
            );
        }
        // the reservations are the live holds' sums (an account created while its customer had
        // calls up counts them too)
        for h in b.holds.values() {
            if let Some(book) = next.get_mut(&h.ban) {
                add(&mut book.reserved, &h.hold);
            }
        }
        // an account that must cut live calls (its money went while they were up) is looked at
        // by the calls service's credit watch now rather than at its next round
        if next
            .values()
            .any(|k| k.account.at_limit == AtLimit::Cut && k.reserved.calls > 0)
        {
            self.alarm_wake.notify_one();
        }
        b.accounts = next;
    }

    /// Applies a standing read in a ledger transaction (newer `seq` only).
    pub fn apply_standing(&self, ban: &str, standing: Standing) {
        let mut b = self.books();
        if let Some(book) = b.accounts.get_mut(ban) {
            if standing.seq > book.standing.seq {
                book.standing = standing;
            }
        }
    }

    /// True when the customer has an account.
    pub fn has_account(&self, ban: &str) -> bool {
        self.books().accounts.contains_key(ban)
    }

    /// An account's book (terms, standing, reservations).
    pub fn book(&self, ban: &str) -> Option<Book> {
        self.books().accounts.get(ban).cloned()
    }

    /// The grant of a call that already holds one (a retransmitted dip).
    pub fn held(&self, call_id: &str) -> Option<u32> {
        self.books().holds.get(call_id).map(|h| h.max_duration_s)
    }

    /// Grants a new call of `ban` priced by `tariffs` its duration and, with a `call_id`,
    /// reserves its cost, atomically. None when the customer has no account (not limited).
    pub fn admit(
        &self,
        ban: &str,
        call_id: Option<&str>,
        tariffs: &[Tariff],
        now_us: i64,
        cap_s: u32,
    ) -> Option<Result<Grant, Refusal>> {
        let mut b = self.books();
        let book = b.accounts.get_mut(ban)?;
        let g = grant(
            &book.account,
            &book.standing,
            &book.reserved,
            tariffs,
            now_us,
            cap_s,
        );
        match &g {
            Ok(g) => {
                if let Some(id) = call_id {
                    let hold = CreditHold {
                        reserve_e7: g.reserve_e7,
                        reserve_s: g.reserve_s,
                    };
                    add(&mut book.reserved, &hold);
                    if let Some(a) = &book.account.spend_alarm {
                        if a.verdict(book.window_charged_e7, book.reserved.money_e7, true)
                            != Verdict::Quiet
                        {
                            self.alarm_wake.notify_one();
                        }
                    }
                    b.insert_hold(id, ban, hold, g.max_duration_s);
                    self.metrics.holds.set(b.holds.len() as i64);
                }
            }
            Err(r) => self.metrics.refused.with_label_values(&[r.label()]).inc(),
        }
        Some(g)
    }

    /// Restores a live call's reservation (after a restart: from its start event).
    pub fn restore(&self, call_id: &str, ban: &str, hold: CreditHold, max_duration_s: u32) {
        let mut b = self.books();
        if b.holds.contains_key(call_id) {
            return;
        }
        if let Some(book) = b.accounts.get_mut(ban) {
            add(&mut book.reserved, &hold);
        }
        b.insert_hold(call_id, ban, hold, max_duration_s);
        self.metrics.holds.set(b.holds.len() as i64);
    }

    /// After a committed batch: the accounts' new standings (from the ledger transaction),
    /// then the finished calls' reservations released (in this order: between the two a dip
    /// sees both the charge and the reservation, never neither).
    pub fn settle(&self, standings: Vec<(String, Standing)>, finished: &[String]) {
        let mut b = self.books();
        for (ban, s) in standings {
            if let Some(book) = b.accounts.get_mut(&ban) {
                if book.account.spend_alarm.is_some() {
                    self.alarm_wake.notify_one();
                }
                if s.seq > book.standing.seq {
                    book.standing = s;
                }
            }
        }
        for id in finished {
            if let Some(h) = b.holds.remove(id) {
                if let Some(book) = b.accounts.get_mut(&h.ban) {
                    book.reserved.money_e7 -= h.hold.reserve_e7;
                    book.reserved.seconds -= i64::from(h.hold.reserve_s);
                    book.reserved.calls = book.reserved.calls.saturating_sub(1);
                }
            }
        }
        self.metrics.holds.set(b.holds.len() as i64);
    }

    /// Every account with a spend-rate alarm.
    pub fn alarm_inputs(&self) -> Vec<AlarmInput> {
        self.books()
            .accounts
            .iter()
            .filter_map(|(ban, book)| {
                Some(AlarmInput {
                    ban: ban.clone(),
                    alarm: book.account.spend_alarm?,
                    reserved_e7: book.reserved.money_e7,
                    blocked: book.account.blocked,
                })
            })
            .collect()
    }

    /// Records an alarm check: each account's charges in its window, and which accounts are in
    /// alarm now (the gauge: raised ones set, cleared ones removed; counters of new alarms).
    pub fn note_alarms(&self, charged: &[(String, i64)], in_alarm: &[String]) {
        {
            let mut b = self.books();
            for (ban, c) in charged {
                if let Some(book) = b.accounts.get_mut(ban) {
                    book.window_charged_e7 = *c;
                }
            }
        }
        let mut alarmed = self.alarmed.lock().unwrap_or_else(|p| p.into_inner());
        let now: std::collections::BTreeSet<String> = in_alarm.iter().cloned().collect();
        for ban in now.difference(&alarmed) {
            tracing::warn!(ban = %ban, "account spend rate at or over its alarm threshold");
            self.metrics
                .spend_alarms
                .with_label_values(&["alarm"])
                .inc();
        }
        // the gauge: the first BANs (in order) up to the bound, the rest summed under "other";
        // series of BANs no longer named are removed (never a reset: a scrape sees no gap)
        let named = |set: &std::collections::BTreeSet<String>| -> Vec<String> {
            set.iter().take(ALARM_SERIES_MAX).cloned().collect()
        };
        let (was, is) = (named(&alarmed), named(&now));
        for ban in was.iter().filter(|b| !is.contains(b)) {
            let _ = self.metrics.spend_alarm.remove_label_values(&[ban]);
        }
        for ban in &is {
            self.metrics.spend_alarm.with_label_values(&[ban]).set(1);
        }
        let other = now.len().saturating_sub(ALARM_SERIES_MAX) as i64;
        if other > 0 {
            self.metrics
                .spend_alarm
                .with_label_values(&["other"])
                .set(other);
        } else {
            let _ = self.metrics.spend_alarm.remove_label_values(&["other"]);
        }
        *alarmed = now;
    }

    /// The live calls to end now, per account with `at_limit = cut` whose live calls reserve
    /// more than it may still spend (`warpd_core::credit::calls_to_cut`: the newest first).
    /// Calls already being cut are left out, and their reservations with them.
    pub fn over_committed(&self, now_us: i64) -> Vec<(String, Vec<String>)> {
        let b = self.books();
        let mut live: HashMap<&str, Vec<(&str, &Hold)>> = HashMap::new();
        for (id, h) in b.holds.iter().filter(|(_, h)| !h.cut) {
            live.entry(h.ban.as_str()).or_default().push((id, h));
        }
        let mut out = Vec::new();
        for (ban, mut calls) in live {
            let Some(book) = b.accounts.get(ban) else {
                continue;
            };
            let a = &book.account;
            // a blocked account's calls end when it is blocked (all of them)
            if a.at_limit != AtLimit::Cut || a.blocked {
                continue;
            }
            calls.sort_by_key(|(_, h)| h.order);
            let holds: Vec<CreditHold> = calls.iter().map(|(_, h)| h.hold).collect();
            let n = calls_to_cut(a, &book.standing, &holds, now_us);
            if n > 0 {
                let ids = calls[calls.len() - n..]
                    .iter()
                    .rev()
                    .map(|(id, _)| id.to_string())
                    .collect();
                out.push((ban.to_string(), ids));
            }
        }
        out
    }

    /// Notes that Kamailio was asked to end `call_id` for credit ([`Credit::over_committed`]
    /// leaves it out from now on).
    pub fn mark_cut(&self, call_id: &str) {
        if let Some(h) = self.books().holds.get_mut(call_id) {
            h.cut = true;
        }
    }

    /// Live calls of `ban` holding a reservation (their call ids).
    pub fn live_calls(&self, ban: &str) -> Vec<String> {
        self.books()
            .holds
            .iter()
            .filter(|(_, h)| h.ban == ban)
            .map(|(id, _)| id.clone())
            .collect()
    }
}

fn add(r: &mut Reserved, h: &CreditHold) {
    r.money_e7 += h.reserve_e7;
    r.seconds += i64::from(h.reserve_s);
    r.calls += 1;
}

#[cfg(test)]
mod tests {
    use super::*;
    use prometheus::core::Collector;

    fn series(c: &Credit) -> Vec<(String, i64)> {
        let mut v: Vec<(String, i64)> = c
            .metrics
            .spend_alarm
            .collect()
            .iter()
            .flat_map(|f| f.get_metric().to_vec())
            .map(|m| {
                (
                    m.get_label()[0].value().to_string(),
                    m.get_gauge().get_value() as i64,
                )
            })
            .collect();
        v.sort();
        v
    }

    #[test]
    fn alarm_gauge_names_at_most_the_bound_and_removes_cleared_series() {
        let c = Credit::new(&Registry::new());
        let many: Vec<String> = (0..ALARM_SERIES_MAX + 2)
            .map(|i| format!("b{i:04}"))
            .collect();
        c.note_alarms(&[], &many);
        let s = series(&c);
        assert_eq!(s.len(), ALARM_SERIES_MAX + 1, "the bound plus other");
        assert!(s.contains(&("other".to_string(), 2)));
        assert_eq!(
            c.metrics.spend_alarms.with_label_values(&["alarm"]).get(),
            many.len() as u64
        );
        // two stay in alarm: only theirs remain, no "other"; no new alarm counted
        c.note_alarms(&[], &many[..2]);
        assert_eq!(
            series(&c),
            vec![("b0000".to_string(), 1), ("b0001".to_string(), 1)]
        );
        assert_eq!(
            c.metrics.spend_alarms.with_label_values(&["alarm"]).get(),
            many.len() as u64
        );
        c.note_alarms(&[], &[]);
        assert!(series(&c).is_empty());
    }

    fn cut_account(balance_e7: i64) -> (Account, Standing) {
        let a = Account {
            mode: warpd_core::credit::BillingMode::Prepaid,
            credit_limit_e7: 0,
            daily_spend_limit_e7: None,
            monthly_minutes: None,
            per_call_cost_cap_e7: None,
            at_limit: AtLimit::Cut,
            tz: chrono_tz::UTC,
            blocked: false,
            spend_alarm: None,
        };
        let s = Standing {
            seq: 1,
            balance_e7,
            ..Default::default()
        };
        (a, s)
    }

    #[test]
    fn money_taken_away_from_live_calls_ends_the_newest_first() {
        const NOW: i64 = 1_796_558_400_000_000;
        // 1.00 per minute, billed per second
        let t = [Tariff {
            rate_e7: 10_000_000,
            min: 1,
            inc: 1,
        }];
        let c = Credit::new(&Registry::new());
        let (a, s) = cut_account(100_000_000); // 10.00
        c.refresh(vec![("10002".into(), a.clone(), s)]);
        // three calls of 3 minutes each (the global cap): 9.00 reserved
        for id in ["c1", "c2", "c3"] {
            let g = c.admit("10002", Some(id), &t, NOW, 180);
            assert_eq!(g.map(|g| g.map(|g| g.max_duration_s)), Some(Ok(180)));
        }
        assert!(c.over_committed(NOW).is_empty(), "9.00 of 10.00 fits");
        // an adjustment leaves 4.00: one call fits, the two newest end
        let (_, s) = cut_account(40_000_000);
        c.refresh(vec![("10002".into(), a.clone(), Standing { seq: 2, ..s })]);
        assert_eq!(
            c.over_committed(NOW),
            vec![(
                "10002".to_string(),
                vec!["c3".to_string(), "c2".to_string()]
            )]
        );
        // once asked to end, a call is not asked again; nothing else must end
        c.mark_cut("c3");
        c.mark_cut("c2");
        assert!(c.over_committed(NOW).is_empty());
        // an account that rejects at its limit never cuts
        let reject = Account {
            at_limit: AtLimit::Reject,
            ..a
        };
        let (_, s) = cut_account(0);
        c.refresh(vec![("10002".into(), reject, Standing { seq: 3, ..s })]);
        assert!(c.over_committed(NOW).is_empty());
    }
}
