//! `/console/decks`: rate deck versions per route, upload (CSV/XLSX; errors name the line), the
//! diff of a version against the live one (sortable), the shadow evaluation of a staged version
//! on recent real dips, and activate/rollback behind a confirmation step. Every action is the
//! admin API's deck handler (`/v1/admin/routes/{route}/decks…`) called as the user.

use std::collections::HashMap;

use hyper::StatusCode;
use maud::{html, Markup};
use serde_json::Value;

use super::super::html::{self, enc, layout, may, text};
use super::super::{Console, ConsoleError, Reply, Req};
use super::api_get;
use crate::admin::Upload;

fn decks_path(route: &str) -> String {
    format!("/v1/admin/routes/{}/decks", enc(route))
}

/// `GET /console/decks`: every route, with a link to its decks.
pub async fn index(c: &Console, r: &Req) -> Result<Reply, ConsoleError> {
    let routes = api_get(c, r, "/v1/admin/routes", &[]).await?;
    let rows = routes.as_array().cloned().unwrap_or_default();
    let body = html! {
        p.hint { "Choose a route to see its deck versions, upload a new deck, compare and activate." }
        (html::table(&rows, &["name", "vendor", "enabled"], Some(("name", &r.base, "decks"))))
    };
    Ok(Reply::html(
        StatusCode::OK,
        layout(&r.base, Some(&r.session), "decks", "Rate decks", None, body),
    ))
}

/// The diff's percentage (a magnitude) signed by the direction of the change.
fn signed_pct(row: &Value) -> String {
    match (row["pct"].as_f64(), row["change"].as_str()) {
        (Some(p), Some("down")) => format!("-{:.1}", p.abs()),
        (Some(p), Some("up")) => format!("+{:.1}", p.abs()),
        (Some(p), _) => format!("{p:.1}"),
        (None, _) => String::new(),
    }
}

/// Rows of one page of a diff.
const DIFF_PAGE: &str = "100";

fn diff_view(r: &Req, route: &str, diff: &Value) -> Markup {
    let sort = r.q("sort");
    let link = |s: &str| {
        r.base.url(&format!(
            "decks/{}?{}",
            enc(route),
            html::query(&[("diff", r.q("diff")), ("sort", s)])
        ))
    };
    let next = diff["next"].as_str().map(|after| {
        r.base.url(&format!(
            "decks/{}?{}",
            enc(route),
            html::query(&[("diff", r.q("diff")), ("sort", sort), ("after", after)])
        ))
    });
    html! {
        section aria-labelledby="diff-h" {
            h2 id="diff-h" { "Diff: version " (text(&diff["to_version"])) " against live version " (text(&diff["from_version"])) }
            p id="diff-summary" {
                "new " strong { (text(&diff["added"])) } ", removed " strong { (text(&diff["removed"])) }
                ", increases " strong { (text(&diff["up"])) } ", decreases " strong { (text(&diff["down"])) }
                ", mixed " (text(&diff["changed"])) ", unchanged " (text(&diff["unchanged"]))
                ", over the warning threshold " (text(&diff["over_threshold"]))
            }
            table id="diff" {
                thead { tr {
                    th scope="col" aria-sort=(if sort.is_empty() || sort == "key" { "ascending" } else { "none" }) { a href=(link("key")) { "prefix" } }
                    th scope="col" aria-sort=(if sort == "change" { "ascending" } else { "none" }) { a href=(link("change")) { "change" } }
                    th scope="col" class="num" { "old rate" } th scope="col" class="num" { "new rate" }
                    th scope="col" class="num" aria-sort=(if sort == "pct" { "descending" } else { "none" }) { a href=(link("pct")) { "change %" } }
                } }
                tbody {
                    @for row in diff["rows"].as_array().map(Vec::as_slice).unwrap_or_default() {
                        tr { td { (text(&row["key"])) } td { (text(&row["change"])) }
                            td.num { (text(&row["old_rate"])) } td.num { (text(&row["new_rate"])) }
                            td.num { (signed_pct(row)) } }
                    }
                }
            }
            p.pager {
                @if !r.q("after").is_empty() { a href=(link(sort)) { "First page" } " " }
                @if let Some(n) = &next { a href=(n) rel="next" id="diff-next" { "Next " (DIFF_PAGE) " rows" } }
            }
        }
    }
}

