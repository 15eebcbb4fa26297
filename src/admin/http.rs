//! Admin request routing and handlers. [`ROUTES`] is the one table of admin endpoints: the
//! dispatcher matches it and a test checks the OpenAPI document covers every entry.
//!
//! Owns: admin paths, role requirements, JSON bodies, audit rows of CRUD changes.
//! Must not touch: HTTP status choice (errors are `ApiError`, mapped in `api/error.rs`).

use std::collections::HashMap;

use bytes::Bytes;
use chrono::{DateTime, Utc};
use hyper::body::Incoming;
use hyper::header::AUTHORIZATION;
use hyper::{Method, Request, StatusCode};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use tokio_postgres::types::ToSql;
use utoipa::ToSchema;

use super::{AdminState, Principal, Role};

mod customers;
mod multipart;
use crate::api::{read_body, ApiError};
use crate::deck::{self, ImportOptions, Mapping};
pub use customers::*;

/// A successful admin answer: status, content type, body.
pub struct AdminReply {
    pub status: StatusCode,
    pub content_type: &'static str,
    pub body: Bytes,
}

fn json_reply(status: StatusCode, v: &impl Serialize) -> Result<AdminReply, ApiError> {
    let body = serde_json::to_vec(v).map_err(|e| ApiError::Internal(format!("encoding: {e}")))?;
    Ok(AdminReply {
        status,
        content_type: "application/json",
        body: body.into(),
    })
}

/// Every admin endpoint.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    VendorsList,
    VendorCreate,
    VendorUpdate,
    VendorDelete,
    GatewaysList,
    GatewayCreate,
    GatewayDelete,
    RoutesList,
    RouteCreate,
    RouteUpdate,
    RouteDelete,
    PartitionsList,
    PartitionCreate,
    PartitionDelete,
    PartitionRouteAdd,
    PartitionRouteRemove,
    CustomersList,
    CustomerCreate,
    CustomerDelete,
    CustomerUpdate,
    CustomerSourceIpAdd,
    CustomerSourceIpRemove,
    CustomerGet,
    BlockedPrefixesList,
    BlockedPrefixAdd,
    BlockedPrefixRemove,
    SellRatesList,
    VendorGet,
    RouteGet,
    PartitionGet,
    CustomerPartitionAdd,
    CustomerPartitionRemove,
    OverridesList,
    OverrideCreate,
    OverrideDelete,
    ExclusionsList,
    ExclusionCreate,
    ExclusionDelete,
    NumberingImport,
    DeckUpload,
    DeckVersions,
    DeckDiff,
    DeckActivate,
    DeckRollback,
    DeckExport,
    DeckShadow,
    Margins,
    TokenCreate,
    TokenRevoke,
    Audit,
}

/// (method, path pattern, role needed, operation). `{name}` segments are parameters.
pub const ROUTES: &[(&str, &str, Role, Op)] = &[
    ("GET", "/v1/admin/vendors", Role::Readonly, Op::VendorsList),
    ("POST", "/v1/admin/vendors", Role::Admin, Op::VendorCreate),
    (
        "GET",
        "/v1/admin/vendors/{vendor}",
        Role::Readonly,
        Op::VendorGet,
    ),
    (
        "PATCH",
        "/v1/admin/vendors/{vendor}",
        Role::Admin,
        Op::VendorUpdate,
    ),
    (
        "DELETE",
        "/v1/admin/vendors/{vendor}",
        Role::Admin,
        Op::VendorDelete,
    ),
    (
        "GET",
        "/v1/admin/vendors/{vendor}/gateways",
        Role::Readonly,
        Op::GatewaysList,
    ),
    (
        "POST",
        "/v1/admin/vendors/{vendor}/gateways",
        Role::Admin,
        Op::GatewayCreate,
    ),
    (
        "DELETE",
        "/v1/admin/vendors/{vendor}/gateways/{gateway}",
        Role::Admin,
        Op::GatewayDelete,
    ),
    ("GET", "/v1/admin/routes", Role::Readonly, Op::RoutesList),
    ("POST", "/v1/admin/routes", Role::Admin, Op::RouteCreate),
    (
        "GET",
        "/v1/admin/routes/{route}",
        Role::Readonly,
        Op::RouteGet,
    ),
    (
        "PATCH",
        "/v1/admin/routes/{route}",
        Role::Admin,
        Op::RouteUpdate,
    ),
    (
        "DELETE",
        "/v1/admin/routes/{route}",
        Role::Admin,
        Op::RouteDelete,
    ),
    (
        "GET",
        "/v1/admin/partitions",
        Role::Readonly,
        Op::PartitionsList,
    ),
    (
        "POST",
        "/v1/admin/partitions",
        Role::Admin,
        Op::PartitionCreate,
    ),
    (
        "GET",
        "/v1/admin/partitions/{partition}",
        Role::Readonly,
        Op::PartitionGet,
    ),
    (
        "DELETE",
        "/v1/admin/partitions/{partition}",
        Role::Admin,
        Op::PartitionDelete,
    ),
    (
        "POST",
        "/v1/admin/partitions/{partition}/routes",
        Role::Ops,
        Op::PartitionRouteAdd,
    ),
    (
        "DELETE",
        "/v1/admin/partitions/{partition}/routes/{route}",
        Role::Ops,
        Op::PartitionRouteRemove,
    ),
    (
        "GET",
        "/v1/admin/customers",
        Role::Readonly,
        Op::CustomersList,
    ),
    (
        "POST",
        "/v1/admin/customers",
        Role::Admin,
        Op::CustomerCreate,
    ),
    (
        "GET",
        "/v1/admin/customers/{ban}",
        Role::Readonly,
        Op::CustomerGet,
    ),
    (
        "DELETE",
        "/v1/admin/customers/{ban}",
        Role::Admin,
        Op::CustomerDelete,
    ),
    (
        "GET",
        "/v1/admin/customers/{ban}/blocked_prefixes",
        Role::Readonly,
        Op::BlockedPrefixesList,
    ),
    (
        "POST",
        "/v1/admin/customers/{ban}/blocked_prefixes",
        Role::Ops,
        Op::BlockedPrefixAdd,
    ),
    (
        "DELETE",
        "/v1/admin/customers/{ban}/blocked_prefixes/{prefix}",
        Role::Ops,
        Op::BlockedPrefixRemove,
    ),
    (
        "GET",
        "/v1/admin/customers/{ban}/sell_rates",
        Role::Readonly,
        Op::SellRatesList,
    ),
    (
        "POST",
        "/v1/admin/customers/{ban}/partitions",
        Role::Ops,
        Op::CustomerPartitionAdd,
    ),
    (
        "DELETE",
        "/v1/admin/customers/{ban}/partitions/{partition}",
        Role::Ops,
        Op::CustomerPartitionRemove,
    ),
    (
        "POST",
        "/v1/admin/numbering/{table}",
        Role::Ops,
        Op::NumberingImport,
    ),
    (
        "PATCH",
        "/v1/admin/customers/{ban}",
        Role::Ops,
        Op::CustomerUpdate,
    ),
    (
        "POST",
        "/v1/admin/customers/{ban}/source_ips",
        Role::Admin,
        Op::CustomerSourceIpAdd,
    ),
    (
        "DELETE",
        "/v1/admin/customers/{ban}/source_ips/{cidr}",
        Role::Admin,
        Op::CustomerSourceIpRemove,
    ),
    (
        "GET",
        "/v1/admin/overrides",
        Role::Readonly,
        Op::OverridesList,
    ),
    ("POST", "/v1/admin/overrides", Role::Ops, Op::OverrideCreate),
    (
        "DELETE",
        "/v1/admin/overrides/{id}",
        Role::Ops,
        Op::OverrideDelete,
    ),
    (
        "GET",
        "/v1/admin/exclusions",
        Role::Readonly,
        Op::ExclusionsList,
    ),
    (
        "POST",
        "/v1/admin/exclusions",
        Role::Ops,
        Op::ExclusionCreate,
    ),
    (
        "DELETE",
        "/v1/admin/exclusions/{id}",
        Role::Ops,
        Op::ExclusionDelete,
    ),
    (
        "POST",
        "/v1/admin/routes/{route}/decks",
        Role::Ops,
        Op::DeckUpload,
    ),
    (
        "GET",
        "/v1/admin/routes/{route}/decks",
        Role::Readonly,
        Op::DeckVersions,
    ),
    (
        "GET",
        "/v1/admin/routes/{route}/decks/diff",
        Role::Readonly,
        Op::DeckDiff,
    ),
    (
        "POST",
        "/v1/admin/routes/{route}/decks/rollback",
        Role::Ops,
        Op::DeckRollback,
    ),
    (
        "POST",
        "/v1/admin/routes/{route}/decks/{version}/activate",
        Role::Ops,
        Op::DeckActivate,
    ),
    (
        "GET",
        "/v1/admin/routes/{route}/decks/{version}/export",
        Role::Readonly,
        Op::DeckExport,
    ),
    (
        "GET",
        "/v1/admin/routes/{route}/decks/{version}/shadow",
        Role::Ops,
        Op::DeckShadow,
    ),
    ("GET", "/v1/admin/margins", Role::Readonly, Op::Margins),
    ("POST", "/v1/admin/tokens", Role::Admin, Op::TokenCreate),
    (
        "DELETE",
        "/v1/admin/tokens/{name}",
        Role::Admin,
        Op::TokenRevoke,
    ),
    ("GET", "/v1/admin/audit", Role::Admin, Op::Audit),
];

