//! The ONE table of admin endpoints ([`ROUTES`]): each entry carries its method, path, role,
//! handler and OpenAPI operation (the handler's `#[utoipa::path]`), so there is no list to keep in
//! step with it: the dispatcher matches it and the OpenAPI document is built from it.
//!
//! Owns: admin paths, role requirements, authentication of admin requests.
//! Must not touch: what handlers do (see `resources/`), error mapping (see `error.rs`).

use std::collections::HashMap;

use futures_util::future::BoxFuture;
use hyper::body::Incoming;
use hyper::header::AUTHORIZATION;
use hyper::{Method, Request};
use tokio_postgres::Client;
use utoipa::openapi::path::{PathItemBuilder, Paths};
use utoipa::openapi::{ComponentsBuilder, OpenApi, OpenApiBuilder};

use super::ctx::{AdminReply, Ctx};
use super::resources::*;
use super::{AdminError, AdminState, Principal, Role};
use crate::http_body::{read_body, BodyError};

/// Longest an upload (deck, numbering table) may take to arrive: large files over a slow
/// management link; the file streams to disk meanwhile.
const UPLOAD_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(600);
/// Longest any other admin request body may take to arrive (they are small).
const BODY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

/// An admin handler: the state, the request and a pooled connection (shared with the token check).
pub type Handler = for<'a> fn(
    &'a AdminState,
    &'a mut Ctx,
    &'a mut Client,
) -> BoxFuture<'a, Result<AdminReply, AdminError>>;

/// One admin endpoint. `{name}` segments of `path` are parameters ([`Ctx::p`]).
pub struct Route {
    pub method: &'static str,
    pub path: &'static str,
    /// the least role allowed
    pub role: Role,
    pub handler: Handler,
    /// the endpoint's OpenAPI operation and the schemas it names
    pub doc: fn() -> OpenApi,
    /// accepts bodies up to [`AdminState::max_upload_bytes`] (else 1 MiB), streamed into a
    /// temporary file ([`Ctx::upload`]) instead of [`Ctx::body`]
    pub upload: bool,
}

/// The OpenAPI part of a `#[utoipa::path]` handler: its path item, with the annotation's `tag`,
/// and the schemas it names. utoipa keeps both apart from the operation (behind its hidden
/// `__dev` traits); its `#[openapi(paths(..))]` derive adds them the same way.
pub fn doc_of<P>() -> OpenApi
where
    P: utoipa::Path + utoipa::__dev::Tags<'static> + utoipa::__dev::SchemaReferences,
{
    let mut op = P::operation();
    op.tags
        .get_or_insert_with(Vec::new)
        .extend(P::tags().into_iter().map(String::from));
    let item = P::methods()
        .into_iter()
        .fold(PathItemBuilder::new(), |item, m| {
            item.operation(m, op.clone())
        })
        .build();
    let mut schemas = vec![];
    P::schemas(&mut schemas);
    OpenApiBuilder::new()
        .paths(Paths::builder().path(P::path(), item))
        .components(Some(
            ComponentsBuilder::new().schemas_from_iter(schemas).build(),
        ))
        .build()
}

/// `op!(METHOD "path", Role, module::handler / __path_handler [upload])`: a [`Route`] whose
/// OpenAPI operation is the handler's `#[utoipa::path]` (the `__path_<handler>` type utoipa
/// generates next to it).
macro_rules! op {
    ($method:ident $path:literal, $role:ident, $m:ident :: $f:ident / $doc:ident $($upload:ident)?) => {
        Route {
            method: stringify!($method),
            path: $path,
            role: Role::$role,
            handler: {
                fn h<'a>(
                    s: &'a AdminState,
                    ctx: &'a mut Ctx,
                    c: &'a mut Client,
                ) -> BoxFuture<'a, Result<AdminReply, AdminError>> {
                    Box::pin($m::$f(s, ctx, c))
                }
                h
            },
            doc: doc_of::<$m::$doc>,
            upload: op!(@upload $($upload)?),
        }
    };
    (@upload upload) => { true };
    (@upload) => { false };
}

