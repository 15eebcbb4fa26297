//! Incremental loads: read only the snapshot parts whose tables changed since a live snapshot
//! was read, and share the others with it.
//!
//! Owns: asking the change log (sql/0017) what changed, in the same REPEATABLE READ transaction
//! as the rows read (so a dip never sees half of a change: one transaction, one swap).
//! Must not touch: the decision to swap (the reloader), the part list (`routing::Part`).
//!
//! The live snapshot carries the PostgreSQL snapshot its rows were read at (its `source`). The
//! transactions that snapshot did not see and ours does are exactly the changes committed since;
//! each logged the tables it changed. When the log cannot say (no source, the log pruned past
//! it, a table no part knows, routes that no longer fit the rate index) the answer is
//! [`Incremental::NeedFull`] and the caller builds everything.
//!
//! The rate part is patched route by route: vendor_rates statements log the route ids they
//! touched (sql/0019); when the log names them (no TRUNCATE), the routes are unchanged and at
//! most half of them changed, only those routes' rows are read and merged into the live rate
//! index (`SnapshotBuilder::patch_rates`). Otherwise the rates are read whole (if `parts_limit`
//! allows, else `NeedFull`).

use std::time::Instant;

use tokio_postgres::Client;

use super::rates::load_vendor_rates;
use super::{read_parts, read_position, unix_now, DbError};
use crate::routing::{Id, Part, PartSet, Snapshot, SnapshotBuilder};

/// What an incremental load came to.
pub enum Incremental {
    /// a snapshot sharing every part but `rebuilt` with the live one
    Built {
        snapshot: Box<Snapshot>,
        rebuilt: PartSet,
        /// the route ids whose vendor rates were re-read when the rate part was patched
        /// (the other routes' entries were carried over); empty when it was kept or read whole
        rate_routes: Vec<Id>,
    },
    /// the change log cannot say what changed, or the change needs a full build: why
    NeedFull(String),
}

/// Reads the parts changed since `live` was read (at most `parts_limit` read whole: a change
/// touching another part answers `NeedFull`, e.g. so that all vendor rates are streamed by the
/// full build's parallel path; the rate part may always be patched for a few routes) and
/// compiles a snapshot sharing the rest.
pub async fn load_incremental(
    client: &Client,
    live: &Snapshot,
    parts_limit: PartSet,
) -> Result<Incremental, DbError> {
    let Some(since) = live.source().map(str::to_string) else {
        return Ok(Incremental::NeedFull(
            "the live snapshot was not read from the database".into(),
        ));
    };
    let started = Instant::now();
    client
        .batch_execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
        .await
        .map_err(DbError::query(
            "starting the incremental snapshot transaction",
        ))?;
    let res = read_changed(client, live, &since, parts_limit).await;
    let end = if res.is_ok() { "COMMIT" } else { "ROLLBACK" };
    // a failed query already ended the transaction's usefulness; best effort then
    let ended = client.batch_execute(end).await;
    let out = match (res?, ended) {
        (Plan::Full(why), _) => return Ok(Incremental::NeedFull(why)),
        (Plan::Read(b), Ok(())) => b,
        (Plan::Read(_), Err(e)) => {
            return Err(DbError::query(
                "ending the incremental snapshot transaction",
            )(e))
        }
    };
    let loaded = started.elapsed();
    let rebuilt = out.rebuilding();
    let rate_routes = out.patched_routes().to_vec();
    let built_at = unix_now();
    let snapshot = tokio::task::spawn_blocking(move || out.build(built_at).map(Box::new))
        .await
        .map_err(|e| DbError::Task(e.to_string()))??;
    tracing::debug!(
        parts = ?rebuilt.names(),
        rate_routes = ?rate_routes,
        load_ms = loaded.as_millis() as u64,
        build_ms = (started.elapsed() - loaded).as_millis() as u64,
        "routing snapshot built incrementally"
    );
    Ok(Incremental::Built {
        snapshot,
        rebuilt,
        rate_routes,
    })
}