/// Finds the route of a request: Ok((role, op, params)), or the error for an unknown path /
/// a known path with another method.
fn route(method: &Method, path: &str) -> Result<(Role, Op, HashMap<String, String>), ApiError> {
    let segs: Vec<&str> = path.trim_end_matches('/').split('/').collect();
    let mut allowed = vec![];
    for (m, pat, role, op) in ROUTES {
        let ps: Vec<&str> = pat.split('/').collect();
        if ps.len() != segs.len() {
            continue;
        }
        let mut params = HashMap::new();
        let ok = ps.iter().zip(&segs).all(|(p, s)| {
            if let Some(name) = p.strip_prefix('{').and_then(|x| x.strip_suffix('}')) {
                let v = url::form_urlencoded::parse(format!("x={s}").as_bytes())
                    .next()
                    .map(|(_, v)| v.into_owned())
                    .unwrap_or_default();
                params.insert(name.to_string(), v);
                !s.is_empty()
            } else {
                p == s
            }
        });
        if !ok {
            continue;
        }
        if method.as_str() == *m {
            return Ok((*role, *op, params));
        }
        allowed.push(*m);
    }
    if allowed.is_empty() {
        Err(ApiError::NotFound(path.chars().take(128).collect()))
    } else {
        // static strings for the Allow header, methods in this order
        const ORDER: [&str; 4] = ["GET", "POST", "PATCH", "DELETE"];
        const ALLOWS: [&str; 9] = [
            "GET",
            "POST",
            "DELETE",
            "GET, POST",
            "GET, DELETE",
            "PATCH, DELETE",
            "GET, PATCH, DELETE",
            "GET, POST, DELETE",
            "GET, POST, PATCH, DELETE",
        ];
        let joined = ORDER
            .iter()
            .filter(|m| allowed.contains(m))
            .copied()
            .collect::<Vec<_>>()
            .join(", ");
        let allow = ALLOWS
            .iter()
            .find(|a| **a == joined)
            .copied()
            .unwrap_or("GET, POST, PATCH, DELETE");
        Err(ApiError::MethodNotAllowed {
            path: path.chars().take(128).collect(),
            method: method.as_str().chars().take(16).collect(),
            allow,
        })
    }
}

fn bearer(req: &Request<Incoming>) -> Result<String, ApiError> {
    let v = req
        .headers()
        .get(AUTHORIZATION)
        .ok_or_else(|| ApiError::Unauthorized("missing Authorization: Bearer <token>".into()))?;
    let s = v
        .to_str()
        .map_err(|_| ApiError::Unauthorized("Authorization header is not text".into()))?;
    let t = s
        .strip_prefix("Bearer ")
        .or_else(|| s.strip_prefix("bearer "))
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .ok_or_else(|| ApiError::Unauthorized("expected Authorization: Bearer <token>".into()))?;
    Ok(t.to_string())
}

/// Maps a database error of an admin change to the caller's mistake where it is one.
fn pg(context: &str) -> impl FnOnce(tokio_postgres::Error) -> ApiError + '_ {
    move |e| {
        let Some(db) = e.as_db_error() else {
            return ApiError::Internal(format!("{context}: {e}"));
        };
        let msg = match db.detail() {
            Some(d) => format!("{context}: {} ({d})", db.message()),
            None => format!("{context}: {}", db.message()),
        };
        match db.code().code() {
            "23505" => ApiError::Conflict(msg),
            "23503" => ApiError::Conflict(msg),
            c if c.starts_with("22") || c.starts_with("23") => ApiError::Unprocessable(msg),
            _ => ApiError::Internal(msg),
        }
    }
}

pub struct Ctx {
    who: Principal,
    params: HashMap<String, String>,
    query: HashMap<String, String>,
    content_type: Option<String>,
    body: Bytes,
}

impl Ctx {
    fn p(&self, k: &str) -> &str {
        self.params.get(k).map(String::as_str).unwrap_or("")
    }
    fn q(&self, k: &str) -> Option<&str> {
        self.query
            .get(k)
            .map(String::as_str)
            .filter(|s| !s.is_empty())
    }
    fn flag(&self, k: &str) -> Result<bool, ApiError> {
        match self.q(k) {
            None => Ok(false),
            Some("true" | "1" | "yes") => Ok(true),
            Some("false" | "0" | "no") => Ok(false),
            Some(v) => Err(ApiError::invalid(k, format!("{v:?} is not true/false"))),
        }
    }
    fn int(&self, k: &str) -> Result<Option<i64>, ApiError> {
        self.q(k)
            .map(|v| {
                v.parse::<i64>()
                    .map_err(|_| ApiError::invalid(k, format!("{v:?} is not an integer")))
            })
            .transpose()
    }
    fn when(&self, k: &str) -> Result<Option<DateTime<Utc>>, ApiError> {
        self.q(k)
            .map(|v| {
                deck::parse::parse_when(v)
                    .ok()
                    .and_then(DateTime::<Utc>::from_timestamp_micros)
                    .ok_or_else(|| ApiError::invalid(k, format!("{v:?} is not a date/time")))
            })
            .transpose()
    }
    fn json<T: DeserializeOwned>(&self) -> Result<T, ApiError> {
        let de = &mut serde_json::Deserializer::from_slice(&self.body);
        serde_path_to_error::deserialize(de).map_err(|e| {
            let field = e.path().to_string();
            ApiError::invalid(
                if field == "." { "body".into() } else { field },
                e.inner().to_string(),
            )
        })
    }
    fn actor(&self) -> String {
        format!("token:{}", self.who.name)
    }
}

/// Checks the request's bearer token: a live token whose role allows `need`. Used by the admin
/// routes and by the other data surfaces that need a token (`/v1/cdrs*`).
pub async fn authorize(
    state: &AdminState,
    req: &Request<Incoming>,
    need: Role,
) -> Result<super::Principal, ApiError> {
    let client = pooled(state).await?;
    authorize_with(&client, req, need).await
}

async fn pooled(state: &AdminState) -> Result<deadpool_postgres::Object, ApiError> {
    state
        .pool
        .get()
        .await
        .map_err(|e| ApiError::Internal(format!("database pool: {e}")))
}

/// [`authorize`] on a connection the caller already holds.
async fn authorize_with(
    client: &tokio_postgres::Client,
    req: &Request<Incoming>,
    need: Role,
) -> Result<super::Principal, ApiError> {
    let token = bearer(req)?;
    let who = super::authenticate(client, &token)
        .await
        .map_err(pg("checking the token"))?
        .ok_or_else(|| ApiError::Unauthorized("unknown or revoked token".into()))?;
    if !who.role.allows(need) {
        return Err(ApiError::Forbidden(format!(
            "token {:?} has role {}; this needs role {} or higher",
            who.name,
            who.role.as_str(),
            need.as_str()
        )));
    }
    Ok(who)
}

