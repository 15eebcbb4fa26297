//! The admin resources, one file each. A table-shaped resource is a [`crate::admin::crud::Table`]
//! (its SQL), a body type validated by `crate::rules`, and one `#[utoipa::path]` handler per
//! endpoint; its entries go in `crate::admin::router::ROUTES`.

pub mod audit;
pub mod blocked_prefixes;
pub mod customer_links;
pub mod customers;
pub mod decks;
pub mod exclusions;
pub mod gateways;
pub mod margins;
pub mod numbering;
pub mod overrides;
pub mod partitions;
pub mod routes;
pub mod tokens;
pub mod vendors;

/// What every resource file uses.
mod prelude {
    pub(super) use hyper::StatusCode;
    pub(super) use serde::Deserialize;
    pub(super) use serde_json::json;
    pub(super) use tokio_postgres::Client;
    pub(super) use utoipa::ToSchema;

    pub(super) use crate::admin::crud::{self, Change, Lookup, Table};
    pub(super) use crate::admin::ctx::{json_reply, AdminReply, Ctx};
    pub(super) use crate::admin::{AdminError, AdminState};
    pub(super) use crate::rules;

    /// The result of a handler.
    pub(super) type Reply = Result<AdminReply, AdminError>;
}
