//! `/v1/admin/tokens`: create and revoke admin API tokens.

use super::prelude::*;

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
pub async fn token_create(_: &AdminState, ctx: &mut Ctx, c: &mut Client) -> Reply {
    let b: TokenIn = ctx.json()?;
    let t = crate::admin::create_token(&*c, &b.name, &b.role, &ctx.actor()).await?;
    json_reply(
        StatusCode::CREATED,
        &json!({"name": b.name, "role": b.role, "token": t}),
    )
}

#[utoipa::path(delete, path = "/v1/admin/tokens/{name}", tag = "tokens", security(("bearer" = [])),
    params(("name" = String, Path, description = "token name")),
    responses((status = 200, description = "revoked"), (status = 404, description = "no such live token")))]
pub async fn token_revoke(_: &AdminState, ctx: &mut Ctx, c: &mut Client) -> Reply {
    let name = ctx.p("name");
    if crate::admin::revoke_token(&*c, name, &ctx.actor())
        .await
        .map_err(AdminError::db("revoking the token"))?
    {
        json_reply(StatusCode::OK, &json!({"revoked": name}))
    } else {
        Err(AdminError::NotFound(format!("token {name:?} (live)")))
    }
}
