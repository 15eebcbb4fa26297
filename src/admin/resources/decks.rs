//! `/v1/admin/routes/{route}/decks…`: rate deck versions of a route (upload, versions, diff,
//! activate, rollback, export, shadow evaluation). Deck semantics live in `crate::deck`.

use super::prelude::*;
use crate::deck::{self, ImportOptions, Mapping};

/// The multipart/form-data form of a deck upload (for the OpenAPI document).
#[derive(ToSchema)]
#[allow(dead_code)] // describes the form; `multipart` reads it
pub struct DeckForm {
    /// the deck file: CSV, gzip'ed CSV or XLSX
    #[schema(content_media_type = "application/octet-stream")]
    file: Vec<u8>,
    effective: Option<String>,
    dry_run: Option<bool>,
    skip_invalid: Option<bool>,
    stage: Option<bool>,
    map: Option<String>,
    save_mapping: Option<bool>,
    sheet: Option<String>,
    name: Option<String>,
    warn_pct: Option<f64>,
}

#[utoipa::path(post, path = "/v1/admin/routes/{route}/decks", tag = "decks", security(("bearer" = [])),
    params(("route" = String, Path, description = "route name"),
        ("effective" = Option<String>, Query, description = "when the version takes over (default now), e.g. 2026-12-01T00:00Z"),
        ("dry_run" = Option<bool>, Query, description = "validate, diff and warn; change nothing"),
        ("skip_invalid" = Option<bool>, Query, description = "load the good rows, report the bad ones"),
        ("stage" = Option<bool>, Query, description = "store the version without routing it (activate later)"),
        ("map" = Option<String>, Query, description = "column mapping, e.g. 'Dial Code=prefix,Price=rate'"),
        ("save_mapping" = Option<bool>, Query, description = "save the mapping with the vendor"),
        ("sheet" = Option<String>, Query, description = "XLSX sheet name"),
        ("name" = Option<String>, Query, description = "file name to record (default: the multipart file name)"),
        ("warn_pct" = Option<f64>, Query, description = "warn on rates moving more than this percent (default 25)")),
    request_body(description = "the deck: CSV, gzip'ed CSV or XLSX bytes as the raw body, or a multipart/form-data \
        form with one file part (field `file`) and optionally the options above as form fields",
        content((String = "application/octet-stream"), (inline(DeckForm) = "multipart/form-data"))),
    responses((status = 200, description = "import report"), (status = 422, description = "bad rows; nothing imported"),
        (status = 413, description = "larger than the upload limit")))]
pub async fn deck_upload(_: &AdminState, ctx: &mut Ctx, c: &mut Client) -> Reply {
    let route = ctx.p("route").to_string();
    let upload = ctx
        .upload
        .take()
        .ok_or_else(|| AdminError::invalid("body", "no deck uploaded"))?;
    let input = upload.into_reader();
    let mut o = ImportOptions::new(&route, ctx.q("name").unwrap_or("upload"), &ctx.actor());
    o.effective = ctx.when("effective")?;
    o.dry_run = ctx.flag("dry_run")?;
    o.skip_invalid = ctx.flag("skip_invalid")?;
    o.stage = ctx.flag("stage")?;
    o.save_mapping = ctx.flag("save_mapping")?;
    o.sheet = ctx.q("sheet").map(str::to_string);
    if let Some(m) = ctx.q("map") {
        o.mapping = Mapping::parse(m).map_err(|e| AdminError::invalid("map", e))?;
    }
    if let Some(v) = ctx.q("warn_pct") {
        o.warn_change_pct = v
            .parse::<f64>()
            .ok()
            .filter(|p| p.is_finite() && *p >= 0.0)
            .ok_or_else(|| AdminError::invalid("warn_pct", format!("{v:?} is not a percentage")))?;
    }
    let report = deck::store::import(c, input, &o).await?;
    json_reply(StatusCode::OK, &report)
}

#[utoipa::path(get, path = "/v1/admin/routes/{route}/decks", tag = "decks", security(("bearer" = [])),
    params(("route" = String, Path, description = "route name")),
    responses((status = 200, description = "versions, oldest first", body = [deck::VersionInfo])))]
pub async fn deck_versions(_: &AdminState, ctx: &mut Ctx, c: &mut Client) -> Reply {
    let v = deck::store::versions(c, ctx.p("route")).await?;
    json_reply(StatusCode::OK, &v)
}

#[utoipa::path(get, path = "/v1/admin/routes/{route}/decks/diff", tag = "decks", security(("bearer" = [])),
    params(("route" = String, Path, description = "route name"),
        ("from" = Option<i64>, Query, description = "old version (default: the one before `to`)"),
        ("to" = Option<i64>, Query, description = "new version (default: the newest)"),
        ("limit" = Option<i64>, Query, description = "rows of detail (default 100)"),
        ("warn_pct" = Option<f64>, Query, description = "threshold for over_threshold (default 25)")),
    responses((status = 200, description = "per-prefix comparison", body = deck::DiffReport)))]
