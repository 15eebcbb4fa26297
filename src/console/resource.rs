//! The generic page of an admin resource (`/console/r/<slug>[/<key>]`), driven by its
//! [`Resource`] descriptor: the list, one item with every field the API returns, the edit form
//! (PATCH) and the create form (POST), and the item's child collections (tables, each with its
//! add form and, per row, a delete button behind a confirmation step), each control shown only
//! to roles the admin route allows. A submitted form becomes the JSON body of the admin API's
//! own handler ([`crate::admin::call`]); its answer, or its error message shown next to the
//! field it names, is what the page shows.
//!
//! Owns: the generic pages' paths and markup. Must not touch: validation, SQL.

use std::collections::HashMap;

use hyper::StatusCode;
use maud::{html, Markup};
use serde_json::Value;

use super::catalog::{Child, Resource, Source};
use super::form::{self, FormSpec, Refused};
use super::html::{self, enc, layout, may};
use super::{Console, ConsoleError, Reply, Req};

/// An admin call as the signed-in user.
async fn call(
    c: &Console,
    r: &Req,
    method: &str,
    path: &str,
    query: HashMap<String, String>,
    body: Option<&Value>,
) -> Result<Value, crate::admin::AdminError> {
    let body = body
        .map(|b| serde_json::to_vec(b).unwrap_or_default())
        .unwrap_or_default();
    let reply = crate::admin::call(
        &c.admin,
        r.session.who.clone(),
        method,
        path,
        query,
        body.into(),
        None,
    )
    .await?;
    Ok(serde_json::from_slice(&reply.body).unwrap_or(Value::Null))
}

async fn get(c: &Console, r: &Req, path: &str) -> Result<Value, ConsoleError> {
    Ok(call(c, r, "GET", path, HashMap::new(), None).await?)
}

/// `GET /console/r/<slug>`: the rows (a page of them, found by the search form, when the
/// descriptor says so), and the create form.
pub async fn list(
    c: &Console,
    r: &Req,
    res: &Resource,
    refused: Option<Refused>,
) -> Result<Reply, ConsoleError> {
    let mut query: HashMap<String, String> = res
        .search
        .iter()
        .filter(|f| !r.q(f.name).is_empty())
        .map(|f| (f.name.to_string(), r.q(f.name).to_string()))
        .collect();
    if let Some(n) = res.page {
        // one more than a page: whether there is a next one
        query.insert("limit".into(), (n + 1).to_string());
        if !r.q("after").is_empty() {
            query.insert("after".into(), r.q("after").to_string());
        }
    }
    let rows = call(c, r, "GET", res.api, query.clone(), None).await?;
    let mut rows = rows.as_array().cloned().unwrap_or_default();
    let more = res.page.is_some_and(|n| rows.len() > n as usize);
    if let Some(n) = res.page {
        rows.truncate(n as usize);
    }
    let next = match (more, rows.last()) {
        (true, Some(last)) => {
            let mut q: Vec<(&str, String)> = query
                .iter()
                .filter(|(k, _)| k.as_str() != "limit" && k.as_str() != "after")
                .map(|(k, v)| (k.as_str(), v.clone()))
                .collect();
            q.push(("after", html::text(&last[res.key])));
            let pairs: Vec<(&str, &str)> = q.iter().map(|(k, v)| (*k, v.as_str())).collect();
            Some(format!("r/{}?{}", res.slug, html::query(&pairs)))
        }
        _ => None,
    };
    let can_create =
        !res.create.is_empty() && may(&r.session, crate::admin::role_needed("POST", res.api));
    let current = format!("r/{}", res.slug);
    let legend = format!("New {}", res.title.to_lowercase().trim_end_matches('s'));
    let create = FormSpec {
        action: r.base.url(&current),
        legend: &legend,
        prefix: "new",
        fields: res.create,
        button_id: "create",
        button: "Create",
    };
    let body = html! {
        @if let Some(x) = &refused { (x.summary(res.create)) }
        @if !res.search.is_empty() { (form::search(&r.base, &current, r, res.search)) }
        p.hint {
            (rows.len()) " rows"
            @if res.page.is_some() && !r.q("after").is_empty() { " after " (r.q("after")) }
            ". Select one to see all its settings."
        }
        (html::table(&rows, res.columns, Some((res.key, &r.base, &current))))
        @if let Some(n) = &next { p { a href=(r.base.url(n)) rel="next" id="next-page" { "Next page →" } } }
        @if can_create { (form::form(r, &create, &|_| String::new(), refused.as_ref())) }
    };
    let status = refused.map_or(StatusCode::OK, |x| x.status);
    Ok(Reply::html(
        status,
        layout(&r.base, Some(&r.session), &current, res.title, None, body),
    ))
}

