//! Credit accounts (issue 21): billing mode, credit limit, daily spend limit, monthly minutes,
//! per-call cost cap, action at the limit, time zone; and ledger amounts (top-ups, adjustments).
//! Shared by `warpd apply` (`accounts` of a customer), the admin API and `warpd account`.

use super::values::parse_scaled;
use super::{parsed, IntRule, RuleError, I32_MAX};
use crate::credit::{AtLimit, BillingMode, SpendAlarm};

/// Integer digits of an amount of money (up to 999,999,999,999.9999999).
const MONEY_INT_DIGITS: u32 = 12;

/// Monthly minutes: NULL (no cap) when omitted.
pub const MONTHLY_MINUTES: IntRule = IntRule {
    field: "monthly_minutes",
    default: 0,
    lo: 0,
    hi: I32_MAX,
};

/// An account's terms as given (decimal money as text).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AccountInput<'a> {
    pub mode: Option<&'a str>,
    pub credit_limit: Option<&'a str>,
    pub daily_spend_limit: Option<&'a str>,
    pub monthly_minutes: Option<i64>,
    pub per_call_cost_cap: Option<&'a str>,
    pub at_limit: Option<&'a str>,
    pub tz: Option<&'a str>,
    pub blocked: Option<bool>,
    /// spend-rate alarm: minutes looked back (with `spend_alarm_threshold`)
    pub spend_alarm_minutes: Option<i64>,
    /// spend-rate alarm: spend in the window that raises it (decimal currency units)
    pub spend_alarm_threshold: Option<&'a str>,
    /// block the account when the alarm is raised (needs the alarm)
    pub auto_block: Option<bool>,
}

/// Spend-rate alarm window: 1 minute to a day.
pub const SPEND_ALARM_MINUTES: IntRule = IntRule {
    field: "spend_alarm_minutes",
    default: 0,
    lo: 1,
    hi: crate::credit::alarm::WINDOW_MIN_MAX as i64,
};

/// An account's terms, checked, as the `accounts` columns hold them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountTerms {
    pub mode: BillingMode,
    pub credit_limit_e7: i64,
    pub daily_spend_limit_e7: Option<i64>,
    pub monthly_minutes: Option<i32>,
    pub per_call_cost_cap_e7: Option<i64>,
    pub at_limit: AtLimit,
    /// IANA name, canonical spelling
    pub tz: String,
    pub blocked: bool,
    pub spend_alarm: Option<SpendAlarm>,
}

/// Money (currency units, at most 7 decimals) scaled by 10^7; `signed` allows negatives.
pub fn amount(field: &str, v: &str, signed: bool) -> Result<i64, RuleError> {
    let e7 = parsed(field, parse_scaled(v, 7, MONEY_INT_DIGITS))?;
    if !signed && e7 < 0 {
        return Err(RuleError::invalid(field, "must not be negative"));
    }
    Ok(e7)
}

/// An account's terms: omitted = postpaid, no credit limit (0), no daily limit, no monthly cap,
/// no per-call cap, reject at the limit, UTC, not blocked. A prepaid account has no credit
/// limit; a per-call cap is above zero.
pub fn account(at: &str, i: &AccountInput) -> Result<AccountTerms, RuleError> {
    let f = |name: &str| super::path(at, name);
    let mode = match i.mode.map(str::trim) {
        None => BillingMode::default(),
        Some(m) => BillingMode::parse(m).ok_or_else(|| RuleError::NotOneOf {
            field: f("mode"),
            value: crate::excerpt::excerpt(m),
            allowed: "prepaid, postpaid",
        })?,
    };
    let at_limit = match i.at_limit.map(str::trim) {
        None => AtLimit::default(),
        Some(m) => AtLimit::parse(m).ok_or_else(|| RuleError::NotOneOf {
            field: f("at_limit"),
            value: crate::excerpt::excerpt(m),
            allowed: "reject, cut",
        })?,
    };
    let credit_limit_e7 = match i.credit_limit {
        Some(v) => amount(&f("credit_limit"), v, false)?,
        None => 0,
    };
    if mode == BillingMode::Prepaid && credit_limit_e7 != 0 {
        return Err(RuleError::invalid(
            f("credit_limit"),
            "a prepaid account has no credit limit (use postpaid, or top up its balance)",
        ));
    }
    let daily_spend_limit_e7 = i
        .daily_spend_limit
        .map(|v| amount(&f("daily_spend_limit"), v, false))
        .transpose()?;
    let per_call_cost_cap_e7 = i
        .per_call_cost_cap
        .map(|v| amount(&f("per_call_cost_cap"), v, false))
        .transpose()?;
    if per_call_cost_cap_e7 == Some(0) {
        return Err(RuleError::invalid(
            f("per_call_cost_cap"),
            "must be above zero (omit it for no cap)",
        ));
    }
    let monthly_minutes = MONTHLY_MINUTES.optional(at, i.monthly_minutes)?;
    let tz = super::time_zone(f("tz"), i.tz)?;
    let spend_alarm = spend_alarm(at, i)?;
    Ok(AccountTerms {
        mode,
        credit_limit_e7,
        daily_spend_limit_e7,
        monthly_minutes,
        per_call_cost_cap_e7,
        at_limit,
        tz,
        blocked: i.blocked.unwrap_or(false),
        spend_alarm,
    })
}

