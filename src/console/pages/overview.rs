//! `/console/`: the overview. Dips per second and their outcomes, live calls (sparklines of the
//! last minutes from `sampler.rs`), ASR/ACD/PDD per route, the routing snapshot (generation,
//! age, data version, size), the CDR writer and its spool, RTPEngine nodes. The page refreshes
//! itself every 5 s (a meta refresh: no script).

use hyper::StatusCode;
use maud::html;

use super::super::html::{layout, sparkline};
use super::super::sampler::{dips_by_outcome, Sampler};
use super::super::{Console, ConsoleError, Reply, Req};

pub async fn page(c: &Console, r: &Req) -> Result<Reply, ConsoleError> {
    let samples = c.sampler.samples();
    let rates = Sampler::dip_rates(&samples);
    let live: Vec<f64> = samples.iter().map(|s| s.live_calls as f64).collect();
    let outcomes = dips_by_outcome(&c.metrics);
    let now = chrono::Utc::now().timestamp();
    let snap = c.engine.is_ready().then(|| c.engine.load());
    let quality = c
        .calls
        .as_ref()
        .map(|k| k.route_quality(false))
        .unwrap_or_default();
    let nodes = c.media.as_ref().map(|m| m.nodes()).unwrap_or_default();
    let body = html! {
        div.cards {
            div.card {
                h2 { "Dips per second" }
                div.big id="dips-rate" { (format!("{:.1}", rates.last().copied().unwrap_or(0.0))) }
                (sparkline(&rates, "dips per second, last 5 minutes"))
            }
            div.card {
                h2 { "Live calls" }
                div.big id="live-calls" { (c.calls.as_ref().map_or(0, |k| k.live_calls())) }
                (sparkline(&live, "live calls, last 5 minutes"))
            }
            div.card {
                h2 { "Routing snapshot" }
                @match &snap {
                    Some(s) => {
                        @let st = s.stats();
                        p { "generation " strong id="generation" { (s.generation()) } ", data version " (s.data_version().map_or("none".to_string(), |v| v.to_string())) }
                        p { "built " (now - st.built_at) " s ago" }
                        p.hint { (st.customers) " customers, " (st.routes) " routes, " (st.rate_entries) " rate rows" }
                    }
                    None => { p { "not ready: no snapshot loaded yet" } }
                }
            }
            div.card {
                h2 { "CDR writer" }
                @match &c.calls {
                    Some(k) => {
                        @let m = &k.shared().metrics;
                        p { "CDRs written " strong { (m.cdrs_written.get()) } }
                        p { "spool " strong id="spool" { (m.spool_bytes.get()) " bytes" } @if m.spool_bytes.get() > 0 { " — PostgreSQL writes are failing or catching up" } }
                        p { "queued starts dropped " (m.start_not_queued.get()) }
                    }
                    None => { p { "call tracking is off (calls.enabled)" } }
                }
            }
        }
        h2 { "Dip outcomes since start" }
        table id="outcomes" {
            thead { tr { th scope="col" { "outcome" } th scope="col" class="num" { "dips" } } }
            tbody { @for (k, v) in &outcomes { tr { td { (k) } td.num { (v) } } } }
        }
        h2 { "Route quality (rolling window)" }
        table id="quality" {
            thead { tr { th scope="col" { "route" } th scope="col" class="num" { "attempts" } th scope="col" class="num" { "ASR" }
                th scope="col" class="num" { "ACD (s)" } th scope="col" class="num" { "PDD (ms)" } } }
            tbody {
                @for q in &quality {
                    tr { td { (q.route_id) } td.num { (q.attempts) } td.num { (format!("{:.0} %", q.asr * 100.0)) }
                        td.num { (format!("{:.1}", q.acd_s)) } td.num { (q.pdd_ms.map(|p| format!("{p:.0}")).unwrap_or_default()) } }
                }
            }
        }
        h2 { "RTPEngine nodes" }
        @if nodes.is_empty() { p.hint { "media control is off ([media] not configured)" } }
        @else {
            table id="nodes" {
                thead { tr { th scope="col" { "node" } th scope="col" { "health" } th scope="col" class="num" { "calls" } th scope="col" { "last error" } } }
                tbody { @for n in &nodes { tr { td { (n.address) } td { @if n.healthy { span.kept { "healthy" } } @else { span.dropped { "down" } } }
                    td.num { (n.calls) } td { (n.last_error.as_deref().unwrap_or("")) } } } }
            }
        }
    };
    Ok(Reply::html(
        StatusCode::OK,
        layout(&r.base, Some(&r.session), "", "Overview", Some(5), body),
    ))
}
