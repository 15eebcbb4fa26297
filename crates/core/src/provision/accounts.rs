//! `[customers.account]` of a provisioning file (issue 21): a customer's credit account terms,
//! checked by the rule the admin API and `warpd account` use ([`crate::rules::account`]), and
//! compared with the account in the database as plan changes.
//!
//! `warpd apply` creates and updates terms only: it never deletes an account (its ledger is
//! money) and never moves a balance (only ledger rows do: `warpd account topup|adjust`, the admin
//! API). A customer without `account` in the file keeps whatever account it has, and an account
//! whose table omits `blocked` keeps its blocked state (re-applying a file never unblocks an
//! account warpd blocked for its spend rate).
//!
//! Owns: the table's checks and its diff (the schema, `AccountSpec`, is in [`super::spec`]). Must not touch: the database (the daemon's
//! `provision::db::accounts`).

use std::collections::BTreeMap;

use super::plan::{Action, Change, FieldChange, ObjectKind};
use super::spec::CustomerSpec;
use super::Issue;
use crate::cdr::rating::fmt_e7;
use crate::rules::{account, AccountInput, AccountTerms};

/// One account the file gives, checked.
#[derive(Clone, Debug, PartialEq)]
pub struct AccountDesired {
    pub ban: String,
    pub terms: AccountTerms,
    /// the file says `blocked` (otherwise the account keeps its blocked state)
    pub blocked_given: bool,
}

/// The accounts the file gives, checked, in file order. Problems go to `issues` with their field
/// path (`customers[2].account.credit_limit`).
pub fn build(
    customers: &[CustomerSpec],
    source: &str,
    issues: &mut Vec<Issue>,
) -> Vec<AccountDesired> {
    let mut out = Vec::new();
    for (i, c) in customers.iter().enumerate() {
        let Some(a) = &c.account else { continue };
        let at = format!("customers[{i}].account");
        let input = AccountInput {
            mode: a.mode.as_deref(),
            credit_limit: a.credit_limit.as_ref().map(|d| d.0.as_str()),
            daily_spend_limit: a.daily_spend_limit.as_ref().map(|d| d.0.as_str()),
            monthly_minutes: a.monthly_minutes,
            per_call_cost_cap: a.per_call_cost_cap.as_ref().map(|d| d.0.as_str()),
            at_limit: a.at_limit.as_deref(),
            tz: a.tz.as_deref(),
            blocked: a.blocked,
            spend_alarm_minutes: a.spend_alarm_minutes,
            spend_alarm_threshold: a.spend_alarm_threshold.as_ref().map(|d| d.0.as_str()),
            auto_block: a.auto_block,
        };
        match account(&at, &input) {
            Ok(terms) => out.push(AccountDesired {
                ban: c.ban.0.clone(),
                terms,
                blocked_given: a.blocked.is_some(),
            }),
            Err(e) => issues.push(Issue::new(source, e.field(), e.problem())),
        }
    }
    out
}

/// The terms as (field, text) pairs, the way the plan shows them.
fn fields(t: &AccountTerms) -> Vec<(&'static str, Option<String>)> {
    let alarm = t.spend_alarm;
    vec![
        ("mode", Some(t.mode.as_str().to_string())),
        ("credit_limit", Some(fmt_e7(t.credit_limit_e7))),
        ("daily_spend_limit", t.daily_spend_limit_e7.map(fmt_e7)),
        ("monthly_minutes", t.monthly_minutes.map(|m| m.to_string())),
        ("per_call_cost_cap", t.per_call_cost_cap_e7.map(fmt_e7)),
        ("at_limit", Some(t.at_limit.as_str().to_string())),
        ("tz", Some(t.tz.clone())),
        ("blocked", Some(t.blocked.to_string())),
        (
            "spend_alarm_minutes",
            alarm.map(|a| a.window_min.to_string()),
        ),
        (
            "spend_alarm_threshold",
            alarm.map(|a| fmt_e7(a.threshold_e7)),
        ),
        (
            "auto_block",
            Some(alarm.is_some_and(|a| a.auto_block).to_string()),
        ),
    ]
}

