//! `[customers.account]`: a customer's credit account terms through `warpd apply` — dry run,
//! create, reapply, an update naming its fields, a blocked account kept blocked, bad terms
//! rejected naming the field; the balance never moves.

use super::*;

/// A demo copy whose customer 10002 (customers[1]) has an account table with `body`.
fn with_account(body: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = demo_copy();
    let file = dir.path().join("network.toml");
    edit(
        &file,
        "sell_rates = \"rates/sell_10002.csv\"",
        &format!("sell_rates = \"rates/sell_10002.csv\"\n[customers.account]\n{body}\n#"),
    );
    (dir, file)
}

/// (mode, daily limit e7, at_limit, tz, blocked, balance e7) of 10002's account.
async fn account(c: &Client) -> Option<(String, Option<i64>, String, String, bool, i64)> {
    c.query_opt(
        "SELECT mode, daily_spend_limit_e7, at_limit, tz, blocked, balance_e7 \
         FROM accounts WHERE ban = '10002'",
        &[],
    )
    .await
    .unwrap()
    .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3), r.get(4), r.get(5)))
}

fn account_changes(plan: &provision::Plan) -> Vec<(String, Action, Vec<String>)> {
    plan.changes
        .iter()
        .filter(|ch| ch.kind == ObjectKind::Account)
        .map(|ch| {
            (
                ch.name.clone(),
                ch.action,
                ch.fields.iter().map(|f| f.field.clone()).collect(),
            )
        })
        .collect()
}

#[tokio::test]
async fn an_account_table_creates_updates_and_keeps_the_balance_and_the_block() {
    let pg = support::TestPg::start();
    let mut c = db(&pg).await;
    let (_dir, file) =
        with_account("mode = \"prepaid\"\ndaily_spend_limit = \"100\"\ntz = \"America/New_York\"");
    // dry run: a create with its terms, nothing written
    let dry = provision::apply(&mut c, &file, true).await.unwrap();
    let changes = account_changes(&dry);
    assert_eq!(changes.len(), 1, "{dry}");
    assert_eq!(
        (changes[0].0.as_str(), changes[0].1),
        ("10002", Action::Create)
    );
    assert!(changes[0].2.contains(&"daily_spend_limit".to_string()));
    assert!(dry.to_string().contains("account 10002"), "{dry}");
    assert_eq!(account(&c).await, None);

    provision::apply(&mut c, &file, false).await.unwrap();
    let created = (
        "prepaid".to_string(),
        Some(1_000_000_000),
        "reject".to_string(),
        "America/New_York".to_string(),
        false,
        0,
    );
    assert_eq!(account(&c).await, Some(created.clone()));
    // reapplying changes nothing
    let again = provision::apply(&mut c, &file, false).await.unwrap();
    assert!(account_changes(&again).is_empty(), "{again}");

    // money moves through the ledger only; warpd blocks the account for its spend rate
    c.batch_execute(
        "INSERT INTO account_ledger (ban, kind, amount_e7) VALUES ('10002', 'topup', 250000000); \
         UPDATE accounts SET blocked = true, blocked_reason = 'spend rate' WHERE ban = '10002'",
    )
    .await
    .unwrap();
    // a changed term is an update naming it; the balance and the block stay
    let (_dir2, file2) = with_account(
        "mode = \"prepaid\"\ndaily_spend_limit = \"100\"\ntz = \"America/New_York\"\nat_limit = \"cut\"",
    );
    let upd = provision::apply(&mut c, &file2, false).await.unwrap();
    assert_eq!(
        account_changes(&upd),
        vec![(
            "10002".to_string(),
            Action::Update,
            vec!["at_limit".to_string()]
        )]
    );
    let after = account(&c).await.unwrap();
    assert_eq!(after.2, "cut");
    assert!(after.4, "a file without `blocked` never unblocks");
    assert_eq!(after.5, 250_000_000, "the balance is the ledger's");
    // the apply's audit row holds the change
    let audited: i64 = c
        .query_one(
            "SELECT count(*) FROM audit_log WHERE action = 'apply.update' \
             AND target = 'account 10002' AND after::text LIKE '%cut%'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(audited, 1);
    // a file without the account table leaves the account alone
    let plain = provision::apply(&mut c, &demo(), false).await.unwrap();
    assert!(account_changes(&plain).is_empty(), "{plain}");
    assert!(account(&c).await.is_some());
}

#[tokio::test]
async fn bad_account_terms_are_rejected_naming_the_field() {
    let pg = support::TestPg::start();
    let mut c = db(&pg).await;
    provision::apply(&mut c, &demo(), false).await.unwrap();
    let cases = [
        ("mode = \"prepay\"", "customers[1].account.mode"),
        (
            "mode = \"prepaid\"\ncredit_limit = \"5\"",
            "customers[1].account.credit_limit",
        ),
        ("tz = \"Mars/Olympus\"", "customers[1].account.tz"),
    ];
    for (body, needle) in cases {
        let (_dir, file) = with_account(body);
        assert_rejected(&mut c, &file, &[needle]).await;
        assert_eq!(account(&c).await, None, "{body}");
    }
    // a balance is never provisioned: the file does not parse
    let (_dir, file) = with_account("balance = \"5\"");
    let err = provision::apply(&mut c, &file, false)
        .await
        .expect_err("a balance in the file");
    assert!(err.to_string().contains("unknown field `balance`"), "{err}");
    assert_eq!(account(&c).await, None);
}
