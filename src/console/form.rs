//! The forms of the generic resource pages: a descriptor's fields as inputs (labelled, hints tied
//! to them), a submitted form as the admin API's JSON body, and a refused submission shown again
//! with the API's message next to the field it names.
//!
//! Owns: form ↔ JSON for descriptors, form markup. Must not touch: validation (the admin API's).

use std::collections::HashMap;

use hyper::StatusCode;
use maud::{html, Markup};
use serde_json::{Map, Value};

use super::catalog::{Field, Kind};
use super::html::{self, Base};
use super::Req;

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
                | Kind::IntList
                | Kind::Choice(_),
                true,
            ) => continue,
            (Kind::NullableText | Kind::NullableInt | Kind::NullableDecimal, true) => Value::Null,
            (Kind::Int | Kind::NullableInt, false) => int(raw),
            (Kind::Bool, _) => match raw {
                "true" => Value::Bool(true),
                "false" => Value::Bool(false),
                "" => continue,
                other => Value::from(other),
            },
            (Kind::List, _) => Value::Array(items(raw).map(Value::from).collect()),
            (Kind::IntList, false) => Value::Array(items(raw).map(int).collect()),
            (_, false) => Value::from(raw),
        };
        m.insert(f.name.to_string(), v);
    }
    Value::Object(m)
}

/// The items of a comma-separated list.
fn items(raw: &str) -> impl Iterator<Item = &str> {
    raw.split(',').map(str::trim).filter(|s| !s.is_empty())
}

/// An integer, or the text as given (the API then names the field).
fn int(raw: &str) -> Value {
    raw.parse::<i64>()
        .map(Value::from)
        .unwrap_or_else(|_| Value::from(raw))
}

/// The form text of field `f` of a stored item (`DecimalE7`: its `<name>_e7` as a decimal;
/// a `Secret` is never shown).
pub fn form_value(f: &Field, obj: &Map<String, Value>) -> String {
    match f.kind {
        Kind::Secret => String::new(),
        Kind::DecimalE7 => match obj.get(&format!("{}_e7", f.name)).and_then(Value::as_i64) {
            Some(v) => e7(v),
            None => String::new(),
        },
        _ => html::text(obj.get(f.name).unwrap_or(&Value::Null)),
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

/// The field of `fields` an admin API message names: messages name the offending field first
/// (`cidr: "x" is not a CIDR …`, `days[0]: …`; src/admin/error.rs).
pub fn field_named<'a>(fields: &'a [Field], message: &str) -> Option<&'a Field> {
    let (head, _) = message.split_once(": ")?;
    let name = head.split(['[', '.']).next().unwrap_or(head);
    fields.iter().find(|f| f.name == name)
}

/// A submission the admin API refused: its status and message, and the form (by its id
/// prefix: `new`, `edit`, a child's slug) shown again with what was typed.
pub struct Refused {
    pub status: StatusCode,
    pub message: String,
    pub form: String,
}

impl Refused {
    pub fn new(e: &crate::admin::AdminError, form: &str) -> Refused {
        Refused {
            status: e.http_status(),
            message: e.to_string(),
            form: form.to_string(),
        }
    }

    /// The alert at the top of the page: the message, linking to the field it names (the
    /// message stands again next to that field) when it is one of `fields` of this form.
    pub fn summary(&self, fields: &[Field]) -> Markup {
        match field_named(fields, &self.message) {
            Some(f) => html! {
                div.error role="alert" {
                    "Not saved: "
                    a href=(format!("#{}-{}", self.form, f.name)) { (self.message) }
                }
            },
            None => html::error_box(&self.message),
        }
    }
}

/// A form of `fields` POSTing to `action` with the CSRF token. Inputs are `<prefix>-<name>`,
/// filled by `value`; when `refused` is this form's, they show what was typed and the API's
/// message stands next to the field it names.
pub struct FormSpec<'a> {
    pub action: String,
    pub legend: &'a str,
    pub prefix: &'a str,
    pub fields: &'a [Field],
    pub button_id: &'a str,
    pub button: &'a str,
}

pub fn form(
    r: &Req,
    spec: &FormSpec<'_>,
    value: &dyn Fn(&Field) -> String,
    refused: Option<&Refused>,
) -> Markup {
    let mine = refused.filter(|x| x.form == spec.prefix);
    let bad = mine.and_then(|x| field_named(spec.fields, &x.message).map(|f| (f.name, x)));
    html! {
        form method="post" action=(spec.action) {
            (html::csrf(&r.session))
            fieldset {
                legend { (spec.legend) }
                div.grid {
                    @for f in spec.fields {
                        @let id = format!("{}-{}", spec.prefix, f.name);
                        @let cur = if mine.is_some() { r.f(f.name).to_string() } else { value(f) };
                        @let err = bad.filter(|(n, _)| *n == f.name).map(|(_, x)| x.message.as_str());
                        (input(f, &id, &cur, err))
                    }
                }
                p { button type="submit" id=(spec.button_id) { (spec.button) } }
            }
        }
    }
}

