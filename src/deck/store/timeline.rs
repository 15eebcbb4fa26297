//! Deck versions on a route's timeline: a version runs from its effective time to the next live
//! version's. Incremental activation of a new version, rollback and activate (which rebuild the
//! route's `vendor_rates` rows from its live versions), pruning of expired rows, and the list of
//! versions.
//!
//! Owns: the deck rows of `vendor_rates` and the live/staged state of `deck_versions`.
//! Must not touch: `deck_rates` (history, never rewritten), other routes.

use chrono::{DateTime, Utc};
use serde::Serialize;
use tokio_postgres::{Client, GenericClient, Transaction};

use super::{audit, lock_route, ts_text, RouteRow, Since};
use crate::deck::DeckError;

/// One deck version.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct VersionInfo {
    pub id: i64,
    pub route: String,
    pub state: String,
    pub effective_from: String,
    pub rows: i64,
    pub skipped_rows: i64,
    pub source: String,
    pub created_at: String,
    pub created_by: String,
    /// the version routing right now on this route
    pub current: bool,
}

const VR_COLS: &str = "route_id, prefix, ocn, lata, rate_inter, rate_intra, rate_local, \
                       min_seconds, inc_seconds, effective_from, effective_until";

/// Puts a new version on the route's timeline without rewriting the other versions' rows: the
/// version before it is cut at `effective`, rows inside its window (up to the next live version)
/// are replaced. Equivalent to [`rebuild`] (a test checks it), but proportional to the new deck.
pub(super) async fn activate_incremental(
    tx: &Transaction<'_>,
    route_id: i64,
    version_id: i64,
    effective: Since,
    actor: &str,
) -> Result<(), DeckError> {
    tx.execute(
        "UPDATE deck_versions SET state = 'replaced', changed_at = now(), changed_by = $4 \
         WHERE route_id = $1 AND state = 'live' AND effective_from = $2 AND id <> $3",
        &[&route_id, &effective, &version_id, &actor],
    )
    .await
    .map_err(DeckError::db(
        "replacing a version with the same effective time",
    ))?;
    tx.execute(
        "UPDATE deck_versions SET state = 'live' WHERE id = $1",
        &[&version_id],
    )
    .await
    .map_err(DeckError::db("activating the version"))?;
    // next live version after this one; 'infinity' if none
    let next: Option<DateTime<Utc>> = tx
        .query_one(
            "SELECT min(effective_from) FROM deck_versions WHERE route_id = $1 \
             AND state IN ('live', 'baseline') AND effective_from > $2",
            &[&route_id, &effective],
        )
        .await
        .map_err(DeckError::db("finding the next version"))?
        .get(0);
    let next_sql = "coalesce($3::timestamptz, 'infinity')";
    tx.execute(
        &format!(
            "DELETE FROM vendor_rates WHERE route_id = $1 AND effective_from >= $2 \
             AND effective_from < {next_sql}"
        ),
        &[&route_id, &effective, &next],
    )
    .await
    .map_err(DeckError::db("removing the rows the new version replaces"))?;
    // The version before ends at `effective`. If that is already past, its rows are expired:
    // delete them (their history is in deck_rates) instead of rewriting every one of them.
    tx.execute(
        "DELETE FROM vendor_rates WHERE route_id = $1 AND effective_from < $2 \
         AND effective_until > $2 AND $2 <= now()",
        &[&route_id, &effective],
    )
    .await
    .map_err(DeckError::db("ending the previous version now"))?;
    tx.execute(
        "UPDATE vendor_rates SET effective_until = $2 WHERE route_id = $1 \
         AND effective_from < $2 AND effective_until > $2 AND $2 > now()",
        &[&route_id, &effective],
    )
    .await
    .map_err(DeckError::db(
        "ending the previous version at the new effective time",
    ))?;
    tx.execute(
        &format!(
            "INSERT INTO vendor_rates ({VR_COLS}) \
             SELECT $1, prefix, ocn, lata, rate_inter, rate_intra, rate_local, min_seconds, \
             inc_seconds, greatest(effective_from, $2), least(effective_until, {next_sql}) \
             FROM deck_rates WHERE version_id = $4 \
             AND greatest(effective_from, $2) < least(effective_until, {next_sql}) \
             AND least(effective_until, {next_sql}) > now()"
        ),
        &[&route_id, &effective, &next, &version_id],
    )
    .await
    .map_err(DeckError::db("routing the new version's rows"))?;
    prune_expired(tx, route_id).await
}

