//! Inbound calls (issue 19) in the live-call layer: the inbound dip's answer is admitted under
//! the customer's limits and then the trunk's (`CallTable::admit` / `admit_trunk`; 503 when one
//! is reached) and, with a call_id, starts the call: its start event says direction `inbound`,
//! the trunk and the number, and offers one "route" per destination (route id = the destination
//! id of the answer, vendor = the delivering vendor) priced at the number's inbound per-minute
//! rate. The delivering vendor's cost is left out (0): warpd has no origination decks yet.
//! Billing increments: the customer's (`billing_min_seconds`/`billing_inc_seconds`), else 60/60.
//! An inbound call refused at the dip gets its rejected CDR like an outbound one, except for a
//! source that is no origination peer (403): Kamailio then challenges it for credentials.
//!
//! Owns: that translation. Must not touch: the procedure (core), the writer.

use super::events::{self, Event, EventData, RouteOffer, StartInfo};
use super::state::{Admit, CallPriority};
use super::{e164_or_raw, now_us, CallService, Job};
use crate::routing::inbound::{InboundAnswer, InboundReject, InboundRequest};

/// Billing increments of an inbound call when the customer has none.
const DEFAULT_INC: u32 = 60;

pub(super) fn on_inbound(
    svc: &CallService,
    req: &InboundRequest,
    answer: InboundAnswer,
) -> InboundAnswer {
    let Some(call_id) = req.call_id.as_ref().filter(|c| events::valid_call_id(c)) else {
        return answer;
    };
    let r = match answer {
        InboundAnswer::Reject(rej) => {
            // 403, the source is no origination peer either: Kamailio challenges it for digest
            // credentials and the same Call-ID comes back as a trunk's call (issue 19): no CDR
            if rej.code != 403 {
                record_rejected(svc, req, call_id, &rej);
            }
            return InboundAnswer::Reject(rej);
        }
        InboundAnswer::Route(r) => r,
    };
    let limits = svc.limits.load();
    let now = now_us();
    let mut table = svc.shared.table();
    let ban = r.customer.to_string();
    let cl = limits.customers.get(&ban);
    let admitted = match table.admit(call_id, &ban, cl, now, CallPriority::Normal) {
        Admit::Retransmit => return InboundAnswer::Route(r),
        Admit::Ok => table.admit_trunk(
            &r.trunk,
            r.limits.max_calls,
            r.limits.max_cps,
            now,
            CallPriority::Normal,
        ),
        reject => reject,
    };
    if let Admit::Reject(limit) = admitted {
        svc.shared
            .metrics
            .limited
            .with_label_values(&[limit.label()])
            .inc();
        tracing::info!(ban = %ban, trunk = %r.trunk, reason = %limit, "inbound dip refused by call limits");
        drop(table);
        let rej = InboundReject {
            code: 503,
            reason: limit.to_string(),
        };
        record_rejected(svc, req, call_id, &rej);
        return InboundAnswer::Reject(rej);
    }
    let (min, inc) = match cl {
        Some(c) => (
            c.bill_min.unwrap_or(DEFAULT_INC),
            c.bill_inc.unwrap_or(DEFAULT_INC),
        ),
        None => (DEFAULT_INC, DEFAULT_INC),
    };
    let rate_e7 = i64::from(r.rate_units.0);
    let ev = Event {
        call_id: call_id.clone(),
        ts_us: now,
        data: EventData::Start(Box::new(StartInfo {
            ban: Some(ban),
            src_ip: Some(req.src_ip.to_string()),
            ani: e164_or_raw(&req.ani),
            dnis: e164_or_raw(&req.dnis),
            routes: r
                .destination_ids
                .iter()
                .map(|id| RouteOffer {
                    route_id: id.to_string(),
                    vendor: r.vendor.to_string(),
                    rate_e7: 0,
                    customer_rate_e7: rate_e7,
                    min,
                    inc,
                    zone: None,
                })
                .collect(),
            customer_min: Some(min),
            customer_inc: Some(inc),
            max_duration_s: Some(svc.max_duration_s),
            direction: Some("inbound".into()),
            trunk: Some(r.trunk.to_string()),
            number: Some(r.number.trim_start_matches('+').to_string()),
            // STIR/SHAKEN (issue 20): the verification outcome
            stir_attest: r.stir.attest.map(|a| a.as_str().to_string()),
            stir_origid: r.stir.origid.clone(),
            stir_verstat: Some(r.stir.verstat.as_str().to_string()),
            stir_reason: r.stir.reason.map(|x| x.as_str().to_string()),
            ..Default::default()
        })),
    };
    table.start(&ev, now);
    svc.shared.metrics.active.set(table.live() as i64);
    drop(table);
    queue(svc, ev);
    InboundAnswer::Route(r)
}

fn queue(svc: &CallService, ev: Event) {
    if svc
        .tx
        .try_send(Job {
            events: vec![ev],
            ack: None,
        })
        .is_err()
    {
        svc.shared.metrics.start_not_queued.inc();
    }
}

/// A refused inbound call's CDR (disposition `rejected`), as `CallService::record_rejected` does
/// for outbound ones; nothing for a call already known.
fn record_rejected(svc: &CallService, req: &InboundRequest, call_id: &str, r: &InboundReject) {
    {
        let table = svc.shared.table();
        if table.get(call_id).is_some() || table.is_finished(call_id) {
            return;
        }
    }
    let ev = Event {
        call_id: call_id.to_string(),
        ts_us: now_us(),
        data: EventData::Start(Box::new(StartInfo {
            src_ip: Some(req.src_ip.to_string()),
            ani: e164_or_raw(&req.ani),
            dnis: e164_or_raw(&req.dnis),
            reject: Some(events::Rejection {
                sip_code: r.code,
                reason: r.reason.clone(),
            }),
            direction: Some("inbound".into()),
            ..Default::default()
        })),
    };
    queue(svc, ev);
}