/// The spend-rate alarm: window and threshold together or neither; `auto_block` only with them.
fn spend_alarm(at: &str, i: &AccountInput) -> Result<Option<SpendAlarm>, RuleError> {
    let f = |name: &str| super::path(at, name);
    let auto_block = i.auto_block.unwrap_or(false);
    match (i.spend_alarm_minutes, i.spend_alarm_threshold) {
        (None, None) if auto_block => Err(RuleError::invalid(
            f("auto_block"),
            "needs spend_alarm_minutes and spend_alarm_threshold",
        )),
        (None, None) => Ok(None),
        (Some(_), None) => Err(RuleError::invalid(
            f("spend_alarm_threshold"),
            "is required with spend_alarm_minutes",
        )),
        (None, Some(_)) => Err(RuleError::invalid(
            f("spend_alarm_minutes"),
            "is required with spend_alarm_threshold",
        )),
        (Some(m), Some(t)) => {
            let window = SPEND_ALARM_MINUTES.optional(at, Some(m))?.unwrap_or(1);
            let threshold_e7 = amount(&f("spend_alarm_threshold"), t, false)?;
            if threshold_e7 == 0 {
                return Err(RuleError::invalid(
                    f("spend_alarm_threshold"),
                    "must be above zero",
                ));
            }
            Ok(Some(SpendAlarm {
                window_min: u32::try_from(window).unwrap_or(1),
                threshold_e7,
                auto_block,
            }))
        }
    }
}

/// The kind of a ledger entry written by an operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntryKind {
    /// money paid in: above zero
    Topup,
    /// a correction either way: not zero
    Adjustment,
}

impl EntryKind {
    pub fn as_str(self) -> &'static str {
        match self {
            EntryKind::Topup => "topup",
            EntryKind::Adjustment => "adjustment",
        }
    }
}

/// Longest note on a ledger entry.
pub const NOTE_MAX: usize = 500;