/// The rows of a child table: a list of objects as it is, a list of plain values (source
/// networks) as objects of its first column.
fn child_rows(ch: &Child, v: &Value) -> Vec<Value> {
    let col = ch.columns.first().copied().unwrap_or("value");
    v.as_array()
        .into_iter()
        .flatten()
        .map(|row| match row {
            Value::Object(_) => row.clone(),
            other => serde_json::json!({ col: other }),
        })
        .collect()
}

/// The console path of row `row` of child `ch` of item `key`, and the admin path deleting it.
fn row_paths(res: &Resource, key: &str, ch: &Child, row: &str) -> Option<(String, String)> {
    let rm = ch.remove.as_ref()?;
    Some((
        format!(
            "r/{}/{}/{}/{}/delete",
            res.slug,
            enc(key),
            ch.slug,
            enc(row)
        ),
        rm.path
            .replace("{key}", &enc(key))
            .replace("{row}", &enc(row)),
    ))
}

/// `GET /console/r/<slug>/<key>`: one item, its edit form, and its child collections (tables
/// with their add forms and delete buttons).
pub async fn item(
    c: &Console,
    r: &Req,
    res: &Resource,
    key: &str,
    refused: Option<Refused>,
) -> Result<Reply, ConsoleError> {
    let path = res.item_path(&enc(key));
    // an item a PUT creates (a credit account) may not exist yet: its form creates it
    let (v, missing) = match call(c, r, "GET", &path, HashMap::new(), None).await {
        Ok(v) => (v, None),
        Err(e) if res.edit_method == "PUT" && e.http_status() == StatusCode::NOT_FOUND => {
            (Value::Null, Some(e.to_string()))
        }
        Err(e) => return Err(e.into()),
    };
    let obj = v.as_object().cloned().unwrap_or_default();
    let mut tables = Vec::new();
    for ch in res.children {
        let rows = match (&ch.from, &missing) {
            (Source::Field(name), _) => obj.get(*name).cloned().unwrap_or(Value::Null),
            (Source::Api(_), Some(_)) => Value::Null,
            (Source::Api(p), None) => get(c, r, &p.replace("{key}", &enc(key))).await?,
        };
        tables.push((ch, child_rows(ch, &rows)));
    }
    let in_child = |k: &str| {
        res.children
            .iter()
            .any(|ch| matches!(ch.from, Source::Field(n) if n == k))
    };
    let can_edit = !res.edit.is_empty()
        && may(
            &r.session,
            crate::admin::role_needed(res.edit_method, &path),
        );
    let current = format!("r/{}", res.slug);
    let here = format!("{current}/{}", enc(key));
    let edit = FormSpec {
        action: r.base.url(&here),
        legend: "Edit",
        prefix: "edit",
        fields: res.edit,
        button_id: "save",
        button: "Save",
    };
    // the fields of the form a refused submission came from, for the alert's link
    let refused_fields = match refused.as_ref().map(|x| x.form.as_str()) {
        Some("edit") => res.edit,
        Some(form) => res
            .children
            .iter()
            .find(|ch| ch.slug == form)
            .and_then(|ch| ch.add.as_ref())
            .map_or(&[][..], |a| a.fields),
        None => &[],
    };
    let body = html! {
        p { a href=(r.base.url(&current)) { "← all " (res.title.to_lowercase()) } }
        @if let Some(x) = &refused { (x.summary(refused_fields)) }
        @if let Some(m) = &missing { (html::notice(&format!("{m}: saving the form creates it."))) }
        @if r.q("saved") == "1" { (html::notice("Saved.")) }
        @if r.q("deleted") == "1" { (html::notice("Deleted.")) }
        @if !obj.is_empty() {
            table {
                tbody {
                    @for (k, val) in obj.iter().filter(|(k, _)| !in_child(k)) {
                        tr { th scope="row" { (k) } td { (html::text(val)) } }
                    }
                }
            }
        }
        @if can_edit { (form::form(r, &edit, &|f| form::form_value(f, &obj), refused.as_ref())) }
        @for (ch, rows) in &tables {
            (child_section(r, res, key, ch, rows, missing.is_none(), refused.as_ref()))
        }
    };
    let status = refused.map_or(StatusCode::OK, |x| x.status);
    let title = format!("{} {key}", res.title.trim_end_matches('s'));
    Ok(Reply::html(
        status,
        layout(&r.base, Some(&r.session), &current, &title, None, body),
    ))
}

