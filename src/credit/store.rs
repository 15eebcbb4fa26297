//! PostgreSQL side of credit control: the accounts (terms + standing), the call charges written
//! in the CDR batch's transaction, and the operators' ledger entries (top-ups, adjustments).
//! The `accounts` figures move only through the ledger trigger (sql/0014_accounts.sql).

use std::str::FromStr;

use serde_json::Value;
use tokio_postgres::{GenericClient, Row};
use warpd_core::credit::{Account, AtLimit, BillingMode, SpendAlarm, Standing};
use warpd_core::rules::{AccountTerms, EntryKind};

const STANDING_COLUMNS: &str =
    "seq, balance_e7, spend_day, day_spend_e7, spend_month, month_billed_s";

fn standing(r: &Row, at: usize) -> Result<Standing, tokio_postgres::Error> {
    Ok(Standing {
        seq: r.try_get(at)?,
        balance_e7: r.try_get(at + 1)?,
        spend_day: r.try_get(at + 2)?,
        day_spend_e7: r.try_get(at + 3)?,
        spend_month: r.try_get(at + 4)?,
        month_billed_s: r.try_get(at + 5)?,
    })
}

/// The spend-rate alarm of a row whose `spend_alarm_minutes`, `spend_alarm_threshold_e7` and
/// `auto_block` are columns `at`, `at + 1`, `at + 2` (both of the first two, or no alarm).
fn spend_alarm(r: &Row, at: usize) -> Result<Option<SpendAlarm>, tokio_postgres::Error> {
    let minutes: Option<i32> = r.try_get(at)?;
    let threshold: Option<i64> = r.try_get(at + 1)?;
    Ok(match (minutes, threshold) {
        (Some(m), Some(t)) => Some(SpendAlarm {
            window_min: u32::try_from(m).unwrap_or(1),
            threshold_e7: t,
            auto_block: r.try_get(at + 2)?,
        }),
        _ => None,
    })
}

/// Every account: BAN, terms, standing.
pub async fn load(
    c: &impl GenericClient,
) -> Result<Vec<(String, Account, Standing)>, tokio_postgres::Error> {
    let rows = c
        .query(
            &format!(
                "SELECT ban, mode, credit_limit_e7, daily_spend_limit_e7, monthly_minutes, \
                 per_call_cost_cap_e7, at_limit, tz, blocked, {STANDING_COLUMNS}, \
                 spend_alarm_minutes, spend_alarm_threshold_e7, auto_block FROM accounts"
            ),
            &[],
        )
        .await?;
    let mut out = Vec::with_capacity(rows.len());
    for r in rows {
        let ban: String = r.try_get(0)?;
        let mode: String = r.try_get(1)?;
        let at_limit: String = r.try_get(6)?;
        let tz: String = r.try_get(7)?;
        let monthly: Option<i32> = r.try_get(4)?;
        let spend_alarm = spend_alarm(&r, 15)?;
        let account = Account {
            mode: BillingMode::parse(&mode).unwrap_or_default(),
            credit_limit_e7: r.try_get(2)?,
            daily_spend_limit_e7: r.try_get(3)?,
            monthly_minutes: monthly.and_then(|m| u32::try_from(m).ok()),
            per_call_cost_cap_e7: r.try_get(5)?,
            at_limit: AtLimit::parse(&at_limit).unwrap_or_default(),
            // written through crate::rules (an IANA name); anything else counts days in UTC
            tz: chrono_tz::Tz::from_str(&tz).unwrap_or(chrono_tz::UTC),
            blocked: r.try_get(8)?,
            spend_alarm,
        };
        out.push((ban, account, standing(&r, 9)?));
    }
    Ok(out)
}

/// Every account's terms as `warpd apply` compares them (`warpd_core::provision::accounts`).
pub async fn load_terms(
    c: &impl GenericClient,
) -> Result<std::collections::BTreeMap<String, AccountTerms>, tokio_postgres::Error> {
    let rows = c
        .query(
            "SELECT ban, mode, credit_limit_e7, daily_spend_limit_e7, monthly_minutes, \
             per_call_cost_cap_e7, at_limit, tz, blocked, spend_alarm_minutes, \
             spend_alarm_threshold_e7, auto_block FROM accounts",
            &[],
        )
        .await?;
    let mut out = std::collections::BTreeMap::new();
    for r in rows {
        let mode: String = r.try_get(1)?;
        let at_limit: String = r.try_get(6)?;
        let spend_alarm = spend_alarm(&r, 9)?;
        let terms = AccountTerms {
            mode: BillingMode::parse(&mode).unwrap_or_default(),
            credit_limit_e7: r.try_get(2)?,
            daily_spend_limit_e7: r.try_get(3)?,
            monthly_minutes: r.try_get(4)?,
            per_call_cost_cap_e7: r.try_get(5)?,
            at_limit: AtLimit::parse(&at_limit).unwrap_or_default(),
            tz: r.try_get(7)?,
            blocked: r.try_get(8)?,
            spend_alarm,
        };
        out.insert(r.try_get(0)?, terms);
    }
    Ok(out)
}

