//! Credit control, pure: what an account may still spend, and how long a new call may last.
//!
//! Money is an integer in 1e-7 currency units (the routing engine's `Rate` unit); durations are
//! whole seconds on the billing grid of the route (`min`, then `inc` steps: `cdr::rating`).
//!
//! **Reservation.** Every call admitted against an account reserves what its whole granted
//! duration (`max_duration_s`) would cost at its route's sell rate; the next dip sees the balance
//! minus every live call's reservation, so N simultaneous calls can together never spend more than
//! the account has. A call's reservation is released when its CDR (and the ledger charge, the
//! same transaction) is committed: the charge is at most the reservation because the CDR bills at
//! most `max_duration_s` (recorded in the call's start). An account's `per_call_cost_cap` bounds
//! each reservation, so that several calls share a balance instead of the first taking it all.
//!
//! Owns: affordability and reservation arithmetic, day/month rollover in the account's time zone,
//! the typed refusal. Must not touch: I/O, the clock (`now_us` is a parameter).

use chrono::{Datelike, NaiveDate};

use crate::calls::events::CreditHold;
use crate::cdr::rating::{amount_e7, billed_seconds};

pub mod alarm;
#[cfg(test)]
mod tests;

pub use alarm::{SpendAlarm, Verdict};

/// How an account pays.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum BillingMode {
    /// calls spend a balance paid in advance (top-ups); nothing below zero
    Prepaid,
    /// calls are invoiced later; the balance may go down to `-credit_limit`
    #[default]
    Postpaid,
}

impl BillingMode {
    pub fn as_str(self) -> &'static str {
        match self {
            BillingMode::Prepaid => "prepaid",
            BillingMode::Postpaid => "postpaid",
        }
    }
    pub fn parse(s: &str) -> Option<BillingMode> {
        match s {
            "prepaid" => Some(BillingMode::Prepaid),
            "postpaid" => Some(BillingMode::Postpaid),
            _ => None,
        }
    }
}

/// What happens when an account reaches a limit.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum AtLimit {
    /// new calls are refused; live calls run to their granted duration
    #[default]
    Reject,
    /// new calls are refused, and live calls are ended when the account is blocked or its
    /// credit is taken away (an adjustment below what is reserved)
    Cut,
}

impl AtLimit {
    pub fn as_str(self) -> &'static str {
        match self {
            AtLimit::Reject => "reject",
            AtLimit::Cut => "cut",
        }
    }
    pub fn parse(s: &str) -> Option<AtLimit> {
        match s {
            "reject" => Some(AtLimit::Reject),
            "cut" => Some(AtLimit::Cut),
            _ => None,
        }
    }
}

/// An account's terms (provisioned).
#[derive(Clone, Debug, PartialEq)]
pub struct Account {
    pub mode: BillingMode,
    /// postpaid: how far below zero the balance may go (0 for prepaid)
    pub credit_limit_e7: i64,
    pub daily_spend_limit_e7: Option<i64>,
    pub monthly_minutes: Option<u32>,
    pub per_call_cost_cap_e7: Option<i64>,
    pub at_limit: AtLimit,
    /// rollovers of the daily and monthly counters happen at this zone's midnight
    pub tz: chrono_tz::Tz,
    pub blocked: bool,
    /// spend-rate alarm (fraud signal), if any
    pub spend_alarm: Option<SpendAlarm>,
}

/// An account's committed figures (the `accounts` row, maintained with the ledger).
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Standing {
    /// orders an account's ledger rows: a newer standing has a higher `seq`
    pub seq: i64,
    pub balance_e7: i64,
    /// the local day `day_spend_e7` counts, and the local month (its first day)
    /// `month_billed_s` counts; a counter of an earlier day/month reads 0
    pub spend_day: Option<NaiveDate>,
    pub day_spend_e7: i64,
    pub spend_month: Option<NaiveDate>,
    pub month_billed_s: i64,
}

/// The local day and the first day of the local month of `now_us` in `tz`.
pub fn local_day(tz: chrono_tz::Tz, now_us: i64) -> (NaiveDate, NaiveDate) {
    let day = chrono::DateTime::from_timestamp_micros(now_us)
        .unwrap_or_default()
        .with_timezone(&tz)
        .date_naive();
    let month = day.with_day(1).unwrap_or(day);
    (day, month)
}