pub async fn deck_diff(_: &AdminState, ctx: &mut Ctx, c: &mut Client) -> Reply {
    let pct = match ctx.q("warn_pct") {
        None => 25.0,
        Some(v) => v
            .parse::<f64>()
            .map_err(|_| AdminError::invalid("warn_pct", format!("{v:?} is not a number")))?,
    };
    let d = deck::store::diff(
        c,
        ctx.p("route"),
        ctx.int("from")?,
        ctx.int("to")?,
        pct,
        ctx.int("limit")?.unwrap_or(100),
    )
    .await?;
    json_reply(StatusCode::OK, &d)
}

fn version_param(ctx: &Ctx) -> Result<i64, AdminError> {
    ctx.id("version", "a version id")
}

#[utoipa::path(post, path = "/v1/admin/routes/{route}/decks/{version}/activate", tag = "decks",
    security(("bearer" = [])),
    params(("route" = String, Path, description = "route name"), ("version" = i64, Path, description = "version id"),
        ("effective" = Option<String>, Query, description = "new effective time (default: the version's)")),
    responses((status = 200, description = "the version, now live", body = deck::VersionInfo),
        (status = 409, description = "the version is not staged/rolled back")))]
pub async fn deck_activate(_: &AdminState, ctx: &mut Ctx, c: &mut Client) -> Reply {
    let v = deck::store::activate(
        c,
        ctx.p("route"),
        version_param(ctx)?,
        ctx.when("effective")?,
        &ctx.actor(),
    )
    .await?;
    json_reply(StatusCode::OK, &v)
}

#[utoipa::path(post, path = "/v1/admin/routes/{route}/decks/rollback", tag = "decks",
    security(("bearer" = [])),
    params(("route" = String, Path, description = "route name"),
        ("version" = Option<i64>, Query, description = "live version to withdraw (default: the newest)")),
    responses((status = 200, description = "the withdrawn version id"),
        (status = 409, description = "nothing to roll back")))]
pub async fn deck_rollback(_: &AdminState, ctx: &mut Ctx, c: &mut Client) -> Reply {
    let v = deck::store::rollback(c, ctx.p("route"), ctx.int("version")?, &ctx.actor()).await?;
    json_reply(StatusCode::OK, &json!({"rolled_back": v}))
}

#[utoipa::path(get, path = "/v1/admin/routes/{route}/decks/{version}/export", tag = "decks",
    security(("bearer" = [])),
    params(("route" = String, Path, description = "route name"),
        ("version" = String, Path, description = "version id, or `current`")),
    responses((status = 200, description = "the version as CSV in its imported layout", content_type = "text/csv")))]
pub async fn deck_export(_: &AdminState, ctx: &mut Ctx, c: &mut Client) -> Reply {
    let version = match ctx.p("version") {
        "current" => None,
        _ => Some(version_param(ctx)?),
    };
    let mut out = Vec::new();
    deck::store::export(c, ctx.p("route"), version, &mut out).await?;
    Ok(AdminReply {
        status: StatusCode::OK,
        content_type: "text/csv; charset=utf-8",
        body: out.into(),
    })
}

#[utoipa::path(get, path = "/v1/admin/routes/{route}/decks/{version}/shadow", tag = "decks",
    security(("bearer" = [])),
    params(("route" = String, Path, description = "route name"), ("version" = i64, Path, description = "candidate version id"),
        ("samples" = Option<i64>, Query, description = "at most this many recent dips (default 10000)")),
    responses((status = 200, description = "how answers would change", body = deck::report::ShadowReport)))]
pub async fn deck_shadow(state: &AdminState, ctx: &mut Ctx, c: &mut Client) -> Reply {
    let version = version_param(ctx)?;
    let limit = ctx.int("samples")?.unwrap_or(10_000).clamp(1, 1_000_000);
    state
        .dip_log
        .flush(c)
        .await
        .map_err(AdminError::db("saving recent dips"))?;
    let samples = deck::diplog::load_samples(c, limit)
        .await
        .map_err(AdminError::db("reading recent dips"))?;
    // a connection of its own: shadow creates a TEMP VIEW on it
    let mut own = crate::db::connect(&state.db_url).await?;
    let now = chrono::Utc::now().timestamp();
    let r = deck::report::shadow(
        &mut own,
        ctx.p("route"),
        version,
        &samples,
        state.settings.clone(),
        now,
    )
    .await?;
    json_reply(StatusCode::OK, &r)
}
