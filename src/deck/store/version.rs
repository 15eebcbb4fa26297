//! A new deck version on a route, the one code path of `warpd deck import` (see `import`) and of
//! `warpd apply` loading a route's `rates` (`crate::provision`): the baseline of the rows a route
//! had before its first version, the version row, its layout and counts, and putting it on the
//! route's timeline with its audit row. The caller owns the transaction (and the route lock).
//!
//! Owns: creation of `deck_versions` rows. Must not touch: the rows of a version (the caller
//! COPYs them into `deck_rates`), transaction boundaries.

use tokio_postgres::Transaction;

use super::timeline::activate_incremental;
use super::{audit, Since};
use crate::deck::DeckError;

/// Columns and fields of a version whose rows are in canonical form (the baseline, `warpd apply`):
/// `deck export` writes them back in this layout.
pub(crate) const CANONICAL_LAYOUT: &[&str] = &[
    "prefix",
    "ocn",
    "lata",
    "interstate",
    "intrastate",
    "local",
    "min_seconds",
    "inc_seconds",
    "effective_from",
    "effective_until",
];

/// A new, staged version of a route taking over at `effective` (its rows to be COPYed into
/// `deck_rates` by the caller). A route's first version keeps the rows it had as `baseline`.
pub(crate) async fn new_version(
    tx: &Transaction<'_>,
    route_id: i64,
    effective: Since,
    source: &str,
    actor: &str,
) -> Result<i64, DeckError> {
    ensure_baseline(tx, route_id, actor).await?;
    Ok(tx
        .query_one(
            "INSERT INTO deck_versions (route_id, effective_from, state, source, created_by) \
             VALUES ($1, $2, 'staged', $3, $4) RETURNING id",
            &[&route_id, &effective, &source, &actor],
        )
        .await
        .map_err(DeckError::db("creating the deck version"))?
        .get(0))
}

/// Header, fields and counts of a version (what `deck export` and `deck versions` show).
pub(crate) struct VersionLayout<'a> {
    pub columns: &'a [String],
    pub fields: &'a [&'static str],
    pub rows: u64,
    pub skipped_rows: u64,
    /// fingerprint of the rows (`warpd apply`'s decks), see `deck_versions.content_digest`
    pub digest: Option<String>,
}

pub(crate) async fn record_layout(
    tx: &Transaction<'_>,
    version_id: i64,
    l: &VersionLayout<'_>,
) -> Result<(), DeckError> {
    tx.execute(
        "UPDATE deck_versions SET columns = $2, fields = $3, row_count = $4, skipped_rows = $5, \
         content_digest = $6 WHERE id = $1",
        &[
            &version_id,
            &l.columns,
            &l.fields,
            &(l.rows as i64),
            &(l.skipped_rows as i64),
            &l.digest,
        ],
    )
    .await
    .map_err(DeckError::db("recording the deck version"))?;
    Ok(())
}

/// A version in force.
pub(crate) struct InForce {
    pub id: i64,
    pub rows: u64,
    pub digest: Option<String>,
}

/// The version in force on a route at `at` (live or baseline).
pub(crate) async fn version_at(
    tx: &Transaction<'_>,
    route_id: i64,
    at: Since,
) -> Result<Option<InForce>, DeckError> {
    let row = tx
        .query_opt(
            "SELECT id, row_count, content_digest FROM deck_versions WHERE route_id = $1 \
             AND state IN ('live', 'baseline') AND effective_from <= $2 \
             ORDER BY effective_from DESC, id DESC LIMIT 1",
            &[&route_id, &at],
        )
        .await
        .map_err(DeckError::db("finding the version in force"))?;
    Ok(row.map(|r| InForce {
        id: r.get(0),
        rows: u64::try_from(r.get::<_, i64>(1)).unwrap_or(0),
        digest: r.get(2),
    }))
}

/// What the audit row of a new version says.
pub(crate) struct VersionAudit<'a> {
    pub route: &'a str,
    pub version_id: i64,
    pub state: &'a str,
    pub effective: Since,
    pub rows: u64,
    pub skipped_rows: u64,
    pub source: &'a str,
    pub actor: &'a str,
    /// the version it replaces on the timeline, and its rows
    pub before: Option<(i64, u64)>,
    /// what made it (`deck import`, `apply`)
    pub via: &'a str,
}

/// Writes the `deck.import` audit row of a new version.
pub(crate) async fn audit_version(
    tx: &Transaction<'_>,
    a: &VersionAudit<'_>,
) -> Result<(), DeckError> {
    audit(
        tx,
        a.actor,
        "deck.import",
        &format!("route {} version {}", a.route, a.version_id),
        a.before
            .map(|(v, rows)| serde_json::json!({"version": v, "rows": rows})),
        Some(serde_json::json!({
            "version": a.version_id, "state": a.state, "effective_from": a.effective.text(),
            "rows": a.rows, "skipped_rows": a.skipped_rows, "source": a.source, "via": a.via,
        })),
    )
    .await
}

/// Puts a recorded version live on its route's timeline and writes its audit row.
pub(crate) async fn go_live(
    tx: &Transaction<'_>,
    route_id: i64,
    a: &VersionAudit<'_>,
) -> Result<(), DeckError> {
    activate_incremental(tx, route_id, a.version_id, a.effective, a.actor).await?;
    audit_version(tx, a).await
}

/// First import on a route that already has rows (from `warpd apply`): keep them as version
/// `baseline`, so diff, rollback and shadow have something to compare with.
async fn ensure_baseline(
    tx: &Transaction<'_>,
    route_id: i64,
    actor: &str,
) -> Result<(), DeckError> {
    let has_versions: bool = tx
        .query_one(
            "SELECT EXISTS (SELECT 1 FROM deck_versions WHERE route_id = $1)",
            &[&route_id],
        )
        .await
        .map_err(DeckError::db("checking deck versions"))?
        .get(0);
    if has_versions {
        return Ok(());
    }
    let id: i64 = tx
        .query_one(
            "INSERT INTO deck_versions (route_id, effective_from, state, source, created_by) \
             VALUES ($1, '-infinity', 'baseline', 'rows before the first import', $2) RETURNING id",
            &[&route_id, &actor],
        )
        .await
        .map_err(DeckError::db("creating the baseline version"))?
        .get(0);
    let n = tx
        .execute(
            "INSERT INTO deck_rates (version_id, prefix, ocn, lata, rate_inter, rate_intra, \
             rate_local, min_seconds, inc_seconds, effective_from, effective_until) \
             SELECT $1, prefix, ocn, lata, rate_inter, rate_intra, rate_local, min_seconds, \
             inc_seconds, effective_from, effective_until FROM vendor_rates \
             WHERE route_id = $2 AND effective_until > now()",
            &[&id, &route_id],
        )
        .await
        .map_err(DeckError::db(
            "keeping the route's rows as the baseline version",
        ))?;
    if n == 0 {
        tx.execute("DELETE FROM deck_versions WHERE id = $1", &[&id])
            .await
            .map_err(DeckError::db("creating the baseline version"))?;
    } else {
        tx.execute(
            "UPDATE deck_versions SET row_count = $2, columns = $3, fields = $3 WHERE id = $1",
            &[&id, &(n as i64), &CANONICAL_LAYOUT],
        )
        .await
        .map_err(DeckError::db("creating the baseline version"))?;
    }
    Ok(())
}