/// `GET /console/decks/<route>`: versions, the upload form, and the diff/shadow asked for.
pub async fn route_page(
    c: &Console,
    r: &Req,
    route: &str,
    error: Option<(StatusCode, String)>,
) -> Result<Reply, ConsoleError> {
    let path = decks_path(route);
    let versions = api_get(c, r, &path, &[]).await?;
    let versions = versions.as_array().cloned().unwrap_or_default();
    let live = versions.iter().find(|v| v["current"] == Value::Bool(true));
    let can_upload = may(&r.session, crate::admin::role_needed("POST", &path));
    let can_activate = may(
        &r.session,
        crate::admin::role_needed("POST", &format!("{path}/1/activate")),
    );
    let can_shadow = may(
        &r.session,
        crate::admin::role_needed("GET", &format!("{path}/1/shadow")),
    );
    let mut diff = None;
    let mut shadow = None;
    let mut extra_error = None;
    if let (Some(live), Ok(to)) = (live, r.q("diff").parse::<i64>()) {
        let from = live["id"].as_i64().unwrap_or(0);
        let (sort, after) = (r.q("sort"), r.q("after"));
        let key = (
            route.to_string(),
            from,
            to,
            sort.to_string(),
            after.to_string(),
        );
        match c.diffs.get(&key) {
            Some(d) => diff = Some(d),
            None => match api_get(
                c,
                r,
                &format!("{path}/diff"),
                &[
                    ("from", &from.to_string()),
                    ("to", &to.to_string()),
                    ("limit", DIFF_PAGE),
                    ("sort", sort),
                    ("after", after),
                ],
            )
            .await
            {
                Ok(d) => {
                    c.diffs.insert(key, d.clone());
                    diff = Some(d)
                }
                Err(e) => extra_error = Some(e.to_string()),
            },
        }
    }
    if let Ok(v) = r.q("shadow").parse::<i64>() {
        match api_get(c, r, &format!("{path}/{v}/shadow"), &[]).await {
            Ok(s) => shadow = Some(s),
            Err(e) => extra_error = Some(e.to_string()),
        }
    }
    let title = format!("Rate decks of route {route}");
    let body = html! {
        p { a href=(r.base.url("decks")) { "← all routes" } }
        @if let Some((_, e)) = &error { (html::error_box(e)) }
        @if let Some(e) = &extra_error { (html::error_box(e)) }
        @if !r.q("uploaded").is_empty() { (html::notice(&format!("Uploaded version {} ({} rows, {}).", r.q("uploaded"), r.q("rows"), r.q("state")))) }
        @if !r.q("activated").is_empty() { (html::notice(&format!("Version {} is live.", r.q("activated")))) }
        @if !r.q("rolled_back").is_empty() { (html::notice(&format!("Version {} was rolled back.", r.q("rolled_back")))) }
        h2 { "Versions" }
        table id="versions" {
            thead { tr { @for h in ["version", "state", "effective from", "rows", "file", "imported by", "imported at", "live", "actions"] { th scope="col" { (h) } } } }
            tbody {
                @for v in &versions {
                    @let id = v["id"].as_i64().unwrap_or(0);
                    @let state = text(&v["state"]);
                    tr {
                        td { (id) } td { (state) } td { (text(&v["effective_from"])) } td.num { (text(&v["rows"])) }
                        td { (text(&v["source"])) } td { (text(&v["created_by"])) } td { (text(&v["created_at"])) }
                        td { @if v["current"] == Value::Bool(true) { strong { "live" } } }
                        td {
                            @if live.is_some() && v["current"] != Value::Bool(true) {
                                a href=(r.base.url(&format!("decks/{}?diff={id}", enc(route)))) { "diff vs live" } " "
                            }
                            @if can_shadow && state == "staged" {
                                a href=(r.base.url(&format!("decks/{}?shadow={id}", enc(route)))) { "shadow" } " "
                            }
                            @if can_activate && (state == "staged" || state == "rolled_back") {
                                a href=(r.base.url(&format!("decks/{}/{id}/activate", enc(route)))) id=(format!("activate-{id}")) { "activate…" }
                            }
                        }
                    }
                }
            }
        }
        @if can_activate && live.is_some() {
            p { a href=(r.base.url(&format!("decks/{}/rollback", enc(route)))) { "Roll back the live version…" } }
        }
        @if let Some(d) = &diff { (diff_view(r, route, d)) }
        @if let Some(s) = &shadow {
            h2 { "Shadow evaluation of version " (r.q("shadow")) " on recent dips" }
            table id="shadow" { tbody { @for (k, v) in s.as_object().cloned().unwrap_or_default() { tr { th scope="row" { (k) } td { (text(&v)) } } } } }
        }
        @if can_upload {
            h2 { "Upload a deck" }
            form method="post" enctype="multipart/form-data" action=(r.base.url(&format!("decks/{}/upload", enc(route)))) {
                (html::csrf(&r.session))
                fieldset {
                    legend { "CSV, gzip'ed CSV or XLSX" }
                    div.grid {
                        div { label for="deck-file" { "Deck file" } input id="deck-file" type="file" name="file" required accept=".csv,.gz,.xlsx,text/csv"; }
                        div { label for="deck-effective" { "Effective from (optional)" } input id="deck-effective" name="effective" aria-describedby="eff-hint"; div.hint id="eff-hint" { "e.g. 2026-12-07T00:00Z; default now" } }
                        div { label for="deck-sheet" { "XLSX sheet (optional)" } input id="deck-sheet" name="sheet"; }
                        div { label for="deck-map" { "Column mapping (optional)" } input id="deck-map" name="map" aria-describedby="map-hint"; div.hint id="map-hint" { "e.g. Dial Code=prefix,Price=rate" } }
                    }
                    p { input id="deck-stage" type="checkbox" name="stage" value="true" checked; " " label.inline for="deck-stage" { "Stage it: review the diff and activate afterwards" } }
                    p { button type="submit" id="upload" { "Upload" } }
                    p.hint { "Nothing is imported if any line is bad: the error names the file and line." }
                }
            }
        }
    };
    let status = error.map_or(StatusCode::OK, |(s, _)| s);
    Ok(Reply::html(
        status,
        layout(&r.base, Some(&r.session), "decks", &title, None, body),
    ))
}

