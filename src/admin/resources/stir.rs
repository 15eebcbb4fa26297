//! `/v1/admin/stir/policies` and `/v1/admin/stir/tn_ranges` (issue 20): a customer's or trunk's
//! STIR/SHAKEN settings and a customer's TN ranges, checked by `rules::stir` (the rules of
//! `warpd apply`'s `[[stir]]`). A range overlapping another customer's is a 409 (the schema's
//! exclusion constraint).

use super::customers::CUSTOMER;
use super::prelude::*;
use crate::rules::stir as st;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StirPolicyIn {
    /// the customer's BAN
    pub customer: String,
    /// one of the customer's trunks (absent: the customer's own setting)
    pub trunk: Option<String>,
    /// A (default: no cap), B, C or off
    pub max_attest: Option<String>,
    /// customer only: its calls are transit traffic (attestation C)
    pub transit: Option<bool>,
    /// customer only: refuse inbound calls failing verification with 436, 437 or 438
    pub verify_reject_code: Option<i64>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TnRangeIn {
    pub customer: String,
    /// "+13125550000-+13125550999" (or one number)
    pub range: String,
}

const POLICIES: Table = Table {
    noun: "stir_policy",
    list:
        "SELECT c.ban AS customer, t.name AS trunk, p.max_attest, p.transit, p.verify_reject_code \
           FROM stir_policies p JOIN customers c ON c.id = p.customer_id \
           LEFT JOIN trunks t ON t.id = p.trunk_id ORDER BY c.ban, t.name NULLS FIRST",
    get: "",
    lock: "SELECT to_jsonb(p.*) FROM stir_policies p JOIN customers c ON c.id = p.customer_id \
           LEFT JOIN trunks t ON t.id = p.trunk_id \
           WHERE c.ban = $1 AND t.name IS NOT DISTINCT FROM $2 FOR UPDATE OF p",
    delete:
        "DELETE FROM stir_policies p USING customers c WHERE c.id = p.customer_id AND c.ban = $1 \
             AND p.trunk_id IS NOT DISTINCT FROM (SELECT id FROM trunks WHERE name = $2) \
             RETURNING NULL::jsonb",
};

const RANGES: Table = Table {
    noun: "stir_tn_range",
    list: "SELECT r.id, c.ban AS customer, r.first_tn, r.last_tn FROM stir_tn_ranges r \
           JOIN customers c ON c.id = r.customer_id ORDER BY c.ban, r.first_tn LIMIT 10000",
    get: "",
    lock: "SELECT to_jsonb(r.*) FROM stir_tn_ranges r WHERE id = $1::text::bigint FOR UPDATE",
    delete: "DELETE FROM stir_tn_ranges WHERE id = $1::text::bigint RETURNING NULL::jsonb",
};

/// The trunk `name` must be customer `ban`'s.
async fn check_trunk(c: &Client, name: &str, ban: &str) -> Result<(), AdminError> {
    let owner: Option<String> = c
        .query_opt(
            "SELECT c.ban FROM trunks t JOIN customers c ON c.id = t.customer_id WHERE t.name = $1",
            &[&name],
        )
        .await
        .map_err(AdminError::db("looking up the trunk"))?
        .map(|r| r.get(0));
    match owner {
        None => Err(AdminError::NotFound(format!(
            "trunk {:?} does not exist",
            warpd_core::excerpt::excerpt(name)
        ))),
        Some(o) if o == ban => Ok(()),
        Some(_) => Err(rules::RuleError::invalid(
            "trunk",
            "the trunk belongs to another customer".to_string(),
        )
        .into()),
    }
}

#[utoipa::path(get, path = "/v1/admin/stir/policies", tag = "customers", security(("bearer" = [])),
    responses((status = 200, description = "every customer and trunk STIR/SHAKEN setting")))]
pub async fn policies_list(_: &AdminState, _: &mut Ctx, c: &mut Client) -> Reply {
    POLICIES.list(c, &[]).await
}

#[utoipa::path(put, path = "/v1/admin/stir/policies", tag = "customers", security(("bearer" = [])),
    request_body = StirPolicyIn, responses((status = 201, description = "set (created or replaced)"),
    (status = 400, description = "a bad value, named"), (status = 404, description = "no such customer or trunk")))]