impl Standing {
    /// Spent on `day` (0 when the counter is of an earlier day: the rollover).
    pub fn day_spend(&self, day: NaiveDate) -> i64 {
        if self.spend_day == Some(day) {
            self.day_spend_e7
        } else {
            0
        }
    }
    /// Billed seconds in the month starting `month` (0 when the counter is of an earlier one).
    pub fn month_seconds(&self, month: NaiveDate) -> i64 {
        if self.spend_month == Some(month) {
            self.month_billed_s
        } else {
            0
        }
    }
}

/// What the account's live calls hold.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Reserved {
    pub money_e7: i64,
    pub seconds: i64,
    pub calls: u32,
}

/// A route's price for the customer: sell rate per minute and the billing grid.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Tariff {
    pub rate_e7: i64,
    pub min: u32,
    pub inc: u32,
}

impl Tariff {
    /// Billed seconds of the shortest answered call.
    pub fn first_increment(&self) -> u32 {
        billed_seconds(1, self.min, self.inc)
    }
    /// Money for `billed` seconds.
    pub fn cost(&self, billed: u32) -> i64 {
        amount_e7(billed, self.rate_e7)
    }
}

/// The largest point of the billing grid (`min`, `min + k·inc`; with `min = 0`: `k·inc`, k ≥ 1)
/// that is ≤ `secs`, or None when even the first increment is above it.
pub fn grid_floor(secs: i64, min: u32, inc: u32) -> Option<u32> {
    let inc = i64::from(inc.max(1));
    let min = i64::from(min);
    if secs < min {
        return None;
    }
    let b = min + (secs - min) / inc * inc;
    if b < 1 {
        return None;
    }
    Some(b.min(i64::from(u32::MAX)) as u32)
}

/// The longest billed duration `money_e7` pays for at `t`, on its billing grid; None when the
/// first increment costs more. A free tariff (rate 0) pays for any duration (`u32::MAX`).
pub fn max_billed(money_e7: i64, t: &Tariff) -> Option<u32> {
    if t.rate_e7 <= 0 {
        return Some(u32::MAX);
    }
    if money_e7 < 0 {
        return None;
    }
    // amount_e7(b) = floor((b·rate + 30) / 60) ≤ M  ⇔  b·rate ≤ 60·M + 29
    let secs = (i128::from(money_e7) * 60 + 29) / i128::from(t.rate_e7);
    let secs = secs.min(i128::from(i64::MAX)) as i64;
    grid_floor(secs, t.min, t.inc)
}

/// Why a call was refused for credit.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("account blocked")]
    Blocked,
    #[error("insufficient credit for the first billing increment")]
    NoCredit,
    #[error("daily spend limit reached")]
    DailyLimit,
    #[error("monthly minutes used up")]
    MonthlyMinutes,
    #[error("per-call cost cap below the first billing increment")]
    PerCallCap,
}

impl Refusal {
    /// 403 for a blocked account, 402 Payment Required for the rest.
    pub fn sip_code(self) -> u16 {
        match self {
            Refusal::Blocked => 403,
            _ => 402,
        }
    }
    /// Metric label.
    pub fn label(self) -> &'static str {
        match self {
            Refusal::Blocked => "blocked",
            Refusal::NoCredit => "no_credit",
            Refusal::DailyLimit => "daily_limit",
            Refusal::MonthlyMinutes => "monthly_minutes",
            Refusal::PerCallCap => "per_call_cap",
        }
    }
}

/// What a call may do: its longest duration (seconds, on every usable route's billing grid) and
/// what it reserves until its CDR is charged.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Grant {
    pub max_duration_s: u32,
    pub reserve_e7: i64,
    /// billed seconds it reserves against the monthly minutes
    pub reserve_s: u32,
    /// per tariff given: true when the account can pay its first increment (the dip keeps those
    /// routes only, in their order)
    pub usable: Vec<bool>,
}

/// Money the account may spend in all (its live calls included), and which limit binds: the
/// balance down to the credit limit, and today's spend up to the daily limit.
fn money_available(a: &Account, s: &Standing, day: NaiveDate) -> (i64, Refusal) {
    let mut left = s.balance_e7.saturating_add(a.credit_limit_e7);
    let mut why = Refusal::NoCredit;
    if let Some(d) = a.daily_spend_limit_e7 {
        let daily = d.saturating_sub(s.day_spend(day));
        if daily < left {
            left = daily;
            why = Refusal::DailyLimit;
        }
    }
    (left, why)
}