/// Handles one `/v1/admin/…` request: authenticate, authorize by role, dispatch.
pub async fn handle(state: &AdminState, req: Request<Incoming>) -> Result<AdminReply, ApiError> {
    let path = req.uri().path().to_string();
    let (need, op, params) = route(req.method(), &path)?;
    // one pooled connection per request: the token check and the operation share it
    let mut client = pooled(state).await?;
    let who = authorize_with(&client, &req, need).await?;
    let query: HashMap<String, String> = req
        .uri()
        .query()
        .map(|q| {
            url::form_urlencoded::parse(q.as_bytes())
                .into_owned()
                .collect()
        })
        .unwrap_or_default();
    let limit = if matches!(op, Op::DeckUpload | Op::NumberingImport) {
        state.max_upload_bytes
    } else {
        1 << 20
    };
    let content_type = req
        .headers()
        .get(hyper::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let body = read_body(req, limit).await?;
    let mut ctx = Ctx {
        who,
        params,
        query,
        content_type,
        body,
    };
    let c: &mut tokio_postgres::Client = &mut client;
    dispatch(state, op, &mut ctx, c).await
}

async fn dispatch(
    state: &AdminState,
    op: Op,
    ctx: &mut Ctx,
    c: &mut tokio_postgres::Client,
) -> Result<AdminReply, ApiError> {
    match op {
        Op::VendorsList => vendors_list(c).await,
        Op::VendorCreate => vendor_create(c, ctx).await,
        Op::VendorUpdate => vendor_update(c, ctx).await,
        Op::VendorDelete => vendor_delete(c, ctx).await,
        Op::GatewaysList => gateways_list(c, ctx).await,
        Op::GatewayCreate => gateway_create(c, ctx).await,
        Op::GatewayDelete => gateway_delete(c, ctx).await,
        Op::RoutesList => routes_list(c).await,
        Op::RouteCreate => route_create(c, ctx).await,
        Op::RouteUpdate => route_update(c, ctx).await,
        Op::RouteDelete => route_delete(c, ctx).await,
        Op::PartitionsList => partitions_list(c).await,
        Op::PartitionCreate => partition_create(c, ctx).await,
        Op::PartitionDelete => partition_delete(c, ctx).await,
        Op::PartitionRouteAdd => partition_route_add(c, ctx).await,
        Op::PartitionRouteRemove => partition_route_remove(c, ctx).await,
        Op::CustomersList => customers_list(c).await,
        Op::CustomerCreate => customer_create(c, ctx).await,
        Op::CustomerDelete => customer_delete(c, ctx).await,
        Op::CustomerPartitionAdd => customer_partition_add(c, ctx).await,
        Op::CustomerPartitionRemove => customer_partition_remove(c, ctx).await,
        Op::CustomerUpdate => customer_update(c, ctx).await,
        Op::CustomerSourceIpAdd => customer_source_ip_add(c, ctx).await,
        Op::CustomerSourceIpRemove => customer_source_ip_remove(c, ctx).await,
        Op::CustomerGet => customer_get(c, ctx).await,
        Op::BlockedPrefixesList => blocked_prefixes_list(c, ctx).await,
        Op::BlockedPrefixAdd => blocked_prefix_add(c, ctx).await,
        Op::BlockedPrefixRemove => blocked_prefix_remove(c, ctx).await,
        Op::SellRatesList => sell_rates_list(c, ctx).await,
        Op::VendorGet => vendor_get(c, ctx).await,
        Op::RouteGet => route_get(c, ctx).await,
        Op::PartitionGet => partition_get(c, ctx).await,
        Op::OverridesList => overrides_list(c).await,
        Op::OverrideCreate => override_create(c, ctx).await,
        Op::OverrideDelete => override_delete(c, ctx).await,
        Op::ExclusionsList => exclusions_list(c).await,
        Op::ExclusionCreate => exclusion_create(c, ctx).await,
        Op::ExclusionDelete => exclusion_delete(c, ctx).await,
        Op::NumberingImport => numbering_import(c, ctx).await,
        Op::DeckUpload => deck_upload(c, ctx).await,
        Op::DeckVersions => deck_versions(c, ctx).await,
        Op::DeckDiff => deck_diff(c, ctx).await,
        Op::DeckActivate => deck_activate(c, ctx).await,
        Op::DeckRollback => deck_rollback(c, ctx).await,
        Op::DeckExport => deck_export(c, ctx).await,
        Op::DeckShadow => deck_shadow(state, c, ctx).await,
        Op::Margins => margins(c, ctx).await,
        Op::TokenCreate => token_create(c, ctx).await,
        Op::TokenRevoke => token_revoke(c, ctx).await,
        Op::Audit => audit_list(c, ctx).await,
    }
}

// ---- generic helpers ---------------------------------------------------------------------------

async fn list(c: &tokio_postgres::Client, sql: &str) -> Result<AdminReply, ApiError> {
    list_with(c, sql, &[]).await
}

async fn list_with(
    c: &tokio_postgres::Client,
    sql: &str,
    params: &[&(dyn ToSql + Sync)],
) -> Result<AdminReply, ApiError> {
    let q = format!("SELECT coalesce(jsonb_agg(to_jsonb(t)), '[]'::jsonb) FROM ({sql}) t");
    let v: Value = c.query_one(&q, params).await.map_err(pg("listing"))?.get(0);
    json_reply(StatusCode::OK, &v)
}

/// One row of `sql` (one parameter, `$1`) as JSON, or a 404 naming `what`.
async fn get_one(
    c: &tokio_postgres::Client,
    sql: &str,
    key: &str,
    what: &str,
) -> Result<AdminReply, ApiError> {
    let q = format!("SELECT to_jsonb(t) FROM ({sql}) t");
    let row = c.query_opt(&q, &[&key]).await.map_err(pg("reading"))?;
    match row {
        Some(r) => json_reply(StatusCode::OK, &r.get::<_, Value>(0)),
        None => Err(ApiError::NotFound(format!("{what} {key:?} does not exist"))),
    }
}

/// Runs one change and its audit row in a transaction. `change` returns (before, after) as
/// JSON rows; `None` after on a delete, `None` before on a create. A change that finds no row is
/// a 404 named by `target`.
#[allow(clippy::too_many_arguments)] // one call per CRUD handler; a struct would only rename them
async fn change(
    c: &mut tokio_postgres::Client,
    ctx: &Ctx,
    action: &str,
    target: String,
    before_sql: Option<(&str, Vec<&(dyn ToSql + Sync)>)>,
    write_sql: &str,
    write_params: &[&(dyn ToSql + Sync)],
    created: bool,
) -> Result<AdminReply, ApiError> {
    let tx = c
        .transaction()
        .await
        .map_err(pg("starting a transaction"))?;
    let before: Option<Value> = match before_sql {
        Some((sql, params)) => {
            let row = tx.query_opt(sql, &params).await.map_err(pg(action))?;
            match row {
                Some(r) => Some(r.get(0)),
                None => return Err(ApiError::NotFound(format!("{target} does not exist"))),
            }
        }
        None => None,
    };
    let after: Option<Value> = tx
        .query_opt(write_sql, write_params)
        .await
        .map_err(pg(action))?
        .and_then(|r| r.get(0));
    if before.is_none() && after.is_none() {
        return Err(ApiError::NotFound(format!("{target} does not exist")));
    }
    audit_and_commit(tx, ctx, action, &target, before, after, created).await
}

/// Ends an admin change: its audit row (who, what, before/after) in the same transaction, the
/// commit, and the reply (201 for a create, else 200) showing before and after. A change that
/// left the row as it was (an empty PATCH, the same values again) changed nothing: it is
/// answered the same way but writes no audit row, so the log holds only real changes.
pub(super) async fn audit_and_commit(
    tx: tokio_postgres::Transaction<'_>,
    ctx: &Ctx,
    action: &str,
    target: &str,
    before: Option<Value>,
    after: Option<Value>,
    created: bool,
) -> Result<AdminReply, ApiError> {
    if created || before != after {
        tx.execute(
            "INSERT INTO audit_log (actor, action, target, before, after) VALUES ($1, $2, $3, $4, $5)",
            &[&ctx.actor(), &action, &target, &before, &after],
        )
        .await
        .map_err(pg("writing the audit log"))?;
    }
    tx.commit().await.map_err(pg("committing"))?;
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    json_reply(
        status,
        &json!({"before": before, "after": after, "target": target}),
    )
}

// ---- vendors -----------------------------------------------------------------------------------

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct VendorIn {
    pub name: String,
    /// LRN, OCN_LATA, DNIS or INTERNATIONAL
    pub billing_model: String,
    pub dialstring: Option<String>,
    pub enabled: Option<bool>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct VendorPatch {
    pub billing_model: Option<String>,
    pub dialstring: Option<String>,
    pub enabled: Option<bool>,
}

#[utoipa::path(get, path = "/v1/admin/vendors", tag = "vendors", security(("bearer" = [])),
    responses((status = 200, description = "every vendor")))]
pub async fn vendors_list(c: &tokio_postgres::Client) -> Result<AdminReply, ApiError> {
    list(
        c,
        "SELECT name, billing_model, dialstring, enabled FROM vendors ORDER BY name",
    )
    .await
}

#[utoipa::path(get, path = "/v1/admin/vendors/{vendor}", tag = "vendors", security(("bearer" = [])),
    params(("vendor" = String, Path, description = "vendor name")),
    responses((status = 200, description = "the vendor with its gateways and routes"),
        (status = 404, description = "no such vendor")))]
pub async fn vendor_get(c: &tokio_postgres::Client, ctx: &Ctx) -> Result<AdminReply, ApiError> {
    get_one(
        c,
        "SELECT v.name, v.billing_model, v.dialstring, v.enabled, \
         coalesce((SELECT jsonb_agg(jsonb_build_object('name', g.name, 'host', g.host, 'port', g.port, \
           'transport', g.transport, 'priority', g.priority, 'weight', g.weight, 'enabled', g.enabled) \
           ORDER BY g.name) FROM gateways g WHERE g.vendor_id = v.id), '[]') AS gateways, \
         coalesce((SELECT array_agg(r.name ORDER BY r.name) FROM routes r WHERE r.vendor_id = v.id), '{}') AS routes \
         FROM vendors v WHERE v.name = $1",
        ctx.p("vendor"),
        "vendor",
    )
    .await
}

#[utoipa::path(post, path = "/v1/admin/vendors", tag = "vendors", security(("bearer" = [])),
    request_body = VendorIn,
    responses((status = 201, description = "created"), (status = 409, description = "exists")))]
pub async fn vendor_create(
    c: &mut tokio_postgres::Client,
    ctx: &Ctx,
) -> Result<AdminReply, ApiError> {
    let v: VendorIn = ctx.json()?;
    change(
        c,
        ctx,
        "vendor.create",
        format!("vendor {}", v.name),
        None,
        "INSERT INTO vendors (name, billing_model, dialstring, enabled) \
         VALUES ($1, $2::text::billing_model, coalesce($3, 'sip:+${number}@${host}:${port};transport=${transport}'), coalesce($4, true)) \
         RETURNING to_jsonb(vendors.*)",
        &[&v.name, &v.billing_model, &v.dialstring, &v.enabled],
        true,
    )
    .await
}

#[utoipa::path(patch, path = "/v1/admin/vendors/{vendor}", tag = "vendors", security(("bearer" = [])),
    params(("vendor" = String, Path, description = "vendor name")), request_body = VendorPatch,
    responses((status = 200, description = "updated"), (status = 404, description = "no such vendor")))]
pub async fn vendor_update(
    c: &mut tokio_postgres::Client,
    ctx: &Ctx,
) -> Result<AdminReply, ApiError> {
    let v: VendorPatch = ctx.json()?;
    let name = ctx.p("vendor").to_string();
    change(
        c,
        ctx,
        "vendor.update",
        format!("vendor {name}"),
        Some((
            "SELECT to_jsonb(v.*) FROM vendors v WHERE name = $1 FOR UPDATE",
            vec![&name],
        )),
        "UPDATE vendors SET billing_model = coalesce($2::text::billing_model, billing_model), \
         dialstring = coalesce($3, dialstring), enabled = coalesce($4, enabled), updated_at = now() \
         WHERE name = $1 RETURNING to_jsonb(vendors.*)",
        &[&name, &v.billing_model, &v.dialstring, &v.enabled],
        false,
    )
    .await
}

