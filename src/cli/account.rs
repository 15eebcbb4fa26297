//! `warpd account …`: a customer's credit account from the command line (issue 21): show it,
//! set its terms, top it up, adjust it. The same rules (`crate::rules::account`) and ledger
//! (`crate::credit::store`) as the admin API; every change writes its audit row in its own
//! transaction. A running warpd takes the change within `calls.limits_refresh_ms`.

use clap::Subcommand;

use super::deck::{actor, connect};
use crate::config::Config;
use crate::credit::store;
use crate::rules::{self, AccountInput, EntryKind};

#[derive(Subcommand, Debug)]
pub enum AccountCmd {
    /// Print the account (terms, balance, counters; money in 1e-7 units) and its newest ledger rows
    Show {
        #[arg(long)]
        ban: String,
        /// ledger rows to print
        #[arg(long, default_value_t = 20)]
        ledger: i64,
    },
    /// Create the account or replace its terms (omitted terms take their defaults)
    Set {
        #[arg(long)]
        ban: String,
        /// prepaid or postpaid (default)
        #[arg(long)]
        mode: Option<String>,
        /// postpaid: how far below zero the balance may go, e.g. 500.00
        #[arg(long)]
        credit_limit: Option<String>,
        #[arg(long)]
        daily_spend_limit: Option<String>,
        #[arg(long)]
        monthly_minutes: Option<i64>,
        #[arg(long)]
        per_call_cost_cap: Option<String>,
        /// reject (default) or cut
        #[arg(long)]
        at_limit: Option<String>,
        /// IANA time zone of the daily/monthly rollover (default UTC)
        #[arg(long)]
        tz: Option<String>,
        #[arg(long)]
        blocked: Option<bool>,
        /// spend-rate alarm window in minutes, 1..1440 (with --spend-alarm-threshold)
        #[arg(long)]
        spend_alarm_minutes: Option<i64>,
        /// spend in the window that raises the alarm, e.g. 50.00
        #[arg(long)]
        spend_alarm_threshold: Option<String>,
        /// block the account when the alarm is raised
        #[arg(long)]
        auto_block: Option<bool>,
    },
    /// Add money paid in (a ledger row of kind topup)
    Topup {
        #[arg(long)]
        ban: String,
        /// decimal currency units, above zero
        #[arg(long, allow_hyphen_values = true)]
        amount: String,
        #[arg(long, default_value = "")]
        note: String,
    },
    /// Correct the balance either way (a ledger row of kind adjustment)
    Adjust {
        #[arg(long)]
        ban: String,
        /// decimal currency units, e.g. -2.50
        #[arg(long, allow_hyphen_values = true)]
        amount: String,
        #[arg(long, default_value = "")]
        note: String,
    },
}

fn audit_row(action: &str, ban: &str) -> (String, String) {
    (action.to_string(), format!("account {ban}"))
}

pub async fn run_account(config: &Config, cmd: AccountCmd) -> anyhow::Result<()> {
    let mut client = connect(config).await?;
    match cmd {
        AccountCmd::Show { ban, ledger } => {
            let Some(a) = store::account_json(&client, &ban).await? else {
                anyhow::bail!("customer {ban:?} has no account");
            };
            println!("{}", serde_json::to_string_pretty(&a)?);
            let rows = store::ledger_json(&client, &ban, ledger.clamp(1, 10_000)).await?;
            for r in rows.as_array().into_iter().flatten() {
                println!("{r}");
            }
        }
        AccountCmd::Set {
            ban,
            mode,
            credit_limit,
            daily_spend_limit,
            monthly_minutes,
            per_call_cost_cap,
            at_limit,
            tz,
            blocked,
            spend_alarm_minutes,
            spend_alarm_threshold,
            auto_block,
        } => {
            let terms = rules::account(
                "",
                &AccountInput {
                    mode: mode.as_deref(),
                    credit_limit: credit_limit.as_deref(),
                    daily_spend_limit: daily_spend_limit.as_deref(),
                    monthly_minutes,
                    per_call_cost_cap: per_call_cost_cap.as_deref(),
                    at_limit: at_limit.as_deref(),
                    tz: tz.as_deref(),
                    blocked,
                    spend_alarm_minutes,
                    spend_alarm_threshold: spend_alarm_threshold.as_deref(),
                    auto_block,
                },
            )?;
            if client
                .query_opt("SELECT 1 FROM customers WHERE ban = $1", &[&ban])
                .await?
                .is_none()
            {
                anyhow::bail!("customer {ban:?} does not exist");
            }
            let tx = client.transaction().await?;
            let (before, after) = store::put_terms(&tx, &ban, &terms).await?;
            let (action, target) = audit_row("account.put", &ban);
            tx.execute(
                "INSERT INTO audit_log (actor, action, target, before, after) VALUES ($1, $2, $3, $4, $5)",
                &[&actor(), &action, &target, &before, &Some(&after)],
            )
            .await?;
            tx.commit().await?;
            println!("{}", serde_json::to_string_pretty(&after)?);
        }
        AccountCmd::Topup { ban, amount, note } => {
            entry(&mut client, &ban, EntryKind::Topup, &amount, &note).await?
        }
        AccountCmd::Adjust { ban, amount, note } => {
            entry(&mut client, &ban, EntryKind::Adjustment, &amount, &note).await?
        }
    }
    Ok(())
}

async fn entry(
    client: &mut tokio_postgres::Client,
    ban: &str,
    kind: EntryKind,
    amount: &str,
    note: &str,
) -> anyhow::Result<()> {
    let (amount_e7, note) = rules::ledger_entry(kind, amount, note)?;
    let tx = client.transaction().await?;
    let Some(row) = store::post_entry(&tx, ban, kind, amount_e7, &note, &actor()).await? else {
        anyhow::bail!("customer {ban:?} has no account (warpd account set --ban {ban} …)");
    };
    let (action, target) = audit_row(&format!("account.{}", kind.as_str()), ban);
    tx.execute(
        "INSERT INTO audit_log (actor, action, target, after) VALUES ($1, $2, $3, $4)",
        &[&actor(), &action, &target, &row],
    )
    .await?;
    tx.commit().await?;
    println!(
        "{} {}: balance now {}",
        kind.as_str(),
        ban,
        crate::cdr::rating::fmt_e7(row["balance_after_e7"].as_i64().unwrap_or(0))
    );
    Ok(())
}
