//! Dip parameters from caller input, with [`ApiError`]s: the parsing itself is pure and lives in
//! `warpd_core::routing::params` (fuzzed there); this layer only maps its [`ParamError`] into the
//! API's one error type.

pub use warpd_core::routing::params::ParamError;

use super::error::ApiError;
use crate::routing::DipRequest;

/// A dip request from JSON (JSON-RPC params or a POST body); `what` names the input in errors.
pub fn dip_from_json(raw: &[u8], what: &'static str) -> Result<DipRequest, ApiError> {
    Ok(warpd_core::routing::params::dip_from_json(raw, what)?)
}

/// A dip request from the `GET /v1/route` query string.
pub fn dip_from_query(query: Option<&str>) -> Result<DipRequest, ApiError> {
    Ok(warpd_core::routing::params::dip_from_query(query)?)
}
