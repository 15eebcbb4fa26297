//! `/v1/admin/overrides`: forced routes (and rates) per customer and prefix.

use super::customers::CUSTOMER;
use super::prelude::*;
use super::routes::ROUTE;
use crate::rules::values::{fmt_ts, NEG_INF, POS_INF};

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

const OVERRIDES: Table = Table {
    noun: "override",
    list: "SELECT o.id, c.ban AS customer, o.prefix, r.name AS route, o.rate::text, o.valid_from, \
         o.valid_until, o.note FROM overrides o JOIN routes r ON r.id = o.route_id \
         LEFT JOIN customers c ON c.id = o.customer_id ORDER BY o.id",
    get: "",
    lock: "SELECT to_jsonb(o.*) FROM overrides o WHERE id = $1 FOR UPDATE",
    delete: "DELETE FROM overrides WHERE id = $1 RETURNING NULL::jsonb",
};

/// The checked (prefix, valid_from, valid_until) of a new override, as the database takes them.
fn checked(b: &OverrideIn) -> Result<(String, String, String), rules::RuleError> {
    let prefix = rules::prefix("prefix", b.prefix.as_deref().unwrap_or_default(), true)?;
    if let Some(r) = &b.rate {
        rules::money("rate", r)?;
    }
    let from = rules::timestamp("valid_from", b.valid_from.as_deref(), NEG_INF)?;
    let until = rules::timestamp("valid_until", b.valid_until.as_deref(), POS_INF)?;
    rules::valid_until_after("valid_until", from, until)?;
    Ok((prefix, fmt_ts(from), fmt_ts(until)))
}

#[utoipa::path(get, path = "/v1/admin/overrides", tag = "overrides", security(("bearer" = [])),
    responses((status = 200, description = "every override")))]
pub async fn overrides_list(_: &AdminState, _: &mut Ctx, c: &mut Client) -> Reply {
    OVERRIDES.list(c, &[]).await
}

#[utoipa::path(post, path = "/v1/admin/overrides", tag = "overrides", security(("bearer" = [])),
    request_body = OverrideIn, responses((status = 201, description = "created"),
    (status = 404, description = "no such customer or route")))]
pub async fn override_create(_: &AdminState, ctx: &mut Ctx, c: &mut Client) -> Reply {
    let b: OverrideIn = ctx.json()?;
    ROUTE.exists(c, &b.route).await?;
    if let Some(ban) = &b.customer {
        CUSTOMER.exists(c, ban).await?;
    }
    let (prefix, from, until) = checked(&b)?;
    let note = b.note.clone().unwrap_or_default();
    let who = b.customer.as_deref().unwrap_or("*");
    OVERRIDES
        .create(
            &format!("{who} {prefix} -> {}", b.route),
            "INSERT INTO overrides (customer_id, prefix, route_id, rate, valid_from, valid_until, note) \
             SELECT (SELECT id FROM customers WHERE ban = $1), $2, r.id, $4::text::numeric, \
             $5::text::timestamptz, $6::text::timestamptz, $7 FROM routes r WHERE r.name = $3 \
             RETURNING to_jsonb(overrides.*)",
            vec![&b.customer, &prefix, &b.route, &b.rate, &from, &until, &note],
        )
        .run(c, ctx)
        .await
}

#[utoipa::path(delete, path = "/v1/admin/overrides/{id}", tag = "overrides", security(("bearer" = [])),
    params(("id" = i64, Path, description = "override id")),
    responses((status = 200, description = "deleted")))]
pub async fn override_delete(_: &AdminState, ctx: &mut Ctx, c: &mut Client) -> Reply {
    let id = ctx.id("id", "an id")?;
    OVERRIDES
        .delete(&id.to_string(), vec![&id])
        .run(c, ctx)
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(v: serde_json::Value) -> Result<(String, String, String), rules::RuleError> {
        checked(&serde_json::from_value(v).unwrap())
    }

    #[test]
    fn overrides_follow_the_rules() {
        let (p, from, until) = check(json!({"route": "r"})).unwrap();
        assert_eq!(
            (p.as_str(), from.as_str(), until.as_str()),
            ("", "-infinity", "infinity")
        );
        // drifts fixed: the admin API passed these to the database, `warpd apply` refused them
        for (body, field) in [
            (json!({"route": "r", "prefix": "44a"}), "prefix: "),
            (json!({"route": "r", "rate": "-1"}), "rate: "),
            (
                json!({"route": "r", "valid_from": "2026-02-01T00:00:00Z",
                       "valid_until": "2026-01-01T00:00:00Z"}),
                "valid_until: must be after valid_from",
            ),
        ] {
            let e = check(body).err().map(|e| e.to_string()).unwrap_or_default();
            assert!(e.starts_with(field), "{field}: {e}");
        }
    }
}
