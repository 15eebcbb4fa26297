//! The snapshot loader: reads every routing table inside one `REPEATABLE READ READ ONLY`
//! transaction (one consistent view) into a `routing::SnapshotBuilder`, then compiles it.
//!
//! Owns: the SELECT/COPY statements over the routing schema and the conversion of rows to
//! `routing::model` values (money to [`Rate`] units, timestamps to unix seconds with ±infinity as
//! `i64::MIN`/`i64::MAX`, times of day to minutes, ISO weekdays to a bitmask, tz names to `Tz`).
//! Must not touch: routing policy, the engine, writes of any kind.
//!
//! Big tables (vendor_rates: tens of millions of rows; customer_rates and the numbering tables)
//! are streamed with `COPY (SELECT ...) TO STDOUT (FORMAT binary)` and parsed by hand, row by row,
//! straight into the builder: nothing collects a table into a `Vec` of rows first. Binary COPY
//! spares the server the text formatting of numerics and timestamps, which is where a single
//! backend spends most of its time on a big deck. vendor_rates can also be split by page ranges
//! over helper connections that share the main transaction's snapshot (`pg_export_snapshot`),
//! like `pg_dump -j`: on a big deck the server side, not the parsing here, is the bottleneck.
//!
//! Layout: this file holds the transaction and the order of the reads, part by part
//! ([`read_parts`]: a full build reads every part); [`incremental`] reads only the parts changed
//! since a live snapshot; [`small`] reads the small tables with plain SELECTs, [`rates`] and
//! [`numbering`] stream the big ones through [`copy`] (binary COPY, decoded by
//! `warpd_core::pgcopy`), and [`columns`] converts column values.

mod columns;
mod copy;
mod inbound;
mod incremental;
mod numbering;
mod rates;
mod small;

use std::time::Instant;

use tokio_postgres::Client;

use super::DbError;
use crate::routing::{Part, PartSet, RoutingSettings, Snapshot, SnapshotBuilder};
pub use incremental::{load_incremental, Incremental};
use numbering::load_numbering;
use rates::{load_customer_rates, load_vendor_rates};
use small::{
    load_customers, load_exclusions, load_gateways, load_overrides, load_partitions, load_routes,
    load_vendors,
};

/// Reads the routing tables and compiles a snapshot. The compile step (CPU-heavy for big decks)
/// runs on the blocking pool. `built_at` of the snapshot is the wall clock when loading began.
///
/// The client must not be used by anyone else while this runs (it holds a transaction open).
pub async fn load_snapshot(
    client: &Client,
    settings: RoutingSettings,
) -> Result<Snapshot, DbError> {
    load_snapshot_parallel(client, &[], settings).await
}

/// Like [`load_snapshot`], with `helpers` (other idle connections to the same database) each
/// streaming a share of vendor_rates inside the same database snapshot.
pub async fn load_snapshot_parallel(
    client: &Client,
    helpers: &[Client],
    settings: RoutingSettings,
) -> Result<Snapshot, DbError> {
    let built_at = unix_now();
    let started = Instant::now();
    let builder = load_builder(client, helpers, settings).await?;
    let loaded = started.elapsed();
    let snapshot = tokio::task::spawn_blocking(move || builder.build(built_at))
        .await
        .map_err(|e| DbError::Task(e.to_string()))??;
    let stats = snapshot.stats();
    tracing::info!(
        load_ms = loaded.as_millis() as u64,
        build_ms = (started.elapsed() - loaded).as_millis() as u64,
        streams = 1 + helpers.len(),
        rate_entries = stats.rate_entries,
        rate_keys = stats.rate_keys,
        routes = stats.routes,
        customers = stats.customers,
        "routing snapshot loaded"
    );
    for w in &stats.warnings {
        tracing::warn!(warning = %w, "routing snapshot warning");
    }
    Ok(snapshot)
}

