//! `/v1/admin/customers/{ban}/blocked_prefixes`: a customer's blocked prefixes one at a time
//! (the whole list is also a field of the customer).

use serde_json::Value;
use tokio_postgres::types::ToSql;

use super::customers::customer_tx;
use super::prelude::*;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BlockedPrefixIn {
    /// E.164 digits without '+', e.g. "1900" (NANP 900)
    pub prefix: String,
}

#[utoipa::path(get, path = "/v1/admin/customers/{ban}/blocked_prefixes", tag = "customers",
    security(("bearer" = [])), params(("ban" = String, Path, description = "customer BAN")),
    responses((status = 200, description = "the blocked prefixes", body = [String]),
        (status = 404, description = "no such customer")))]
pub async fn blocked_prefixes_list(_: &AdminState, ctx: &mut Ctx, c: &mut Client) -> Reply {
    let ban = ctx.p("ban");
    let v: Value = c
        .query_opt(
            "SELECT to_jsonb(blocked_prefixes) FROM customers WHERE ban = $1",
            &[&ban],
        )
        .await
        .map_err(AdminError::db("reading the customer"))?
        .ok_or_else(|| AdminError::NotFound(format!("customer {ban:?} does not exist")))?
        .get(0);
    json_reply(StatusCode::OK, &v)
}

fn is_blocked(customer: &Value, prefix: &str) -> bool {
    customer["blocked_prefixes"]
        .as_array()
        .is_some_and(|a| a.iter().any(|p| p == prefix))
}

#[utoipa::path(post, path = "/v1/admin/customers/{ban}/blocked_prefixes", tag = "customers",
    security(("bearer" = [])), params(("ban" = String, Path, description = "customer BAN")),
    request_body = BlockedPrefixIn,
    responses((status = 201, description = "blocked: the customer before and after"),
        (status = 404, description = "no such customer"), (status = 409, description = "blocked already"),
        (status = 422, description = "not E.164 digits")))]
pub async fn blocked_prefix_add(_: &AdminState, ctx: &mut Ctx, c: &mut Client) -> Reply {
    let b: BlockedPrefixIn = ctx.json()?;
    let p = rules::blocked_prefix("prefix", &b.prefix, &[])?;
    blocked_prefix_change(c, ctx, ctx.p("ban").to_string(), p, true).await
}

#[utoipa::path(delete, path = "/v1/admin/customers/{ban}/blocked_prefixes/{prefix}", tag = "customers",
    security(("bearer" = [])),
    params(("ban" = String, Path, description = "customer BAN"), ("prefix" = String, Path, description = "blocked prefix")),
    responses((status = 200, description = "unblocked: the customer before and after"),
        (status = 404, description = "no such customer, or the prefix is not blocked")))]
pub async fn blocked_prefix_remove(_: &AdminState, ctx: &mut Ctx, c: &mut Client) -> Reply {
    let (ban, p) = (ctx.p("ban").to_string(), ctx.p("prefix").to_string());
    blocked_prefix_change(c, ctx, ban, p, false).await
}

/// Adds (`add`) or removes one blocked prefix of customer `ban`: 409 when adding one blocked
/// already, 404 when removing one that is not, 201 for an add.
async fn blocked_prefix_change(
    c: &mut Client,
    ctx: &Ctx,
    ban: String,
    p: String,
    add: bool,
) -> Result<AdminReply, AdminError> {
    let (fun, action) = if add {
        ("array_append", "customer.blocked_prefix.add")
    } else {
        ("array_remove", "customer.blocked_prefix.remove")
    };
    let sql = format!(
        "UPDATE customers SET blocked_prefixes = {fun}(blocked_prefixes, $2) WHERE ban = $1"
    );
    let st = vec![(sql, vec![&ban as &(dyn ToSql + Sync), &p])];
    let (ban2, p2) = (ban.clone(), p.clone());
    let reply = customer_tx(
        c,
        ctx,
        action,
        &ban,
        format!("customer {ban} blocked prefix {p}"),
        false,
        move |before| match (add, is_blocked(before, &p2)) {
            (true, true) => Err(AdminError::Conflict(format!(
                "customer {ban2} blocks prefix {p2} already"
            ))),
            (false, false) => Err(AdminError::NotFound(format!(
                "customer {ban2} blocked prefix {p2:?} does not exist"
            ))),
            _ => Ok(()),
        },
        &st,
    )
    .await?;
    Ok(if add {
        AdminReply {
            status: StatusCode::CREATED,
            ..reply
        }
    } else {
        reply
    })
}