#[utoipa::path(delete, path = "/v1/admin/vendors/{vendor}", tag = "vendors", security(("bearer" = [])),
    params(("vendor" = String, Path, description = "vendor name")),
    responses((status = 200, description = "deleted (with its gateways, routes and rates)")))]
pub async fn vendor_delete(
    c: &mut tokio_postgres::Client,
    ctx: &Ctx,
) -> Result<AdminReply, ApiError> {
    let name = ctx.p("vendor").to_string();
    change(
        c,
        ctx,
        "vendor.delete",
        format!("vendor {name}"),
        Some((
            "SELECT to_jsonb(v.*) FROM vendors v WHERE name = $1 FOR UPDATE",
            vec![&name],
        )),
        "DELETE FROM vendors WHERE name = $1 RETURNING NULL::jsonb",
        &[&name],
        false,
    )
    .await
}

// ---- gateways ----------------------------------------------------------------------------------

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct GatewayIn {
    pub name: String,
    pub host: String,
    pub port: Option<i32>,
    /// udp, tcp or tls
    pub transport: Option<String>,
    pub priority: Option<i32>,
    pub weight: Option<i32>,
    pub enabled: Option<bool>,
}

async fn vendor_exists(c: &tokio_postgres::Client, name: &str) -> Result<(), ApiError> {
    let r = c
        .query_opt("SELECT 1 FROM vendors WHERE name = $1", &[&name])
        .await
        .map_err(pg("looking up the vendor"))?;
    r.map(|_| ())
        .ok_or_else(|| ApiError::NotFound(format!("vendor {name:?} does not exist")))
}

#[utoipa::path(get, path = "/v1/admin/vendors/{vendor}/gateways", tag = "vendors", security(("bearer" = [])),
    params(("vendor" = String, Path, description = "vendor name")),
    responses((status = 200, description = "the vendor's gateways")))]
pub async fn gateways_list(c: &tokio_postgres::Client, ctx: &Ctx) -> Result<AdminReply, ApiError> {
    let v = ctx.p("vendor").to_string();
    vendor_exists(c, &v).await?;
    list_with(
        c,
        "SELECT g.name, g.host, g.port, g.transport, g.priority, g.weight, g.enabled \
         FROM gateways g JOIN vendors v ON v.id = g.vendor_id WHERE v.name = $1 ORDER BY g.name",
        &[&v],
    )
    .await
}

#[utoipa::path(post, path = "/v1/admin/vendors/{vendor}/gateways", tag = "vendors", security(("bearer" = [])),
    params(("vendor" = String, Path, description = "vendor name")), request_body = GatewayIn,
    responses((status = 201, description = "created")))]
pub async fn gateway_create(
    c: &mut tokio_postgres::Client,
    ctx: &Ctx,
) -> Result<AdminReply, ApiError> {
    let g: GatewayIn = ctx.json()?;
    let v = ctx.p("vendor").to_string();
    vendor_exists(c, &v).await?;
    change(
        c,
        ctx,
        "gateway.create",
        format!("gateway {v}/{}", g.name),
        None,
        "INSERT INTO gateways (vendor_id, name, host, port, transport, priority, weight, enabled) \
         SELECT id, $2, $3, coalesce($4, 5060), coalesce($5::text::sip_transport, 'udp'), \
                coalesce($6, 10), coalesce($7, 1), coalesce($8, true) FROM vendors WHERE name = $1 \
         RETURNING to_jsonb(gateways.*)",
        &[
            &v,
            &g.name,
            &g.host,
            &g.port,
            &g.transport,
            &g.priority,
            &g.weight,
            &g.enabled,
        ],
        true,
    )
    .await
}

#[utoipa::path(delete, path = "/v1/admin/vendors/{vendor}/gateways/{gateway}", tag = "vendors",
    security(("bearer" = [])),
    params(("vendor" = String, Path, description = "vendor name"), ("gateway" = String, Path, description = "gateway name")),
    responses((status = 200, description = "deleted")))]
pub async fn gateway_delete(
    c: &mut tokio_postgres::Client,
    ctx: &Ctx,
) -> Result<AdminReply, ApiError> {
    let (v, g) = (ctx.p("vendor").to_string(), ctx.p("gateway").to_string());
    change(
        c,
        ctx,
        "gateway.delete",
        format!("gateway {v}/{g}"),
        Some((
            "SELECT to_jsonb(g.*) FROM gateways g JOIN vendors v ON v.id = g.vendor_id \
             WHERE v.name = $1 AND g.name = $2",
            vec![&v, &g],
        )),
        "DELETE FROM gateways g USING vendors v WHERE v.id = g.vendor_id AND v.name = $1 \
         AND g.name = $2 RETURNING NULL::jsonb",
        &[&v, &g],
        false,
    )
    .await
}

// ---- routes ------------------------------------------------------------------------------------

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RouteIn {
    pub name: String,
    pub vendor: String,
    pub priority: Option<i32>,
    pub weight: Option<i32>,
    pub capacity: Option<i32>,
    pub enabled: Option<bool>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RoutePatch {
    pub priority: Option<i32>,
    pub weight: Option<i32>,
    pub capacity: Option<i32>,
    pub enabled: Option<bool>,
}

#[utoipa::path(get, path = "/v1/admin/routes", tag = "routes", security(("bearer" = [])),
    responses((status = 200, description = "every route")))]
pub async fn routes_list(c: &tokio_postgres::Client) -> Result<AdminReply, ApiError> {
    list(
        c,
        "SELECT r.name, v.name AS vendor, r.priority, r.weight, r.capacity, r.enabled \
         FROM routes r JOIN vendors v ON v.id = r.vendor_id ORDER BY r.name",
    )
    .await
}

#[utoipa::path(get, path = "/v1/admin/routes/{route}", tag = "routes", security(("bearer" = [])),
    params(("route" = String, Path, description = "route name")),
    responses((status = 200, description = "the route, its partitions, live deck version and rate rows"),
        (status = 404, description = "no such route")))]
pub async fn route_get(c: &tokio_postgres::Client, ctx: &Ctx) -> Result<AdminReply, ApiError> {
    get_one(
        c,
        "SELECT r.name, v.name AS vendor, r.priority, r.weight, r.capacity, r.enabled, \
         coalesce((SELECT array_agg(p.name ORDER BY p.name) FROM partition_routes pr \
           JOIN partitions p ON p.id = pr.partition_id WHERE pr.route_id = r.id), '{}') AS partitions, \
         (SELECT count(*) FROM vendor_rates vr WHERE vr.route_id = r.id) AS rate_rows \
         FROM routes r JOIN vendors v ON v.id = r.vendor_id WHERE r.name = $1",
        ctx.p("route"),
        "route",
    )
    .await
}

#[utoipa::path(post, path = "/v1/admin/routes", tag = "routes", security(("bearer" = [])),
    request_body = RouteIn, responses((status = 201, description = "created")))]
pub async fn route_create(
    c: &mut tokio_postgres::Client,
    ctx: &Ctx,
) -> Result<AdminReply, ApiError> {
    let r: RouteIn = ctx.json()?;
    vendor_exists(c, &r.vendor).await?;
    change(
        c,
        ctx,
        "route.create",
        format!("route {}", r.name),
        None,
        "INSERT INTO routes (name, vendor_id, priority, weight, capacity, enabled) \
         SELECT $1, id, coalesce($3, 10), coalesce($4, 1), $5, coalesce($6, true) \
         FROM vendors WHERE name = $2 RETURNING to_jsonb(routes.*)",
        &[
            &r.name,
            &r.vendor,
            &r.priority,
            &r.weight,
            &r.capacity,
            &r.enabled,
        ],
        true,
    )
    .await
}

#[utoipa::path(patch, path = "/v1/admin/routes/{route}", tag = "routes", security(("bearer" = [])),
    params(("route" = String, Path, description = "route name")), request_body = RoutePatch,
    responses((status = 200, description = "updated")))]
pub async fn route_update(
    c: &mut tokio_postgres::Client,
    ctx: &Ctx,
) -> Result<AdminReply, ApiError> {
    let r: RoutePatch = ctx.json()?;
    let name = ctx.p("route").to_string();
    change(
        c,
        ctx,
        "route.update",
        format!("route {name}"),
        Some((
            "SELECT to_jsonb(r.*) FROM routes r WHERE name = $1 FOR UPDATE",
            vec![&name],
        )),
        "UPDATE routes SET priority = coalesce($2, priority), weight = coalesce($3, weight), \
         capacity = coalesce($4, capacity), enabled = coalesce($5, enabled) WHERE name = $1 \
         RETURNING to_jsonb(routes.*)",
        &[&name, &r.priority, &r.weight, &r.capacity, &r.enabled],
        false,
    )
    .await
}

#[utoipa::path(delete, path = "/v1/admin/routes/{route}", tag = "routes", security(("bearer" = [])),
    params(("route" = String, Path, description = "route name")),
    responses((status = 200, description = "deleted")))]
pub async fn route_delete(
    c: &mut tokio_postgres::Client,
    ctx: &Ctx,
) -> Result<AdminReply, ApiError> {
    let name = ctx.p("route").to_string();
    change(
        c,
        ctx,
        "route.delete",
        format!("route {name}"),
        Some((
            "SELECT to_jsonb(r.*) FROM routes r WHERE name = $1 FOR UPDATE",
            vec![&name],
        )),
        "DELETE FROM routes WHERE name = $1 RETURNING NULL::jsonb",
        &[&name],
        false,
    )
    .await
}

