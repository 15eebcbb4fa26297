//! `/v1/admin/margins`: sell vs buy per prefix, customer and route.

use super::prelude::*;
use crate::deck;

#[utoipa::path(get, path = "/v1/admin/margins", tag = "decks", security(("bearer" = [])),
    params(("ban" = Option<String>, Query, description = "one customer"),
        ("prefix" = Option<String>, Query, description = "sell prefixes starting with this"),
        ("limit" = Option<i64>, Query, description = "rows (default 1000)")),
    responses((status = 200, description = "sell vs buy per prefix, customer and route", body = [deck::report::MarginRow])))]
pub async fn margins(_: &AdminState, ctx: &mut Ctx, c: &mut Client) -> Reply {
    let rows = deck::report::margins(
        c,
        ctx.q("ban"),
        ctx.q("prefix"),
        ctx.int("limit")?.unwrap_or(1000),
    )
    .await?;
    json_reply(StatusCode::OK, &rows)
}
