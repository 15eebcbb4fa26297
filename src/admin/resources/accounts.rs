//! `/v1/admin/customers/{ban}/account`: a customer's credit account (issue 21): its terms (PUT
//! replaces them; the balance moves only through the ledger), its standing with the live calls'
//! reservations, and its ledger (top-ups and adjustments posted here; call charges written with
//! the CDRs). Every write is audited in its own transaction; the calls service's books take it at
//! once (and every `calls.limits_refresh_ms` anyway).
//!
//! Owns: the account handlers. Must not touch: the ledger arithmetic (sql/0014's trigger),
//! validation (`crate::rules::account`).

use serde_json::Value;

use super::customers::{Dec, CUSTOMER};
use super::prelude::*;
use crate::credit::store;
use crate::rules::{AccountInput, EntryKind};

/// An account's terms. Money as decimal strings (currency units, at most 7 decimals).
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AccountIn {
    /// `prepaid` (spends a balance topped up in advance) or `postpaid` (default: may go down
    /// to -credit_limit)
    pub mode: Option<String>,
    /// postpaid only: how far below zero the balance may go (default 0)
    #[schema(value_type = Option<String>)]
    pub credit_limit: Option<Dec>,
    /// most spent per local day (omit: no limit)
    #[schema(value_type = Option<String>)]
    pub daily_spend_limit: Option<Dec>,
    /// most billed minutes per local month (omit: no cap)
    pub monthly_minutes: Option<i64>,
    /// most one call may cost: each call reserves at most this (omit: no cap)
    #[schema(value_type = Option<String>)]
    pub per_call_cost_cap: Option<Dec>,
    /// `reject` (default: new calls refused at the limit) or `cut` (also end live calls when
    /// the account is blocked)
    pub at_limit: Option<String>,
    /// IANA time zone of the daily/monthly rollover (default UTC)
    pub tz: Option<String>,
    /// refuse every call but emergency ones (403 "account blocked")
    pub blocked: Option<bool>,
    /// spend-rate alarm (fraud signal): minutes looked back, 1..1440 (with
    /// `spend_alarm_threshold`; omit both: no alarm)
    pub spend_alarm_minutes: Option<i64>,
    /// spend (call charges committed in the window + live reservations) that raises the alarm
    #[schema(value_type = Option<String>)]
    pub spend_alarm_threshold: Option<Dec>,
    /// block the account when the alarm is raised (reason "spend rate"; with at_limit = cut
    /// its live calls end too)
    pub auto_block: Option<bool>,
}

/// An operator's ledger entry.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LedgerEntryIn {
    /// `topup` (above zero) or `adjustment` (either sign, not zero)
    pub kind: String,
    /// decimal currency units, e.g. "25.00" or "-1.5"
    #[schema(value_type = String)]
    pub amount: Dec,
    /// why (at most 500 characters)
    #[serde(default)]
    pub note: String,
}

async fn refresh_books(s: &AdminState) {
    if let Some(calls) = &s.calls {
        if let Err(e) = calls.refresh_limits().await {
            tracing::warn!(error = %e, "credit books not refreshed after an account change; the periodic refresh will");
        }
    }
}

#[utoipa::path(get, path = "/v1/admin/customers/{ban}/account", tag = "customers",
    security(("bearer" = [])), params(("ban" = String, Path, description = "customer BAN")),
    responses((status = 200, description = "terms, balance and counters (money in 1e-7 units: *_e7), and `live`: the live calls' reservations"),
        (status = 404, description = "no such customer, or it has no account")))]
pub async fn account_get(s: &AdminState, ctx: &mut Ctx, c: &mut Client) -> Reply {
    let ban = ctx.p("ban");
    let mut v = store::account_json(&*c, ban)
        .await
        .map_err(AdminError::db("reading the account"))?
        .ok_or_else(|| AdminError::NotFound(format!("customer {ban:?} has no account")))?;
    if let Some(book) = s.calls.as_ref().and_then(|c| c.shared().credit.book(ban)) {
        v["live"] = json!({
            "calls": book.reserved.calls,
            "reserved_e7": book.reserved.money_e7,
            "reserved_s": book.reserved.seconds,
        });
    }
    json_reply(StatusCode::OK, &v)
}

#[utoipa::path(put, path = "/v1/admin/customers/{ban}/account", tag = "customers",
    security(("bearer" = [])), params(("ban" = String, Path, description = "customer BAN")),
    request_body = AccountIn,
    responses((status = 200, description = "replaced: the account before and after"),
        (status = 201, description = "created"),
        (status = 404, description = "no such customer"),
        (status = 422, description = "a bad value, naming the field")))]