// ---- partitions --------------------------------------------------------------------------------

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PartitionIn {
    pub name: String,
    pub description: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PartitionRouteIn {
    pub route: String,
}

async fn partition_exists(c: &tokio_postgres::Client, name: &str) -> Result<(), ApiError> {
    let r = c
        .query_opt("SELECT 1 FROM partitions WHERE name = $1", &[&name])
        .await
        .map_err(pg("looking up the partition"))?;
    r.map(|_| ())
        .ok_or_else(|| ApiError::NotFound(format!("partition {name:?} does not exist")))
}

async fn route_exists(c: &tokio_postgres::Client, name: &str) -> Result<(), ApiError> {
    let r = c
        .query_opt("SELECT 1 FROM routes WHERE name = $1", &[&name])
        .await
        .map_err(pg("looking up the route"))?;
    r.map(|_| ())
        .ok_or_else(|| ApiError::NotFound(format!("route {name:?} does not exist")))
}

#[utoipa::path(get, path = "/v1/admin/partitions", tag = "partitions", security(("bearer" = [])),
    responses((status = 200, description = "every partition with its routes")))]
pub async fn partitions_list(c: &tokio_postgres::Client) -> Result<AdminReply, ApiError> {
    list(
        c,
        "SELECT p.name, p.description, coalesce((SELECT array_agg(r.name ORDER BY r.name) \
         FROM partition_routes pr JOIN routes r ON r.id = pr.route_id WHERE pr.partition_id = p.id), '{}') AS routes \
         FROM partitions p ORDER BY p.name",
    )
    .await
}

#[utoipa::path(get, path = "/v1/admin/partitions/{partition}", tag = "partitions", security(("bearer" = [])),
    params(("partition" = String, Path, description = "partition name")),
    responses((status = 200, description = "the partition with its routes and customers"),
        (status = 404, description = "no such partition")))]
pub async fn partition_get(c: &tokio_postgres::Client, ctx: &Ctx) -> Result<AdminReply, ApiError> {
    get_one(
        c,
        "SELECT p.name, p.description, \
         coalesce((SELECT array_agg(r.name ORDER BY r.name) FROM partition_routes pr \
           JOIN routes r ON r.id = pr.route_id WHERE pr.partition_id = p.id), '{}') AS routes, \
         coalesce((SELECT array_agg(c.ban ORDER BY c.ban) FROM customer_partitions cp \
           JOIN customers c ON c.id = cp.customer_id WHERE cp.partition_id = p.id), '{}') AS customers \
         FROM partitions p WHERE p.name = $1",
        ctx.p("partition"),
        "partition",
    )
    .await
}

#[utoipa::path(post, path = "/v1/admin/partitions", tag = "partitions", security(("bearer" = [])),
    request_body = PartitionIn, responses((status = 201, description = "created")))]
pub async fn partition_create(
    c: &mut tokio_postgres::Client,
    ctx: &Ctx,
) -> Result<AdminReply, ApiError> {
    let p: PartitionIn = ctx.json()?;
    change(
        c,
        ctx,
        "partition.create",
        format!("partition {}", p.name),
        None,
        "INSERT INTO partitions (name, description) VALUES ($1, coalesce($2, '')) \
         RETURNING to_jsonb(partitions.*)",
        &[&p.name, &p.description],
        true,
    )
    .await
}

#[utoipa::path(delete, path = "/v1/admin/partitions/{partition}", tag = "partitions",
    security(("bearer" = [])), params(("partition" = String, Path, description = "partition name")),
    responses((status = 200, description = "deleted")))]
pub async fn partition_delete(
    c: &mut tokio_postgres::Client,
    ctx: &Ctx,
) -> Result<AdminReply, ApiError> {
    let name = ctx.p("partition").to_string();
    change(
        c,
        ctx,
        "partition.delete",
        format!("partition {name}"),
        Some((
            "SELECT to_jsonb(p.*) FROM partitions p WHERE name = $1 FOR UPDATE",
            vec![&name],
        )),
        "DELETE FROM partitions WHERE name = $1 RETURNING NULL::jsonb",
        &[&name],
        false,
    )
    .await
}

#[utoipa::path(post, path = "/v1/admin/partitions/{partition}/routes", tag = "partitions",
    security(("bearer" = [])), params(("partition" = String, Path, description = "partition name")),
    request_body = PartitionRouteIn, responses((status = 201, description = "added"),
    (status = 404, description = "no such partition or route")))]
pub async fn partition_route_add(
    c: &mut tokio_postgres::Client,
    ctx: &Ctx,
) -> Result<AdminReply, ApiError> {
    let b: PartitionRouteIn = ctx.json()?;
    let p = ctx.p("partition").to_string();
    partition_exists(c, &p).await?;
    route_exists(c, &b.route).await?;
    change(
        c,
        ctx,
        "partition.route.add",
        format!("partition {p} route {}", b.route),
        None,
        "INSERT INTO partition_routes (partition_id, route_id) \
         SELECT p.id, r.id FROM partitions p, routes r WHERE p.name = $1 AND r.name = $2 \
         RETURNING jsonb_build_object('partition', $1::text, 'route', $2::text)",
        &[&p, &b.route],
        true,
    )
    .await
}

#[utoipa::path(delete, path = "/v1/admin/partitions/{partition}/routes/{route}", tag = "partitions",
    security(("bearer" = [])),
    params(("partition" = String, Path, description = "partition name"), ("route" = String, Path, description = "route name")),
    responses((status = 200, description = "removed")))]
pub async fn partition_route_remove(
    c: &mut tokio_postgres::Client,
    ctx: &Ctx,
) -> Result<AdminReply, ApiError> {
    let (p, r) = (ctx.p("partition").to_string(), ctx.p("route").to_string());
    partition_exists(c, &p).await?;
    change(
        c,
        ctx,
        "partition.route.remove",
        format!("partition {p} route {r}"),
        Some((
            "SELECT jsonb_build_object('partition', $1::text, 'route', $2::text) \
             FROM partition_routes pr JOIN partitions p ON p.id = pr.partition_id \
             JOIN routes r ON r.id = pr.route_id WHERE p.name = $1 AND r.name = $2",
            vec![&p, &r],
        )),
        "DELETE FROM partition_routes pr USING partitions p, routes r WHERE p.id = pr.partition_id \
         AND r.id = pr.route_id AND p.name = $1 AND r.name = $2 RETURNING NULL::jsonb",
        &[&p, &r],
        false,
    )
    .await
}

// ---- customers ---------------------------------------------------------------------------------

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CustomerPartitionIn {
    pub partition: String,
    pub priority: Option<i32>,
    /// ISO weekdays 1 (Mon) ..= 7 (Sun); empty = every day
    pub days: Option<Vec<i16>>,
    /// "08:00"
    pub start_time: Option<String>,
    pub end_time: Option<String>,
    pub tz: Option<String>,
}

async fn customer_exists(c: &tokio_postgres::Client, ban: &str) -> Result<(), ApiError> {
    let r = c
        .query_opt("SELECT 1 FROM customers WHERE ban = $1", &[&ban])
        .await
        .map_err(pg("looking up the customer"))?;
    r.map(|_| ())
        .ok_or_else(|| ApiError::NotFound(format!("customer {ban:?} does not exist")))
}

#[utoipa::path(delete, path = "/v1/admin/customers/{ban}", tag = "customers", security(("bearer" = [])),
    params(("ban" = String, Path, description = "customer BAN")),
    responses((status = 200, description = "deleted")))]
pub async fn customer_delete(
    c: &mut tokio_postgres::Client,
    ctx: &Ctx,
) -> Result<AdminReply, ApiError> {
    let ban = ctx.p("ban").to_string();
    change(
        c,
        ctx,
        "customer.delete",
        format!("customer {ban}"),
        Some((
            "SELECT to_jsonb(c.*) FROM customers c WHERE ban = $1 FOR UPDATE",
            vec![&ban],
        )),
        "DELETE FROM customers WHERE ban = $1 RETURNING NULL::jsonb",
        &[&ban],
        false,
    )
    .await
}

#[utoipa::path(post, path = "/v1/admin/customers/{ban}/partitions", tag = "customers",
    security(("bearer" = [])), params(("ban" = String, Path, description = "customer BAN")),
    request_body = CustomerPartitionIn,
    responses((status = 201, description = "added"), (status = 404, description = "no such customer or partition")))]
pub async fn customer_partition_add(
    c: &mut tokio_postgres::Client,
    ctx: &Ctx,
) -> Result<AdminReply, ApiError> {
    let b: CustomerPartitionIn = ctx.json()?;
    let ban = ctx.p("ban").to_string();
    customer_exists(c, &ban).await?;
    partition_exists(c, &b.partition).await?;
    if let Some(d) = b.days.iter().flatten().find(|d| !(1..=7).contains(*d)) {
        return Err(ApiError::invalid(
            "days",
            format!("{d} is not an ISO weekday 1..=7"),
        ));
    }
    let days = b.days.clone().unwrap_or_default();
    change(
        c,
        ctx,
        "customer.partition.add",
        format!("customer {ban} partition {}", b.partition),
        None,
        "INSERT INTO customer_partitions (customer_id, partition_id, priority, days, start_time, end_time, tz) \
         SELECT c.id, p.id, coalesce($3, 10), $4, $5::text::time, $6::text::time, coalesce($7, 'UTC') \
         FROM customers c, partitions p WHERE c.ban = $1 AND p.name = $2 \
         RETURNING to_jsonb(customer_partitions.*)",
        &[&ban, &b.partition, &b.priority, &days, &b.start_time, &b.end_time, &b.tz],
        true,
    )
    .await
}

