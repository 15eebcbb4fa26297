//! `/console/cdrs`: CDR search (time range, customer, numbers by prefix, route, vendor,
//! disposition), keyset pagination with the API's cursor (`crate::cdr::query`), CSV export.
//! Numbers (ANI, DNIS, LRN) are masked for the `readonly` role, on the page and in the export;
//! `ops` and `admin` see them in clear.

use hyper::header::{HeaderValue, CONTENT_DISPOSITION, CONTENT_TYPE};
use hyper::StatusCode;
use maud::html;
use serde_json::Value;

use super::super::html::{self, layout, text};
use super::super::{Console, ConsoleError, Reply, ReplyBody, Req};
use crate::admin::Role;
use crate::cdr::query::{self, CdrFilter, Format};

const FIELDS: [(&str, &str, &str); 8] = [
    (
        "from",
        "From",
        "RFC 3339, e.g. 2026-12-06T00:00:00Z, or unix seconds",
    ),
    ("to", "To", "exclusive"),
    ("ban", "Customer BAN", ""),
    ("ani_prefix", "ANI starts with", "E.164 digits"),
    ("dnis_prefix", "DNIS starts with", "E.164 digits"),
    ("route", "Route", ""),
    ("vendor", "Vendor", ""),
    (
        "disposition",
        "Disposition",
        "answered, busy, no_answer, cancelled, failed",
    ),
];

const COLUMNS: [&str; 11] = [
    "started_at",
    "call_id",
    "customer_ban",
    "ani",
    "dnis",
    "route_id",
    "vendor",
    "disposition",
    "sip_code",
    "duration_ms",
    "price",
];

fn filter(r: &Req) -> Result<CdrFilter, String> {
    let bad = |e: query::FilterError| format!("{}: {}", e.field, e.why);
    let opt = |k: &str| Some(r.q(k).to_string()).filter(|s| !s.is_empty());
    let mut f = CdrFilter {
        ban: opt("ban"),
        route: opt("route"),
        vendor: opt("vendor"),
        disposition: opt("disposition"),
        ani_prefix: opt("ani_prefix").map(|s| s.trim_start_matches('+').to_string()),
        dnis_prefix: opt("dnis_prefix").map(|s| s.trim_start_matches('+').to_string()),
        ..CdrFilter::default()
    };
    if !r.q("from").is_empty() {
        f.from = Some(query::parse_time("from", r.q("from")).map_err(bad)?);
    }
    if !r.q("to").is_empty() {
        f.to = Some(query::parse_time("to", r.q("to")).map_err(bad)?);
    }
    if let (Some(a), Some(b)) = (f.from, f.to) {
        if b <= a {
            return Err("to: must be after from".into());
        }
    }
    if !r.q("cursor").is_empty() {
        f.after = Some(query::decode_cursor(r.q("cursor")).map_err(bad)?);
    }
    Ok(f)
}

/// Masks the numbers of a row for a role that may not see them.
fn masked(mut row: Value, role: Role) -> Value {
    if role == Role::Readonly {
        for k in ["ani", "dnis", "lrn"] {
            if let Some(s) = row[k].as_str().map(crate::numbering::mask) {
                row[k] = Value::from(s);
            }
        }
    }
    row
}

pub async fn page(c: &Console, r: &Req) -> Result<Reply, ConsoleError> {
    let searched = r.query.contains_key("search") || !r.q("cursor").is_empty();
    let mut error = None;
    let mut rows = vec![];
    let mut next = None;
    if searched {
        match (filter(r), &c.calls) {
            (Err(e), _) => error = Some(e),
            (_, None) => {
                error = Some("call tracking is disabled (calls.enabled): there are no CDRs".into())
            }
            (Ok(f), Some(calls)) => {
                let client = calls.pool().get().await?;
                let p = query::page(&client, &f, 50).await?;
                rows = p
                    .rows
                    .into_iter()
                    .map(|x| masked(x, r.session.who.role))
                    .collect();
                next = p.next;
            }
        }
    }
    let pairs: Vec<(&str, &str)> = FIELDS.iter().map(|(k, _, _)| (*k, r.q(k))).collect();
    let body = html! {
        form method="get" action=(r.base.url("cdrs")) {
            input type="hidden" name="search" value="1";
            fieldset {
                legend { "Search CDRs" }
                div.grid {
                    @for (k, label, hint) in FIELDS {
                        div { label for=(k) { (label) } input id=(k) name=(k) value=(r.q(k)); @if !hint.is_empty() { div.hint { (hint) } } }
                    }
                }
                p { button type="submit" id="search" { "Search" } }
            }
        }
        @if let Some(e) = &error { (html::error_box(e)) }
        @if searched && error.is_none() {
            p {
                (rows.len()) " CDRs on this page. "
                a href=(r.base.url(&format!("cdrs/export.csv?{}", html::query(&pairs)))) { "Export all matching as CSV" }
                @if r.session.who.role == Role::Readonly { " Numbers are masked for your role." }
            }
            table id="cdrs" {
                thead { tr { @for col in COLUMNS { th scope="col" { (col) } } } }
                tbody { @for row in &rows { tr { @for col in COLUMNS { td { (text(&row[col])) } } } } }
            }
            @if let Some(n) = &next {
                @let mut p2 = pairs.clone();
                a href=(r.base.url(&format!("cdrs?search=1&{}", html::query(&{ p2.push(("cursor", n)); p2 })))) rel="next" { "Next page →" }
            }
        }
    };
    let status = if error.is_some() {
        StatusCode::BAD_REQUEST
    } else {
        StatusCode::OK
    };
    Ok(Reply::html(
        status,
        layout(&r.base, Some(&r.session), "cdrs", "CDRs", None, body),
    ))
}

/// `GET /console/cdrs/export.csv?…`: every matching CDR as CSV, page by page, masked per role.
pub async fn export(c: &Console, r: &Req) -> Result<Reply, ConsoleError> {
    let f = filter(r).map_err(ConsoleError::Invalid)?;
    let calls = c
        .calls
        .clone()
        .ok_or_else(|| ConsoleError::Invalid("call tracking is disabled (calls.enabled)".into()))?;
    let client = calls.pool().get().await?;
    let role = r.session.who.role;
    let (tx, rx) = tokio::sync::mpsc::channel::<Vec<u8>>(4);
    tokio::spawn(async move {
        if tx.send(query::csv_header()).await.is_err() {
            return;
        }
        let mut f = f;
        loop {
            let p = match query::page(&client, &f, query::MAX_LIMIT).await {
                Ok(p) => p,
                Err(e) => {
                    tracing::warn!(error = %crate::db::pg_detail(&e), "console CDR export ended early");
                    return;
                }
            };
            let rows: Vec<Value> = p.rows.into_iter().map(|x| masked(x, role)).collect();
            if !rows.is_empty() && tx.send(query::encode(&rows, Format::Csv)).await.is_err() {
                return;
            }
            match p.next.as_deref().map(query::decode_cursor) {
                Some(Ok(cur)) => f.after = Some(cur),
                _ => return,
            }
        }
    });
    Ok(Reply {
        status: StatusCode::OK,
        headers: vec![
            (
                CONTENT_TYPE,
                HeaderValue::from_static("text/csv; charset=utf-8"),
            ),
            (
                CONTENT_DISPOSITION,
                HeaderValue::from_static("attachment; filename=\"cdrs.csv\""),
            ),
        ],
        body: ReplyBody::Stream(rx),
    })
}
