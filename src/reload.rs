//! The reload seam: what the API (`warpd.reload`) and signal handlers call to rebuild the routing
//! snapshot. The database-backed implementation is `db::reload::DbReloader`.

use futures_util::future::BoxFuture;
use serde::Serialize;

use crate::routing::SnapshotStats;

#[derive(Clone, Debug, Serialize)]
pub struct ReloadReport {
    pub generation: u64,
    pub duration_ms: f64,
    pub stats: SnapshotStats,
}

#[derive(Debug, thiserror::Error)]
pub enum ReloadError {
    #[error("snapshot build failed: {0}")]
    Build(String),
    #[error("reloader stopped")]
    Stopped,
}

pub trait Reloader: Send + Sync {
    /// Builds a new snapshot now and swaps it in; concurrent calls are coalesced.
    fn reload(&self) -> BoxFuture<'_, Result<ReloadReport, ReloadError>>;
}
