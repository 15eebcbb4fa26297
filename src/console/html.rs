//! The console's HTML: the page layout (skip link, navigation, main landmark), the style sheet,
//! forms carrying the CSRF token, tables of JSON values and the SVG sparkline. maud escapes every
//! interpolated value, so outside text never becomes markup.
//!
//! Owns: markup and style shared by the pages. Must not touch: data access.

use maud::{html, Markup, DOCTYPE};
use serde_json::Value;

use super::auth::Session;
use crate::admin::Role;

/// The style sheet (`/console/static/console.css`): system fonts, colours with at least 4.5:1
/// contrast, visible focus rings.
pub const CSS: &str = r#"
:root{--fg:#1b1f24;--muted:#4a5360;--bg:#fff;--line:#c9d1d9;--accent:#0b57d0;--bad:#b3261e;--good:#146c2e;--panel:#f3f5f8}
*{box-sizing:border-box}
body{margin:0;font:15px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:var(--fg);background:var(--bg)}
a{color:var(--accent)}
a:focus,button:focus,input:focus,select:focus,summary:focus{outline:3px solid #f9a825;outline-offset:2px}
.skip{position:absolute;left:-999px}.skip:focus{left:8px;top:8px;background:#fff;padding:6px;z-index:9}
header{display:flex;align-items:center;gap:18px;padding:8px 18px;background:#102a43;color:#fff;flex-wrap:wrap}
header a{color:#fff;text-decoration:none;padding:4px 6px;border-radius:4px}
header a[aria-current=page]{background:#334e68;text-decoration:underline}
header .brand{font-weight:700;margin-right:8px}
header form{margin-left:auto}
header .who{color:#d9e2ec}
main{padding:16px 22px;max-width:1400px}
.progress-log>.bar:has(~.bar){display:none}.bar progress{width:min(480px,70%);height:1.2rem;vertical-align:middle}
h1{font-size:1.45rem;margin:.2rem 0 1rem}h2{font-size:1.15rem;margin:1.4rem 0 .5rem}
table{border-collapse:collapse;width:100%;margin:.4rem 0 1rem;font-variant-numeric:tabular-nums}
th,td{border-bottom:1px solid var(--line);padding:5px 8px;text-align:left;vertical-align:top}
th{background:var(--panel);position:sticky;top:0}
td.num,th.num{text-align:right}
.kept{color:var(--good);font-weight:600}.dropped{color:var(--bad)}
.error{border-left:4px solid var(--bad);background:#fdecea;padding:8px 12px;margin:.6rem 0;white-space:pre-wrap}
.notice{border-left:4px solid var(--good);background:#e8f5e9;padding:8px 12px;margin:.6rem 0}
form.inline{display:inline}
fieldset{border:1px solid var(--line);border-radius:6px;padding:10px 14px;margin:.6rem 0}
.grid{display:grid;grid-template-columns:repeat(auto-fill,minmax(220px,1fr));gap:10px 16px}
label.inline{display:inline}
label{display:block;font-weight:600;font-size:.9rem;margin-bottom:2px}
input,select{font:inherit;padding:5px 7px;border:1px solid #68737d;border-radius:4px;width:100%;max-width:28rem}
input[type=checkbox]{width:auto}
button{font:inherit;padding:6px 14px;border-radius:4px;border:1px solid #0b57d0;background:#0b57d0;color:#fff;cursor:pointer}
button.secondary{background:#fff;color:#0b57d0}button.danger{background:var(--bad);border-color:var(--bad)}
header button{background:#334e68;border-color:#9fb3c8}
.cards{display:grid;grid-template-columns:repeat(auto-fill,minmax(260px,1fr));gap:12px}
.card{border:1px solid var(--line);border-radius:6px;padding:10px 12px;background:var(--panel)}
.card .big{font-size:1.6rem;font-weight:700}
.hint{color:var(--muted);font-size:.9rem}
.field-error{color:var(--bad);font-weight:600;font-size:.9rem;margin:2px 0 0}
input[aria-invalid=true],select[aria-invalid=true]{border:2px solid var(--bad)}
a.delete{color:var(--bad)}
progress{width:100%;max-width:28rem}
svg.spark{display:block}
"#;

/// Where the console lives for the browser: `<external_prefix>/console`.
#[derive(Clone, Debug)]
pub struct Base(pub String);

impl Base {
    /// `<prefix>/console/<rel>`
    pub fn url(&self, rel: &str) -> String {
        format!("{}/{}", self.0, rel.trim_start_matches('/'))
    }
}

/// The navigation: (path under /console/, label); the generic resource pages
/// (`super::catalog::RESOURCES`) come between the first and the last entries.
const NAV_HEAD: &[(&str, &str)] = &[
    ("", "Overview"),
    ("simulate", "Route simulator"),
    ("decks", "Rate decks"),
];
const NAV_TAIL: &[(&str, &str)] = &[("cdrs", "CDRs"), ("audit", "Audit log")];

fn nav() -> Vec<(String, &'static str)> {
    let mut v: Vec<(String, &'static str)> =
        NAV_HEAD.iter().map(|(p, l)| (p.to_string(), *l)).collect();
    v.extend(
        super::catalog::RESOURCES
            .iter()
            .map(|r| (format!("r/{}", r.slug), r.title)),
    );
    v.extend(NAV_TAIL.iter().map(|(p, l)| (p.to_string(), *l)));
    v
}

/// A full page: `title`, the navigation with `current` marked, `body`. `refresh_s` adds a
/// meta refresh (the overview's live figures; no script needed).
pub fn layout(
    base: &Base,
    s: Option<&Session>,
    current: &str,
    title: &str,
    refresh_s: Option<u32>,
    body: Markup,
) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                @if let Some(r) = refresh_s { meta http-equiv="refresh" content=(r); }
                title { (title) " · warpd console" }
                link rel="stylesheet" href=(base.url("static/console.css"));
            }
            body {
                a.skip href="#main" { "Skip to content" }
                header {
                    span.brand { "warpd" }
                    @if let Some(s) = s {
                        nav aria-label="Console" {
                            @for (path, label) in nav() {
                                @if path == current {
                                    a href=(base.url(&path)) aria-current="page" { (label) }
                                } @else {
                                    a href=(base.url(&path)) { (label) }
                                }
                            }
                        }
                        form.inline method="post" action=(base.url("logout")) {
                            (csrf(s))
                            span.who { (s.who.name) " (" (s.who.role.as_str()) ") " }
                            button type="submit" id="sign-out" { "Sign out" }
                        }
                    }
                }
                main id="main" tabindex="-1" {
                    h1 { (title) }
                    (body)
                }
            }
        }
    }
}

/// The hidden CSRF field every form carries.
pub fn csrf(s: &Session) -> Markup {
    html! { input type="hidden" name="csrf" value=(s.csrf); }
}

/// Whether the user's role allows what needs `need` (pages hide controls it may not use; the
/// POST is refused anyway).
pub fn may(s: &Session, need: Option<Role>) -> bool {
    need.is_some_and(|n| s.who.role.allows(n))
}

/// A confirmation step (a deck activation, a deletion): `question`, a "Yes, `verb`" button
/// POSTing the CSRF token to `action`, and a Cancel link back to `cancel`.
pub fn confirm(
    s: &Session,
    question: &str,
    verb: &str,
    action: &str,
    button_id: &str,
    cancel: &str,
) -> Markup {
    html! {
        form method="post" action=(action) {
            (csrf(s))
            p { (question) }
            p { button type="submit" id=(button_id) { "Yes, " (verb) } " "
                a href=(cancel) { "Cancel" } }
        }
    }
}

pub fn error_box(msg: &str) -> Markup {
    html! { div.error role="alert" { (msg) } }
}

pub fn notice(msg: &str) -> Markup {
    html! { div.notice role="status" { (msg) } }
}

/// A JSON value as table text: strings bare, arrays joined, null empty, objects as JSON.
pub fn text(v: &Value) -> String {
    match v {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        Value::Array(a) => a.iter().map(text).collect::<Vec<_>>().join(", "),
        Value::Object(_) => v.to_string(),
        other => other.to_string(),
    }
}

/// A table of JSON objects, one column per key of `columns`.
pub fn table(rows: &[Value], columns: &[&str], link: Option<(&str, &Base, &str)>) -> Markup {
    table_with(rows, columns, link, None)
}

/// A last column of a table: its header and the cell of row `i`.
pub type LastColumn<'a> = (&'a str, &'a dyn Fn(usize, &Value) -> Markup);

/// [`table`] with a `last` column after the values (a row's controls).
pub fn table_with(
    rows: &[Value],
    columns: &[&str],
    link: Option<(&str, &Base, &str)>,
    last: Option<LastColumn<'_>>,
) -> Markup {
    html! {
        table {
            thead { tr {
                @for c in columns { th scope="col" { (c) } }
                @if let Some((h, _)) = last { th scope="col" { (h) } }
            } }
            tbody {
                @for (i, r) in rows.iter().enumerate() {
                    tr {
                        @for (i, c) in columns.iter().enumerate() {
                            td {
                                @match (i, link) {
                                    (0, Some((key, base, prefix))) => {
                                        a href=(base.url(&format!("{prefix}/{}", enc(&text(&r[key]))))) { (text(&r[*c])) }
                                    }
                                    _ => { (text(&r[*c])) }
                                }
                            }
                        }
                        @if let Some((_, cell)) = last { td { (cell(i, r)) } }
                    }
                }
            }
        }
    }
}

/// A path segment, percent-encoded.
pub fn enc(s: &str) -> String {
    percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC).to_string()
}

/// A query string from pairs (empty values left out).
pub fn query(pairs: &[(&str, &str)]) -> String {
    let mut q = url::form_urlencoded::Serializer::new(String::new());
    for (k, v) in pairs.iter().filter(|(_, v)| !v.is_empty()) {
        q.append_pair(k, v);
    }
    q.finish()
}

/// A sparkline of `points` (oldest first) as inline SVG with a text alternative.
pub fn sparkline(points: &[f64], label: &str) -> Markup {
    let (w, h) = (240.0_f64, 48.0_f64);
    let max = points.iter().copied().fold(0.0_f64, f64::max).max(1e-9);
    let n = points.len().max(2) as f64 - 1.0;
    let path = points
        .iter()
        .enumerate()
        .map(|(i, p)| {
            format!(
                "{}{:.1},{:.1}",
                if i == 0 { "M" } else { "L" },
                i as f64 * w / n,
                h - 2.0 - (p / max) * (h - 4.0)
            )
        })
        .collect::<String>();
    let last = points.last().copied().unwrap_or(0.0);
    html! {
        svg.spark width=(w) height=(h) viewBox=(format!("0 0 {w} {h}")) role="img" aria-label=(format!("{label}: now {last:.1}, peak {max:.1}")) {
            rect width=(w) height=(h) fill="#fff" stroke="#c9d1d9" {}
            path d=(path) fill="none" stroke="#0b57d0" stroke-width="2" {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outside_text_is_escaped_and_urls_carry_the_prefix() {
        let t = table(
            &[serde_json::json!({"name": "<script>x</script>", "n": [1, 2]})],
            &["name", "n"],
            None,
        )
        .into_string();
        assert!(
            t.contains("&lt;script&gt;") && !t.contains("<script>"),
            "{t}"
        );
        assert!(t.contains("1, 2"));
        let b = Base("/ops/console".into());
        assert_eq!(b.url("r/vendors"), "/ops/console/r/vendors");
        assert_eq!(enc("a b/c"), "a%20b%2Fc");
        assert_eq!(query(&[("ban", "1001"), ("x", "")]), "ban=1001");
        let s = sparkline(&[0.0, 2.0, 1.0], "dips/s").into_string();
        assert!(
            s.contains("aria-label=\"dips/s: now 1.0, peak 2.0\""),
            "{s}"
        );
    }
}
