//! `/v1/admin/partitions`: partitions (named sets of routes) and their routes.

use super::prelude::*;
use super::routes::ROUTE;

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

const PARTITIONS: Table = Table {
    noun: "partition",
    list: "SELECT p.name, p.description, coalesce((SELECT array_agg(r.name ORDER BY r.name) \
         FROM partition_routes pr JOIN routes r ON r.id = pr.route_id WHERE pr.partition_id = p.id), '{}') AS routes \
         FROM partitions p ORDER BY p.name",
    get: "SELECT p.name, p.description, \
         coalesce((SELECT array_agg(r.name ORDER BY r.name) FROM partition_routes pr \
           JOIN routes r ON r.id = pr.route_id WHERE pr.partition_id = p.id), '{}') AS routes, \
         coalesce((SELECT array_agg(c.ban ORDER BY c.ban) FROM customer_partitions cp \
           JOIN customers c ON c.id = cp.customer_id WHERE cp.partition_id = p.id), '{}') AS customers \
         FROM partitions p WHERE p.name = $1",
    lock: "SELECT to_jsonb(p.*) FROM partitions p WHERE name = $1 FOR UPDATE",
    delete: "DELETE FROM partitions WHERE name = $1 RETURNING NULL::jsonb",
};

/// Used by the resources that name a partition.
pub const PARTITION: Lookup = Lookup {
    what: "partition",
    sql: "SELECT 1 FROM partitions WHERE name = $1",
    context: "looking up the partition",
};

#[utoipa::path(get, path = "/v1/admin/partitions", tag = "partitions", security(("bearer" = [])),
    responses((status = 200, description = "every partition with its routes")))]
pub async fn partitions_list(_: &AdminState, _: &mut Ctx, c: &mut Client) -> Reply {
    PARTITIONS.list(c, &[]).await
}

#[utoipa::path(get, path = "/v1/admin/partitions/{partition}", tag = "partitions", security(("bearer" = [])),
    params(("partition" = String, Path, description = "partition name")),
    responses((status = 200, description = "the partition with its routes and customers"),
        (status = 404, description = "no such partition")))]
pub async fn partition_get(_: &AdminState, ctx: &mut Ctx, c: &mut Client) -> Reply {
    PARTITIONS.get(c, ctx.p("partition")).await
}

#[utoipa::path(post, path = "/v1/admin/partitions", tag = "partitions", security(("bearer" = [])),
    request_body = PartitionIn, responses((status = 201, description = "created")))]
pub async fn partition_create(_: &AdminState, ctx: &mut Ctx, c: &mut Client) -> Reply {
    let p: PartitionIn = ctx.json()?;
    rules::name("name", &p.name)?;
    let description = p.description.clone().unwrap_or_default();
    PARTITIONS
        .create(
            &p.name,
            "INSERT INTO partitions (name, description) VALUES ($1, $2) \
             RETURNING to_jsonb(partitions.*)",
            vec![&p.name, &description],
        )
        .run(c, ctx)
        .await
}

#[utoipa::path(delete, path = "/v1/admin/partitions/{partition}", tag = "partitions",
    security(("bearer" = [])), params(("partition" = String, Path, description = "partition name")),
    responses((status = 200, description = "deleted")))]
pub async fn partition_delete(_: &AdminState, ctx: &mut Ctx, c: &mut Client) -> Reply {
    let name = ctx.p("partition").to_string();
    PARTITIONS.delete(&name, vec![&name]).run(c, ctx).await
}

#[utoipa::path(post, path = "/v1/admin/partitions/{partition}/routes", tag = "partitions",
    security(("bearer" = [])), params(("partition" = String, Path, description = "partition name")),
    request_body = PartitionRouteIn, responses((status = 201, description = "added"),
    (status = 404, description = "no such partition or route")))]
pub async fn partition_route_add(_: &AdminState, ctx: &mut Ctx, c: &mut Client) -> Reply {
    let b: PartitionRouteIn = ctx.json()?;
    let p = ctx.p("partition").to_string();
    PARTITION.exists(c, &p).await?;
    ROUTE.exists(c, &b.route).await?;
    Change {
        action: "partition.route.add".into(),
        target: format!("partition {p} route {}", b.route),
        before: None,
        write: "INSERT INTO partition_routes (partition_id, route_id) \
             SELECT p.id, r.id FROM partitions p, routes r WHERE p.name = $1 AND r.name = $2 \
             RETURNING jsonb_build_object('partition', $1::text, 'route', $2::text)",
        params: vec![&p, &b.route],
        created: true,
    }
    .run(c, ctx)
    .await
}

#[utoipa::path(delete, path = "/v1/admin/partitions/{partition}/routes/{route}", tag = "partitions",
    security(("bearer" = [])),
    params(("partition" = String, Path, description = "partition name"), ("route" = String, Path, description = "route name")),
    responses((status = 200, description = "removed")))]
pub async fn partition_route_remove(_: &AdminState, ctx: &mut Ctx, c: &mut Client) -> Reply {
    let (p, r) = (ctx.p("partition").to_string(), ctx.p("route").to_string());
    PARTITION.exists(c, &p).await?;
    Change {
        action: "partition.route.remove".into(),
        target: format!("partition {p} route {r}"),
        before: Some((
            "SELECT jsonb_build_object('partition', $1::text, 'route', $2::text) \
             FROM partition_routes pr JOIN partitions p ON p.id = pr.partition_id \
             JOIN routes r ON r.id = pr.route_id WHERE p.name = $1 AND r.name = $2",
            vec![&p, &r],
        )),
        write: "DELETE FROM partition_routes pr USING partitions p, routes r WHERE p.id = pr.partition_id \
         AND r.id = pr.route_id AND p.name = $1 AND r.name = $2 RETURNING NULL::jsonb",
        params: vec![&p, &r],
        created: false,
    }
    .run(c, ctx)
    .await
}
