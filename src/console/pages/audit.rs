//! `/console/audit`: the audit log, newest first: who changed what, the row before and after.
//! It is the admin API's `GET /v1/admin/audit` (admin role), called as the user.

use hyper::StatusCode;
use maud::html;

use super::super::html::{self, layout, text};
use super::super::{Console, ConsoleError, Reply, Req};
use super::api_get;

pub async fn page(c: &Console, r: &Req) -> Result<Reply, ConsoleError> {
    let limit = r.q("limit");
    let (rows, error) = match api_get(c, r, "/v1/admin/audit", &[("limit", limit)]).await {
        Ok(v) => (v.as_array().cloned().unwrap_or_default(), None),
        Err(ConsoleError::Admin(e)) => (vec![], Some((e.http_status(), e.to_string()))),
        Err(e) => return Err(e),
    };
    let body = html! {
        @if let Some((_, e)) = &error { (html::error_box(e)) }
        table id="audit" {
            thead { tr { @for h in ["when", "who", "action", "target", "before", "after"] { th scope="col" { (h) } } } }
            tbody {
                @for a in &rows {
                    tr {
                        td { (text(&a["at"])) } td { (text(&a["actor"])) } td { (text(&a["action"])) } td { (text(&a["target"])) }
                        td { details { summary { "before" } pre { (serde_json::to_string_pretty(&a["before"]).unwrap_or_default()) } } }
                        td { details { summary { "after" } pre { (serde_json::to_string_pretty(&a["after"]).unwrap_or_default()) } } }
                    }
                }
            }
        }
    };
    let status = error.map_or(StatusCode::OK, |(s, _)| s);
    Ok(Reply::html(
        status,
        layout(&r.base, Some(&r.session), "audit", "Audit log", None, body),
    ))
}