pub async fn policy_put(_: &AdminState, ctx: &mut Ctx, c: &mut Client) -> Reply {
    let b: StirPolicyIn = ctx.json()?;
    let cap = st::max_attest("max_attest", b.max_attest.as_deref())?.as_str();
    let code = st::reject_code("verify_reject_code", b.verify_reject_code)?.map(|c| c as i16);
    if b.trunk.is_some() && (b.transit.is_some() || code.is_some()) {
        return Err(rules::RuleError::invalid(
            "trunk",
            "transit and verify_reject_code are customer settings: omit trunk",
        )
        .into());
    }
    let transit = b.transit.unwrap_or(false);
    CUSTOMER.exists(c, &b.customer).await?;
    if let Some(t) = &b.trunk {
        check_trunk(c, t, &b.customer).await?;
    }
    let key = match &b.trunk {
        Some(t) => format!("{} trunk {t}", b.customer),
        None => b.customer.clone(),
    };
    POLICIES
        .create(
            &key,
            "INSERT INTO stir_policies (customer_id, trunk_id, max_attest, transit, verify_reject_code) \
             VALUES ((SELECT id FROM customers WHERE ban = $1), (SELECT id FROM trunks WHERE name = $2), $3, $4, $5) \
             ON CONFLICT ON CONSTRAINT stir_policies_scope DO UPDATE SET max_attest = EXCLUDED.max_attest, \
               transit = EXCLUDED.transit, verify_reject_code = EXCLUDED.verify_reject_code, updated_at = now() \
             RETURNING to_jsonb(stir_policies.*)",
            vec![&b.customer, &b.trunk, &cap, &transit, &code],
        )
        .run(c, ctx)
        .await
}

#[utoipa::path(delete, path = "/v1/admin/stir/policies/{ban}", tag = "customers", security(("bearer" = [])),
    params(("ban" = String, Path, description = "customer BAN"),
        ("trunk" = Option<String>, Query, description = "the trunk's setting instead of the customer's")),
    responses((status = 200, description = "removed (back to the defaults)"), (status = 404, description = "no such setting")))]
pub async fn policy_delete(_: &AdminState, ctx: &mut Ctx, c: &mut Client) -> Reply {
    let ban = ctx.p("ban").to_string();
    let trunk: Option<String> = ctx.q("trunk").map(str::to_string);
    let key = match &trunk {
        Some(t) => format!("{ban} trunk {t}"),
        None => ban.clone(),
    };
    POLICIES.delete(&key, vec![&ban, &trunk]).run(c, ctx).await
}

#[utoipa::path(get, path = "/v1/admin/stir/tn_ranges", tag = "customers", security(("bearer" = [])),
    responses((status = 200, description = "TN ranges (at most 10,000, by customer)")))]
pub async fn ranges_list(_: &AdminState, _: &mut Ctx, c: &mut Client) -> Reply {
    RANGES.list(c, &[]).await
}

#[utoipa::path(post, path = "/v1/admin/stir/tn_ranges", tag = "customers", security(("bearer" = [])),
    request_body = TnRangeIn, responses((status = 201, description = "added"),
    (status = 400, description = "not a range, named"), (status = 404, description = "no such customer"),
    (status = 409, description = "overlaps a range (of any customer)")))]
pub async fn range_add(_: &AdminState, ctx: &mut Ctx, c: &mut Client) -> Reply {
    let b: TnRangeIn = ctx.json()?;
    let (first, last) = st::tn_range("range", &b.range)?;
    CUSTOMER.exists(c, &b.customer).await?;
    RANGES
        .create(
            &format!("{first}-{last}"),
            "INSERT INTO stir_tn_ranges (customer_id, first_tn, last_tn) \
             VALUES ((SELECT id FROM customers WHERE ban = $1), $2, $3) RETURNING to_jsonb(stir_tn_ranges.*)",
            vec![&b.customer, &first, &last],
        )
        .run(c, ctx)
        .await
}

#[utoipa::path(delete, path = "/v1/admin/stir/tn_ranges/{id}", tag = "customers", security(("bearer" = [])),
    params(("id" = i64, Path, description = "the range's id (from the list)")),
    responses((status = 200, description = "removed"), (status = 404, description = "no such range")))]
pub async fn range_delete(_: &AdminState, ctx: &mut Ctx, c: &mut Client) -> Reply {
    let id = ctx.p("id").to_string();
    if id.is_empty() || id.len() > 18 || !id.bytes().all(|b| b.is_ascii_digit()) {
        return Err(rules::RuleError::invalid("id", "not a range id (digits)").into());
    }
    RANGES.delete(&id, vec![&id]).run(c, ctx).await
}
