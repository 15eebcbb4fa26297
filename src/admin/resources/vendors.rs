//! `/v1/admin/vendors`: the vendors table (name, billing model, dialstring, enabled).

use super::prelude::*;

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

pub const VENDORS: Table = Table {
    noun: "vendor",
    list: "SELECT name, billing_model, dialstring, enabled FROM vendors ORDER BY name",
    get: "SELECT v.name, v.billing_model, v.dialstring, v.enabled, \
         coalesce((SELECT jsonb_agg(jsonb_build_object('name', g.name, 'host', g.host, 'port', g.port, \
           'transport', g.transport, 'priority', g.priority, 'weight', g.weight, 'enabled', g.enabled) \
           ORDER BY g.name) FROM gateways g WHERE g.vendor_id = v.id), '[]') AS gateways, \
         coalesce((SELECT array_agg(r.name ORDER BY r.name) FROM routes r WHERE r.vendor_id = v.id), '{}') AS routes \
         FROM vendors v WHERE v.name = $1",
    lock: "SELECT to_jsonb(v.*) FROM vendors v WHERE name = $1 FOR UPDATE",
    delete: "DELETE FROM vendors WHERE name = $1 RETURNING NULL::jsonb",
};

/// Used by the resources that name a vendor.
pub const VENDOR: Lookup = Lookup {
    what: "vendor",
    sql: "SELECT 1 FROM vendors WHERE name = $1",
    context: "looking up the vendor",
};

/// A new vendor's columns, defaults applied: (name, billing model, dialstring, enabled).
fn new_vendor(v: &VendorIn) -> Result<(&'static str, String, bool), rules::RuleError> {
    rules::name("name", &v.name)?;
    Ok((
        rules::billing_model("", &v.billing_model)?.as_str(),
        rules::dialstring("", v.dialstring.as_deref())?,
        v.enabled.unwrap_or(rules::DEFAULT_ENABLED),
    ))
}

#[utoipa::path(get, path = "/v1/admin/vendors", tag = "vendors", security(("bearer" = [])),
    responses((status = 200, description = "every vendor")))]
pub async fn vendors_list(_: &AdminState, _: &mut Ctx, c: &mut Client) -> Reply {
    VENDORS.list(c, &[]).await
}

#[utoipa::path(get, path = "/v1/admin/vendors/{vendor}", tag = "vendors", security(("bearer" = [])),
    params(("vendor" = String, Path, description = "vendor name")),
    responses((status = 200, description = "the vendor with its gateways and routes"),
        (status = 404, description = "no such vendor")))]
pub async fn vendor_get(_: &AdminState, ctx: &mut Ctx, c: &mut Client) -> Reply {
    VENDORS.get(c, ctx.p("vendor")).await
}

#[utoipa::path(post, path = "/v1/admin/vendors", tag = "vendors", security(("bearer" = [])),
    request_body = VendorIn,
    responses((status = 201, description = "created"), (status = 409, description = "exists")))]
pub async fn vendor_create(_: &AdminState, ctx: &mut Ctx, c: &mut Client) -> Reply {
    let v: VendorIn = ctx.json()?;
    let (billing, dialstring, enabled) = new_vendor(&v)?;
    VENDORS
        .create(
            &v.name,
            "INSERT INTO vendors (name, billing_model, dialstring, enabled) \
             VALUES ($1, $2::text::billing_model, $3, $4) RETURNING to_jsonb(vendors.*)",
            vec![&v.name, &billing, &dialstring, &enabled],
        )
        .run(c, ctx)
        .await
}

#[utoipa::path(patch, path = "/v1/admin/vendors/{vendor}", tag = "vendors", security(("bearer" = [])),
    params(("vendor" = String, Path, description = "vendor name")), request_body = VendorPatch,
    responses((status = 200, description = "updated"), (status = 404, description = "no such vendor")))]
pub async fn vendor_update(_: &AdminState, ctx: &mut Ctx, c: &mut Client) -> Reply {
    let v: VendorPatch = ctx.json()?;
    let billing = v
        .billing_model
        .as_deref()
        .map(|b| rules::billing_model("", b).map(|b| b.as_str()))
        .transpose()?;
    let dialstring = v
        .dialstring
        .as_deref()
        .map(|d| rules::dialstring("", Some(d)))
        .transpose()?;
    let name = ctx.p("vendor").to_string();
    VENDORS
        .update(
            &name,
            vec![&name],
            "UPDATE vendors SET billing_model = coalesce($2::text::billing_model, billing_model), \
             dialstring = coalesce($3, dialstring), enabled = coalesce($4, enabled), updated_at = now() \
             WHERE name = $1 RETURNING to_jsonb(vendors.*)",
            vec![&name, &billing, &dialstring, &v.enabled],
        )
        .run(c, ctx)
        .await
}

#[utoipa::path(delete, path = "/v1/admin/vendors/{vendor}", tag = "vendors", security(("bearer" = [])),
    params(("vendor" = String, Path, description = "vendor name")),
    responses((status = 200, description = "deleted (with its gateways, routes and rates)")))]
pub async fn vendor_delete(_: &AdminState, ctx: &mut Ctx, c: &mut Client) -> Reply {
    let name = ctx.p("vendor").to_string();
    VENDORS.delete(&name, vec![&name]).run(c, ctx).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(v: serde_json::Value) -> VendorIn {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn new_vendors_follow_the_rules() {
        let (b, d, e) = new_vendor(&body(json!({"name": "A", "billing_model": "LRN"}))).unwrap();
        assert_eq!((b, d.as_str(), e), ("LRN", rules::DEFAULT_DIALSTRING, true));
        // drifts fixed: these were accepted by the admin API and refused by `warpd apply`
        let err = |v| new_vendor(&body(v)).unwrap_err().to_string();
        assert!(
            err(json!({"name": "A", "billing_model": "LRN", "dialstring": "sip:x@y"}))
                .starts_with("dialstring: ")
        );
        assert!(err(json!({"name": " A", "billing_model": "LRN"})).starts_with("name: "));
        assert!(err(json!({"name": "", "billing_model": "LRN"})).starts_with("name: "));
    }
}
