//! Schema migrations: the `sql/NNNN_*.sql` files embedded at compile time, applied in order, each
//! in its own transaction, recorded in `warpd_schema_migrations`.
//!
//! Owns: `warpd_schema_migrations` and the migration advisory lock.
//! Must not touch: routing data (the migration files themselves may, this code never does).
//! Concurrent migrators (several warpd nodes starting at once) are serialized with a session-level
//! `pg_advisory_lock`, so each migration is applied exactly once.

use tokio_postgres::Client;

use super::DbError;

/// One embedded migration file.
#[derive(Clone, Copy, Debug)]
pub struct Migration {
    /// the `NNNN` of the file name
    pub version: i32,
    /// the file name, e.g. `0001_routing.sql`
    pub name: &'static str,
    pub sql: &'static str,
}

impl Migration {
    /// Checksum of the file text, recorded when applied and compared on every later run.
    pub fn checksum(&self) -> String {
        checksum(self.sql)
    }
}

macro_rules! migration {
    ($file:literal) => {
        Migration {
            version: version_of($file),
            name: $file,
            sql: include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/sql/", $file)),
        }
    };
}

/// Every migration, sorted by version. Adding a file to `sql/` without listing it here fails the
/// `list_matches_sql_dir` unit test.
pub const MIGRATIONS: &[Migration] = &[
    migration!("0001_routing.sql"),
    migration!("0002_decks.sql"),
    migration!("0003_cdr.sql"),
    migration!("0004_media.sql"),
    migration!("0005_constraints.sql"),
    migration!("0006_vendor_rates_route_check.sql"),
    migration!("0007_nanp_classes.sql"),
    migration!("0008_emergency_callback.sql"),
    migration!("0009_deck_version_digest.sql"),
    migration!("0010_cdr_recording.sql"),
    migration!("0011_routing_data_version.sql"),
    migration!("0012_trunks_numbers.sql"),
    migration!("0013_cdr_direction.sql"),
    migration!("0014_accounts.sql"),
    migration!("0015_account_spend_alarm.sql"),
    migration!("0016_console.sql"),
    migration!("0017_routing_change_log.sql"),
    migration!("0019_routing_change_routes.sql"),
    migration!("0020_stir.sql"),
    migration!("0021_trunk_media_policy.sql"),
    migration!("0022_deck_rates_ocn_lata.sql"),
    migration!("0024_vendor_rates_load_row.sql"),
];

/// The `NNNN` of `NNNN_name.sql`. Evaluated at compile time: a malformed name fails the build.
const fn version_of(name: &str) -> i32 {
    let b = name.as_bytes();
    assert!(
        b.len() > 5 && b[4] == b'_',
        "migration file names look like NNNN_name.sql"
    );
    let mut v = 0i32;
    let mut i = 0;
    while i < 4 {
        assert!(
            b[i].is_ascii_digit(),
            "migration file names start with 4 digits"
        );
        v = v * 10 + (b[i] - b'0') as i32;
        i += 1;
    }
    v
}

/// 64-bit FNV-1a of the text, as 16 hex digits. This only has to notice an edited file, not resist
/// an adversary (whoever can edit the file can edit the table), so a hand-rolled FNV avoids a
/// crypto-hash dependency. Carriage returns are skipped so a CRLF checkout hashes the same.
pub fn checksum(text: &str) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in text.as_bytes().iter().filter(|&&b| b != b'\r') {
        h ^= b as u64;
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    format!("{h:016x}")
}

/// Key of the session advisory lock held while migrating ("warpd mg" in ASCII).
pub const LOCK_KEY: i64 = 0x7761_7270_6420_6d67;

/// Applies every embedded migration not yet recorded, in order, and returns the names applied
/// (empty when the schema is current). Fails with [`DbError::ChecksumMismatch`] if an applied
/// migration's file has changed since, before applying anything newer.
pub async fn migrate(client: &mut Client) -> Result<Vec<String>, DbError> {
    client
        .execute("SELECT pg_advisory_lock($1)", &[&LOCK_KEY])
        .await
        .map_err(DbError::query("taking the migration lock"))?;
    let result = migrate_locked(client).await;
    // Unlock even on failure. If the session is broken the server has released the lock anyway.
    let unlocked = client
        .execute("SELECT pg_advisory_unlock($1)", &[&LOCK_KEY])
        .await;
    if let Err(e) = unlocked {
        tracing::warn!(error = %e, "releasing the migration lock failed");
    }
    result
}