#[utoipa::path(delete, path = "/v1/admin/customers/{ban}/partitions/{partition}", tag = "customers",
    security(("bearer" = [])),
    params(("ban" = String, Path, description = "customer BAN"), ("partition" = String, Path, description = "partition name")),
    responses((status = 200, description = "removed")))]
pub async fn customer_partition_remove(
    c: &mut tokio_postgres::Client,
    ctx: &Ctx,
) -> Result<AdminReply, ApiError> {
    let (ban, p) = (ctx.p("ban").to_string(), ctx.p("partition").to_string());
    customer_exists(c, &ban).await?;
    partition_exists(c, &p).await?;
    change(
        c,
        ctx,
        "customer.partition.remove",
        format!("customer {ban} partition {p}"),
        Some((
            "SELECT to_jsonb(cp.*) FROM customer_partitions cp JOIN customers c ON c.id = cp.customer_id \
             JOIN partitions p ON p.id = cp.partition_id WHERE c.ban = $1 AND p.name = $2",
            vec![&ban, &p],
        )),
        "DELETE FROM customer_partitions cp USING customers c, partitions p WHERE c.id = cp.customer_id \
         AND p.id = cp.partition_id AND c.ban = $1 AND p.name = $2 RETURNING NULL::jsonb",
        &[&ban, &p],
        false,
    )
    .await
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SourceIpIn {
    /// address or CIDR, e.g. "192.0.2.10" or "192.0.2.0/24"
    pub cidr: String,
}

#[utoipa::path(post, path = "/v1/admin/customers/{ban}/source_ips", tag = "customers",
    security(("bearer" = [])), params(("ban" = String, Path, description = "customer BAN")),
    request_body = SourceIpIn, responses((status = 201, description = "added"),
    (status = 409, description = "the address belongs to a customer already")))]
pub async fn customer_source_ip_add(
    c: &mut tokio_postgres::Client,
    ctx: &Ctx,
) -> Result<AdminReply, ApiError> {
    let b: SourceIpIn = ctx.json()?;
    let ban = ctx.p("ban").to_string();
    customer_exists(c, &ban).await?;
    let net: ipnet::IpNet = b
        .cidr
        .parse()
        .or_else(|_| b.cidr.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
        .map_err(|_| {
            ApiError::invalid("cidr", format!("{:?} is not an address or CIDR", b.cidr))
        })?;
    let text = net.trunc().to_string();
    change(
        c,
        ctx,
        "customer.source_ip.add",
        format!("customer {ban} source {text}"),
        None,
        "INSERT INTO customer_source_ips (customer_id, cidr) SELECT id, $2::text::cidr \
         FROM customers WHERE ban = $1 \
         RETURNING jsonb_build_object('customer', $1::text, 'cidr', cidr::text)",
        &[&ban, &text],
        true,
    )
    .await
}

#[utoipa::path(delete, path = "/v1/admin/customers/{ban}/source_ips/{cidr}", tag = "customers",
    security(("bearer" = [])),
    params(("ban" = String, Path, description = "customer BAN"),
        ("cidr" = String, Path, description = "CIDR, with the slash written %2F")),
    responses((status = 200, description = "removed")))]
pub async fn customer_source_ip_remove(
    c: &mut tokio_postgres::Client,
    ctx: &Ctx,
) -> Result<AdminReply, ApiError> {
    let (ban, cidr) = (ctx.p("ban").to_string(), ctx.p("cidr").to_string());
    customer_exists(c, &ban).await?;
    change(
        c,
        ctx,
        "customer.source_ip.remove",
        format!("customer {ban} source {cidr}"),
        Some((
            "SELECT jsonb_build_object('customer', $1::text, 'cidr', s.cidr::text) \
             FROM customer_source_ips s JOIN customers c ON c.id = s.customer_id \
             WHERE c.ban = $1 AND s.cidr::text = $2",
            vec![&ban, &cidr],
        )),
        "DELETE FROM customer_source_ips s USING customers c WHERE c.id = s.customer_id \
         AND c.ban = $1 AND s.cidr::text = $2 RETURNING NULL::jsonb",
        &[&ban, &cidr],
        false,
    )
    .await
}

// ---- overrides and exclusions ------------------------------------------------------------------

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OverrideIn {
    /// customer BAN; absent = every customer
    pub customer: Option<String>,
    /// E.164 digits; absent or "" = every destination
    pub prefix: Option<String>,
    pub route: String,
    /// forced buy rate (decimal), absent = the route's deck rate
    pub rate: Option<String>,
    /// RFC 3339
    pub valid_from: Option<String>,
    pub valid_until: Option<String>,
    pub note: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ExclusionIn {
    /// customer BAN; absent = global
    pub customer: Option<String>,
    /// E.164 digits; "" = everywhere (needs a vendor)
    pub prefix: Option<String>,
    /// vendor name; absent = the prefix is blocked (403)
    pub vendor: Option<String>,
    pub note: Option<String>,
}

fn id_param(ctx: &Ctx) -> Result<i64, ApiError> {
    let v = ctx.p("id");
    v.parse()
        .map_err(|_| ApiError::invalid("id", format!("{v:?} is not an id")))
}

#[utoipa::path(get, path = "/v1/admin/overrides", tag = "overrides", security(("bearer" = [])),
    responses((status = 200, description = "every override")))]
pub async fn overrides_list(c: &tokio_postgres::Client) -> Result<AdminReply, ApiError> {
    list(
        c,
        "SELECT o.id, c.ban AS customer, o.prefix, r.name AS route, o.rate::text, o.valid_from, \
         o.valid_until, o.note FROM overrides o JOIN routes r ON r.id = o.route_id \
         LEFT JOIN customers c ON c.id = o.customer_id ORDER BY o.id",
    )
    .await
}

#[utoipa::path(post, path = "/v1/admin/overrides", tag = "overrides", security(("bearer" = [])),
    request_body = OverrideIn, responses((status = 201, description = "created"),
    (status = 404, description = "no such customer or route")))]
pub async fn override_create(
    c: &mut tokio_postgres::Client,
    ctx: &Ctx,
) -> Result<AdminReply, ApiError> {
    let b: OverrideIn = ctx.json()?;
    route_exists(c, &b.route).await?;
    if let Some(ban) = &b.customer {
        customer_exists(c, ban).await?;
    }
    let prefix = b.prefix.clone().unwrap_or_default();
    change(
        c,
        ctx,
        "override.create",
        format!("override {} {prefix} -> {}", b.customer.as_deref().unwrap_or("*"), b.route),
        None,
        "INSERT INTO overrides (customer_id, prefix, route_id, rate, valid_from, valid_until, note) \
         SELECT (SELECT id FROM customers WHERE ban = $1), $2, r.id, $4::text::numeric, \
         coalesce($5::text::timestamptz, '-infinity'), coalesce($6::text::timestamptz, 'infinity'), \
         coalesce($7, '') FROM routes r WHERE r.name = $3 \
         RETURNING to_jsonb(overrides.*)",
        &[&b.customer, &prefix, &b.route, &b.rate, &b.valid_from, &b.valid_until, &b.note],
        true,
    )
    .await
}

#[utoipa::path(delete, path = "/v1/admin/overrides/{id}", tag = "overrides", security(("bearer" = [])),
    params(("id" = i64, Path, description = "override id")),
    responses((status = 200, description = "deleted")))]
pub async fn override_delete(
    c: &mut tokio_postgres::Client,
    ctx: &Ctx,
) -> Result<AdminReply, ApiError> {
    let id = id_param(ctx)?;
    change(
        c,
        ctx,
        "override.delete",
        format!("override {id}"),
        Some((
            "SELECT to_jsonb(o.*) FROM overrides o WHERE id = $1 FOR UPDATE",
            vec![&id],
        )),
        "DELETE FROM overrides WHERE id = $1 RETURNING NULL::jsonb",
        &[&id],
        false,
    )
    .await
}

#[utoipa::path(get, path = "/v1/admin/exclusions", tag = "overrides", security(("bearer" = [])),
    responses((status = 200, description = "every exclusion")))]
pub async fn exclusions_list(c: &tokio_postgres::Client) -> Result<AdminReply, ApiError> {
    list(
        c,
        "SELECT e.id, c.ban AS customer, e.prefix, v.name AS vendor, e.note FROM exclusions e \
         LEFT JOIN customers c ON c.id = e.customer_id LEFT JOIN vendors v ON v.id = e.vendor_id \
         ORDER BY e.id",
    )
    .await
}

#[utoipa::path(post, path = "/v1/admin/exclusions", tag = "overrides", security(("bearer" = [])),
    request_body = ExclusionIn, responses((status = 201, description = "created"),
    (status = 404, description = "no such customer or vendor")))]
pub async fn exclusion_create(
    c: &mut tokio_postgres::Client,
    ctx: &Ctx,
) -> Result<AdminReply, ApiError> {
    let b: ExclusionIn = ctx.json()?;
    if let Some(ban) = &b.customer {
        customer_exists(c, ban).await?;
    }
    if let Some(v) = &b.vendor {
        vendor_exists(c, v).await?;
    }
    let prefix = b.prefix.clone().unwrap_or_default();
    change(
        c,
        ctx,
        "exclusion.create",
        format!(
            "exclusion {} {prefix} {}",
            b.customer.as_deref().unwrap_or("*"),
            b.vendor.as_deref().unwrap_or("(blocked)")
        ),
        None,
        "INSERT INTO exclusions (customer_id, prefix, vendor_id, note) \
         VALUES ((SELECT id FROM customers WHERE ban = $1), $2, (SELECT id FROM vendors WHERE name = $3), \
         coalesce($4, '')) RETURNING to_jsonb(exclusions.*)",
        &[&b.customer, &prefix, &b.vendor, &b.note],
        true,
    )
    .await
}