pub async fn account_put(s: &AdminState, ctx: &mut Ctx, c: &mut Client) -> Reply {
    let b: AccountIn = ctx.json()?;
    let text = |d: &Option<Dec>| d.as_ref().map(Dec::text);
    let (cl, dl, pc, sa) = (
        text(&b.credit_limit),
        text(&b.daily_spend_limit),
        text(&b.per_call_cost_cap),
        text(&b.spend_alarm_threshold),
    );
    let terms = rules::account(
        "",
        &AccountInput {
            mode: b.mode.as_deref(),
            credit_limit: cl.as_deref(),
            daily_spend_limit: dl.as_deref(),
            monthly_minutes: b.monthly_minutes,
            per_call_cost_cap: pc.as_deref(),
            at_limit: b.at_limit.as_deref(),
            tz: b.tz.as_deref(),
            blocked: b.blocked,
            spend_alarm_minutes: b.spend_alarm_minutes,
            spend_alarm_threshold: sa.as_deref(),
            auto_block: b.auto_block,
        },
    )?;
    let ban = ctx.p("ban").to_string();
    CUSTOMER.exists(c, &ban).await?;
    let tx = c
        .transaction()
        .await
        .map_err(AdminError::db("starting a transaction"))?;
    let (before, after) = store::put_terms(&tx, &ban, &terms)
        .await
        .map_err(AdminError::db("writing the account"))?;
    let created = before.is_none();
    let cut = terms.blocked && terms.at_limit == warpd_core::credit::AtLimit::Cut;
    let target = format!("account {ban}");
    let reply = crud::audit_and_commit(
        tx,
        ctx,
        "account.put",
        &target,
        before,
        Some(after),
        created,
    )
    .await?;
    refresh_books(s).await;
    // blocked with at_limit = cut: its live calls end now (through Kamailio's RPC)
    if let (true, Some(calls)) = (cut, &s.calls) {
        let n = calls.hangup_customer(&ban, "account blocked").await;
        tracing::info!(ban = %ban, calls = n, "account blocked: live calls ended");
    }
    Ok(reply)
}

#[utoipa::path(get, path = "/v1/admin/customers/{ban}/account/ledger", tag = "customers",
    security(("bearer" = [])),
    params(("ban" = String, Path, description = "customer BAN"),
        ("limit" = Option<i64>, Query, description = "newest first (default 100, at most 10000)")),
    responses((status = 200, description = "ledger rows, newest first: kind, amount_e7 (signed), seq, balance_after_e7, call_id, billed_s, actor, note"),
        (status = 404, description = "no such customer, or it has no account")))]
pub async fn ledger_list(_: &AdminState, ctx: &mut Ctx, c: &mut Client) -> Reply {
    let ban = ctx.p("ban").to_string();
    let limit = ctx.int("limit")?.unwrap_or(100).clamp(1, 10_000);
    if store::account_json(&*c, &ban)
        .await
        .map_err(AdminError::db("reading the account"))?
        .is_none()
    {
        return Err(AdminError::NotFound(format!(
            "customer {ban:?} has no account"
        )));
    }
    let v: Value = store::ledger_json(&*c, &ban, limit)
        .await
        .map_err(AdminError::db("reading the ledger"))?;
    json_reply(StatusCode::OK, &v)
}

#[utoipa::path(post, path = "/v1/admin/customers/{ban}/account/ledger", tag = "customers",
    security(("bearer" = [])), params(("ban" = String, Path, description = "customer BAN")),
    request_body = LedgerEntryIn,
    responses((status = 201, description = "posted: the ledger row (with the balance after it)"),
        (status = 404, description = "no such customer, or it has no account"),
        (status = 422, description = "a bad kind, amount or note")))]
pub async fn ledger_post(s: &AdminState, ctx: &mut Ctx, c: &mut Client) -> Reply {
    let b: LedgerEntryIn = ctx.json()?;
    let kind = match b.kind.trim() {
        "topup" => EntryKind::Topup,
        "adjustment" => EntryKind::Adjustment,
        other => {
            return Err(rules::RuleError::NotOneOf {
                field: "kind".into(),
                value: warpd_core::excerpt::excerpt(other),
                allowed: "topup, adjustment",
            }
            .into())
        }
    };
    let (amount, note) = rules::ledger_entry(kind, &b.amount.text(), &b.note)?;
    let ban = ctx.p("ban").to_string();
    let tx = c
        .transaction()
        .await
        .map_err(AdminError::db("starting a transaction"))?;
    let row = store::post_entry(&tx, &ban, kind, amount, &note, &ctx.actor())
        .await
        .map_err(AdminError::db("writing the ledger"))?
        .ok_or_else(|| AdminError::NotFound(format!("customer {ban:?} has no account")))?;
    let action = format!("account.{}", kind.as_str());
    let reply = crud::audit_and_commit(
        tx,
        ctx,
        &action,
        &format!("account {ban}"),
        None,
        Some(row),
        true,
    )
    .await?;
    refresh_books(s).await;
    Ok(reply)
}