async fn migrate_locked(client: &mut Client) -> Result<Vec<String>, DbError> {
    client
        .batch_execute(
            "CREATE TABLE IF NOT EXISTS warpd_schema_migrations (
                 version    integer PRIMARY KEY,
                 name       text NOT NULL,
                 checksum   text NOT NULL,
                 applied_at timestamptz NOT NULL DEFAULT now()
             )",
        )
        .await
        .map_err(DbError::query("creating warpd_schema_migrations"))?;
    let rows = client
        .query(
            "SELECT version, name, checksum FROM warpd_schema_migrations ORDER BY version",
            &[],
        )
        .await
        .map_err(DbError::query("reading warpd_schema_migrations"))?;
    let mut applied = std::collections::BTreeMap::new();
    for row in &rows {
        let version: i32 = row
            .try_get(0)
            .map_err(DbError::query("reading warpd_schema_migrations"))?;
        let name: String = row
            .try_get(1)
            .map_err(DbError::query("reading warpd_schema_migrations"))?;
        let sum: String = row
            .try_get(2)
            .map_err(DbError::query("reading warpd_schema_migrations"))?;
        applied.insert(version, (name, sum));
    }

    // Verify everything already applied before changing anything.
    for m in MIGRATIONS {
        if let Some((name, sum)) = applied.get(&m.version) {
            let embedded = m.checksum();
            if *sum != embedded || name != m.name {
                return Err(DbError::ChecksumMismatch {
                    name: if name == m.name {
                        m.name.to_string()
                    } else {
                        format!("{} (recorded as {name})", m.name)
                    },
                    applied: sum.clone(),
                    embedded,
                });
            }
        }
    }
    for (version, (name, _)) in &applied {
        if !MIGRATIONS.iter().any(|m| m.version == *version) {
            tracing::warn!(version, name = %name, "database has a migration this binary does not know (newer warpd?)");
        }
    }

    let mut done = Vec::new();
    for m in MIGRATIONS
        .iter()
        .filter(|m| !applied.contains_key(&m.version))
    {
        let ctx = |what: &str| format!("migration {}: {what}", m.name);
        let tx = client
            .transaction()
            .await
            .map_err(DbError::query(ctx("begin")))?;
        tx.batch_execute(m.sql)
            .await
            .map_err(DbError::query(ctx("applying")))?;
        tx.execute(
            "INSERT INTO warpd_schema_migrations (version, name, checksum) VALUES ($1, $2, $3)",
            &[&m.version, &m.name, &m.checksum()],
        )
        .await
        .map_err(DbError::query(ctx("recording")))?;
        tx.commit().await.map_err(DbError::query(ctx("commit")))?;
        tracing::info!(migration = m.name, "applied migration");
        done.push(m.name.to_string());
    }
    Ok(done)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_schema_default_dialstring_is_the_rules_one() {
        // rows written without a dialstring (tests, benches) get the column default; both write
        // paths write `crate::rules::DEFAULT_DIALSTRING` explicitly: they must agree
        let sql = include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/sql/0001_routing.sql"));
        let want = format!("DEFAULT '{}'", crate::rules::DEFAULT_DIALSTRING);
        assert!(sql.contains(&want), "sql/0001_routing.sql: {want}");
    }

    #[test]
    fn list_matches_sql_dir() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("sql");
        let mut on_disk: Vec<String> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.ends_with(".sql"))
            .collect();
        on_disk.sort();
        let listed: Vec<String> = MIGRATIONS.iter().map(|m| m.name.to_string()).collect();
        assert_eq!(
            listed, on_disk,
            "MIGRATIONS in src/db/migrate.rs must list every sql/*.sql, sorted"
        );
    }

    #[test]
    fn versions_are_strictly_increasing_and_match_names() {
        for w in MIGRATIONS.windows(2) {
            assert!(w[0].version < w[1].version, "{} / {}", w[0].name, w[1].name);
        }
        for m in MIGRATIONS {
            assert_eq!(format!("{:04}", m.version), m.name[..4]);
            assert!(!m.sql.trim().is_empty(), "{} is empty", m.name);
        }
    }

    #[test]
    fn checksum_is_fnv1a_and_ignores_cr() {
        // FNV-1a 64 test vectors
        assert_eq!(checksum(""), "cbf29ce484222325");
        assert_eq!(checksum("a"), "af63dc4c8601ec8c");
        assert_eq!(checksum("foobar"), "85944171f73967e8");
        assert_eq!(checksum("a\r\nb"), checksum("a\nb"));
        assert_ne!(checksum("a\nb"), checksum("a\nc"));
    }
}
