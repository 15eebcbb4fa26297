//! Audit rows of `warpd apply`, written in its transaction: one per created, updated or deleted
//! object (the changed fields before and after) and one per table deck it loads (numbering
//! tables, customer sell rates; a route's rates are a deck version, audited as `deck.import` by
//! the version code). An apply that changes nothing writes none.
//!
//! Owns: the apply's `audit_log` rows. Must not touch: the changes themselves.

use serde_json::{Map, Value};
use tokio_postgres::Transaction;

use crate::provision::error::ProvisionError;
use crate::provision::{Action, DeckAction, DeckKind, Plan};

/// One audit row.
struct Row {
    action: String,
    target: String,
    before: Option<Value>,
    after: Option<Value>,
}

fn rows(plan: &Plan) -> Vec<Row> {
    let mut out = Vec::new();
    for c in &plan.changes {
        let (mut before, mut after) = (Map::new(), Map::new());
        for f in &c.fields {
            before.insert(
                f.field.clone(),
                f.old.clone().map_or(Value::Null, Value::String),
            );
            after.insert(
                f.field.clone(),
                f.new.clone().map_or(Value::Null, Value::String),
            );
        }
        let (action, before, after) = match c.action {
            Action::Create => ("create", None, Some(after)),
            Action::Update => ("update", Some(before), Some(after)),
            Action::Delete => ("delete", Some(before), None),
        };
        out.push(Row {
            action: format!("apply.{action}"),
            target: format!("{} {}", c.kind.as_str(), c.name),
            before: before.map(Value::Object),
            after: after.map(Value::Object),
        });
    }
    for d in &plan.decks {
        if d.action != DeckAction::Load || d.kind == DeckKind::VendorRates {
            continue;
        }
        let (action, target) = match d.kind {
            DeckKind::CustomerRates => (
                "sell_rates.load",
                format!("customer {} sell rates", d.target),
            ),
            _ => ("numbering.import", format!("numbering {}", d.target)),
        };
        out.push(Row {
            action: action.to_string(),
            target,
            before: Some(serde_json::json!({"rows": d.existing_rows})),
            after: Some(serde_json::json!({"rows": d.rows, "file": d.file, "source": plan.source})),
        });
    }
    out
}

/// Writes the audit rows of an apply (who: `actor`).
pub(crate) async fn audit_apply(
    tx: &Transaction<'_>,
    actor: &str,
    plan: &Plan,
) -> Result<(), ProvisionError> {
    let stmt = tx
        .prepare(
            "INSERT INTO audit_log (actor, action, target, before, after) VALUES ($1, $2, $3, $4, $5)",
        )
        .await
        .map_err(|e| ProvisionError::db("writing the audit log", e))?;
    for r in rows(plan) {
        tx.execute(&stmt, &[&actor, &r.action, &r.target, &r.before, &r.after])
            .await
            .map_err(|e| ProvisionError::db("writing the audit log", e))?;
    }
    Ok(())
}