/// Every admin endpoint.
pub static ROUTES: &[Route] = &[
    // vendors
    op!(GET "/v1/admin/vendors", Readonly, vendors::vendors_list / __path_vendors_list),
    op!(POST "/v1/admin/vendors", Admin, vendors::vendor_create / __path_vendor_create),
    op!(GET "/v1/admin/vendors/{vendor}", Readonly, vendors::vendor_get / __path_vendor_get),
    op!(PATCH "/v1/admin/vendors/{vendor}", Admin, vendors::vendor_update / __path_vendor_update),
    op!(DELETE "/v1/admin/vendors/{vendor}", Admin, vendors::vendor_delete / __path_vendor_delete),
    // gateways
    op!(GET "/v1/admin/vendors/{vendor}/gateways", Readonly, gateways::gateways_list / __path_gateways_list),
    op!(POST "/v1/admin/vendors/{vendor}/gateways", Admin, gateways::gateway_create / __path_gateway_create),
    op!(DELETE "/v1/admin/vendors/{vendor}/gateways/{gateway}", Admin, gateways::gateway_delete / __path_gateway_delete),
    // routes
    op!(GET "/v1/admin/routes", Readonly, routes::routes_list / __path_routes_list),
    op!(POST "/v1/admin/routes", Admin, routes::route_create / __path_route_create),
    op!(GET "/v1/admin/routes/{route}", Readonly, routes::route_get / __path_route_get),
    op!(PATCH "/v1/admin/routes/{route}", Admin, routes::route_update / __path_route_update),
    op!(DELETE "/v1/admin/routes/{route}", Admin, routes::route_delete / __path_route_delete),
    // partitions
    op!(GET "/v1/admin/partitions", Readonly, partitions::partitions_list / __path_partitions_list),
    op!(POST "/v1/admin/partitions", Admin, partitions::partition_create / __path_partition_create),
    op!(GET "/v1/admin/partitions/{partition}", Readonly, partitions::partition_get / __path_partition_get),
    op!(DELETE "/v1/admin/partitions/{partition}", Admin, partitions::partition_delete / __path_partition_delete),
    op!(POST "/v1/admin/partitions/{partition}/routes", Ops, partitions::partition_route_add / __path_partition_route_add),
    op!(DELETE "/v1/admin/partitions/{partition}/routes/{route}", Ops, partitions::partition_route_remove / __path_partition_route_remove),
    // customers
    op!(GET "/v1/admin/customers", Readonly, customers::customers_list / __path_customers_list),
    op!(POST "/v1/admin/customers", Admin, customers::customer_create / __path_customer_create),
    op!(GET "/v1/admin/customers/{ban}", Readonly, customers::customer_get / __path_customer_get),
    op!(PATCH "/v1/admin/customers/{ban}", Ops, customers::customer_update / __path_customer_update),
    op!(DELETE "/v1/admin/customers/{ban}", Admin, customers::customer_delete / __path_customer_delete),
    // credit accounts (issue 21)
    op!(GET "/v1/admin/customers/{ban}/account", Readonly, accounts::account_get / __path_account_get),
    op!(PUT "/v1/admin/customers/{ban}/account", Admin, accounts::account_put / __path_account_put),
    op!(GET "/v1/admin/customers/{ban}/account/ledger", Readonly, accounts::ledger_list / __path_ledger_list),
    op!(POST "/v1/admin/customers/{ban}/account/ledger", Ops, accounts::ledger_post / __path_ledger_post),
    // blocked_prefixes
    op!(GET "/v1/admin/customers/{ban}/blocked_prefixes", Readonly, blocked_prefixes::blocked_prefixes_list / __path_blocked_prefixes_list),
    op!(POST "/v1/admin/customers/{ban}/blocked_prefixes", Ops, blocked_prefixes::blocked_prefix_add / __path_blocked_prefix_add),
    op!(DELETE "/v1/admin/customers/{ban}/blocked_prefixes/{prefix}", Ops, blocked_prefixes::blocked_prefix_remove / __path_blocked_prefix_remove),
    // customers
    op!(GET "/v1/admin/customers/{ban}/sell_rates", Readonly, customers::sell_rates_list / __path_sell_rates_list),
    // customer_links
    op!(POST "/v1/admin/customers/{ban}/partitions", Ops, customer_links::customer_partition_add / __path_customer_partition_add),
    op!(DELETE "/v1/admin/customers/{ban}/partitions/{partition}", Ops, customer_links::customer_partition_remove / __path_customer_partition_remove),
    op!(POST "/v1/admin/customers/{ban}/source_ips", Admin, customer_links::customer_source_ip_add / __path_customer_source_ip_add),
    op!(DELETE "/v1/admin/customers/{ban}/source_ips/{cidr}", Admin, customer_links::customer_source_ip_remove / __path_customer_source_ip_remove),
    // overrides
    op!(GET "/v1/admin/overrides", Readonly, overrides::overrides_list / __path_overrides_list),
    op!(POST "/v1/admin/overrides", Ops, overrides::override_create / __path_override_create),
    op!(DELETE "/v1/admin/overrides/{id}", Ops, overrides::override_delete / __path_override_delete),
    // exclusions
    op!(GET "/v1/admin/exclusions", Readonly, exclusions::exclusions_list / __path_exclusions_list),
    op!(POST "/v1/admin/exclusions", Ops, exclusions::exclusion_create / __path_exclusion_create),
    op!(DELETE "/v1/admin/exclusions/{id}", Ops, exclusions::exclusion_delete / __path_exclusion_delete),
    // numbering
    op!(POST "/v1/admin/numbering/{table}", Ops, numbering::numbering_import / __path_numbering_import upload),
    // decks
    op!(POST "/v1/admin/routes/{route}/decks", Ops, decks::deck_upload / __path_deck_upload upload),
    op!(GET "/v1/admin/routes/{route}/decks", Readonly, decks::deck_versions / __path_deck_versions),
    op!(GET "/v1/admin/routes/{route}/decks/diff", Readonly, decks::deck_diff / __path_deck_diff),
    op!(POST "/v1/admin/routes/{route}/decks/rollback", Ops, decks::deck_rollback / __path_deck_rollback),
    op!(POST "/v1/admin/routes/{route}/decks/{version}/activate", Ops, decks::deck_activate / __path_deck_activate),
    op!(GET "/v1/admin/routes/{route}/decks/{version}/export", Readonly, decks::deck_export / __path_deck_export),
    op!(GET "/v1/admin/routes/{route}/decks/{version}/shadow", Ops, decks::deck_shadow / __path_deck_shadow),
    // trunks and numbers (issue 19)
    op!(GET "/v1/admin/trunks", Readonly, trunks::trunks_list / __path_trunks_list),
    op!(POST "/v1/admin/trunks", Admin, trunks::trunk_create / __path_trunk_create),
    op!(GET "/v1/admin/trunks/{trunk}", Readonly, trunks::trunk_get / __path_trunk_get),
    op!(PATCH "/v1/admin/trunks/{trunk}", Ops, trunks::trunk_update / __path_trunk_update),
    op!(DELETE "/v1/admin/trunks/{trunk}", Admin, trunks::trunk_delete / __path_trunk_delete),
    op!(POST "/v1/admin/trunks/{trunk}/source_ips", Admin, trunk_links::trunk_source_add / __path_trunk_source_add),
    op!(DELETE "/v1/admin/trunks/{trunk}/source_ips/{cidr}", Admin, trunk_links::trunk_source_remove / __path_trunk_source_remove),
    op!(POST "/v1/admin/trunks/{trunk}/credentials", Admin, trunk_links::trunk_credential_add / __path_trunk_credential_add),
    op!(DELETE "/v1/admin/trunks/{trunk}/credentials/{credential}", Admin, trunk_links::trunk_credential_remove / __path_trunk_credential_remove),
    op!(POST "/v1/admin/trunks/{trunk}/destinations", Ops, trunk_links::trunk_destination_add / __path_trunk_destination_add),
    op!(PATCH "/v1/admin/trunks/{trunk}/destinations/{id}", Ops, trunk_links::trunk_destination_update / __path_trunk_destination_update),
    op!(DELETE "/v1/admin/trunks/{trunk}/destinations/{id}", Ops, trunk_links::trunk_destination_remove / __path_trunk_destination_remove),
    op!(GET "/v1/admin/numbers", Readonly, trunks::numbers_list / __path_numbers_list),
    op!(GET "/v1/admin/numbers/{number}", Readonly, trunks::number_get / __path_number_get),
    op!(PATCH "/v1/admin/numbers/{number}", Ops, trunks::number_update / __path_number_update),
    op!(POST "/v1/admin/numbers", Ops, trunks::number_create / __path_number_create),
    op!(POST "/v1/admin/numbers/import", Ops, trunks::numbers_import / __path_numbers_import upload),
    op!(POST "/v1/admin/numbers/{number}/move", Admin, trunks::number_move / __path_number_move),
    op!(DELETE "/v1/admin/numbers/{number}", Ops, trunks::number_delete / __path_number_delete),
    op!(GET "/v1/admin/stir/policies", Readonly, stir::policies_list / __path_policies_list),
    op!(PUT "/v1/admin/stir/policies", Ops, stir::policy_put / __path_policy_put),
    op!(DELETE "/v1/admin/stir/policies/{ban}", Ops, stir::policy_delete / __path_policy_delete),
    op!(GET "/v1/admin/stir/tn_ranges", Readonly, stir::ranges_list / __path_ranges_list),
    op!(POST "/v1/admin/stir/tn_ranges", Ops, stir::range_add / __path_range_add),
    op!(DELETE "/v1/admin/stir/tn_ranges/{id}", Ops, stir::range_delete / __path_range_delete),
    // margins
    op!(GET "/v1/admin/margins", Readonly, margins::margins / __path_margins),
    // tokens
    op!(POST "/v1/admin/tokens", Admin, tokens::token_create / __path_token_create),
    op!(DELETE "/v1/admin/tokens/{name}", Admin, tokens::token_revoke / __path_token_revoke),
    // audit
    op!(GET "/v1/admin/audit", Admin, audit::audit_list / __path_audit_list),
];

