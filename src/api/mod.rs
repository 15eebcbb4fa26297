//! The API listener: one HTTP/1.1 port serving both surfaces of the routing engine —
//! JSON-RPC 2.0 at `POST /rpc` (jsonrpsee) and plain HTTP (`GET /v1/route`,
//! `POST /v1/routing/simulate`, `/healthz`, `/readyz`, `/metrics`). Both dip surfaces call the
//! same function (`http::Api::dip`), so answers, metrics and logs are identical.
//!
//! Owns: the listener, connection handling and graceful shutdown ([`serve`]), request parsing,
//! error mapping ([`ApiError`]: the one place errors become HTTP statuses / JSON-RPC codes).
//! Must not touch: routing logic, the database, snapshot building (reloads go through the
//! [`Reloader`] seam), metric definitions (see [`crate::metrics`]).
//!
//! Wire answers are the routing types' serde output ([`crate::routing::DipAnswer`],
//! [`crate::routing::Simulation`]); errors are `{"error":"<field>: <why>"}` over HTTP and
//! JSON-RPC error objects over `/rpc`. Before the first snapshot is installed, dips answer
//! 503 / JSON-RPC -32000 ("not ready") rather than rejecting every call as an unknown customer.

mod cdrs;
mod context;
mod error;
mod http;
pub mod params;
mod rpc;
mod server;

use std::sync::Arc;

pub use context::Surface;
pub use error::ApiError;
pub use params::{dip_from_json, dip_from_query};
pub use rpc::Health;
pub use server::{serve, SHUTDOWN_GRACE};

use crate::metrics::Metrics;
use crate::reload::Reloader;
use crate::routing::Engine;

/// Everything the API needs, shared by all connections.
pub struct AppState {
    pub engine: Arc<Engine>,
    pub reloader: Arc<dyn Reloader>,
    pub metrics: Arc<Metrics>,
    pub limits: ApiLimits,
    /// media control, when `[media]` is configured (`media.*` RPC methods, dip → call context)
    pub media: Option<Arc<crate::media::MediaController>>,
    /// live calls, limits, call events and CDRs (None: call tracking off)
    pub calls: Option<Arc<crate::calls::CallService>>,
    /// The admin API (`/v1/admin/…`) and the dip log for shadow evaluation; None = not served.
    pub admin: Option<Arc<crate::admin::AdminState>>,
}

/// Request limits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ApiLimits {
    /// Largest accepted request body (JSON-RPC and POST bodies); larger ones get 413.
    pub max_body_bytes: usize,
}

impl Default for ApiLimits {
    fn default() -> Self {
        ApiLimits {
            max_body_bytes: 64 * 1024,
        }
    }
}
