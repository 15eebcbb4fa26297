//! The generic page of an admin resource (`/console/r/<slug>[/<key>]`), driven by its
//! [`Resource`] descriptor: the list, one item with every field the API returns, the edit form
//! (PATCH) and the create form (POST), shown only to roles the admin route allows. A submitted
//! form becomes the JSON body of the admin API's own handler ([`crate::admin::call`]); its
//! answer (or its error message, naming the field) is what the page shows.
//!
//! Owns: form ↔ JSON for descriptors. Must not touch: validation, SQL.

use std::collections::HashMap;

use hyper::StatusCode;
use maud::{html, Markup};
use serde_json::{Map, Value};

use super::catalog::{Field, Kind, Resource, PAGE};
use super::html::{self, enc, layout, may};
use super::{Console, ConsoleError, Reply, Req};

/// A form's fields as the JSON body of `fields` (see [`Kind`]).
pub fn body_of(fields: &[Field], form: &HashMap<String, String>) -> Value {
    let mut m = Map::new();
    for f in fields {
        let raw = form.get(f.name).map(|s| s.trim()).unwrap_or("");
        let v = match (f.kind, raw.is_empty()) {
            (Kind::Text | Kind::Int | Kind::Decimal | Kind::Choice(_), true) => continue,
            (Kind::NullableText | Kind::NullableInt | Kind::NullableDecimal, true) => Value::Null,
            (Kind::Int | Kind::NullableInt, false) => raw
                .parse::<i64>()
                .map(Value::from)
                .unwrap_or_else(|_| Value::from(raw)),
            (Kind::Bool, _) => match raw {
                "true" => Value::Bool(true),
                "false" => Value::Bool(false),
                "" => continue,
                other => Value::from(other),
            },
            (Kind::List, _) => Value::Array(
                raw.split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(Value::from)
                    .collect(),
            ),
            (_, false) => Value::from(raw),
        };
        m.insert(f.name.to_string(), v);
    }
    Value::Object(m)
}

/// The form text of a stored value.
fn shown(v: &Value) -> String {
    html::text(v)
}

fn input(f: &Field, id: &str, current: &str) -> Markup {
    html! {
        div {
            label for=(id) { (f.name) }
            @match f.kind {
                Kind::Bool => {
                    select id=(id) name=(f.name) {
                        @for o in ["true", "false"] {
                            option value=(o) selected[current == o] { (o) }
                        }
                    }
                }
                Kind::Choice(words) => {
                    select id=(id) name=(f.name) {
                        @for o in words { option value=(o) selected[current == *o] { (o) } }
                    }
                }
                _ => { input id=(id) name=(f.name) value=(current) aria-describedby=(format!("{id}-help")); }
            }
            @if !f.help.is_empty() { div.hint id=(format!("{id}-help")) { (f.help) } }
        }
    }
}

async fn get(c: &Console, r: &Req, path: &str) -> Result<Value, ConsoleError> {
    get_with(c, r, path, HashMap::new()).await
}

async fn get_with(
    c: &Console,
    r: &Req,
    path: &str,
    query: HashMap<String, String>,
) -> Result<Value, ConsoleError> {
    let reply = crate::admin::call(
        &c.admin,
        r.session.who.clone(),
        "GET",
        path,
        query,
        bytes::Bytes::new(),
        None,
    )
    .await?;
    Ok(serde_json::from_slice(&reply.body).unwrap_or(Value::Null))
}

/// `GET /console/r/<slug>`: every row (a paged resource: [`PAGE`] rows after `?after=`, with
/// a link to the next page), and the create form.
pub async fn list(
    c: &Console,
    r: &Req,
    res: &Resource,
    error: Option<(StatusCode, String)>,
) -> Result<Reply, ConsoleError> {
    let mut query = HashMap::new();
    if res.paged {
        // one more than shown: there is a next page when it comes back
        query.insert("limit".to_string(), (PAGE + 1).to_string());
        if !r.q("after").is_empty() {
            query.insert("after".to_string(), r.q("after").to_string());
        }
    }
    let rows = get_with(c, r, res.api, query).await?;
    let mut rows = rows.as_array().cloned().unwrap_or_default();
    let more = res.paged && rows.len() > PAGE;
    rows.truncate(if res.paged { PAGE } else { rows.len() });
    let next = more
        .then(|| rows.last().map(|row| html::text(&row[res.key])))
        .flatten()
        .map(|after| {
            r.base.url(&format!(
                "r/{}?{}",
                res.slug,
                html::query(&[("after", &after)])
            ))
        });
    let can_create =
        !res.create.is_empty() && may(&r.session, crate::admin::role_needed("POST", res.api));
    let current = format!("r/{}", res.slug);
    let body = html! {
        @if let Some((_, e)) = &error { (html::error_box(e)) }
        @if res.paged {
            p.hint { (rows.len()) " rows" @if !r.q("after").is_empty() { " after " (r.q("after")) } ". Select one to see all its settings." }
        } @else {
            p.hint { (rows.len()) " rows. Select one to see all its settings." }
        }
        (html::table(&rows, res.columns, Some((res.key, &r.base, &current))))
        @if res.paged {
            p.pager {
                @if !r.q("after").is_empty() { a href=(r.base.url(&current)) { "First page" } " " }
                @if let Some(n) = &next { a href=(n) rel="next" id="list-next" { "Next " (PAGE) " rows" } }
            }
        }
        @if can_create {
            form method="post" action=(r.base.url(&current)) {
                (html::csrf(&r.session))
                fieldset {
                    legend { "New " (res.title.to_lowercase().trim_end_matches('s')) }
                    div.grid {
                        @for f in res.create { (input(f, &format!("new-{}", f.name), r.f(f.name))) }
                    }
                    p { button type="submit" { "Create" } }
                }
            }
        }
    };
    let status = error.map_or(StatusCode::OK, |(s, _)| s);
    Ok(Reply::html(
        status,
        layout(&r.base, Some(&r.session), &current, res.title, None, body),
    ))
}