#[utoipa::path(delete, path = "/v1/admin/exclusions/{id}", tag = "overrides", security(("bearer" = [])),
    params(("id" = i64, Path, description = "exclusion id")),
    responses((status = 200, description = "deleted")))]
pub async fn exclusion_delete(
    c: &mut tokio_postgres::Client,
    ctx: &Ctx,
) -> Result<AdminReply, ApiError> {
    let id = id_param(ctx)?;
    change(
        c,
        ctx,
        "exclusion.delete",
        format!("exclusion {id}"),
        Some((
            "SELECT to_jsonb(e.*) FROM exclusions e WHERE id = $1 FOR UPDATE",
            vec![&id],
        )),
        "DELETE FROM exclusions WHERE id = $1 RETURNING NULL::jsonb",
        &[&id],
        false,
    )
    .await
}

// ---- numbering -----------------------------------------------------------------------------------

#[utoipa::path(post, path = "/v1/admin/numbering/{table}", tag = "numbering", security(("bearer" = [])),
    params(("table" = String, Path, description = "npanxx, local_calling, lnp or dno"),
        ("dry_run" = Option<bool>, Query, description = "validate and plan; change nothing")),
    request_body(content = String, description = "the table as CSV (columns as for `warpd apply`, docs/PROVISIONING.md); it replaces the whole table", content_type = "text/csv"),
    responses((status = 200, description = "the plan (what was or would be loaded)"),
        (status = 422, description = "bad rows; nothing changed")))]
pub async fn numbering_import(
    c: &mut tokio_postgres::Client,
    ctx: &Ctx,
) -> Result<AdminReply, ApiError> {
    let table = ctx.p("table").to_string();
    if !["npanxx", "local_calling", "lnp", "dno"].contains(&table.as_str()) {
        return Err(ApiError::NotFound(format!(
            "numbering table {table:?} (one of npanxx, local_calling, lnp, dno)"
        )));
    }
    let dry_run = ctx.flag("dry_run")?;
    // `warpd apply` reads decks from files: hand it the body as one, in a private directory
    let token = super::new_token().map_err(ApiError::Internal)?;
    let dir = std::env::temp_dir().join(format!("warpd-numbering-{}", &token[4..20]));
    std::fs::create_dir(&dir)
        .and_then(|_| std::fs::write(dir.join("table.csv"), &ctx.body))
        .map_err(|e| ApiError::Internal(format!("staging the upload: {e}")))?;
    let spec = format!("[numbering]\n{table} = \"table.csv\"\n");
    let result =
        crate::provision::apply_str(c, &spec, crate::provision::Format::Toml, &dir, dry_run).await;
    let _ = std::fs::remove_dir_all(&dir);
    let plan = result.map_err(|e| match e {
        crate::provision::ProvisionError::Invalid { .. }
        | crate::provision::ProvisionError::Load { .. }
        | crate::provision::ProvisionError::Parse { .. } => {
            ApiError::Unprocessable(e.to_string().replace(&dir.display().to_string(), ""))
        }
        other => ApiError::Internal(other.to_string()),
    })?;
    if !dry_run {
        c.execute(
            "INSERT INTO audit_log (actor, action, target, after) VALUES ($1, 'numbering.import', $2, $3)",
            &[
                &ctx.actor(),
                &format!("numbering {table}"),
                &serde_json::to_value(&plan.decks).unwrap_or(Value::Null),
            ],
        )
        .await
        .map_err(pg("writing the audit log"))?;
    }
    json_reply(StatusCode::OK, &plan)
}

// ---- decks -------------------------------------------------------------------------------------

/// The multipart/form-data form of a deck upload (for the OpenAPI document).
#[derive(ToSchema)]
#[allow(dead_code)] // describes the form; `multipart` reads it
pub struct DeckForm {
    /// the deck file: CSV, gzip'ed CSV or XLSX
    #[schema(content_media_type = "application/octet-stream")]
    file: Vec<u8>,
    effective: Option<String>,
    dry_run: Option<bool>,
    skip_invalid: Option<bool>,
    stage: Option<bool>,
    map: Option<String>,
    save_mapping: Option<bool>,
    sheet: Option<String>,
    name: Option<String>,
    warn_pct: Option<f64>,
}

#[utoipa::path(post, path = "/v1/admin/routes/{route}/decks", tag = "decks", security(("bearer" = [])),
    params(("route" = String, Path, description = "route name"),
        ("effective" = Option<String>, Query, description = "when the version takes over (default now), e.g. 2026-12-01T00:00Z"),
        ("dry_run" = Option<bool>, Query, description = "validate, diff and warn; change nothing"),
        ("skip_invalid" = Option<bool>, Query, description = "load the good rows, report the bad ones"),
        ("stage" = Option<bool>, Query, description = "store the version without routing it (activate later)"),
        ("map" = Option<String>, Query, description = "column mapping, e.g. 'Dial Code=prefix,Price=rate'"),
        ("save_mapping" = Option<bool>, Query, description = "save the mapping with the vendor"),
        ("sheet" = Option<String>, Query, description = "XLSX sheet name"),
        ("name" = Option<String>, Query, description = "file name to record (default: the multipart file name)"),
        ("warn_pct" = Option<f64>, Query, description = "warn on rates moving more than this percent (default 25)")),
    request_body(description = "the deck: CSV, gzip'ed CSV or XLSX bytes as the raw body, or a multipart/form-data \
        form with one file part (field `file`) and optionally the options above as form fields",
        content((String = "application/octet-stream"), (inline(DeckForm) = "multipart/form-data"))),
    responses((status = 200, description = "import report"), (status = 422, description = "bad rows; nothing imported"),
        (status = 413, description = "larger than the upload limit")))]
pub async fn deck_upload(
    c: &mut tokio_postgres::Client,
    ctx: &mut Ctx,
) -> Result<AdminReply, ApiError> {
    let route = ctx.p("route").to_string();
    let body = std::mem::take(&mut ctx.body);
    let input: Box<dyn std::io::Read + Send> =
        match multipart::boundary(ctx.content_type.as_deref())? {
            None => Box::new(std::io::Cursor::new(body)),
            Some(boundary) => {
                let form = multipart::scan(body.clone(), &boundary).await?;
                for (k, v) in form.fields {
                    match ctx.q(&k) {
                        Some(q) if q != v => return Err(ApiError::invalid(
                            k,
                            "given as a query parameter and as a form field, with different values",
                        )),
                        _ => {
                            ctx.query.insert(k, v);
                        }
                    }
                }
                if let Some(f) = form.file_name.filter(|f| !f.is_empty()) {
                    ctx.query.entry("name".into()).or_insert(f);
                }
                Box::new(multipart::part_reader(body, boundary, form.file_index))
            }
        };
    let mut o = ImportOptions::new(&route, ctx.q("name").unwrap_or("upload"), &ctx.actor());
    o.effective = ctx.when("effective")?;
    o.dry_run = ctx.flag("dry_run")?;
    o.skip_invalid = ctx.flag("skip_invalid")?;
    o.stage = ctx.flag("stage")?;
    o.save_mapping = ctx.flag("save_mapping")?;
    o.sheet = ctx.q("sheet").map(str::to_string);
    if let Some(m) = ctx.q("map") {
        o.mapping = Mapping::parse(m).map_err(|e| ApiError::invalid("map", e))?;
    }
    if let Some(v) = ctx.q("warn_pct") {
        o.warn_change_pct = v
            .parse::<f64>()
            .ok()
            .filter(|p| p.is_finite() && *p >= 0.0)
            .ok_or_else(|| ApiError::invalid("warn_pct", format!("{v:?} is not a percentage")))?;
    }
    let report = deck::store::import(c, input, &o).await?;
    json_reply(StatusCode::OK, &report)
}

#[utoipa::path(get, path = "/v1/admin/routes/{route}/decks", tag = "decks", security(("bearer" = [])),
    params(("route" = String, Path, description = "route name")),
    responses((status = 200, description = "versions, oldest first", body = [deck::VersionInfo])))]
pub async fn deck_versions(c: &tokio_postgres::Client, ctx: &Ctx) -> Result<AdminReply, ApiError> {
    let v = deck::store::versions(c, ctx.p("route")).await?;
    json_reply(StatusCode::OK, &v)
}

#[utoipa::path(get, path = "/v1/admin/routes/{route}/decks/diff", tag = "decks", security(("bearer" = [])),
    params(("route" = String, Path, description = "route name"),
        ("from" = Option<i64>, Query, description = "old version (default: the one before `to`)"),
        ("to" = Option<i64>, Query, description = "new version (default: the newest)"),
        ("limit" = Option<i64>, Query, description = "rows of detail (default 100)"),
        ("warn_pct" = Option<f64>, Query, description = "threshold for over_threshold (default 25)")),
    responses((status = 200, description = "per-prefix comparison", body = deck::DiffReport)))]
pub async fn deck_diff(c: &tokio_postgres::Client, ctx: &Ctx) -> Result<AdminReply, ApiError> {
    let pct = match ctx.q("warn_pct") {
        None => 25.0,
        Some(v) => v
            .parse::<f64>()
            .map_err(|_| ApiError::invalid("warn_pct", format!("{v:?} is not a number")))?,
    };
    let d = deck::store::diff(
        c,
        ctx.p("route"),
        ctx.int("from")?,
        ctx.int("to")?,
        pct,
        ctx.int("limit")?.unwrap_or(100),
    )
    .await?;
    json_reply(StatusCode::OK, &d)
}