/// `POST /console/decks/<route>/upload`: the admin upload handler with the form's options.
pub async fn upload(
    c: &Console,
    r: &Req,
    route: &str,
    upload: Option<Upload>,
) -> Result<Reply, ConsoleError> {
    let Some(upload) = upload else {
        return route_page(
            c,
            r,
            route,
            Some((
                StatusCode::BAD_REQUEST,
                "body: no deck file was sent".into(),
            )),
        )
        .await;
    };
    let mut query: HashMap<String, String> = upload
        .fields
        .iter()
        .filter(|(k, v)| k.as_str() != "csrf" && !v.trim().is_empty())
        .filter(|(k, _)| ["effective", "sheet", "map", "stage"].contains(&k.as_str()))
        .map(|(k, v)| (k.clone(), v.trim().to_string()))
        .collect();
    if let Some(f) = upload.file_name.as_deref().filter(|f| !f.is_empty()) {
        query.insert("name".into(), warpd_core::excerpt::plain(f));
    }
    // a big file: the streamed page with a progress bar
    let size = upload.file.metadata().map(|m| m.len()).unwrap_or(0);
    if size >= super::deck_progress::MIN_BYTES {
        return Ok(super::deck_progress::page(
            c,
            r,
            route,
            decks_path(route),
            query,
            upload,
            size,
        ));
    }
    let res = crate::admin::call(
        &c.admin,
        r.session.who.clone(),
        "POST",
        &decks_path(route),
        query,
        bytes::Bytes::new(),
        Some(upload),
    )
    .await;
    match res {
        Ok(reply) => {
            let rep: Value = serde_json::from_slice(&reply.body).unwrap_or(Value::Null);
            let v = text(&rep["version"]);
            // the import compared the new version with the one before it (the live one, at the
            // default threshold, its first 20 changed rows): that is the first page of the diff
            // this redirect shows, so it is not computed again
            if let (Some(from), Some(to)) = (
                rep["diff"]["from_version"].as_i64(),
                rep["diff"]["to_version"].as_i64(),
            ) {
                // (the console's upload form sends no threshold of its own)
                let key = (route.to_string(), from, to, String::new(), String::new());
                c.diffs.insert(key, rep["diff"].clone());
            }
            Ok(Reply::redirect(&r.base.url(&format!(
                "decks/{}?{}",
                enc(route),
                html::query(&[
                    ("uploaded", &v),
                    ("rows", &text(&rep["rows"])),
                    ("state", &text(&rep["state"])),
                    ("diff", &v)
                ])
            ))))
        }
        Err(e) => route_page(c, r, route, Some((e.http_status(), e.to_string()))).await,
    }
}

