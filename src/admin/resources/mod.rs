//! The admin resources, one file each.
//!
//! Adding a table-shaped resource (see `partitions.rs` for a small one): a file here (and its
//! `pub mod` line below) with
//! - a `const X: Table` (`crate::admin::crud::Table`: the noun and the list/get/lock/delete SQL),
//! - its body types (`#[derive(Deserialize, ToSchema)]`), checked by `crate::rules` (add the
//!   object's defaults and ranges there, so `warpd apply` shares them),
//! - one `#[utoipa::path]` handler per endpoint, each a line or two over `X.list`, `X.get`,
//!   `X.create(..).run(c, ctx)`, `X.update(..)`, `X.delete(..)` (audit rows come with them);
//!
//! and its entries in `crate::admin::router::ROUTES` (`op!(GET "/v1/admin/x", Readonly,
//! x::x_list / __path_x_list)`): the router, the role check and the OpenAPI document (paths and
//! schemas) follow from them.

pub mod accounts;
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
pub mod stir;
pub mod tokens;
pub mod trunk_links;
pub mod trunks;
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
