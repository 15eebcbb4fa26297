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

use super::catalog::{Field, Kind, Resource, Source};
use super::html::{self, enc, layout, may};
use super::{Console, ConsoleError, Reply, Req};

/// A form's fields as the JSON body of `fields` (see [`Kind`]).
pub fn body_of(fields: &[Field], form: &HashMap<String, String>) -> Value {
    let mut m = Map::new();
    for f in fields {
        let raw = form.get(f.name).map(|s| s.trim()).unwrap_or("");
        let v = match (f.kind, raw.is_empty()) {
            (
                Kind::Text
                | Kind::Int
                | Kind::Decimal
                | Kind::DecimalE7
                | Kind::Secret
                | Kind::Choice(_),
                true,
            ) => continue,
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

/// The form text of field `f` of a stored item (`DecimalE7`: its `<name>_e7` as a decimal;
/// a `Secret` is never shown).
fn form_value(f: &Field, obj: &Map<String, Value>) -> String {
    match f.kind {
        Kind::Secret => String::new(),
        Kind::DecimalE7 => match obj.get(&format!("{}_e7", f.name)).and_then(Value::as_i64) {
            Some(v) => e7(v),
            None => String::new(),
        },
        _ => shown(obj.get(f.name).unwrap_or(&Value::Null)),
    }
}

/// 1e-7 units as a decimal without trailing zeros (`250000000` → `25`, `-15000000` → `-1.5`).
fn e7(v: i64) -> String {
    let sign = if v < 0 { "-" } else { "" };
    let a = v.unsigned_abs();
    let frac = format!("{:07}", a % 10_000_000);
    let frac = frac.trim_end_matches('0');
    if frac.is_empty() {
        format!("{sign}{}", a / 10_000_000)
    } else {
        format!("{sign}{}.{frac}", a / 10_000_000)
    }
}

fn input(f: &Field, id: &str, current: &str) -> Markup {
    html! {
        div {
            label for=(id) { (f.name) }
            @match f.kind {
                Kind::Bool => {
                    select id=(id) name=(f.name) {
                        // no value yet (an item a PUT creates): left out unless chosen
                        @if current.is_empty() { option value="" selected { "—" } }
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
                Kind::Secret => {
                    input id=(id) name=(f.name) type="password" autocomplete="new-password" aria-describedby=(format!("{id}-help"));
                }
                _ => { input id=(id) name=(f.name) value=(current) aria-describedby=(format!("{id}-help")); }
            }
            @if !f.help.is_empty() { div.hint id=(format!("{id}-help")) { (f.help) } }
        }
    }
}

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
    error: Option<(StatusCode, String)>,
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
            q.push(("after", shown(&last[res.key])));
            let pairs: Vec<(&str, &str)> = q.iter().map(|(k, v)| (*k, v.as_str())).collect();
            Some(format!("r/{}?{}", res.slug, html::query(&pairs)))
        }
        _ => None,
    };
    let can_create =
        !res.create.is_empty() && may(&r.session, crate::admin::role_needed("POST", res.api));
    let current = format!("r/{}", res.slug);
    let body = html! {
        @if let Some((_, e)) = &error { (html::error_box(e)) }
        @if !res.search.is_empty() {
            form method="get" action=(r.base.url(&current)) role="search" {
                fieldset {
                    legend { "Search" }
                    div.grid {
                        @for f in res.search { (input(f, &format!("q-{}", f.name), r.q(f.name))) }
                    }
                    p { button type="submit" id="search" { "Search" } }
                }
            }
        }
        p.hint {
            (rows.len()) " rows"
            @if res.page.is_some() && !r.q("after").is_empty() { " after " (r.q("after")) }
            ". Select one to see all its settings."
        }
        (html::table(&rows, res.columns, Some((res.key, &r.base, &current))))
        @if let Some(n) = &next { p { a href=(r.base.url(n)) rel="next" id="next-page" { "Next page →" } } }
        @if can_create {
            form method="post" action=(r.base.url(&current)) {
                (html::csrf(&r.session))
                fieldset {
                    legend { "New " (res.title.to_lowercase().trim_end_matches('s')) }
                    div.grid {
                        @for f in res.create { (input(f, &format!("new-{}", f.name), r.f(f.name))) }
                    }
                    p { button type="submit" id="create" { "Create" } }
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

/// `GET /console/r/<slug>/<key>`: one item, its tables, its edit form and its action forms.
pub async fn item(
    c: &Console,
    r: &Req,
    res: &Resource,
    key: &str,
    error: Option<(StatusCode, String)>,
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
            (Source::Api(p), None) => get(c, r, &p.replace("{key}", &html::enc(key))).await?,
        };
        tables.push((ch, rows.as_array().cloned().unwrap_or_default()));
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
    let submitted = error.is_some();
    let body = html! {
        p { a href=(r.base.url(&current)) { "← all " (res.title.to_lowercase()) } }
        @if let Some((_, e)) = &error { (html::error_box(e)) }
        @if let Some(m) = &missing { (html::notice(&format!("{m}: saving the form creates it."))) }
        @if r.q("saved") == "1" { (html::notice("Saved.")) }
        @if !obj.is_empty() {
            table {
                tbody {
                    @for (k, val) in obj.iter().filter(|(k, _)| !in_child(k)) {
                        tr { th scope="row" { (k) } td { (shown(val)) } }
                    }
                }
            }
        }
        @for (ch, rows) in &tables {
            h2 { (ch.title) }
            @if rows.is_empty() { p.hint { "None." } } @else { (html::table(rows, ch.columns, None)) }
        }
        @if can_edit {
            form method="post" action=(r.base.url(&here)) {
                (html::csrf(&r.session))
                fieldset {
                    legend { "Edit" }
                    div.grid {
                        @for f in res.edit {
                            @let cur = if submitted { r.f(f.name).to_string() } else { form_value(f, &obj) };
                            (input(f, &format!("edit-{}", f.name), &cur))
                        }
                    }
                    p { button type="submit" id="save" { "Save" } }
                }
            }
        }
        @for (i, a) in res.actions.iter().enumerate() {
            @let api = a.path.replace("{key}", &enc(key));
            @if missing.is_none() && may(&r.session, crate::admin::role_needed("POST", &api)) {
                form method="post" action=(r.base.url(&format!("{here}/do/{i}"))) {
                    (html::csrf(&r.session))
                    fieldset {
                        legend { (a.title) }
                        div.grid {
                            @for f in a.fields { (input(f, &format!("do{i}-{}", f.name), "")) }
                        }
                        p { button type="submit" id=(format!("do-{i}")) { (a.title) } }
                    }
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
        Some(k) => (res.edit_method, res.item_path(&enc(k)), res.edit),
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
    match call(c, r, method, &path, HashMap::new(), Some(&body)).await {
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

/// `POST /console/r/<slug>/<key>/do/<n>`: the item's action form `n` through the admin
/// handler of its path; the item page again, with the API's message on an error.
pub async fn action(
    c: &Console,
    r: &Req,
    res: &Resource,
    key: &str,
    n: &str,
) -> Result<Reply, ConsoleError> {
    let a = n
        .parse::<usize>()
        .ok()
        .and_then(|i| res.actions.get(i))
        .ok_or_else(|| ConsoleError::NotFound(warpd_core::excerpt::excerpt(n)))?;
    let path = a.path.replace("{key}", &enc(key));
    let body = body_of(a.fields, &r.form);
    match call(c, r, "POST", &path, HashMap::new(), Some(&body)).await {
        Ok(_) => Ok(Reply::redirect(&r.base.url(&format!(
            "r/{}/{}?saved=1",
            res.slug,
            enc(key)
        )))),
        Err(e) => item(c, r, res, key, Some((e.http_status(), e.to_string()))).await,
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

    #[test]
    fn money_in_e7_units_is_shown_as_a_decimal_and_secrets_never() {
        let table = [
            (0, "0"),
            (250_000_000, "25"),
            (-15_000_000, "-1.5"),
            (45_000, "0.0045"),
            (1, "0.0000001"),
        ];
        for (v, want) in table {
            assert_eq!(e7(v), want, "{v}");
        }
        let obj: Map<String, Value> = serde_json::from_value(
            json!({"credit_limit_e7": 100_000_000, "password": "x", "mode": "prepaid"}),
        )
        .unwrap();
        let f = |name, kind| Field {
            name,
            kind,
            help: "",
        };
        assert_eq!(form_value(&f("credit_limit", Kind::DecimalE7), &obj), "10");
        assert_eq!(form_value(&f("password", Kind::Secret), &obj), "");
        assert_eq!(form_value(&f("mode", Kind::Text), &obj), "prepaid");
        let form: HashMap<String, String> = [("password", ""), ("credit_limit", "5")]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        assert_eq!(
            body_of(
                &[
                    f("password", Kind::Secret),
                    f("credit_limit", Kind::DecimalE7)
                ],
                &form
            ),
            json!({"credit_limit": "5"})
        );
    }
}