enum Plan {
    Read(Box<SnapshotBuilder>),
    Full(String),
}

async fn read_changed(
    client: &Client,
    live: &Snapshot,
    since: &str,
    parts_limit: PartSet,
) -> Result<Plan, DbError> {
    // the first statement fixes the transaction's view: every later read shares it
    let complete: bool = client
        .query_one(
            "SELECT pg_snapshot_xmin($1::text::pg_snapshot) >= horizon \
             FROM routing_change_log_horizon",
            &[&since],
        )
        .await
        .and_then(|r| r.try_get(0))
        .map_err(DbError::query("reading the change log horizon"))?;
    if !complete {
        return Ok(Plan::Full(
            "the change log was pruned past the live snapshot".into(),
        ));
    }
    let rows = client
        .query(
            "SELECT DISTINCT table_name FROM routing_change_log \
             WHERE NOT pg_visible_in_snapshot(xid, $1::text::pg_snapshot)",
            &[&since],
        )
        .await
        .map_err(DbError::query("reading the change log"))?;
    let mut tables = Vec::with_capacity(rows.len());
    for r in &rows {
        let t: String = r
            .try_get(0)
            .map_err(DbError::query("reading the change log"))?;
        tables.push(t);
    }
    let Some(parts) = PartSet::of_tables(tables.iter().map(String::as_str)) else {
        return Ok(Plan::Full(format!(
            "a changed table feeds no known part ({})",
            tables.join(", ")
        )));
    };
    // the rates are patched when the route log can say which routes changed, else read whole
    let rate_routes = if parts.contains(Part::Rates) {
        changed_routes(client, since).await?
    } else {
        None
    };
    let mut whole = parts;
    if rate_routes.is_some() {
        whole.remove(Part::Rates);
    }
    if whole.iter().any(|p| !parts_limit.contains(p)) {
        return Ok(Plan::Full(format!(
            "changed parts {:?} include one built in full",
            whole.names()
        )));
    }
    let mut b = SnapshotBuilder::incremental(live, whole);
    read_position(client, &mut b).await?;
    read_parts(client, &[], &mut b, whole).await?;
    if let Some(routes) = rate_routes {
        let names = b.route_names();
        if routes.len() * 2 <= names.len().max(1) && b.patch_rates(&routes) {
            let only = b.patched_routes().to_vec();
            if !only.is_empty() {
                load_vendor_rates(client, &[], &mut b, &names, Some(&only)).await?;
            }
        } else if parts_limit.contains(Part::Rates) {
            b.rebuild_rates();
            load_vendor_rates(client, &[], &mut b, &names, None).await?;
        } else {
            return Ok(Plan::Full(format!(
                "the rates of {} of {} routes changed, or the routes did",
                routes.len(),
                names.len()
            )));
        }
    }
    if parts.contains(Part::Topology) && !b.rates_fit_routes() {
        return Ok(Plan::Full(
            "the routes changed: the rate index must be rebuilt".into(),
        ));
    }
    Ok(Plan::Read(Box::new(b)))
}

/// The route ids whose vendor rates changed since `since` (sql/0019); None when the log says
/// "every route" (a TRUNCATE).
async fn changed_routes(client: &Client, since: &str) -> Result<Option<Vec<Id>>, DbError> {
    let rows = client
        .query(
            "SELECT DISTINCT route_id FROM routing_change_routes \
             WHERE NOT pg_visible_in_snapshot(xid, $1::text::pg_snapshot)",
            &[&since],
        )
        .await
        .map_err(DbError::query("reading the changed routes"))?;
    let mut ids = Vec::with_capacity(rows.len());
    for r in &rows {
        let id: Option<Id> = r
            .try_get(0)
            .map_err(DbError::query("reading the changed routes"))?;
        match id {
            Some(id) => ids.push(id),
            None => return Ok(None),
        }
    }
    Ok(Some(ids))
}
