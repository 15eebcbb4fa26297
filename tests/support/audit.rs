//! Test-only failure of the audit log: a trigger on `audit_log` that raises for one action (or
//! every action with `"*"`), to prove a change and its audit row commit together or not at all;
//! and the actors of an action's rows.

use tokio_postgres::Client;

/// From now on, inserting an `audit_log` row with `action` (`"*"`: any) raises
/// `audit log unavailable (test)`.
pub async fn fail_audit_inserts(c: &Client, action: &str) {
    let action = action.replace('\'', "''");
    c.batch_execute(&format!(
        "CREATE OR REPLACE FUNCTION test_fail_audit() RETURNS trigger LANGUAGE plpgsql AS $$ \
         BEGIN IF '{action}' = '*' OR NEW.action = '{action}' THEN \
         RAISE EXCEPTION 'audit log unavailable (test)'; END IF; RETURN NEW; END $$; \
         DROP TRIGGER IF EXISTS test_fail_audit ON audit_log; \
         CREATE TRIGGER test_fail_audit BEFORE INSERT ON audit_log \
         FOR EACH ROW EXECUTE FUNCTION test_fail_audit();"
    ))
    .await
    .expect("installing the failing audit trigger");
}

/// Removes the trigger of [`fail_audit_inserts`].
pub async fn allow_audit_inserts(c: &Client) {
    c.batch_execute("DROP TRIGGER IF EXISTS test_fail_audit ON audit_log")
        .await
        .expect("dropping the failing audit trigger");
}

/// The actors of the audit rows of `action`, oldest first.
pub async fn actors(c: &Client, action: &str) -> Vec<String> {
    c.query(
        "SELECT actor FROM audit_log WHERE action = $1 ORDER BY id",
        &[&action],
    )
    .await
    .expect("reading the audit log")
    .iter()
    .map(|r| r.get(0))
    .collect()
}