fn confirm(r: &Req, title: &str, question: &str, action: &str, button_id: &str) -> Reply {
    let verb = title.to_lowercase();
    let cancel = r.base.url("decks");
    let body = html::confirm(&r.session, question, &verb, action, button_id, &cancel);
    Reply::html(
        StatusCode::OK,
        layout(&r.base, Some(&r.session), "decks", title, None, body),
    )
}

/// `GET|POST /console/decks/<route>/<version>/activate`: confirmation, then the admin handler.
pub async fn activate(
    c: &Console,
    r: &Req,
    route: &str,
    version: &str,
) -> Result<Reply, ConsoleError> {
    let action = r
        .base
        .url(&format!("decks/{}/{}/activate", enc(route), enc(version)));
    if r.method == hyper::Method::GET {
        return Ok(confirm(
            r,
            "Activate",
            &format!("Activate version {version} of route {route}? New calls are routed on its rates at once (or at its effective time)."),
            &action,
            "confirm-activate",
        ));
    }
    let path = format!("{}/{}/activate", decks_path(route), enc(version));
    match crate::admin::call(
        &c.admin,
        r.session.who.clone(),
        "POST",
        &path,
        HashMap::new(),
        bytes::Bytes::new(),
        None,
    )
    .await
    {
        Ok(_) => Ok(Reply::redirect(&r.base.url(&format!(
            "decks/{}?activated={}",
            enc(route),
            enc(version)
        )))),
        Err(e) => route_page(c, r, route, Some((e.http_status(), e.to_string()))).await,
    }
}

/// `GET|POST /console/decks/<route>/rollback`: confirmation, then the admin handler.
pub async fn rollback(c: &Console, r: &Req, route: &str) -> Result<Reply, ConsoleError> {
    let action = r.base.url(&format!("decks/{}/rollback", enc(route)));
    if r.method == hyper::Method::GET {
        return Ok(confirm(
            r,
            "Roll back",
            &format!("Roll back the live deck version of route {route}? The version before it routes again."),
            &action,
            "confirm-rollback",
        ));
    }
    let path = format!("{}/rollback", decks_path(route));
    match crate::admin::call(
        &c.admin,
        r.session.who.clone(),
        "POST",
        &path,
        HashMap::new(),
        bytes::Bytes::new(),
        None,
    )
    .await
    {
        Ok(reply) => {
            let v: Value = serde_json::from_slice(&reply.body).unwrap_or(Value::Null);
            Ok(Reply::redirect(&r.base.url(&format!(
                "decks/{}?rolled_back={}",
                enc(route),
                text(&v["rolled_back"])
            ))))
        }
        Err(e) => route_page(c, r, route, Some((e.http_status(), e.to_string()))).await,
    }
}
