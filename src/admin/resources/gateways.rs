//! `/v1/admin/vendors/{vendor}/gateways`: a vendor's gateways.

use super::prelude::*;
use super::vendors::VENDOR;

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

/// Gateways are keyed by (vendor `$1`, gateway `$2`).
const GATEWAYS: Table = Table {
    noun: "gateway",
    list: "SELECT g.name, g.host, g.port, g.transport, g.priority, g.weight, g.enabled \
           FROM gateways g JOIN vendors v ON v.id = g.vendor_id WHERE v.name = $1 ORDER BY g.name",
    get: "",
    lock: "SELECT to_jsonb(g.*) FROM gateways g JOIN vendors v ON v.id = g.vendor_id \
           WHERE v.name = $1 AND g.name = $2",
    delete: "DELETE FROM gateways g USING vendors v WHERE v.id = g.vendor_id AND v.name = $1 \
             AND g.name = $2 RETURNING NULL::jsonb",
};

/// A new gateway's columns, defaults applied.
struct NewGateway {
    host: String,
    port: i32,
    transport: &'static str,
    priority: i32,
    weight: i32,
    enabled: bool,
}

fn new_gateway(g: &GatewayIn) -> Result<NewGateway, rules::RuleError> {
    rules::name("name", &g.name)?;
    Ok(NewGateway {
        host: rules::gateway_host("", &g.host)?,
        port: rules::GATEWAY_PORT.value("", g.port.map(i64::from))?,
        transport: rules::transport("", g.transport.as_deref())?.as_str(),
        priority: rules::GATEWAY_PRIORITY.value("", g.priority.map(i64::from))?,
        weight: rules::GATEWAY_WEIGHT.value("", g.weight.map(i64::from))?,
        enabled: g.enabled.unwrap_or(rules::DEFAULT_ENABLED),
    })
}

#[utoipa::path(get, path = "/v1/admin/vendors/{vendor}/gateways", tag = "vendors", security(("bearer" = [])),
    params(("vendor" = String, Path, description = "vendor name")),
    responses((status = 200, description = "the vendor's gateways")))]
pub async fn gateways_list(_: &AdminState, ctx: &mut Ctx, c: &mut Client) -> Reply {
    let v = ctx.p("vendor").to_string();
    VENDOR.exists(c, &v).await?;
    GATEWAYS.list(c, &[&v]).await
}

#[utoipa::path(post, path = "/v1/admin/vendors/{vendor}/gateways", tag = "vendors", security(("bearer" = [])),
    params(("vendor" = String, Path, description = "vendor name")), request_body = GatewayIn,
    responses((status = 201, description = "created")))]
pub async fn gateway_create(_: &AdminState, ctx: &mut Ctx, c: &mut Client) -> Reply {
    let g: GatewayIn = ctx.json()?;
    let v = ctx.p("vendor").to_string();
    VENDOR.exists(c, &v).await?;
    let n = new_gateway(&g)?;
    GATEWAYS
        .create(
            &format!("{v}/{}", g.name),
            "INSERT INTO gateways (vendor_id, name, host, port, transport, priority, weight, enabled) \
             SELECT id, $2, $3, $4, $5::text::sip_transport, $6, $7, $8 FROM vendors WHERE name = $1 \
             RETURNING to_jsonb(gateways.*)",
            vec![
                &v,
                &g.name,
                &n.host,
                &n.port,
                &n.transport,
                &n.priority,
                &n.weight,
                &n.enabled,
            ],
        )
        .run(c, ctx)
        .await
}

#[utoipa::path(delete, path = "/v1/admin/vendors/{vendor}/gateways/{gateway}", tag = "vendors",
    security(("bearer" = [])),
    params(("vendor" = String, Path, description = "vendor name"), ("gateway" = String, Path, description = "gateway name")),
    responses((status = 200, description = "deleted")))]
pub async fn gateway_delete(_: &AdminState, ctx: &mut Ctx, c: &mut Client) -> Reply {
    let (v, g) = (ctx.p("vendor").to_string(), ctx.p("gateway").to_string());
    GATEWAYS
        .delete(&format!("{v}/{g}"), vec![&v, &g])
        .run(c, ctx)
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn new(v: serde_json::Value) -> Result<NewGateway, rules::RuleError> {
        new_gateway(&serde_json::from_value(v).unwrap())
    }

    #[test]
    fn new_gateways_follow_the_rules() {
        let n = new(json!({"name": "gw1", "host": "192.0.2.1"})).unwrap();
        assert_eq!(
            (n.port, n.transport, n.priority, n.weight, n.enabled),
            (5060, "udp", 10, 1, true)
        );
        // drifts fixed: the admin API left these to the database, `warpd apply` refused them
        for (body, field) in [
            (json!({"name": "gw1", "host": "a b"}), "host: "),
            (json!({"name": "gw1", "host": "h", "port": 0}), "port: "),
            (
                json!({"name": "gw1", "host": "h", "weight": -1}),
                "weight: ",
            ),
            (
                json!({"name": "gw1", "host": "h", "transport": "sctp"}),
                "transport: ",
            ),
        ] {
            let e = new(body).err().map(|e| e.to_string()).unwrap_or_default();
            assert!(e.starts_with(field), "{field}: {e}");
        }
    }
}
