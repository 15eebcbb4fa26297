//! `/v1/admin/audit`: the audit log, newest first.

use super::prelude::*;

#[utoipa::path(get, path = "/v1/admin/audit", tag = "tokens", security(("bearer" = [])),
    params(("limit" = Option<i64>, Query, description = "newest first (default 100)")),
    responses((status = 200, description = "audit rows: who, when, what, before, after")))]
pub async fn audit_list(_: &AdminState, ctx: &mut Ctx, c: &mut Client) -> Reply {
    let limit = ctx.int("limit")?.unwrap_or(100).clamp(1, 10_000);
    crud::list(
        c,
        "SELECT id, at, actor, action, target, before, after FROM audit_log ORDER BY id DESC LIMIT $1",
        &[&limit],
    )
    .await
}
