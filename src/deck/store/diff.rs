//! Per-prefix comparison of two deck versions ([`diff_versions`]), and `deck diff`'s choice of
//! the versions to compare ([`diff`]).
//!
//! Owns: the diff query and report. Must not touch: any write.

use serde::Serialize;
use tokio_postgres::{Client, GenericClient};

use super::timeline::versions;
use crate::deck::DeckError;

/// Per-prefix comparison of two versions.
#[derive(Clone, Debug, Default, Serialize, utoipa::ToSchema)]
pub struct DiffReport {
    pub from_version: i64,
    pub to_version: i64,
    pub added: i64,
    pub removed: i64,
    pub up: i64,
    pub down: i64,
    /// some zones up, some down, or a zone rate added/removed
    pub changed: i64,
    pub unchanged: i64,
    /// rows with a rate moving by more than the threshold percent
    pub over_threshold: i64,
    pub rows: Vec<DiffRow>,
}

#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct DiffRow {
    /// prefix, or OCN/LATA
    pub key: String,
    pub change: String,
    /// interstate rates (or the single rate), old and new
    pub old_rate: Option<String>,
    pub new_rate: Option<String>,
    pub pct: Option<f64>,
}

/// Compares two versions prefix by prefix. `limit` rows of detail (changes only).
pub async fn diff_versions<C: GenericClient>(
    c: &C,
    from: i64,
    to: i64,
    warn_pct: f64,
    limit: i64,
) -> Result<DiffReport, DeckError> {
    let sql = "\
        WITH a AS (SELECT coalesce(prefix, ocn || '/' || lata) k, rate_inter i, rate_intra j, rate_local l \
                   FROM deck_rates WHERE version_id = $1), \
             b AS (SELECT coalesce(prefix, ocn || '/' || lata) k, rate_inter i, rate_intra j, rate_local l \
                   FROM deck_rates WHERE version_id = $2), \
             j AS (SELECT coalesce(a.k, b.k) k, a.i ai, b.i bi, a.k IS NULL added, b.k IS NULL removed, \
                     coalesce(b.i > a.i, false) OR coalesce(b.j > a.j, false) OR coalesce(b.l > a.l, false) up, \
                     coalesce(b.i < a.i, false) OR coalesce(b.j < a.j, false) OR coalesce(b.l < a.l, false) down, \
                     (a.i IS NULL) <> (b.i IS NULL) OR (a.j IS NULL) <> (b.j IS NULL) OR (a.l IS NULL) <> (b.l IS NULL) nullchg, \
                     greatest(abs(b.i - a.i) / nullif(a.i, 0), abs(b.j - a.j) / nullif(a.j, 0), \
                              abs(b.l - a.l) / nullif(a.l, 0)) * 100 AS pct \
                   FROM a FULL JOIN b ON a.k = b.k), \
             c AS (SELECT k, ai, bi, pct, CASE WHEN added THEN 'added' WHEN removed THEN 'removed' \
                     WHEN up AND NOT down AND NOT nullchg THEN 'up' \
                     WHEN down AND NOT up AND NOT nullchg THEN 'down' \
                     WHEN up OR down OR nullchg THEN 'changed' ELSE 'unchanged' END AS change FROM j) \
        SELECT change, count(*), count(*) FILTER (WHERE pct > $3::float8), NULL::text, NULL::text, NULL::text, NULL::float8 \
          FROM c GROUP BY change \
        UNION ALL \
        (SELECT 'row', 0, 0, k, change, trim_scale(ai)::text || '|' || coalesce(trim_scale(bi)::text, ''), pct::float8 \
           FROM c WHERE change <> 'unchanged' ORDER BY k LIMIT $4)";
    let rows = c
        .query(sql, &[&from, &to, &warn_pct, &limit])
        .await
        .map_err(DeckError::db("comparing versions"))?;
    let mut d = DiffReport {
        from_version: from,
        to_version: to,
        ..DiffReport::default()
    };
    for row in rows {
        let kind: String = row.get(0);
        let n: i64 = row.get(1);
        match kind.as_str() {
            "added" => d.added = n,
            "removed" => d.removed = n,
            "up" => d.up = n,
            "down" => d.down = n,
            "changed" => d.changed = n,
            "unchanged" => d.unchanged = n,
            _ => {}
        }
        if kind != "row" {
            d.over_threshold += row.get::<_, i64>(2);
            continue;
        }
        let rates: Option<String> = row.get(5);
        let (old, new) = match rates.as_deref().and_then(|s| s.split_once('|')) {
            Some((o, n)) => (
                (!o.is_empty()).then(|| o.to_string()),
                (!n.is_empty()).then(|| n.to_string()),
            ),
            None => (None, None),
        };
        d.rows.push(DiffRow {
            key: row.get(3),
            change: row.get(4),
            old_rate: old,
            new_rate: new,
            pct: row.get(6),
        });
    }
    Ok(d)
}

/// `deck diff`: `to` defaults to the route's newest version, `from` to the live version before
/// `to` on the timeline.
pub async fn diff(
    client: &Client,
    route: &str,
    from: Option<i64>,
    to: Option<i64>,
    warn_pct: f64,
    limit: i64,
) -> Result<DiffReport, DeckError> {
    let vs = versions(client, route).await?;
    let to = match to {
        Some(t) => t,
        None => vs
            .iter()
            .rev()
            .find(|v| v.state != "rolled_back")
            .map(|v| v.id)
            .ok_or_else(|| DeckError::Conflict(format!("route {route:?} has no deck versions")))?,
    };
    let to_v = vs
        .iter()
        .find(|v| v.id == to)
        .ok_or_else(|| DeckError::UnknownVersion {
            route: route.to_string(),
            version: to,
        })?;
    let from = match from {
        Some(f) => {
            if !vs.iter().any(|v| v.id == f) {
                return Err(DeckError::UnknownVersion {
                    route: route.to_string(),
                    version: f,
                });
            }
            f
        }
        None => {
            let row = client
                .query_opt(
                    "SELECT v.id FROM deck_versions v, deck_versions t WHERE t.id = $1 \
                     AND v.route_id = t.route_id AND v.id <> t.id AND v.state IN ('live','baseline') \
                     AND v.effective_from <= t.effective_from \
                     ORDER BY v.effective_from DESC, v.id DESC LIMIT 1",
                    &[&to_v.id],
                )
                .await
                .map_err(DeckError::db("finding the previous version"))?;
            row.map(|r| r.get(0)).ok_or_else(|| {
                DeckError::Conflict(format!(
                    "version {to} of route {route:?} has no earlier version to compare with (give --from)"
                ))
            })?
        }
    };
    diff_versions(client, from, to, warn_pct, limit).await
}