async fn prune_expired(tx: &Transaction<'_>, route_id: i64) -> Result<(), DeckError> {
    tx.execute(
        "DELETE FROM vendor_rates WHERE route_id = $1 AND effective_until <= now()",
        &[&route_id],
    )
    .await
    .map_err(DeckError::db("pruning expired rows"))?;
    Ok(())
}

/// SQL of the rows a route routes from `now()` on, from its live versions (plus `extra`, a
/// candidate version id, or NULL): `$1` route id, `$2` extra version id (bigint, may be NULL).
pub(crate) const TIMELINE_ROWS: &str = "\
    SELECT v.route_id, d.prefix, d.ocn, d.lata, d.rate_inter, d.rate_intra, d.rate_local, \
           d.min_seconds, d.inc_seconds, greatest(d.effective_from, v.effective_from) AS effective_from, \
           least(d.effective_until, v.next_from) AS effective_until \
    FROM (SELECT id, route_id, effective_from, \
                 lead(effective_from, 1, 'infinity') OVER (ORDER BY effective_from, id) AS next_from \
          FROM (SELECT DISTINCT ON (effective_from) id, route_id, effective_from FROM deck_versions \
                WHERE route_id = $1 AND (state IN ('live', 'baseline') OR id = $2) \
                ORDER BY effective_from, (id = $2) DESC, id DESC) latest) v \
    JOIN deck_rates d ON d.version_id = v.id \
    WHERE greatest(d.effective_from, v.effective_from) < least(d.effective_until, v.next_from) \
      AND least(d.effective_until, v.next_from) > now()";

/// Rewrites a route's future rows from its live versions (after rollback/activate).
async fn rebuild(tx: &Transaction<'_>, route_id: i64) -> Result<(), DeckError> {
    tx.execute(
        "DELETE FROM vendor_rates WHERE route_id = $1 AND effective_until > now()",
        &[&route_id],
    )
    .await
    .map_err(DeckError::db("clearing the route's rows"))?;
    let none: Option<i64> = None;
    tx.execute(
        &format!("INSERT INTO vendor_rates ({VR_COLS}) {TIMELINE_ROWS}"),
        &[&route_id, &none],
    )
    .await
    .map_err(DeckError::db(
        "rewriting the route's rows from its versions",
    ))?;
    prune_expired(tx, route_id).await
}

/// Test/diagnostic hook: rebuilds a route's rows from its versions in one transaction.
pub async fn rebuild_route(client: &mut Client, route: &str) -> Result<(), DeckError> {
    let tx = client
        .transaction()
        .await
        .map_err(DeckError::db("starting a transaction"))?;
    let r = lock_route(&tx, route).await?;
    rebuild(&tx, r.id).await?;
    tx.commit().await.map_err(DeckError::db("committing"))
}

async fn version_route(
    tx: &Transaction<'_>,
    route: &RouteRow,
    route_name: &str,
    version: i64,
) -> Result<(String, DateTime<Utc>), DeckError> {
    let row = tx
        .query_opt(
            "SELECT state, effective_from FROM deck_versions WHERE id = $1 AND route_id = $2",
            &[&version, &route.id],
        )
        .await
        .map_err(DeckError::db("reading the version"))?
        .ok_or_else(|| DeckError::UnknownVersion {
            route: route_name.to_string(),
            version,
        })?;
    Ok((row.get(0), row.get(1)))
}

/// Withdraws a live version (default: the route's newest) and rewrites the route's rows from the
/// versions that remain. Returns the id of the withdrawn version.
pub async fn rollback(
    client: &mut Client,
    route: &str,
    version: Option<i64>,
    actor: &str,
) -> Result<i64, DeckError> {
    let tx = client
        .transaction()
        .await
        .map_err(DeckError::db("starting the rollback"))?;
    let r = lock_route(&tx, route).await?;
    let v = match version {
        Some(v) => v,
        None => tx
            .query_opt(
                "SELECT id FROM deck_versions WHERE route_id = $1 AND state = 'live' \
                 ORDER BY id DESC LIMIT 1",
                &[&r.id],
            )
            .await
            .map_err(DeckError::db("finding the newest version"))?
            .map(|row| row.get(0))
            .ok_or_else(|| {
                DeckError::Conflict(format!(
                    "route {route:?} has no live deck version to roll back"
                ))
            })?,
    };
    let (state, _) = version_route(&tx, &r, route, v).await?;
    if state != "live" {
        return Err(DeckError::Conflict(format!(
            "version {v} of route {route:?} is {state}; only a live version can be rolled back"
        )));
    }
    tx.execute(
        "UPDATE deck_versions SET state = 'rolled_back', changed_at = now(), changed_by = $2 WHERE id = $1",
        &[&v, &actor],
    )
    .await
    .map_err(DeckError::db("marking the version rolled back"))?;
    rebuild(&tx, r.id).await?;
    audit(
        &tx,
        actor,
        "deck.rollback",
        &format!("route {route} version {v}"),
        Some(serde_json::json!({"version": v, "state": "live"})),
        Some(serde_json::json!({"version": v, "state": "rolled_back"})),
    )
    .await?;
    tx.commit()
        .await
        .map_err(DeckError::db("committing the rollback"))?;
    Ok(v)
}

