//! `/v1/admin/exclusions`: vendors a customer's (or everyone's) calls to a prefix must not use,
//! or blocked destinations.

use super::customers::CUSTOMER;
use super::prelude::*;
use super::vendors::VENDOR;

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

const EXCLUSIONS: Table = Table {
    noun: "exclusion",
    list: "SELECT e.id, c.ban AS customer, e.prefix, v.name AS vendor, e.note FROM exclusions e \
         LEFT JOIN customers c ON c.id = e.customer_id LEFT JOIN vendors v ON v.id = e.vendor_id \
         ORDER BY e.id",
    get: "",
    lock: "SELECT to_jsonb(e.*) FROM exclusions e WHERE id = $1 FOR UPDATE",
    delete: "DELETE FROM exclusions WHERE id = $1 RETURNING NULL::jsonb",
};

/// The checked prefix of a new exclusion.
fn checked(b: &ExclusionIn) -> Result<String, rules::RuleError> {
    let prefix = rules::prefix("prefix", b.prefix.as_deref().unwrap_or_default(), true)?;
    rules::exclusion_target("prefix", b.vendor.is_some(), &prefix)?;
    Ok(prefix)
}

#[utoipa::path(get, path = "/v1/admin/exclusions", tag = "overrides", security(("bearer" = [])),
    responses((status = 200, description = "every exclusion")))]
pub async fn exclusions_list(_: &AdminState, _: &mut Ctx, c: &mut Client) -> Reply {
    EXCLUSIONS.list(c, &[]).await
}

#[utoipa::path(post, path = "/v1/admin/exclusions", tag = "overrides", security(("bearer" = [])),
    request_body = ExclusionIn, responses((status = 201, description = "created"),
    (status = 404, description = "no such customer or vendor")))]
pub async fn exclusion_create(_: &AdminState, ctx: &mut Ctx, c: &mut Client) -> Reply {
    let b: ExclusionIn = ctx.json()?;
    if let Some(ban) = &b.customer {
        CUSTOMER.exists(c, ban).await?;
    }
    if let Some(v) = &b.vendor {
        VENDOR.exists(c, v).await?;
    }
    let prefix = checked(&b)?;
    let note = b.note.clone().unwrap_or_default();
    let label = format!(
        "{} {prefix} {}",
        b.customer.as_deref().unwrap_or("*"),
        b.vendor.as_deref().unwrap_or("(blocked)")
    );
    EXCLUSIONS
        .create(
            &label,
            "INSERT INTO exclusions (customer_id, prefix, vendor_id, note) \
             VALUES ((SELECT id FROM customers WHERE ban = $1), $2, (SELECT id FROM vendors WHERE name = $3), \
             $4) RETURNING to_jsonb(exclusions.*)",
            vec![&b.customer, &prefix, &b.vendor, &note],
        )
        .run(c, ctx)
        .await
}

#[utoipa::path(delete, path = "/v1/admin/exclusions/{id}", tag = "overrides", security(("bearer" = [])),
    params(("id" = i64, Path, description = "exclusion id")),
    responses((status = 200, description = "deleted")))]
pub async fn exclusion_delete(_: &AdminState, ctx: &mut Ctx, c: &mut Client) -> Reply {
    let id = ctx.id("id", "an id")?;
    EXCLUSIONS
        .delete(&id.to_string(), vec![&id])
        .run(c, ctx)
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exclusions_follow_the_rules() {
        let check = |v| checked(&serde_json::from_value(v).unwrap());
        assert_eq!(check(json!({"vendor": "A"})).unwrap(), "");
        // drifts fixed: accepted by the admin API, refused by `warpd apply`
        assert!(check(json!({}))
            .unwrap_err()
            .to_string()
            .starts_with("prefix: "));
        assert!(check(json!({"prefix": "1-900", "vendor": "A"})).is_err());
    }
}