/// A child collection on its item's page: the table (with a delete link per row, to the
/// confirmation step, for roles the DELETE route allows) and the add form (for roles its POST
/// route allows). `exists`: the item exists (a PUT-created item may not yet).
fn child_section(
    r: &Req,
    res: &Resource,
    key: &str,
    ch: &Child,
    rows: &[Value],
    exists: bool,
    refused: Option<&Refused>,
) -> Markup {
    // per row: its name and its confirmation page, when this user may delete it
    let deletes: Vec<Option<(String, String)>> = rows
        .iter()
        .map(|row| {
            let named = html::text(&row[ch.remove.as_ref()?.row_key]);
            let (page, api) = row_paths(res, key, ch, &named)?;
            (exists
                && !named.is_empty()
                && may(&r.session, crate::admin::role_needed("DELETE", &api)))
            .then_some((named, page))
        })
        .collect();
    let remove: &dyn Fn(usize, &Value) -> Markup = &|i, _| match deletes.get(i) {
        Some(Some((named, page))) => html! {
            a.delete href=(r.base.url(page)) id=(format!("delete-{}-{i}", ch.slug))
                aria-label=(format!("Delete {} {named}", ch.noun)) { "Delete…" }
        },
        _ => html! {},
    };
    // the delete column only for roles that may delete
    let deletable = deletes.iter().any(Option::is_some);
    let add = ch.add.as_ref().filter(|a| {
        exists
            && may(
                &r.session,
                crate::admin::role_needed("POST", &a.path.replace("{key}", &enc(key))),
            )
    });
    let button_id = format!("add-{}", ch.slug);
    html! {
        section aria-labelledby=(format!("child-{}", ch.slug)) {
            h2 id=(format!("child-{}", ch.slug)) { (ch.title) }
            @if rows.is_empty() {
                p.hint { "None." }
            } @else if deletable {
                (html::table_with(rows, ch.columns, None, Some(("Delete", remove))))
            } @else {
                (html::table(rows, ch.columns, None))
            }
            @if let Some(a) = add {
                (form::form(r, &FormSpec {
                    action: r.base.url(&format!("r/{}/{}/{}", res.slug, enc(key), ch.slug)),
                    legend: a.title,
                    prefix: ch.slug,
                    fields: a.fields,
                    button_id: &button_id,
                    button: a.title,
                }, &|_| String::new(), refused))
            }
        }
    }
}