/// Makes a staged (or rolled-back) version live, optionally at a new effective time.
pub async fn activate(
    client: &mut Client,
    route: &str,
    version: i64,
    effective: Option<DateTime<Utc>>,
    actor: &str,
) -> Result<VersionInfo, DeckError> {
    let tx = client
        .transaction()
        .await
        .map_err(DeckError::db("starting the activation"))?;
    let r = lock_route(&tx, route).await?;
    let (state, from) = version_route(&tx, &r, route, version).await?;
    if !matches!(state.as_str(), "staged" | "rolled_back" | "replaced") {
        return Err(DeckError::Conflict(format!(
            "version {version} of route {route:?} is {state}; only a staged, replaced or rolled-back version can be activated"
        )));
    }
    let eff = effective.unwrap_or(from);
    tx.execute(
        "UPDATE deck_versions SET state = 'replaced', changed_at = now(), changed_by = $4 \
         WHERE route_id = $1 AND state = 'live' AND effective_from = $2 AND id <> $3",
        &[&r.id, &eff, &version, &actor],
    )
    .await
    .map_err(DeckError::db(
        "replacing a version with the same effective time",
    ))?;
    tx.execute(
        "UPDATE deck_versions SET state = 'live', effective_from = $2, changed_at = now(), changed_by = $3 WHERE id = $1",
        &[&version, &eff, &actor],
    )
    .await
    .map_err(DeckError::db("activating the version"))?;
    rebuild(&tx, r.id).await?;
    audit(
        &tx,
        actor,
        "deck.activate",
        &format!("route {route} version {version}"),
        Some(serde_json::json!({"version": version, "state": state, "effective_from": ts_text(from)})),
        Some(serde_json::json!({"version": version, "state": "live", "effective_from": ts_text(eff)})),
    )
    .await?;
    tx.commit()
        .await
        .map_err(DeckError::db("committing the activation"))?;
    versions(client, route)
        .await?
        .into_iter()
        .find(|v| v.id == version)
        .ok_or_else(|| DeckError::Internal("activated version vanished".into()))
}

/// Every version of a route, oldest first.
pub async fn versions<C: GenericClient>(c: &C, route: &str) -> Result<Vec<VersionInfo>, DeckError> {
    let exists = c
        .query_opt("SELECT id FROM routes WHERE name = $1", &[&route])
        .await
        .map_err(DeckError::db("looking up the route"))?;
    let Some(r) = exists else {
        return Err(DeckError::UnknownRoute(route.to_string()));
    };
    let route_id: i64 = r.get(0);
    let rows = c
        .query(
            "SELECT id, state, effective_from::text, row_count, skipped_rows, source, \
             created_at, created_by, \
             id = (SELECT id FROM deck_versions WHERE route_id = $1 AND state IN ('live','baseline') \
                   AND effective_from <= now() ORDER BY effective_from DESC, id DESC LIMIT 1) \
             FROM deck_versions WHERE route_id = $1 ORDER BY id",
            &[&route_id],
        )
        .await
        .map_err(DeckError::db("listing versions"))?;
    Ok(rows
        .iter()
        .map(|row| VersionInfo {
            id: row.get(0),
            route: route.to_string(),
            state: row.get(1),
            effective_from: row.get(2),
            rows: row.get(3),
            skipped_rows: row.get(4),
            source: row.get(5),
            created_at: ts_text(row.get(6)),
            created_by: row.get(7),
            current: row.get::<_, Option<bool>>(8).unwrap_or(false),
        })
        .collect())
}