/// Finds the route of a request: Ok((route, params)), or the error for an unknown path /
/// a known path with another method.
fn route(
    method: &Method,
    path: &str,
) -> Result<(&'static Route, HashMap<String, String>), AdminError> {
    let segs: Vec<&str> = path.trim_end_matches('/').split('/').collect();
    let mut allowed = vec![];
    for r in ROUTES {
        let ps: Vec<&str> = r.path.split('/').collect();
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
        if method.as_str() == r.method {
            return Ok((r, params));
        }
        allowed.push(r.method);
    }
    if allowed.is_empty() {
        Err(AdminError::NotFound(path.chars().take(128).collect()))
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
        Err(AdminError::MethodNotAllowed {
            path: path.chars().take(128).collect(),
            method: method.as_str().chars().take(16).collect(),
            allow,
        })
    }
}

fn bearer(req: &Request<Incoming>) -> Result<String, AdminError> {
    let v = req
        .headers()
        .get(AUTHORIZATION)
        .ok_or_else(|| AdminError::Unauthorized("missing Authorization: Bearer <token>".into()))?;
    let s = v
        .to_str()
        .map_err(|_| AdminError::Unauthorized("Authorization header is not text".into()))?;
    let t = s
        .strip_prefix("Bearer ")
        .or_else(|| s.strip_prefix("bearer "))
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .ok_or_else(|| AdminError::Unauthorized("expected Authorization: Bearer <token>".into()))?;
    Ok(t.to_string())
}

