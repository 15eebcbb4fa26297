//! The reload seam: what the API (`warpd.reload`) and signal handlers call to rebuild the routing
//! snapshot. The database-backed implementation is `db::reload::DbReloader`.

use std::sync::Arc;

use futures_util::future::BoxFuture;
use serde::Serialize;

use crate::routing::SnapshotStats;

#[derive(Clone, Debug, Serialize)]
pub struct ReloadReport {
    pub generation: u64,
    pub duration_ms: f64,
    pub stats: SnapshotStats,
    /// true: nothing was built, the routing data version had not moved since the live snapshot
    /// (which `generation` and `stats` then describe)
    pub unchanged: bool,
    /// the routing data version of the live snapshot (None: not loaded from the database)
    pub data_version: Option<i64>,
    /// the snapshot parts this reload built (`routing::Part` names: every part for a full
    /// build, those whose tables changed for an incremental one, none when `unchanged`)
    pub rebuilt: Vec<&'static str>,
    /// the route ids whose vendor rates an incremental build re-read, patching the rate part
    /// (the other routes' rates carried over); empty when the rate part was kept or built whole
    pub rate_routes: Vec<i64>,
}

/// Why a reload did not install a snapshot. Cloneable: one build answers every caller that
/// waited on it, each with the same typed cause.
#[derive(Clone, Debug, thiserror::Error)]
pub enum ReloadError {
    /// Loading or compiling the snapshot failed (the implementation's own error, e.g.
    /// `db::DbError`; the seam does not depend on the database layer).
    #[error("snapshot build failed: {0}")]
    Build(#[source] Arc<dyn std::error::Error + Send + Sync>),
    /// The build task panicked or was cancelled.
    #[error("snapshot build failed: reload task failed: {0}")]
    Task(#[source] Arc<tokio::task::JoinError>),
    #[error("reloader stopped")]
    Stopped,
}

pub trait Reloader: Send + Sync {
    /// Brings the snapshot up to date: builds a new one and swaps it in, unless the routing data
    /// has not changed since the live snapshot was read (then the live snapshot's report, marked
    /// `unchanged`); concurrent calls are coalesced.
    fn reload(&self) -> BoxFuture<'_, Result<ReloadReport, ReloadError>>;

    /// Builds a new snapshot whatever the data version says (`warpd reload --full`,
    /// `warpd.reload {"force": true}`). Default: [`Reloader::reload`].
    fn reload_full(&self) -> BoxFuture<'_, Result<ReloadReport, ReloadError>> {
        self.reload()
    }
}