/// Reads every routing table into a builder inside one REPEATABLE READ READ ONLY transaction
/// (shared with `helpers` through an exported snapshot), without compiling it.
pub async fn load_builder(
    client: &Client,
    helpers: &[Client],
    settings: RoutingSettings,
) -> Result<SnapshotBuilder, DbError> {
    client
        .batch_execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
        .await
        .map_err(DbError::query("starting the snapshot transaction"))?;
    let mut b = SnapshotBuilder::new(settings);
    let mut joined = 0;
    let res = async {
        if !helpers.is_empty() {
            let id: String = client
                .query_one("SELECT pg_export_snapshot()", &[])
                .await
                .and_then(|r| r.try_get(0))
                .map_err(DbError::query("exporting the snapshot"))?;
            let sql = format!(
                "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY; SET TRANSACTION SNAPSHOT '{}'",
                id.replace('\'', "''")
            );
            for h in helpers {
                joined += 1;
                h.batch_execute(&sql).await.map_err(DbError::query(
                    "importing the snapshot on a helper connection",
                ))?;
            }
        }
        // the version in the same view as the rows: a reload compares it with the database's
        read_position(client, &mut b).await?;
        read_parts(client, helpers, &mut b, PartSet::all()).await
    }
    .await;
    match res {
        Ok(()) => {
            for h in helpers {
                h.batch_execute("COMMIT")
                    .await
                    .map_err(DbError::query("ending a helper transaction"))?;
            }
            client
                .batch_execute("COMMIT")
                .await
                .map_err(DbError::query("ending the snapshot transaction"))?;
            Ok(b)
        }
        Err(e) => {
            // best effort: a broken connection has no transaction left to roll back
            for h in helpers.iter().take(joined) {
                let _ = h.batch_execute("ROLLBACK").await;
            }
            let _ = client.batch_execute("ROLLBACK").await;
            Err(e)
        }
    }
}

fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// Reads, in the open transaction, the routing data version and the PostgreSQL snapshot (the
/// position the next incremental build asks "what changed since" from) into the builder.
async fn read_position(client: &Client, b: &mut SnapshotBuilder) -> Result<(), DbError> {
    let row = client
        .query_one(
            "SELECT version, pg_current_snapshot()::text FROM routing_data_version",
            &[],
        )
        .await
        .map_err(DbError::query("reading the routing data version"))?;
    let version: i64 = row
        .try_get(0)
        .map_err(DbError::query("reading the routing data version"))?;
    let position: String = row
        .try_get(1)
        .map_err(DbError::query("reading the database snapshot"))?;
    b.set_data_version(version);
    b.set_source(position);
    Ok(())
}

/// Reads the tables of `parts` into the builder (whose other parts are kept). The topology comes
/// first: the other parts name its routes and vendors.
async fn read_parts(
    client: &Client,
    helpers: &[Client],
    b: &mut SnapshotBuilder,
    parts: PartSet,
) -> Result<(), DbError> {
    let t = Instant::now();
    if parts.contains(Part::Topology) {
        load_vendors(client, b).await?;
        load_gateways(client, b).await?;
        load_routes(client, b).await?;
        load_partitions(client, b).await?;
    }
    if parts.contains(Part::Customers) {
        load_customers(client, b).await?;
    }
    let bans = b.customer_bans();
    if parts.contains(Part::Policy) {
        load_overrides(client, b, &bans).await?;
        load_exclusions(client, b).await?;
    }
    let small = t.elapsed();
    let t = Instant::now();
    let customer_rates = if parts.contains(Part::Customers) {
        load_customer_rates(client, b, &bans).await?
    } else {
        0
    };
    let numbering = if parts.contains(Part::Numbering) {
        load_numbering(client, b).await?
    } else {
        0
    };
    let vendor_rates = if parts.contains(Part::Rates) {
        let routes = b.route_names();
        load_vendor_rates(client, helpers, b, &routes, None).await?
    } else {
        0
    };
    if parts.contains(Part::Inbound) {
        // the inbound part: its own loader, its own struct
        b.set_inbound(std::sync::Arc::new(inbound::load_inbound(client).await?));
    }
    tracing::debug!(
        parts = ?parts.names(),
        small_tables_ms = small.as_millis() as u64,
        streamed_ms = t.elapsed().as_millis() as u64,
        vendor_rates,
        customer_rates,
        numbering,
        "routing tables read"
    );
    Ok(())
}
