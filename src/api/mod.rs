//! The API listeners: two HTTP/1.1 ports ([`Side`]). The **Kamailio surface**
//! (`server.kamailio_listen`: dips `GET /v1/route` and `lcr.route`, call events
//! `POST /v1/events` and `call.*`, `/healthz`, `/readyz`) checks a source allow-list and/or a
//! shared secret ([`KamailioAuth`]); the **admin surface** (`server.admin_listen`: `/v1/admin/…`,
//! CDRs, route quality, `/metrics`, OpenAPI, `POST /v1/routing/simulate`, and the `/rpc` admin
//! methods `lcr.simulate`, `warpd.reload`, `media.*`) is meant for loopback or a management
//! network. The Kamailio surface is also served over RESP2 for Kamailio's ndb_redis
//! (`server.kamailio_resp_listen` / `kamailio_resp_socket`, [`RespListener`]: same guard, the
//! dip as the `LCR` command). A path of the other surface is 404. Both dip forms (JSON-RPC and plain HTTP) call the
//! same function (`http::Api::dip`), so answers, metrics and logs are identical.
//!
//! Owns: the listeners, connection handling and limits, graceful shutdown ([`serve`]), request
//! parsing, error mapping ([`ApiError`]: the one place errors become HTTP statuses / JSON-RPC
//! codes).
//! Must not touch: routing logic, the database, snapshot building (reloads go through the
//! [`Reloader`] seam), metric definitions (see [`crate::metrics`]).
//!
//! Wire answers are the routing types' serde output ([`crate::routing::DipAnswer`],
//! [`crate::routing::Simulation`]); errors are `{"error":"<field>: <why>"}` over HTTP and
//! JSON-RPC error objects over `/rpc`. Before the first snapshot is installed, dips answer
//! 503 / JSON-RPC -32000 ("not ready") rather than rejecting every call as an unknown customer.

mod accept;
mod cdrs;
mod context;
mod dip_as;
mod error;
mod guard;
mod http;
mod inbound;
pub mod params;
mod resp;
mod rpc;
mod server;
pub mod tls;

use std::sync::Arc;
use std::time::Duration;

pub use context::Surface;
pub use dip_as::{DipAsPolicy, DipAsRefusal, DipAsRule};
pub use error::ApiError;
pub use guard::KamailioAuth;
pub use params::{dip_from_json, dip_from_query};
pub use resp::{answer_array, RespBindError, RespListener};
pub use rpc::Health;
pub use server::{serve, serve_tls, Listeners};
pub use tls::{ListenersTls, TlsError};

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
    /// The ops console (`/console/…` on the admin listener); None = not served.
    pub console: Option<Arc<crate::console::Console>>,
    /// Who may use the Kamailio surface (default: anyone; `server.kamailio_allow`/`_secret`).
    pub kamailio_auth: KamailioAuth,
}

/// Which listener a request came in on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Side {
    /// `server.kamailio_listen`: dips, call events, health.
    Kamailio,
    /// `server.admin_listen`: admin API, CDRs, metrics, OpenAPI, admin methods.
    Admin,
}

impl Side {
    /// The `listener` metrics label.
    pub fn as_str(self) -> &'static str {
        match self {
            Side::Kamailio => "kamailio",
            Side::Admin => "admin",
        }
    }
}

/// Request and connection limits (from `[server]`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ApiLimits {
    /// Largest accepted request body (JSON-RPC and POST bodies); larger ones get 413.
    pub max_body_bytes: usize,
    /// A body not complete within this time gets 408.
    pub body_read_timeout: Duration,
    /// A request header not complete within this time (counted from the connection's start or
    /// its previous response, so it bounds keep-alive idle time too) closes the connection.
    pub header_read_timeout: Duration,
    /// A TLS handshake not complete within this time closes the connection (TLS listeners).
    pub tls_handshake_timeout: Duration,
    /// Most open connections per listener.
    pub max_connections: usize,
    /// Most open connections from one source address per listener.
    pub max_connections_per_source: usize,
    /// How long shutdown waits for requests in flight.
    pub shutdown_grace: Duration,
    /// A RESP connection idle this long between commands is closed.
    pub resp_idle_timeout: Duration,
    /// Whether RESP connections must `AUTH` when a secret is set
    /// (`server.kamailio_resp_require_secret`).
    pub resp_require_secret: bool,
}

impl Default for ApiLimits {
    fn default() -> Self {
        ApiLimits::from_config(&crate::config::ServerConfig::default())
    }
}

impl ApiLimits {
    pub fn from_config(c: &crate::config::ServerConfig) -> ApiLimits {
        ApiLimits {
            max_body_bytes: c.max_body_bytes,
            body_read_timeout: Duration::from_millis(c.body_read_timeout_ms),
            header_read_timeout: Duration::from_millis(c.header_read_timeout_ms),
            tls_handshake_timeout: Duration::from_millis(c.tls_handshake_timeout_ms),
            max_connections: c.max_connections,
            max_connections_per_source: c.max_connections_per_source,
            shutdown_grace: Duration::from_millis(c.shutdown_grace_ms),
            resp_idle_timeout: Duration::from_millis(c.kamailio_resp_idle_timeout_ms),
            resp_require_secret: c.kamailio_resp_require_secret,
        }
    }
}
