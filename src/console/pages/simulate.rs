//! `/console/simulate`: the route simulator. The form's fields are the dip's own parameters,
//! parsed by the dip's parser (`warpd_core::routing::params::dip_from_query`, so its messages
//! name the field) and answered by the engine's `simulate` on the live snapshot (the code of
//! `lcr.simulate` / `POST /v1/routing/simulate`): the answer and every candidate route with why
//! it was kept or dropped.

use maud::html;

use super::super::html::{self, layout};
use super::super::{Console, ConsoleError, Reply, Req};
use crate::routing::{params::dip_from_query, DipAnswer};

pub fn page_fields() -> [(&'static str, &'static str, &'static str); 5] {
    [
        (
            "ban",
            "Customer BAN",
            "or leave empty and give the source IP",
        ),
        ("src_ip", "Source IP", "the INVITE's source address"),
        ("ani", "ANI (calling number)", "e.g. +13125551000"),
        ("dnis", "DNIS (called number)", "e.g. +12125551234"),
        ("lrn", "LRN (optional)", "ported number's routing number"),
    ]
}

pub fn page(c: &Console, r: &Req) -> Result<Reply, ConsoleError> {
    let asked = !r.q("dnis").is_empty() || !r.q("ani").is_empty();
    let at = r.q("at");
    let mut error = None;
    let mut sim = None;
    if asked {
        let q = html::query(&[
            ("ban", r.q("ban")),
            ("src_ip", r.q("src_ip")),
            ("ani", r.q("ani")),
            ("dnis", r.q("dnis")),
            ("lrn", r.q("lrn")),
        ]);
        let when = if at.is_empty() {
            Ok(chrono::Utc::now().timestamp())
        } else {
            crate::deck::parse::parse_when(at)
                .map(|us| us / 1_000_000)
                .map_err(|_| {
                    format!(
                        "at: {} is not a date/time",
                        warpd_core::excerpt::excerpt(at)
                    )
                })
        };
        match (dip_from_query(Some(&q)), when) {
            (Err(e), _) => error = Some(e.to_string()),
            (_, Err(e)) => error = Some(e),
            (Ok(_), Ok(_)) if !c.engine.is_ready() => {
                error = Some("not ready: no routing snapshot loaded yet".to_string())
            }
            (Ok(req), Ok(now)) => sim = Some(crate::routing::simulate(&c.engine.load(), &req, now)),
        }
    }
    let body = html! {
        form method="get" action=(r.base.url("simulate")) {
            fieldset {
                legend { "Dip to simulate" }
                div.grid {
                    @for (name, label, hint) in page_fields() {
                        div {
                            label for=(name) { (label) }
                            input id=(name) name=(name) value=(r.q(name)) aria-describedby=(format!("{name}-hint"));
                            div.hint id=(format!("{name}-hint")) { (hint) }
                        }
                    }
                    div {
                        label for="at" { "Time (optional)" }
                        input id="at" name="at" value=(at) aria-describedby="at-hint";
                        div.hint id="at-hint" { "e.g. 2026-12-06T18:00Z; default now" }
                    }
                }
                p { button type="submit" id="simulate" { "Simulate" } }
            }
        }
        @if let Some(e) = &error { (html::error_box(e)) }
        @if let Some(s) = &sim {
            h2 { "Answer" }
            @match &s.answer {
                DipAnswer::Route(a) => {
                    p id="answer" {
                        "Route to " strong { (a.routes.iter().map(|x| x.route_id.to_string()).collect::<Vec<_>>().join(" → ")) }
                        " (zone " (format!("{:?}", a.zone).to_lowercase())
                        @if let Some(p) = &a.partition { ", partition " (p) }
                        ")"
                    }
                    table {
                        thead { tr { th scope="col" { "#" } th scope="col" { "route" } th scope="col" { "vendor" }
                            th scope="col" class="num" { "buy rate" } th scope="col" class="num" { "sell rate" } th scope="col" { "uri" } } }
                        tbody {
                            @for (i, x) in a.routes.iter().enumerate() {
                                tr { td { (i + 1) } td { (x.route_id) } td { (x.vendor) }
                                    td.num { (format!("{:.5}", x.rate)) } td.num { (format!("{:.5}", x.customer_rate)) } td { (x.uri) } }
                            }
                        }
                    }
                }
                DipAnswer::Reject(_) => {
                    p id="answer" { "Rejected: " code { (serde_json::to_string(&s.answer).unwrap_or_default()) } }
                }
            }
            p.hint {
                "Customer " (s.customer.as_deref().unwrap_or("—"))
                ", class " (s.class.as_deref().unwrap_or("—"))
                ", LRN " (s.lrn.as_deref().unwrap_or("—"))
                ", partitions " (s.partitions.join(", "))
            }
            h2 { "Every candidate route" }
            table id="candidates" {
                caption.hint { "Each route the customer's partitions offer, in the order considered, and why it was kept or dropped." }
                thead { tr { th scope="col" { "route" } th scope="col" { "vendor" } th scope="col" { "partition" }
                    th scope="col" class="num" { "buy rate" } th scope="col" class="num" { "sell rate" } th scope="col" { "kept" } th scope="col" { "why" } } }
                tbody {
                    @for x in &s.candidates {
                        tr {
                            td { (x.route_id) } td { (x.vendor) } td { (x.partition.as_deref().unwrap_or("")) }
                            td.num { (x.rate.map(|v| format!("{v:.5}")).unwrap_or_default()) }
                            td.num { (x.customer_rate.map(|v| format!("{v:.5}")).unwrap_or_default()) }
                            @if x.kept { td.kept { "kept" } } @else { td.dropped { "dropped" } }
                            td { (x.reason) }
                        }
                    }
                }
            }
        }
    };
    let status = if error.is_some() {
        hyper::StatusCode::BAD_REQUEST
    } else {
        hyper::StatusCode::OK
    };
    Ok(Reply::html(
        status,
        layout(
            &r.base,
            Some(&r.session),
            "simulate",
            "Route simulator",
            None,
            body,
        ),
    ))
}