/// The plan's account changes and the terms to write: a create for a customer without an
/// account, an update naming the fields that differ; equal terms are no change. `current` holds
/// the database's accounts by BAN.
pub fn diff(
    desired: &[AccountDesired],
    current: &BTreeMap<String, AccountTerms>,
) -> (Vec<Change>, Vec<(String, AccountTerms)>) {
    let mut changes = Vec::new();
    let mut writes = Vec::new();
    for d in desired {
        let have = current.get(&d.ban);
        let mut want = d.terms.clone();
        if let (false, Some(h)) = (d.blocked_given, have) {
            want.blocked = h.blocked;
        }
        let new = fields(&want);
        let change = match have {
            None => Change {
                kind: ObjectKind::Account,
                name: d.ban.clone(),
                action: Action::Create,
                fields: new
                    .into_iter()
                    .filter(|(_, v)| v.is_some())
                    .map(|(f, v)| FieldChange {
                        field: f.to_string(),
                        old: None,
                        new: v,
                    })
                    .collect(),
            },
            Some(h) if *h == want => continue,
            Some(h) => Change {
                kind: ObjectKind::Account,
                name: d.ban.clone(),
                action: Action::Update,
                fields: fields(h)
                    .into_iter()
                    .zip(new)
                    .filter(|((_, o), (_, n))| o != n)
                    .map(|((f, o), (_, n))| FieldChange {
                        field: f.to_string(),
                        old: o,
                        new: n,
                    })
                    .collect(),
            },
        };
        changes.push(change);
        writes.push((d.ban.clone(), want));
    }
    (changes, writes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::provision::spec::Network;

    fn parse(account: serde_json::Value) -> (Vec<AccountDesired>, Vec<Issue>) {
        let net: Network = serde_json::from_value(
            serde_json::json!({"customers": [{"ban": "10002", "account": account}]}),
        )
        .expect("network");
        let mut issues = Vec::new();
        let out = build(&net.customers, "net.toml", &mut issues);
        (out, issues)
    }

    fn prepaid() -> serde_json::Value {
        serde_json::json!({
            "mode": "prepaid",
            "at_limit": "cut",
            "daily_spend_limit": "50",
            "tz": "America/New_York",
        })
    }

    #[test]
    fn an_account_table_gives_the_terms_the_admin_api_would() {
        let (out, issues) = parse(prepaid());
        assert!(issues.is_empty(), "{issues:?}");
        let input = AccountInput {
            mode: Some("prepaid"),
            at_limit: Some("cut"),
            daily_spend_limit: Some("50"),
            tz: Some("America/New_York"),
            ..Default::default()
        };
        assert_eq!(
            out,
            vec![AccountDesired {
                ban: "10002".to_string(),
                terms: account("", &input).unwrap(),
                blocked_given: false,
            }]
        );
    }

    #[test]
    fn bad_terms_name_their_field() {
        let cases = [
            (
                serde_json::json!({"mode": "prepay"}),
                "customers[0].account.mode",
            ),
            (
                serde_json::json!({"mode": "prepaid", "credit_limit": "10"}),
                "customers[0].account.credit_limit",
            ),
            (
                serde_json::json!({"per_call_cost_cap": 0}),
                "customers[0].account.per_call_cost_cap",
            ),
            (
                serde_json::json!({"tz": "Mars/Olympus"}),
                "customers[0].account.tz",
            ),
            (
                serde_json::json!({"auto_block": true}),
                "customers[0].account",
            ),
        ];
        for (body, field) in cases {
            let (out, issues) = parse(body.clone());
            assert!(out.is_empty(), "{body}");
            assert_eq!(issues.len(), 1, "{body}: {issues:?}");
            assert!(
                issues[0].field.starts_with(field),
                "{body}: {:?}",
                issues[0]
            );
        }
        // an unknown key (a balance is never provisioned) is the parser's error
        assert!(serde_json::from_value::<Network>(serde_json::json!(
            {"customers": [{"ban": "1", "account": {"balance": 5}}]}
        ))
        .is_err());
    }

    #[test]
    fn the_diff_creates_updates_and_leaves_equal_terms() {
        let (out, _) = parse(prepaid());
        let mut current = BTreeMap::new();
        let (created, writes) = diff(&out, &current);
        assert_eq!(created.len(), 1);
        assert_eq!(created[0].action, Action::Create);
        assert!(created[0]
            .fields
            .iter()
            .any(|f| f.field == "at_limit" && f.new.as_deref() == Some("cut")));
        assert_eq!(writes, vec![("10002".to_string(), out[0].terms.clone())]);
        current.insert("10002".to_string(), out[0].terms.clone());
        assert_eq!(diff(&out, &current), (vec![], vec![]));
        let mut older = out[0].terms.clone();
        older.at_limit = crate::credit::AtLimit::Reject;
        current.insert("10002".to_string(), older);
        let (updated, _) = diff(&out, &current);
        assert_eq!(updated[0].action, Action::Update);
        assert_eq!(
            updated[0].fields,
            vec![FieldChange {
                field: "at_limit".into(),
                old: Some("reject".into()),
                new: Some("cut".into())
            }]
        );
    }

    #[test]
    fn a_blocked_account_stays_blocked_unless_the_file_says_blocked() {
        let (out, _) = parse(prepaid());
        let mut blocked = out[0].terms.clone();
        blocked.blocked = true;
        let current = BTreeMap::from([("10002".to_string(), blocked)]);
        assert_eq!(diff(&out, &current), (vec![], vec![]), "kept blocked");
        let mut unblock = prepaid();
        unblock["blocked"] = serde_json::json!(false);
        let (out, _) = parse(unblock);
        let (changes, writes) = diff(&out, &current);
        assert_eq!(changes[0].fields[0].field, "blocked");
        assert!(!writes[0].1.blocked);
    }
}