/// A ledger entry's amount (decimal currency units) and note, checked.
pub fn ledger_entry(
    kind: EntryKind,
    amount_text: &str,
    note: &str,
) -> Result<(i64, String), RuleError> {
    let v = amount("amount", amount_text, kind == EntryKind::Adjustment)?;
    match kind {
        EntryKind::Topup if v <= 0 => {
            return Err(RuleError::invalid("amount", "a top-up must be above zero"))
        }
        EntryKind::Adjustment if v == 0 => {
            return Err(RuleError::invalid(
                "amount",
                "an adjustment must not be zero",
            ))
        }
        _ => {}
    }
    if note.chars().count() > NOTE_MAX || note.chars().any(char::is_control) {
        return Err(RuleError::invalid(
            "note",
            format!("at most {NOTE_MAX} characters, no control characters"),
        ));
    }
    Ok((v, note.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn terms_defaults_and_values() {
        let t = account("", &AccountInput::default()).unwrap();
        assert_eq!(t.mode, BillingMode::Postpaid);
        assert_eq!((t.credit_limit_e7, t.tz.as_str()), (0, "UTC"));
        let t = account(
            "",
            &AccountInput {
                mode: Some("prepaid"),
                daily_spend_limit: Some("25.5"),
                monthly_minutes: Some(1000),
                per_call_cost_cap: Some("2"),
                at_limit: Some("cut"),
                tz: Some("America/New_York"),
                ..Default::default()
            },
        )
        .unwrap();
        assert_eq!(t.daily_spend_limit_e7, Some(255_000_000));
        assert_eq!(t.per_call_cost_cap_e7, Some(20_000_000));
        assert_eq!(t.monthly_minutes, Some(1000));
        assert_eq!(t.at_limit, AtLimit::Cut);
        assert_eq!(t.spend_alarm, None);
        let t = account(
            "",
            &AccountInput {
                spend_alarm_minutes: Some(15),
                spend_alarm_threshold: Some("50"),
                auto_block: Some(true),
                ..Default::default()
            },
        )
        .unwrap();
        assert_eq!(
            t.spend_alarm,
            Some(SpendAlarm {
                window_min: 15,
                threshold_e7: 500_000_000,
                auto_block: true
            })
        );
    }

    #[test]
    fn bad_terms_name_the_field() {
        let cases: &[(AccountInput, &str)] = &[
            (
                AccountInput {
                    mode: Some("credit"),
                    ..Default::default()
                },
                "accounts[0].mode",
            ),
            (
                AccountInput {
                    at_limit: Some("stop"),
                    ..Default::default()
                },
                "accounts[0].at_limit",
            ),
            (
                AccountInput {
                    mode: Some("prepaid"),
                    credit_limit: Some("10"),
                    ..Default::default()
                },
                "accounts[0].credit_limit",
            ),
            (
                AccountInput {
                    credit_limit: Some("-1"),
                    ..Default::default()
                },
                "accounts[0].credit_limit",
            ),
            (
                AccountInput {
                    daily_spend_limit: Some("1.00000001"),
                    ..Default::default()
                },
                "accounts[0].daily_spend_limit",
            ),
            (
                AccountInput {
                    per_call_cost_cap: Some("0"),
                    ..Default::default()
                },
                "accounts[0].per_call_cost_cap",
            ),
            (
                AccountInput {
                    monthly_minutes: Some(-5),
                    ..Default::default()
                },
                "accounts[0].monthly_minutes",
            ),
            (
                AccountInput {
                    tz: Some("Mars/Olympus"),
                    ..Default::default()
                },
                "accounts[0].tz",
            ),
            (
                AccountInput {
                    auto_block: Some(true),
                    ..Default::default()
                },
                "accounts[0].auto_block",
            ),
            (
                AccountInput {
                    spend_alarm_minutes: Some(10),
                    ..Default::default()
                },
                "accounts[0].spend_alarm_threshold",
            ),
            (
                AccountInput {
                    spend_alarm_threshold: Some("10"),
                    ..Default::default()
                },
                "accounts[0].spend_alarm_minutes",
            ),
            (
                AccountInput {
                    spend_alarm_minutes: Some(0),
                    spend_alarm_threshold: Some("10"),
                    ..Default::default()
                },
                "accounts[0].spend_alarm_minutes",
            ),
            (
                AccountInput {
                    spend_alarm_minutes: Some(1441),
                    spend_alarm_threshold: Some("10"),
                    ..Default::default()
                },
                "accounts[0].spend_alarm_minutes",
            ),
            (
                AccountInput {
                    spend_alarm_minutes: Some(10),
                    spend_alarm_threshold: Some("0"),
                    ..Default::default()
                },
                "accounts[0].spend_alarm_threshold",
            ),
            (
                AccountInput {
                    spend_alarm_minutes: Some(10),
                    spend_alarm_threshold: Some("-3"),
                    ..Default::default()
                },
                "accounts[0].spend_alarm_threshold",
            ),
        ];
        for (input, field) in cases {
            let e = account("accounts[0]", input).unwrap_err();
            assert_eq!(e.field(), *field, "{input:?}: {e}");
        }
    }

    #[test]
    fn ledger_entries() {
        assert_eq!(
            ledger_entry(EntryKind::Topup, "10", "").unwrap().0,
            100_000_000
        );
        assert_eq!(
            ledger_entry(EntryKind::Adjustment, "-0.5", "refund")
                .unwrap()
                .0,
            -5_000_000
        );
        let bad: &[(EntryKind, &str, &str)] = &[
            (EntryKind::Topup, "0", ""),
            (EntryKind::Topup, "-1", ""),
            (EntryKind::Adjustment, "0", ""),
            (EntryKind::Topup, "ten", ""),
            (EntryKind::Topup, "1e3", ""),
            (EntryKind::Topup, "1000000000000", ""),
            (EntryKind::Topup, "1", "a\u{1b}[2J"),
        ];
        for (k, a, n) in bad {
            assert!(ledger_entry(*k, a, n).is_err(), "{k:?} {a:?} {n:?}");
        }
        assert!(ledger_entry(EntryKind::Topup, "1", &"x".repeat(501)).is_err());
    }
}
