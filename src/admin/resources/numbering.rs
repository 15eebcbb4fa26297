//! `/v1/admin/numbering/{table}`: replace a numbering table (NPA-NXX, local calling, LNP, DNO)
//! from a CSV upload, through `warpd apply`'s checks and loader.

use super::prelude::*;

#[utoipa::path(post, path = "/v1/admin/numbering/{table}", tag = "numbering", security(("bearer" = [])),
    params(("table" = String, Path, description = "npanxx, local_calling, lnp or dno"),
        ("dry_run" = Option<bool>, Query, description = "validate and plan; change nothing")),
    request_body(content = String, description = "the table as CSV (columns as for `warpd apply`, docs/PROVISIONING.md); it replaces the whole table", content_type = "text/csv"),
    responses((status = 200, description = "the plan (what was or would be loaded)"),
        (status = 422, description = "bad rows; nothing changed")))]
pub async fn numbering_import(_: &AdminState, ctx: &mut Ctx, c: &mut Client) -> Reply {
    let table = ctx.p("table").to_string();
    if !["npanxx", "local_calling", "lnp", "dno"].contains(&table.as_str()) {
        return Err(AdminError::NotFound(format!(
            "numbering table {table:?} (one of npanxx, local_calling, lnp, dno)"
        )));
    }
    let dry_run = ctx.flag("dry_run")?;
    // `warpd apply` reads decks from files: hand it the body as one, in a private directory
    let token = crate::admin::new_token().map_err(crate::admin::TokenError::from)?;
    let dir = std::env::temp_dir().join(format!("warpd-numbering-{}", &token[4..20]));
    let mut upload = ctx
        .upload
        .take()
        .ok_or_else(|| AdminError::invalid("body", "no table uploaded"))?;
    std::fs::create_dir(&dir)
        .and_then(|_| std::fs::File::create(dir.join("table.csv")))
        .and_then(|mut f| std::io::copy(&mut upload.file, &mut f))
        .map_err(AdminError::Stage)?;
    let spec = format!("[numbering]\n{table} = \"table.csv\"\n");
    // the apply writes the `numbering.import` audit row in its own transaction
    let result = crate::provision::apply_str_by(
        c,
        &spec,
        crate::provision::Format::Toml,
        &dir,
        dry_run,
        &ctx.actor(),
    )
    .await;
    let _ = std::fs::remove_dir_all(&dir);
    let plan = result.map_err(|source| AdminError::Numbering {
        source: Box::new(source),
        staged: dir.display().to_string(),
    })?;
    json_reply(StatusCode::OK, &plan)
}
