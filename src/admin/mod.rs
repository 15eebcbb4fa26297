//! The admin API (`/v1/admin/…` on warpd's listener): bearer tokens stored as SHA-256 hashes,
//! roles (`admin` ⊃ `ops` ⊃ `readonly`), an audit row for every change, and the OpenAPI 3
//! document generated from the handlers' annotations (`/v1/openapi.json`).
//!
//! Layout: `router.rs` (the one route table: method, path, role, handler, OpenAPI operation),
//! `ctx.rs` (request context, replies), `crud.rs` (generic list/get/change with audit rows),
//! `error.rs` ([`AdminError`] and its one mapping to status/body), `resources/*.rs` (one file per
//! resource; values checked by `crate::rules`), `multipart.rs` (deck upload forms).
//!
//! Owns: `admin_tokens`, `audit_log` writes of the API, request routing under `/v1/admin/`.
//! Must not touch: the dip path (it only reads [`AdminState::dip_log`]'s samples), routing logic;
//! deck semantics live in `crate::deck`.

pub(crate) mod crud;
pub(crate) mod ctx;
mod error;
mod multipart;
pub mod openapi;
mod resources;
mod router;

use std::sync::Arc;

use serde::Serialize;
use sha2::{Digest, Sha256};
use tokio_postgres::GenericClient;

use crate::deck::diplog::DipLog;
use crate::routing::RoutingSettings;

pub use ctx::{AdminReply, Ctx};
pub use error::AdminError;
pub use multipart::Upload;
pub use router::{
    authorize, call, handle, may_call, receive_upload, role_needed, Handler, Route, ROUTES,
};

/// Largest deck upload accepted over HTTP (bigger files: use `warpd deck import` on the host).
pub const MAX_UPLOAD_BYTES: usize = 512 << 20;

/// What the admin API needs, shared by all connections.
pub struct AdminState {
    pub pool: deadpool_postgres::Pool,
    /// separate connections are opened for shadow evaluation (they get a TEMP VIEW)
    pub db_url: String,
    pub dip_log: Arc<DipLog>,
    pub settings: RoutingSettings,
    pub max_upload_bytes: usize,
    /// the calls service, when on: account changes reach its credit books at once
    pub calls: Option<Arc<crate::calls::CallService>>,
}

impl AdminState {
    pub fn new(db_url: &str, settings: RoutingSettings) -> Result<AdminState, crate::db::DbError> {
        Ok(AdminState {
            pool: crate::db::pool(db_url, 4)?,
            db_url: db_url.to_string(),
            dip_log: Arc::new(DipLog::new(crate::deck::diplog::DEFAULT_CAPACITY)),
            settings,
            max_upload_bytes: MAX_UPLOAD_BYTES,
            calls: None,
        })
    }

    /// With the calls service (its credit books follow account changes at once).
    pub fn with_calls(mut self, calls: Option<Arc<crate::calls::CallService>>) -> AdminState {
        self.calls = calls;
        self
    }
}

/// Token roles, from most to least powerful.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Readonly = 0,
    Ops = 1,
    Admin = 2,
}

impl Role {
    pub fn parse(s: &str) -> Option<Role> {
        match s {
            "admin" => Some(Role::Admin),
            "ops" => Some(Role::Ops),
            "readonly" => Some(Role::Readonly),
            _ => None,
        }
    }
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Ops => "ops",
            Role::Readonly => "readonly",
        }
    }
    /// Whether a token with this role may do what needs `need`.
    pub fn allows(self, need: Role) -> bool {
        self >= need
    }
}

/// Who is calling.
#[derive(Clone, Debug, Serialize)]
pub struct Principal {
    pub name: String,
    pub role: Role,
}

/// SHA-256 of a token, hex. Tokens are 256 random bits, so a fast hash is enough (no password
/// stretching needed: there is nothing to guess).
pub fn hash_token(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// A new random token: `wdt_` + 64 hex digits.
pub fn new_token() -> Result<String, getrandom::Error> {
    let mut b = [0u8; 32];
    getrandom::fill(&mut b)?;
    Ok(format!("wdt_{}", hex::encode(b)))
}

#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error("role {0:?} is not one of admin, ops, readonly")]
    BadRole(String),
    #[error("a token named {0:?} exists already")]
    Exists(String),
    #[error("no randomness: {0}")]
    Random(#[from] getrandom::Error),
    #[error("database: {0}")]
    Db(#[from] tokio_postgres::Error),
}

/// Creates a token and returns it (shown once; only its hash is stored). The token and its
/// audit row are written by one statement: both or neither.
pub async fn create_token<C: GenericClient>(
    c: &C,
    name: &str,
    role: &str,
    actor: &str,
) -> Result<String, TokenError> {
    let role = Role::parse(role).ok_or_else(|| TokenError::BadRole(role.to_string()))?;
    let token = new_token()?;
    let n = c
        .execute(
            "WITH t AS (INSERT INTO admin_tokens (name, role, token_sha256) VALUES ($1, $2, $3) \
             ON CONFLICT (name) DO NOTHING RETURNING name, role) \
             INSERT INTO audit_log (actor, action, target, after) \
             SELECT $4, 'token.create', 'token ' || name, jsonb_build_object('name', name, 'role', role) \
             FROM t",
            &[&name, &role.as_str(), &hash_token(&token), &actor],
        )
        .await?;
    if n == 0 {
        return Err(TokenError::Exists(name.to_string()));
    }
    Ok(token)
}

/// Revokes a token by name; false if there is no such live token. The revocation and its audit
/// row are written by one statement: both or neither.
pub async fn revoke_token<C: GenericClient>(
    c: &C,
    name: &str,
    actor: &str,
) -> Result<bool, tokio_postgres::Error> {
    let n = c
        .execute(
            "WITH t AS (UPDATE admin_tokens SET revoked_at = now() \
             WHERE name = $1 AND revoked_at IS NULL RETURNING name) \
             INSERT INTO audit_log (actor, action, target, before) \
             SELECT $2, 'token.revoke', 'token ' || name, jsonb_build_object('name', name) FROM t",
            &[&name, &actor],
        )
        .await?;
    Ok(n > 0)
}

/// The principal of a live token, if any.
pub async fn authenticate<C: GenericClient>(
    c: &C,
    token: &str,
) -> Result<Option<Principal>, tokio_postgres::Error> {
    let row = c
        .query_opt(
            "SELECT name, role FROM admin_tokens WHERE token_sha256 = $1 AND revoked_at IS NULL",
            &[&hash_token(token)],
        )
        .await?;
    Ok(row.and_then(|r| {
        let role: String = r.get(1);
        Role::parse(&role).map(|role| Principal {
            name: r.get(0),
            role,
        })
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_are_ordered() {
        assert!(Role::Admin.allows(Role::Ops));
        assert!(Role::Ops.allows(Role::Readonly));
        assert!(!Role::Readonly.allows(Role::Ops));
        assert!(!Role::Ops.allows(Role::Admin));
        assert_eq!(Role::parse("ops"), Some(Role::Ops));
        assert_eq!(Role::parse("root"), None);
    }

    #[test]
    fn token_hash_is_sha256_hex() {
        assert_eq!(
            hash_token("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        let t = new_token().unwrap();
        assert!(t.starts_with("wdt_") && t.len() == 68);
        assert_ne!(t, new_token().unwrap());
    }
}