/// Money the account may still commit now, and which limit binds.
fn money_left(a: &Account, s: &Standing, r: &Reserved, day: NaiveDate) -> (i64, Refusal) {
    let (available, mut why) = money_available(a, s, day);
    let mut left = available.saturating_sub(r.money_e7);
    if let Some(cap) = a.per_call_cost_cap_e7 {
        if cap < left {
            left = cap;
            why = Refusal::PerCallCap;
        }
    }
    (left, why)
}

/// How many of an account's live calls end now so that what the others reserve fits in what
/// the account may still spend (`at_limit = cut`). Grants never reserve more than there is, so
/// this is non-zero only after a change took money or minutes away while calls were up: a
/// negative adjustment, a lower credit or daily limit, fewer monthly minutes. `holds` are the
/// live calls' reservations oldest first; the newest calls end first. Emergency calls hold
/// nothing and are never among them.
pub fn calls_to_cut(a: &Account, s: &Standing, holds: &[CreditHold], now_us: i64) -> usize {
    let (day, month) = local_day(a.tz, now_us);
    let (money, _) = money_available(a, s, day);
    let secs = a
        .monthly_minutes
        .map(|m| (i64::from(m) * 60).saturating_sub(s.month_seconds(month)));
    let mut reserved_e7: i64 = holds.iter().map(|h| h.reserve_e7).sum();
    let mut reserved_s: i64 = holds.iter().map(|h| i64::from(h.reserve_s)).sum();
    let mut keep = holds.len();
    while keep > 0 && (reserved_e7 > money || secs.is_some_and(|x| reserved_s > x)) {
        keep -= 1;
        reserved_e7 -= holds[keep].reserve_e7;
        reserved_s -= i64::from(holds[keep].reserve_s);
    }
    holds.len() - keep
}

/// Grants a new call of `account` priced by `tariffs` (the dip answer's routes, in order) its
/// longest duration at `now_us`, capped by `cap_s` (`calls.max_call_duration_s`), or refuses it.
///
/// Per route: what the money left (balance + credit limit − live reservations; the daily limit
/// minus today's spend and the reservations; the per-call cap: whichever is least) buys on its
/// grid, and what the monthly minutes left (minus live calls' reserved seconds) allow. A route
/// whose first increment is unaffordable is unusable; the call's `max_duration_s` is the least of
/// the usable routes' (Kamailio sets one dialog timeout, whichever route carries the call), and it
/// reserves the most that duration costs on any of them. Emergency calls never come here.
pub fn grant(
    account: &Account,
    standing: &Standing,
    reserved: &Reserved,
    tariffs: &[Tariff],
    now_us: i64,
    cap_s: u32,
) -> Result<Grant, Refusal> {
    if account.blocked {
        return Err(Refusal::Blocked);
    }
    let (day, month) = local_day(account.tz, now_us);
    let (money, money_why) = money_left(account, standing, reserved, day);
    let secs_left = account.monthly_minutes.map(|m| {
        (i64::from(m) * 60)
            .saturating_sub(standing.month_seconds(month))
            .saturating_sub(reserved.seconds)
    });
    let mut usable = Vec::with_capacity(tariffs.len());
    let mut max_s = cap_s.max(1);
    let mut why = None;
    for t in tariffs {
        let by_money = max_billed(money, t);
        let by_minutes = match secs_left {
            Some(s) => grid_floor(s, t.min, t.inc),
            None => Some(u32::MAX),
        };
        match (by_money, by_minutes) {
            (Some(m), Some(s)) => {
                usable.push(true);
                max_s = max_s.min(m).min(s);
            }
            (None, _) => {
                usable.push(false);
                why.get_or_insert(money_why);
            }
            (_, None) => {
                usable.push(false);
                why.get_or_insert(Refusal::MonthlyMinutes);
            }
        }
    }
    if !usable.iter().any(|u| *u) {
        return Err(why.unwrap_or(money_why));
    }
    // every usable route's limit is on its grid and ≥ max_s, so a call of max_s seconds bills
    // at most that limit on any of them (billed_t(D) ≤ limit_t ⇔ D ≤ limit_t)
    let billed = |t: &Tariff| billed_seconds(i64::from(max_s) * 1000, t.min, t.inc);
    let on_usable = || tariffs.iter().zip(&usable).filter(|(_, u)| **u);
    let reserve_e7 = on_usable()
        .map(|(t, _)| t.cost(billed(t)))
        .max()
        .unwrap_or(0);
    let reserve_s = on_usable().map(|(t, _)| billed(t)).max().unwrap_or(0);
    Ok(Grant {
        max_duration_s: max_s,
        reserve_e7,
        reserve_s,
        usable,
    })
}