/// The standings of `bans` (inside a transaction: as of its writes).
pub async fn standings(
    c: &impl GenericClient,
    bans: &[&str],
) -> Result<Vec<(String, Standing)>, tokio_postgres::Error> {
    let rows = c
        .query(
            &format!("SELECT ban, {STANDING_COLUMNS} FROM accounts WHERE ban = ANY($1)"),
            &[&bans],
        )
        .await?;
    rows.iter()
        .map(|r| Ok((r.try_get(0)?, standing(r, 1)?)))
        .collect()
}

/// One call's charge: customer, price (1e-7), call id, dip time (µs), billed seconds.
pub struct Charge<'a> {
    pub ban: &'a str,
    pub price_e7: i64,
    pub call_id: &'a str,
    pub started_us: i64,
    pub billed_s: u32,
}

/// Writes the ledger rows of these calls' charges (customers with an account; calls with a
/// price or billed seconds) and returns the charged accounts' standings. Runs inside the CDR
/// batch's transaction: the charge and the CDR are committed together or not at all.
pub async fn charge(
    tx: &impl GenericClient,
    charges: &[Charge<'_>],
) -> Result<Vec<(String, Standing)>, tokio_postgres::Error> {
    let charges: Vec<&Charge> = charges
        .iter()
        .filter(|c| c.price_e7 != 0 || c.billed_s > 0)
        .collect();
    if charges.is_empty() {
        return Ok(vec![]);
    }
    let bans: Vec<&str> = charges.iter().map(|c| c.ban).collect();
    let prices: Vec<i64> = charges.iter().map(|c| -c.price_e7).collect();
    let ids: Vec<&str> = charges.iter().map(|c| c.call_id).collect();
    let started: Vec<i64> = charges.iter().map(|c| c.started_us).collect();
    let billed: Vec<i32> = charges
        .iter()
        .map(|c| i32::try_from(c.billed_s).unwrap_or(i32::MAX))
        .collect();
    // one statement: the ledger rows and each charged account's update (sql/0014)
    let rows = tx
        .query(
            &format!(
                "SELECT ban, {STANDING_COLUMNS} FROM account_charge_calls($1, $2, $3, $4, $5)"
            ),
            &[&bans, &prices, &ids, &started, &billed],
        )
        .await?;
    rows.iter()
        .map(|r| Ok((r.try_get(0)?, standing(r, 1)?)))
        .collect()
}

/// Creates or replaces an account's terms (not its balance); returns the row before and after
/// as JSON (before: None for a new account).
pub async fn put_terms(
    tx: &impl GenericClient,
    ban: &str,
    t: &AccountTerms,
) -> Result<(Option<Value>, Value), tokio_postgres::Error> {
    let before: Option<Value> = tx
        .query_opt(
            "SELECT to_jsonb(a.*) FROM accounts a WHERE ban = $1 FOR UPDATE",
            &[&ban],
        )
        .await?
        .map(|r| r.try_get(0))
        .transpose()?;
    let after: Value = tx
        .query_one(
            "INSERT INTO accounts (ban, mode, credit_limit_e7, daily_spend_limit_e7, monthly_minutes, \
                 per_call_cost_cap_e7, at_limit, tz, blocked, spend_alarm_minutes, \
                 spend_alarm_threshold_e7, auto_block) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) \
             ON CONFLICT (ban) DO UPDATE SET mode = EXCLUDED.mode, \
                 credit_limit_e7 = EXCLUDED.credit_limit_e7, \
                 daily_spend_limit_e7 = EXCLUDED.daily_spend_limit_e7, \
                 monthly_minutes = EXCLUDED.monthly_minutes, \
                 per_call_cost_cap_e7 = EXCLUDED.per_call_cost_cap_e7, \
                 at_limit = EXCLUDED.at_limit, tz = EXCLUDED.tz, blocked = EXCLUDED.blocked, \
                 blocked_reason = CASE WHEN EXCLUDED.blocked THEN accounts.blocked_reason END, \
                 spend_alarm_minutes = EXCLUDED.spend_alarm_minutes, \
                 spend_alarm_threshold_e7 = EXCLUDED.spend_alarm_threshold_e7, \
                 auto_block = EXCLUDED.auto_block \
             RETURNING to_jsonb(accounts.*)",
            &[
                &ban,
                &t.mode.as_str(),
                &t.credit_limit_e7,
                &t.daily_spend_limit_e7,
                &t.monthly_minutes,
                &t.per_call_cost_cap_e7,
                &t.at_limit.as_str(),
                &t.tz,
                &t.blocked,
                &t.spend_alarm.map(|a| i32::try_from(a.window_min).unwrap_or(i32::MAX)),
                &t.spend_alarm.map(|a| a.threshold_e7),
                &t.spend_alarm.is_some_and(|a| a.auto_block),
            ],
        )
        .await?
        .try_get(0)?;
    Ok((before, after))
}

/// Writes an operator's ledger entry; returns the ledger row as JSON, or None when the
/// customer has no account.
pub async fn post_entry(
    tx: &impl GenericClient,
    ban: &str,
    kind: EntryKind,
    amount_e7: i64,
    note: &str,
    actor: &str,
) -> Result<Option<Value>, tokio_postgres::Error> {
    if tx
        .query_opt("SELECT 1 FROM accounts WHERE ban = $1", &[&ban])
        .await?
        .is_none()
    {
        return Ok(None);
    }
    let row = tx
        .query_one(
            "INSERT INTO account_ledger (ban, kind, amount_e7, actor, note) VALUES ($1, $2, $3, $4, $5) \
             RETURNING to_jsonb(account_ledger.*)",
            &[&ban, &kind.as_str(), &amount_e7, &actor, &note],
        )
        .await?;
    Ok(Some(row.try_get(0)?))
}

/// The account row as JSON (terms and standing), or None.
pub async fn account_json(
    c: &impl GenericClient,
    ban: &str,
) -> Result<Option<Value>, tokio_postgres::Error> {
    c.query_opt(
        "SELECT to_jsonb(a.*) FROM accounts a WHERE ban = $1",
        &[&ban],
    )
    .await?
    .map(|r| r.try_get(0))
    .transpose()
}

/// The newest `limit` ledger rows of `ban`, newest first.
pub async fn ledger_json(
    c: &impl GenericClient,
    ban: &str,
    limit: i64,
) -> Result<Value, tokio_postgres::Error> {
    c.query_one(
        "SELECT coalesce(jsonb_agg(to_jsonb(l) ORDER BY l.id DESC), '[]'::jsonb) FROM \
         (SELECT * FROM account_ledger WHERE ban = $1 ORDER BY id DESC LIMIT $2) l",
        &[&ban, &limit],
    )
    .await?
    .try_get(0)
}

/// Call charges (1e-7, positive = spent) committed at or after `from_us` per account of `bans`
/// (the spend-rate alarm's window; accounts without a charge in it are absent).
pub async fn window_charges(
    c: &impl GenericClient,
    bans: &[&str],
    from_us: &[i64],
) -> Result<Vec<(String, i64)>, tokio_postgres::Error> {
    let rows = c
        .query(
            "SELECT w.ban, (-sum(l.amount_e7))::bigint FROM unnest($1::text[], $2::bigint[]) AS w(ban, from_us) \
             JOIN account_ledger l ON l.ban = w.ban AND l.kind = 'call' \
                 AND l.at >= to_timestamp(w.from_us / 1e6) \
             GROUP BY w.ban",
            &[&bans, &from_us],
        )
        .await?;
    rows.iter()
        .map(|r| Ok((r.try_get(0)?, r.try_get::<_, Option<i64>>(1)?.unwrap_or(0))))
        .collect()
}

/// Blocks an account for its spend rate (warpd's own decision): `blocked`, `blocked_reason`,
/// and an audit row of actor `warpd`, one transaction; no ledger row (the balance does not
/// move). Returns the `at_limit` of an account it blocked, None when it was blocked already or
/// is gone.
pub async fn block_for(
    c: &mut deadpool_postgres::Client,
    ban: &str,
    reason: &str,
) -> Result<Option<AtLimit>, tokio_postgres::Error> {
    let tx = c.transaction().await?;
    let Some(before) = tx
        .query_opt(
            "SELECT to_jsonb(a.*) FROM accounts a WHERE ban = $1 AND NOT blocked FOR UPDATE",
            &[&ban],
        )
        .await?
    else {
        return Ok(None);
    };
    let before: Value = before.try_get(0)?;
    let after = tx
        .query_one(
            "UPDATE accounts SET blocked = true, blocked_reason = $2 WHERE ban = $1 \
             RETURNING to_jsonb(accounts.*), at_limit",
            &[&ban, &reason],
        )
        .await?;
    let (after, at_limit): (Value, String) = (after.try_get(0)?, after.try_get(1)?);
    let target = format!("account {ban}");
    tx.execute(
        "INSERT INTO audit_log (actor, action, target, before, after) VALUES ('warpd', 'account.auto_block', $1, $2, $3)",
        &[&target, &before, &after],
    )
    .await?;
    tx.commit().await?;
    Ok(Some(AtLimit::parse(&at_limit).unwrap_or_default()))
}