fn version_param(ctx: &Ctx) -> Result<i64, ApiError> {
    let v = ctx.p("version");
    v.parse()
        .map_err(|_| ApiError::invalid("version", format!("{v:?} is not a version id")))
}

#[utoipa::path(post, path = "/v1/admin/routes/{route}/decks/{version}/activate", tag = "decks",
    security(("bearer" = [])),
    params(("route" = String, Path, description = "route name"), ("version" = i64, Path, description = "version id"),
        ("effective" = Option<String>, Query, description = "new effective time (default: the version's)")),
    responses((status = 200, description = "the version, now live", body = deck::VersionInfo),
        (status = 409, description = "the version is not staged/rolled back")))]
pub async fn deck_activate(
    c: &mut tokio_postgres::Client,
    ctx: &Ctx,
) -> Result<AdminReply, ApiError> {
    let v = deck::store::activate(
        c,
        ctx.p("route"),
        version_param(ctx)?,
        ctx.when("effective")?,
        &ctx.actor(),
    )
    .await?;
    json_reply(StatusCode::OK, &v)
}

#[utoipa::path(post, path = "/v1/admin/routes/{route}/decks/rollback", tag = "decks",
    security(("bearer" = [])),
    params(("route" = String, Path, description = "route name"),
        ("version" = Option<i64>, Query, description = "live version to withdraw (default: the newest)")),
    responses((status = 200, description = "the withdrawn version id"),
        (status = 409, description = "nothing to roll back")))]
pub async fn deck_rollback(
    c: &mut tokio_postgres::Client,
    ctx: &Ctx,
) -> Result<AdminReply, ApiError> {
    let v = deck::store::rollback(c, ctx.p("route"), ctx.int("version")?, &ctx.actor()).await?;
    json_reply(StatusCode::OK, &json!({"rolled_back": v}))
}

#[utoipa::path(get, path = "/v1/admin/routes/{route}/decks/{version}/export", tag = "decks",
    security(("bearer" = [])),
    params(("route" = String, Path, description = "route name"),
        ("version" = String, Path, description = "version id, or `current`")),
    responses((status = 200, description = "the version as CSV in its imported layout", content_type = "text/csv")))]
pub async fn deck_export(c: &tokio_postgres::Client, ctx: &Ctx) -> Result<AdminReply, ApiError> {
    let version = match ctx.p("version") {
        "current" => None,
        _ => Some(version_param(ctx)?),
    };
    let mut out = Vec::new();
    deck::store::export(c, ctx.p("route"), version, &mut out).await?;
    Ok(AdminReply {
        status: StatusCode::OK,
        content_type: "text/csv; charset=utf-8",
        body: out.into(),
    })
}

#[utoipa::path(get, path = "/v1/admin/routes/{route}/decks/{version}/shadow", tag = "decks",
    security(("bearer" = [])),
    params(("route" = String, Path, description = "route name"), ("version" = i64, Path, description = "candidate version id"),
        ("samples" = Option<i64>, Query, description = "at most this many recent dips (default 10000)")),
    responses((status = 200, description = "how answers would change", body = deck::report::ShadowReport)))]
pub async fn deck_shadow(
    state: &AdminState,
    c: &tokio_postgres::Client,
    ctx: &Ctx,
) -> Result<AdminReply, ApiError> {
    let version = version_param(ctx)?;
    let limit = ctx.int("samples")?.unwrap_or(10_000).clamp(1, 1_000_000);
    state
        .dip_log
        .flush(c)
        .await
        .map_err(pg("saving recent dips"))?;
    let samples = deck::diplog::load_samples(c, limit)
        .await
        .map_err(pg("reading recent dips"))?;
    // a connection of its own: shadow creates a TEMP VIEW on it
    let mut own = crate::db::connect(&state.db_url)
        .await
        .map_err(|e| ApiError::Internal(e.to_string()))?;
    let now = chrono::Utc::now().timestamp();
    let r = deck::report::shadow(
        &mut own,
        ctx.p("route"),
        version,
        &samples,
        state.settings.clone(),
        now,
    )
    .await?;
    json_reply(StatusCode::OK, &r)
}

#[utoipa::path(get, path = "/v1/admin/margins", tag = "decks", security(("bearer" = [])),
    params(("ban" = Option<String>, Query, description = "one customer"),
        ("prefix" = Option<String>, Query, description = "sell prefixes starting with this"),
        ("limit" = Option<i64>, Query, description = "rows (default 1000)")),
    responses((status = 200, description = "sell vs buy per prefix, customer and route", body = [deck::report::MarginRow])))]
pub async fn margins(c: &tokio_postgres::Client, ctx: &Ctx) -> Result<AdminReply, ApiError> {
    let rows = deck::report::margins(
        c,
        ctx.q("ban"),
        ctx.q("prefix"),
        ctx.int("limit")?.unwrap_or(1000),
    )
    .await?;
    json_reply(StatusCode::OK, &rows)
}

// ---- tokens and audit --------------------------------------------------------------------------

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TokenIn {
    pub name: String,
    /// admin, ops or readonly
    pub role: String,
}

#[utoipa::path(post, path = "/v1/admin/tokens", tag = "tokens", security(("bearer" = [])),
    request_body = TokenIn,
    responses((status = 201, description = "the token (shown once; only its SHA-256 is stored)")))]
pub async fn token_create(c: &tokio_postgres::Client, ctx: &Ctx) -> Result<AdminReply, ApiError> {
    let b: TokenIn = ctx.json()?;
    match super::create_token(c, &b.name, &b.role, &ctx.actor()).await {
        Ok(t) => json_reply(
            StatusCode::CREATED,
            &json!({"name": b.name, "role": b.role, "token": t}),
        ),
        Err(super::TokenError::BadRole(r)) => Err(ApiError::invalid(
            "role",
            format!("{r:?} is not one of admin, ops, readonly"),
        )),
        Err(super::TokenError::Exists(n)) => Err(ApiError::Conflict(format!(
            "a token named {n:?} exists already"
        ))),
        Err(e) => Err(ApiError::Internal(e.to_string())),
    }
}

#[utoipa::path(delete, path = "/v1/admin/tokens/{name}", tag = "tokens", security(("bearer" = [])),
    params(("name" = String, Path, description = "token name")),
    responses((status = 200, description = "revoked"), (status = 404, description = "no such live token")))]
pub async fn token_revoke(c: &tokio_postgres::Client, ctx: &Ctx) -> Result<AdminReply, ApiError> {
    let name = ctx.p("name");
    if super::revoke_token(c, name, &ctx.actor())
        .await
        .map_err(pg("revoking the token"))?
    {
        json_reply(StatusCode::OK, &json!({"revoked": name}))
    } else {
        Err(ApiError::NotFound(format!("token {name:?} (live)")))
    }
}

#[utoipa::path(get, path = "/v1/admin/audit", tag = "tokens", security(("bearer" = [])),
    params(("limit" = Option<i64>, Query, description = "newest first (default 100)")),
    responses((status = 200, description = "audit rows: who, when, what, before, after")))]
pub async fn audit_list(c: &tokio_postgres::Client, ctx: &Ctx) -> Result<AdminReply, ApiError> {
    let limit = ctx.int("limit")?.unwrap_or(100).clamp(1, 10_000);
    list_with(
        c,
        "SELECT id, at, actor, action, target, before, after FROM audit_log ORDER BY id DESC LIMIT $1",
        &[&limit],
    )
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routing_table_matches_paths_and_methods() {
        let (role, op, p) =
            route(&Method::POST, "/v1/admin/routes/lrn-east/decks/12/activate").unwrap();
        assert_eq!((role, op), (Role::Ops, Op::DeckActivate));
        assert_eq!(p["route"], "lrn-east");
        assert_eq!(p["version"], "12");
        let (_, op, _) = route(&Method::GET, "/v1/admin/routes/r/decks/diff").unwrap();
        assert_eq!(op, Op::DeckDiff);
        let (_, op, p) = route(&Method::DELETE, "/v1/admin/customers/a%20b").unwrap();
        assert_eq!((op, p["ban"].as_str()), (Op::CustomerDelete, "a b"));
        assert!(matches!(
            route(&Method::PUT, "/v1/admin/vendors"),
            Err(ApiError::MethodNotAllowed { .. })
        ));
        // get-one routes and the Allow header of their paths
        let (role, op, p) = route(&Method::GET, "/v1/admin/customers/1001").unwrap();
        assert_eq!(
            (role, op, p["ban"].as_str()),
            (Role::Readonly, Op::CustomerGet, "1001")
        );
        let (role, op, p) = route(
            &Method::DELETE,
            "/v1/admin/customers/1001/blocked_prefixes/1900",
        )
        .unwrap();
        assert_eq!(
            (role, op, p["prefix"].as_str()),
            (Role::Ops, Op::BlockedPrefixRemove, "1900")
        );
        assert_eq!(
            route(&Method::GET, "/v1/admin/routes/r").unwrap().1,
            Op::RouteGet
        );
        for (path, want) in [
            ("/v1/admin/customers/1001", "GET, PATCH, DELETE"),
            ("/v1/admin/partitions/p", "GET, DELETE"),
            ("/v1/admin/customers/1001/blocked_prefixes", "GET, POST"),
        ] {
            match route(&Method::PUT, path) {
                Err(ApiError::MethodNotAllowed { allow, .. }) => assert_eq!(allow, want, "{path}"),
                other => panic!("{path}: {:?}", other.map(|r| r.1)),
            }
        }
        assert!(matches!(
            route(&Method::GET, "/v1/admin/nope"),
            Err(ApiError::NotFound(_))
        ));
    }
}