/// `GET /console/r/<slug>/<key>`: one item, and its edit form.
pub async fn item(
    c: &Console,
    r: &Req,
    res: &Resource,
    key: &str,
    error: Option<(StatusCode, String)>,
) -> Result<Reply, ConsoleError> {
    let path = format!("{}/{}", res.api, enc(key));
    let v = get(c, r, &path).await?;
    let obj = v.as_object().cloned().unwrap_or_default();
    let can_edit =
        !res.edit.is_empty() && may(&r.session, crate::admin::role_needed("PATCH", &path));
    let current = format!("r/{}", res.slug);
    let submitted = error.is_some();
    let body = html! {
        p { a href=(r.base.url(&current)) { "← all " (res.title.to_lowercase()) } }
        @if let Some((_, e)) = &error { (html::error_box(e)) }
        @if r.q("saved") == "1" { (html::notice("Saved.")) }
        table {
            tbody {
                @for (k, val) in &obj { tr { th scope="row" { (k) } td { (shown(val)) } } }
            }
        }
        @if can_edit {
            form method="post" action=(r.base.url(&format!("{current}/{}", enc(key)))) {
                (html::csrf(&r.session))
                fieldset {
                    legend { "Edit" }
                    div.grid {
                        @for f in res.edit {
                            @let cur = if submitted { r.f(f.name).to_string() } else { shown(obj.get(f.name).unwrap_or(&Value::Null)) };
                            (input(f, &format!("edit-{}", f.name), &cur))
                        }
                    }
                    p { button type="submit" id="save" { "Save" } }
                }
            }
        }
    };
    let status = error.map_or(StatusCode::OK, |(s, _)| s);
    let title = format!("{} {key}", res.title.trim_end_matches('s'));
    Ok(Reply::html(
        status,
        layout(&r.base, Some(&r.session), &current, &title, None, body),
    ))
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
        Some(k) => ("PATCH", format!("{}/{}", res.api, enc(k)), res.edit),
        None => ("POST", res.api.to_string(), res.create),
    };
    if fields.is_empty() {
        return Err(ConsoleError::NotFound(warpd_core::excerpt::excerpt(&path)));
    }
    let body = body_of(fields, &r.form);
    let target = match key {
        Some(k) => k.to_string(),
        None => body.get(res.key).map(shown).unwrap_or_default(),
    };
    let res_call = crate::admin::call(
        &c.admin,
        r.session.who.clone(),
        method,
        &path,
        HashMap::new(),
        serde_json::to_vec(&body).unwrap_or_default().into(),
        None,
    )
    .await;
    match res_call {
        Ok(_) => Ok(Reply::redirect(&r.base.url(&format!(
            "r/{}/{}?saved=1",
            res.slug,
            enc(&target)
        )))),
        Err(e) => {
            let err = Some((e.http_status(), e.to_string()));
            match key {
                Some(k) => item(c, r, res, k, err).await,
                None => list(c, r, res, err).await,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn forms_become_the_api_bodies() {
        let fields = [
            Field {
                name: "name",
                kind: Kind::Text,
                help: "",
            },
            Field {
                name: "max_cps",
                kind: Kind::NullableInt,
                help: "",
            },
            Field {
                name: "max_results",
                kind: Kind::Int,
                help: "",
            },
            Field {
                name: "enabled",
                kind: Kind::Bool,
                help: "",
            },
            Field {
                name: "blocked_prefixes",
                kind: Kind::List,
                help: "",
            },
            Field {
                name: "max_rate",
                kind: Kind::NullableDecimal,
                help: "",
            },
        ];
        let form: HashMap<String, String> = [
            ("name", ""),
            ("max_cps", ""),
            ("max_results", "x1"),
            ("enabled", "false"),
            ("blocked_prefixes", "1900, 1976,"),
            ("max_rate", "0.05"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        assert_eq!(
            body_of(&fields, &form),
            json!({"max_cps": null, "max_results": "x1", "enabled": false,
                   "blocked_prefixes": ["1900", "1976"], "max_rate": "0.05"})
        );
    }
}
