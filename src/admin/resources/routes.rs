//! `/v1/admin/routes`: routes (a vendor's trunk group with priority, weight and capacity).

use super::prelude::*;
use super::vendors::VENDOR;

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

const ROUTES: Table = Table {
    noun: "route",
    list: "SELECT r.name, v.name AS vendor, r.priority, r.weight, r.capacity, r.enabled \
           FROM routes r JOIN vendors v ON v.id = r.vendor_id ORDER BY r.name",
    get: "SELECT r.name, v.name AS vendor, r.priority, r.weight, r.capacity, r.enabled, \
         coalesce((SELECT array_agg(p.name ORDER BY p.name) FROM partition_routes pr \
           JOIN partitions p ON p.id = pr.partition_id WHERE pr.route_id = r.id), '{}') AS partitions, \
         (SELECT count(*) FROM vendor_rates vr WHERE vr.route_id = r.id) AS rate_rows \
         FROM routes r JOIN vendors v ON v.id = r.vendor_id WHERE r.name = $1",
    lock: "SELECT to_jsonb(r.*) FROM routes r WHERE name = $1 FOR UPDATE",
    delete: "DELETE FROM routes WHERE name = $1 RETURNING NULL::jsonb",
};

/// Used by the resources that name a route.
pub const ROUTE: Lookup = Lookup {
    what: "route",
    sql: "SELECT 1 FROM routes WHERE name = $1",
    context: "looking up the route",
};

/// The checked (priority, weight, capacity) of a body; `defaults` fills omitted ones (a create).
fn numbers(
    priority: Option<i32>,
    weight: Option<i32>,
    capacity: Option<i32>,
    defaults: bool,
) -> Result<[Option<i32>; 3], rules::RuleError> {
    let check = |rule: &rules::IntRule, v: Option<i32>| match (v, defaults) {
        (None, true) => rule.value("", None).map(Some),
        (v, _) => rule.optional("", v.map(i64::from)),
    };
    Ok([
        check(&rules::ROUTE_PRIORITY, priority)?,
        check(&rules::ROUTE_WEIGHT, weight)?,
        // capacity: omitted = no limit, also on a create
        rules::ROUTE_CAPACITY.optional("", capacity.map(i64::from))?,
    ])
}

#[utoipa::path(get, path = "/v1/admin/routes", tag = "routes", security(("bearer" = [])),
    responses((status = 200, description = "every route")))]
pub async fn routes_list(_: &AdminState, _: &mut Ctx, c: &mut Client) -> Reply {
    ROUTES.list(c, &[]).await
}

#[utoipa::path(get, path = "/v1/admin/routes/{route}", tag = "routes", security(("bearer" = [])),
    params(("route" = String, Path, description = "route name")),
    responses((status = 200, description = "the route, its partitions, live deck version and rate rows"),
        (status = 404, description = "no such route")))]
pub async fn route_get(_: &AdminState, ctx: &mut Ctx, c: &mut Client) -> Reply {
    ROUTES.get(c, ctx.p("route")).await
}

#[utoipa::path(post, path = "/v1/admin/routes", tag = "routes", security(("bearer" = [])),
    request_body = RouteIn, responses((status = 201, description = "created")))]
pub async fn route_create(_: &AdminState, ctx: &mut Ctx, c: &mut Client) -> Reply {
    let r: RouteIn = ctx.json()?;
    VENDOR.exists(c, &r.vendor).await?;
    rules::name("name", &r.name)?;
    let [priority, weight, capacity] = numbers(r.priority, r.weight, r.capacity, true)?;
    let enabled = r.enabled.unwrap_or(rules::DEFAULT_ENABLED);
    ROUTES
        .create(
            &r.name,
            "INSERT INTO routes (name, vendor_id, priority, weight, capacity, enabled) \
             SELECT $1, id, $3, $4, $5, $6 FROM vendors WHERE name = $2 RETURNING to_jsonb(routes.*)",
            vec![&r.name, &r.vendor, &priority, &weight, &capacity, &enabled],
        )
        .run(c, ctx)
        .await
}

#[utoipa::path(patch, path = "/v1/admin/routes/{route}", tag = "routes", security(("bearer" = [])),
    params(("route" = String, Path, description = "route name")), request_body = RoutePatch,
    responses((status = 200, description = "updated")))]
pub async fn route_update(_: &AdminState, ctx: &mut Ctx, c: &mut Client) -> Reply {
    let r: RoutePatch = ctx.json()?;
    let [priority, weight, capacity] = numbers(r.priority, r.weight, r.capacity, false)?;
    let name = ctx.p("route").to_string();
    ROUTES
        .update(
            &name,
            vec![&name],
            "UPDATE routes SET priority = coalesce($2, priority), weight = coalesce($3, weight), \
             capacity = coalesce($4, capacity), enabled = coalesce($5, enabled) WHERE name = $1 \
             RETURNING to_jsonb(routes.*)",
            vec![&name, &priority, &weight, &capacity, &r.enabled],
        )
        .run(c, ctx)
        .await
}

#[utoipa::path(delete, path = "/v1/admin/routes/{route}", tag = "routes", security(("bearer" = [])),
    params(("route" = String, Path, description = "route name")),
    responses((status = 200, description = "deleted")))]
pub async fn route_delete(_: &AdminState, ctx: &mut Ctx, c: &mut Client) -> Reply {
    let name = ctx.p("route").to_string();
    ROUTES.delete(&name, vec![&name]).run(c, ctx).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn route_numbers_follow_the_rules() {
        assert_eq!(
            numbers(None, None, None, true),
            Ok([Some(10), Some(1), None])
        );
        assert_eq!(numbers(None, None, None, false), Ok([None, None, None]));
        // drifts fixed: a negative weight or capacity reached the database from the admin API
        assert_eq!(
            numbers(None, Some(-1), None, false).unwrap_err().field(),
            "weight"
        );
        assert_eq!(
            numbers(None, None, Some(-1), true).unwrap_err().field(),
            "capacity"
        );
    }
}