/// `POST /console/r/<slug>[/<key>]`: create or update through the admin handler; success
/// redirects to the item, an error shows the page again with the API's message.
pub async fn submit(
    c: &Console,
    r: &Req,
    res: &Resource,
    key: Option<&str>,
) -> Result<Reply, ConsoleError> {
    let (method, path, fields) = match key {
        Some(k) => (res.edit_method, res.item_path(&enc(k)), res.edit),
        None => ("POST", res.api.to_string(), res.create),
    };
    if fields.is_empty() {
        return Err(ConsoleError::NotFound(warpd_core::excerpt::excerpt(&path)));
    }
    let body = form::body_of(fields, &r.form);
    let target = match key {
        Some(k) => k.to_string(),
        None => body.get(res.key).map(html::text).unwrap_or_default(),
    };
    match call(c, r, method, &path, HashMap::new(), Some(&body)).await {
        Ok(_) => Ok(Reply::redirect(&r.base.url(&format!(
            "r/{}/{}?saved=1",
            res.slug,
            enc(&target)
        )))),
        Err(e) => match key {
            Some(k) => item(c, r, res, k, Some(Refused::new(&e, "edit"))).await,
            None => list(c, r, res, Some(Refused::new(&e, "new"))).await,
        },
    }
}

fn child_of<'a>(res: &'a Resource, slug: &str) -> Result<&'a Child, ConsoleError> {
    res.children
        .iter()
        .find(|ch| ch.slug == slug)
        .ok_or_else(|| ConsoleError::NotFound(warpd_core::excerpt::excerpt(slug)))
}

/// `POST /console/r/<slug>/<key>/<child>`: the child's add form through the admin handler of
/// its path; the item page again, with the API's message at its field, on an error.
pub async fn add(
    c: &Console,
    r: &Req,
    res: &Resource,
    key: &str,
    child: &str,
) -> Result<Reply, ConsoleError> {
    let ch = child_of(res, child)?;
    let a = ch
        .add
        .as_ref()
        .ok_or_else(|| ConsoleError::NotFound(warpd_core::excerpt::excerpt(child)))?;
    let path = a.path.replace("{key}", &enc(key));
    let body = form::body_of(a.fields, &r.form);
    match call(c, r, "POST", &path, HashMap::new(), Some(&body)).await {
        Ok(_) => Ok(Reply::redirect(&r.base.url(&format!(
            "r/{}/{}?saved=1",
            res.slug,
            enc(key)
        )))),
        Err(e) => item(c, r, res, key, Some(Refused::new(&e, ch.slug))).await,
    }
}

/// `GET|POST /console/r/<slug>/<key>/<child>/<row>/delete`: the confirmation step (for a user
/// whose role may delete the row: else the admin API's 403), then the admin DELETE; the item
/// page again, with the API's message, on an error.
pub async fn remove(
    c: &Console,
    r: &Req,
    res: &Resource,
    key: &str,
    child: &str,
    row: &str,
) -> Result<Reply, ConsoleError> {
    let ch = child_of(res, child)?;
    let (page, api) = row_paths(res, key, ch, row)
        .ok_or_else(|| ConsoleError::NotFound(warpd_core::excerpt::excerpt(child)))?;
    let here = format!("r/{}/{}", res.slug, enc(key));
    if r.method == hyper::Method::GET {
        crate::admin::may_call(&r.session.who, "DELETE", &api)?;
        let owner = res.title.trim_end_matches('s').to_lowercase();
        let question = format!(
            "Delete {} {row} of {owner} {key}? The change is live at once and written to the audit log.",
            ch.noun
        );
        let body = html::confirm(
            &r.session,
            &question,
            "delete",
            &r.base.url(&page),
            "confirm-delete",
            &r.base.url(&here),
        );
        let title = format!("Delete {}", ch.noun);
        return Ok(Reply::html(
            StatusCode::OK,
            layout(
                &r.base,
                Some(&r.session),
                &format!("r/{}", res.slug),
                &title,
                None,
                body,
            ),
        ));
    }
    match call(c, r, "DELETE", &api, HashMap::new(), None).await {
        Ok(_) => Ok(Reply::redirect(&r.base.url(&format!("{here}?deleted=1")))),
        // not the add form's: the message stays at the top of the page
        Err(e) => {
            let form = format!("{}-delete", ch.slug);
            item(c, r, res, key, Some(Refused::new(&e, &form))).await
        }
    }
}