/// Checks the request's bearer token: a live token whose role allows `need`. Used by the admin
/// routes and by the other data surfaces that need a token (`/v1/cdrs*`).
pub async fn authorize(
    state: &AdminState,
    req: &Request<Incoming>,
    need: Role,
) -> Result<Principal, AdminError> {
    let client = state.pool.get().await?;
    authorize_with(&client, req, need).await
}

/// [`authorize`] on a connection the caller already holds.
async fn authorize_with(
    client: &Client,
    req: &Request<Incoming>,
    need: Role,
) -> Result<Principal, AdminError> {
    let token = bearer(req)?;
    let who = super::authenticate(client, &token)
        .await
        .map_err(AdminError::db("checking the token"))?
        .ok_or_else(|| AdminError::Unauthorized("unknown or revoked token".into()))?;
    if !who.role.allows(need) {
        return Err(AdminError::Forbidden(format!(
            "token {:?} has role {}; this needs role {} or higher",
            who.name,
            who.role.as_str(),
            need.as_str()
        )));
    }
    Ok(who)
}

/// Handles one `/v1/admin/…` request: find its route, authenticate, authorize by role, run it.
pub async fn handle(state: &AdminState, req: Request<Incoming>) -> Result<AdminReply, AdminError> {
    let path = req.uri().path().to_string();
    let (route, params) = route(req.method(), &path)?;
    // one pooled connection per request: the token check and the operation share it
    let mut client = state.pool.get().await?;
    let who = authorize_with(&client, &req, route.role).await?;
    let query: HashMap<String, String> = req
        .uri()
        .query()
        .map(|q| {
            url::form_urlencoded::parse(q.as_bytes())
                .into_owned()
                .collect()
        })
        .unwrap_or_default();
    let limit = if route.upload {
        state.max_upload_bytes
    } else {
        1 << 20
    };
    let content_type = req
        .headers()
        .get(hyper::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let mut query = query;
    let (body, upload) = if route.upload {
        // streamed to a temporary file, never held in memory
        let u = tokio::time::timeout(
            UPLOAD_TIMEOUT,
            super::multipart::receive(req, limit, content_type.as_deref(), &[]),
        )
        .await
        .map_err(|_| BodyError::Timeout(UPLOAD_TIMEOUT))??;
        for (k, v) in &u.fields {
            match query.get(k).filter(|q| !q.is_empty()) {
                Some(q) if q != v => {
                    return Err(AdminError::invalid(
                        k.clone(),
                        "given as a query parameter and as a form field, with different values",
                    ))
                }
                _ => {
                    query.insert(k.clone(), v.clone());
                }
            }
        }
        if let Some(f) = u.file_name.as_deref().filter(|f| !f.is_empty()) {
            query
                .entry("name".into())
                .or_insert_with(|| warpd_core::excerpt::plain(f));
        }
        (bytes::Bytes::new(), Some(u))
    } else {
        (read_body(req, limit, BODY_TIMEOUT).await?, None)
    };
    let mut ctx = Ctx {
        via: "token",
        who,
        params,
        query,
        body,
        upload,
    };
    let c: &mut Client = &mut client;
    (route.handler)(state, &mut ctx, c).await
}

/// An admin request made in-process for a signed-in console user (`crate::console`): the same
/// route table, role check and handler as over `/v1/admin/…`, so every rule and validation
/// message is the API's; the audit rows name `console:<user>`. `query` holds the query
/// parameters (and, for an upload, its form fields); `body` is the JSON body.
pub async fn call(
    state: &AdminState,
    who: Principal,
    method: &str,
    path: &str,
    query: HashMap<String, String>,
    body: bytes::Bytes,
    upload: Option<super::multipart::Upload>,
) -> Result<AdminReply, AdminError> {
    let (route, params) = authorized(&who, method, path)?;
    if route.upload != upload.is_some() {
        return Err(AdminError::invalid(
            "body",
            "an upload is expected by upload routes only",
        ));
    }
    let mut client = state.pool.get().await?;
    let mut ctx = Ctx {
        via: "console",
        who,
        params,
        query,
        body,
        upload,
    };
    let c: &mut Client = &mut client;
    (route.handler)(state, &mut ctx, c).await
}

/// The route of a console user's request and its path parameters, when the user's role allows
/// it: else 403 naming both roles (or the error of an unknown path or method).
fn authorized(
    who: &Principal,
    method: &str,
    path: &str,
) -> Result<(&'static Route, HashMap<String, String>), AdminError> {
    let method = Method::from_bytes(method.as_bytes())
        .map_err(|_| AdminError::invalid("method", "not an HTTP method"))?;
    let (route, params) = route(&method, path)?;
    if !who.role.allows(route.role) {
        return Err(AdminError::Forbidden(format!(
            "user {:?} has role {}; this needs role {} or higher",
            who.name,
            who.role.as_str(),
            route.role.as_str()
        )));
    }
    Ok((route, params))
}

/// Whether a console user may make an admin request, as [`call`] decides it (a page asks before
/// it offers a confirmation step for a request the user could not make).
pub fn may_call(who: &Principal, method: &str, path: &str) -> Result<(), AdminError> {
    authorized(who, method, path).map(|_| ())
}

/// The least role an admin request needs, when the route exists (the console hides controls a
/// user's role may not use).
pub fn role_needed(method: &str, path: &str) -> Option<Role> {
    let method = Method::from_bytes(method.as_bytes()).ok()?;
    route(&method, path).ok().map(|(r, _)| r.role)
}

/// Receives a browser's multipart form (a file part and fields) into a temporary file, as an
/// upload route's body, refusing more than `limit` bytes (the console's deck upload).
pub async fn receive_upload(
    req: Request<Incoming>,
    limit: usize,
) -> Result<super::multipart::Upload, AdminError> {
    let content_type = req
        .headers()
        .get(hyper::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    tokio::time::timeout(
        UPLOAD_TIMEOUT,
        super::multipart::receive(req, limit, content_type.as_deref(), &["csrf"]),
    )
    .await
    .map_err(|_| BodyError::Timeout(UPLOAD_TIMEOUT))?
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The (role, path pattern) a request is routed to.
    fn to(
        method: Method,
        path: &str,
    ) -> Result<(Role, &'static str, HashMap<String, String>), AdminError> {
        route(&method, path).map(|(r, p)| (r.role, r.path, p))
    }

    #[test]
    fn routing_table_matches_paths_and_methods() {
        let (role, op, p) =
            to(Method::POST, "/v1/admin/routes/lrn-east/decks/12/activate").unwrap();
        assert_eq!(
            (role, op),
            (
                Role::Ops,
                "/v1/admin/routes/{route}/decks/{version}/activate"
            )
        );
        assert_eq!(p["route"], "lrn-east");
        assert_eq!(p["version"], "12");
        let (_, op, _) = to(Method::POST, "/v1/admin/numbers/import").unwrap();
        assert_eq!(op, "/v1/admin/numbers/import");
        let (_, op, _) = to(Method::GET, "/v1/admin/routes/r/decks/diff").unwrap();
        assert_eq!(op, "/v1/admin/routes/{route}/decks/diff");
        let (_, op, p) = to(Method::DELETE, "/v1/admin/customers/a%20b").unwrap();
        assert_eq!(
            (op, p["ban"].as_str()),
            ("/v1/admin/customers/{ban}", "a b")
        );
        assert!(matches!(
            to(Method::PUT, "/v1/admin/vendors"),
            Err(AdminError::MethodNotAllowed { .. })
        ));
        // get-one routes and the Allow header of their paths
        let (role, op, p) = to(Method::GET, "/v1/admin/customers/1001").unwrap();
        assert_eq!(
            (role, op, p["ban"].as_str()),
            (Role::Readonly, "/v1/admin/customers/{ban}", "1001")
        );
        let (role, op, p) = to(
            Method::DELETE,
            "/v1/admin/customers/1001/blocked_prefixes/1900",
        )
        .unwrap();
        assert_eq!(
            (role, op, p["prefix"].as_str()),
            (
                Role::Ops,
                "/v1/admin/customers/{ban}/blocked_prefixes/{prefix}",
                "1900"
            )
        );
        assert_eq!(
            to(Method::GET, "/v1/admin/routes/r").unwrap().1,
            "/v1/admin/routes/{route}"
        );
        for (path, want) in [
            ("/v1/admin/customers/1001", "GET, PATCH, DELETE"),
            ("/v1/admin/partitions/p", "GET, DELETE"),
            ("/v1/admin/customers/1001/blocked_prefixes", "GET, POST"),
        ] {
            match to(Method::PUT, path) {
                Err(AdminError::MethodNotAllowed { allow, .. }) => {
                    assert_eq!(allow, want, "{path}")
                }
                other => panic!("{path}: {:?}", other.map(|r| r.1)),
            }
        }
        assert!(matches!(
            to(Method::GET, "/v1/admin/nope"),
            Err(AdminError::NotFound(_))
        ));
    }

    #[test]
    fn every_route_is_unique_and_only_uploads_take_large_bodies() {
        for (i, r) in ROUTES.iter().enumerate() {
            assert!(
                !ROUTES[..i]
                    .iter()
                    .any(|q| q.method == r.method && q.path == r.path),
                "{} {} twice",
                r.method,
                r.path
            );
        }
        let uploads: Vec<&str> = ROUTES.iter().filter(|r| r.upload).map(|r| r.path).collect();
        assert_eq!(
            uploads,
            [
                "/v1/admin/numbering/{table}",
                "/v1/admin/routes/{route}/decks",
                "/v1/admin/numbers/import"
            ]
        );
    }
}