/// One labelled input; its hint and its `error` (the API's message) are tied to it.
pub fn input(f: &Field, id: &str, current: &str, error: Option<&str>) -> Markup {
    let help = format!("{id}-help");
    let err = format!("{id}-error");
    let described: Vec<&str> = [(!f.help.is_empty(), help.as_str()), (error.is_some(), &err)]
        .into_iter()
        .filter_map(|(on, id)| on.then_some(id))
        .collect();
    let described = (!described.is_empty()).then(|| described.join(" "));
    let invalid = error.map(|_| "true");
    html! {
        div {
            label for=(id) { (f.name) }
            @match f.kind {
                Kind::Bool => {
                    select id=(id) name=(f.name) aria-describedby=[described.as_deref()] aria-invalid=[invalid] {
                        // no value yet (an item a PUT creates): left out unless chosen
                        @if current.is_empty() { option value="" selected { "—" } }
                        @for o in ["true", "false"] {
                            option value=(o) selected[current == o] { (o) }
                        }
                    }
                }
                Kind::Choice(words) => {
                    select id=(id) name=(f.name) aria-describedby=[described.as_deref()] aria-invalid=[invalid] {
                        @for o in words { option value=(o) selected[current == *o] { (o) } }
                    }
                }
                Kind::Secret => {
                    input id=(id) name=(f.name) type="password" autocomplete="new-password"
                        aria-describedby=[described.as_deref()] aria-invalid=[invalid];
                }
                _ => {
                    input id=(id) name=(f.name) value=(current)
                        aria-describedby=[described.as_deref()] aria-invalid=[invalid];
                }
            }
            @if !f.help.is_empty() { div.hint id=(help) { (f.help) } }
            @if let Some(e) = error { p.field-error id=(err) { (e) } }
        }
    }
}

/// The search form of a list: GET, each field a query parameter.
pub fn search(base: &Base, current: &str, r: &Req, fields: &[Field]) -> Markup {
    html! {
        form method="get" action=(base.url(current)) role="search" {
            fieldset {
                legend { "Search" }
                div.grid {
                    @for f in fields { (input(f, &format!("q-{}", f.name), r.q(f.name), None)) }
                }
                p { button type="submit" id="search" { "Search" } }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn f(name: &'static str, kind: Kind) -> Field {
        Field {
            name,
            kind,
            help: "",
        }
    }

    fn form_of(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn forms_become_the_api_bodies() {
        let fields = [
            f("name", Kind::Text),
            f("max_cps", Kind::NullableInt),
            f("max_results", Kind::Int),
            f("enabled", Kind::Bool),
            f("blocked_prefixes", Kind::List),
            f("max_rate", Kind::NullableDecimal),
            f("days", Kind::IntList),
            f("other_days", Kind::IntList),
        ];
        let form = form_of(&[
            ("name", ""),
            ("max_cps", ""),
            ("max_results", "x1"),
            ("enabled", "false"),
            ("blocked_prefixes", "1900, 1976,"),
            ("max_rate", "0.05"),
            ("days", "1, 5,x"),
            ("other_days", " "),
        ]);
        assert_eq!(
            body_of(&fields, &form),
            json!({"max_cps": null, "max_results": "x1", "enabled": false,
                   "blocked_prefixes": ["1900", "1976"], "max_rate": "0.05",
                   "days": [1, 5, "x"]})
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
        assert_eq!(form_value(&f("credit_limit", Kind::DecimalE7), &obj), "10");
        assert_eq!(form_value(&f("password", Kind::Secret), &obj), "");
        assert_eq!(form_value(&f("mode", Kind::Text), &obj), "prepaid");
        let form = form_of(&[("password", ""), ("credit_limit", "5")]);
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

    #[test]
    fn a_message_is_placed_at_the_field_it_names() {
        let fields = [
            f("cidr", Kind::Text),
            f("days", Kind::IntList),
            f("start_time", Kind::Text),
        ];
        let table = [
            ("cidr: \"10.0.0.300\" is not a CIDR", Some("cidr")),
            ("days[0]: 8 is out of range 1..=7", Some("days")),
            ("start_time: needs an end_time", Some("start_time")),
            ("customer \"9\" does not exist: no such resource", None),
            ("max_cps: -1 is out of range", None),
            ("no field at all", None),
        ];
        for (msg, want) in table {
            assert_eq!(field_named(&fields, msg).map(|f| f.name), want, "{msg}");
        }
        let m = input(&fields[0], "source_ips-cidr", "x", Some("cidr: bad")).into_string();
        assert!(
            m.contains("aria-invalid=\"true\"")
                && m.contains("aria-describedby=\"source_ips-cidr-error\"")
                && m.contains("id=\"source_ips-cidr-error\">cidr: bad<"),
            "{m}"
        );
        let m = input(&fields[0], "edit-cidr", "x", None).into_string();
        assert!(
            !m.contains("aria-invalid") && !m.contains("aria-describedby"),
            "{m}"
        );
    }
}
