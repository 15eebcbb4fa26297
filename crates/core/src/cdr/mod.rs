//! CDRs, pure: one rated record per finished call ([`build`]), its COPY text encoding, and
//! [`rating`] (billed seconds under minimum/increment, money in 1e-7 units). A CDR is a pure
//! function of its call's events. Storing, spooling and querying CDRs is the daemon's
//! (`warpd::cdr`).

pub mod rating;

use std::fmt::Write as _;

use serde::Serialize;

use crate::calls::state::CallRecord;
use rating::{amount_e7, billed_seconds, fmt_e7};

/// One attempt as recorded in `cdrs.attempts`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct AttemptRow {
    pub attempt: u32,
    pub route_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub vendor: Option<String>,
    pub sip_code: u16,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    pub ts_us: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ring_us: Option<i64>,
}

/// A rated CDR, as written to `cdrs`.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Cdr {
    pub call_id: String,
    pub started_us: i64,
    pub ring_us: Option<i64>,
    pub answered_us: Option<i64>,
    pub ended_us: Option<i64>,
    pub customer_ban: Option<String>,
    pub src_ip: Option<String>,
    pub ani: Option<String>,
    pub dnis: Option<String>,
    pub lrn: Option<String>,
    pub ocn: Option<String>,
    pub lata: Option<String>,
    pub state: Option<String>,
    pub zone: Option<String>,
    pub partition: Option<String>,
    pub route_id: Option<String>,
    pub vendor: Option<String>,
    pub attempts: Vec<AttemptRow>,
    pub vendor_rate_e7: Option<i64>,
    pub customer_rate_e7: Option<i64>,
    pub vendor_min: Option<u32>,
    pub vendor_inc: Option<u32>,
    pub customer_min: Option<u32>,
    pub customer_inc: Option<u32>,
    pub duration_ms: i64,
    pub vendor_billed_s: u32,
    pub customer_billed_s: u32,
    pub cost_e7: i64,
    pub price_e7: i64,
    pub disposition: &'static str,
    pub sip_code: Option<u16>,
    pub hangup: Option<String>,
    pub cause: Option<String>,
    pub pdd_ms: Option<i64>,
    pub mos: Option<f32>,
    pub jitter_ms: Option<f32>,
    pub loss_pct: Option<f32>,
    pub recording: Option<String>,
    pub recording_node: Option<String>,
    pub flags: Vec<&'static str>,
    /// `outbound` or `inbound` (issue 19); empty (a `Default` CDR) is written as `outbound`
    pub direction: &'static str,
    /// the customer trunk of the call, when known
    pub trunk: Option<String>,
    /// inbound: the number called (E.164 digits)
    pub number: Option<String>,
    /// STIR/SHAKEN (issue 20): the attestation given (outbound) or verified (inbound), origid,
    /// the inbound verification status and a failure's reason
    pub stir_attest: Option<String>,
    pub stir_origid: Option<String>,
    pub stir_verstat: Option<String>,
    pub stir_reason: Option<String>,
    /// an orphan (no dip seen): written only if no CDR of this call-id exists yet
    pub orphan: bool,
}

/// Disposition of an unanswered call by its last attempt's SIP code (a call refused at the dip is
/// `rejected`, an answered one `answered`, one without a dip `orphan`).
fn disposition(code: Option<u16>) -> &'static str {
    match code {
        Some(486) | Some(600) => "busy",
        Some(408) | Some(480) => "no_answer",
        Some(487) => "cancelled",
        None => "cancelled",
        Some(_) => "failed",
    }
}

/// How far before its dip a call's answer may be dated (clock skew between Kamailio and warpd)
/// before the CDR bills from the dip instead.
pub const ANSWER_BEFORE_DIP_SKEW_US: i64 = 5_000_000;

/// Builds and rates the CDR of a finished call. Deterministic in the call's events, so a replay
/// builds the identical row (same `(call_id, started_at)` key).
pub fn build(c: &CallRecord) -> Cdr {
    let start = c.start.as_ref();
    let mut flags = vec![];
    let started_us = if start.is_some() {
        c.start_us
    } else {
        flags.push("orphan");
        if c.first_us == i64::MAX {
            c.created_us
        } else {
            c.first_us
        }
    };
    let offer = |route: &str| start.and_then(|s| s.routes.iter().find(|r| r.route_id == route));
    let attempts: Vec<AttemptRow> = c
        .attempts
        .iter()
        .map(|(t, a)| AttemptRow {
            attempt: a.attempt,
            route_id: a.route_id.clone(),
            vendor: offer(&a.route_id).map(|o| o.vendor.clone()),
            sip_code: a.sip_code,
            reason: a.reason.clone(),
            ts_us: *t,
            ring_us: a.ring_us,
        })
        .collect();
    let answered_us = c.answered_us();
    let carried = answered_us.and(c.carrying_route()).map(str::to_string);
    let ended_us = c.end.as_ref().map(|(t, _)| *t);
    let end = c.end.as_ref().map(|(_, e)| e);
    let mut duration_ms = 0;
    if let (Some(a), Some(e)) = (answered_us, ended_us) {
        // an answer dated before the dip (beyond clock skew) is billed from the dip
        let a = if start.is_some() && a < c.start_us - ANSWER_BEFORE_DIP_SKEW_US {
            flags.push("answer_before_dip");
            c.start_us
        } else {
            a
        };
        if e < a {
            flags.push("end_before_answer");
        } else {
            duration_ms = (e - a + 999) / 1000;
        }
        // never longer than the longest call warpd lets live (calls.max_call_duration_s)
        if let Some(max_ms) = start
            .and_then(|s| s.max_duration_s)
            .map(|s| (s as i64).saturating_mul(1000))
        {
            if duration_ms > max_ms {
                duration_ms = max_ms;
                flags.push("duration_capped");
            }
        }
    }
    if let Some(r) = end.and_then(|e| e.reaped.as_deref()) {
        flags.push(match r {
            "reaped_max_duration" => "reaped_max_duration",
            "reaped_no_end" => "reaped_no_end",
            _ => "reaped",
        });
    }
    let carrying_attempt = carried
        .as_deref()
        .and_then(|r| c.attempts.iter().rev().find(|(_, a)| a.route_id == r));
    let ring_us = carrying_attempt
        .and_then(|(_, a)| a.ring_us)
        .or_else(|| c.attempts.iter().find_map(|(_, a)| a.ring_us));
    let o = carried.as_deref().and_then(offer);
    if carried.is_some() && o.is_none() && start.is_some() {
        flags.push("route_not_offered");
    }
    let (v_min, v_inc) = match o {
        Some(o) => (Some(o.min), Some(o.inc)),
        None => (None, None),
    };
    let c_min = start.and_then(|s| s.customer_min).or(v_min);
    let c_inc = start.and_then(|s| s.customer_inc).or(v_inc);
    let vendor_billed_s = billed_seconds(duration_ms, v_min.unwrap_or(0), v_inc.unwrap_or(1));
    let customer_billed_s = billed_seconds(duration_ms, c_min.unwrap_or(0), c_inc.unwrap_or(1));
    let (rate, crate_) = match o {
        Some(o) => (Some(o.rate_e7), Some(o.customer_rate_e7)),
        None => (None, None),
    };
    let last_code = c.attempts.last().map(|(_, a)| a.sip_code);
    let rejected = start.and_then(|s| s.reject.as_ref());
    let (disp, sip_code) = if let Some(r) = rejected {
        ("rejected", Some(r.sip_code))
    } else if answered_us.is_some() {
        ("answered", Some(200))
    } else {
        (disposition(last_code), last_code)
    };
    Cdr {
        call_id: c.call_id.clone(),
        started_us,
        ring_us,
        answered_us,
        // a rejected call ends at its dip
        ended_us: ended_us.or(rejected.map(|_| started_us)),
        customer_ban: start.and_then(|s| s.ban.clone()),
        src_ip: start.and_then(|s| s.src_ip.clone()),
        ani: start.map(|s| s.ani.clone()),
        dnis: start.map(|s| s.dnis.clone()),
        lrn: start.and_then(|s| s.lrn.clone()),
        ocn: start.and_then(|s| s.ocn.clone()),
        lata: start.and_then(|s| s.lata.clone()),
        state: start.and_then(|s| s.state.clone()),
        // the zone the carrying route was rated in
        zone: o
            .and_then(|o| o.zone.clone())
            .or_else(|| start.and_then(|s| s.zone.clone())),
        partition: start.and_then(|s| s.partition.clone()),
        vendor: o.map(|o| o.vendor.clone()),
        route_id: carried,
        attempts,
        vendor_rate_e7: rate,
        customer_rate_e7: crate_,
        vendor_min: v_min,
        vendor_inc: v_inc,
        customer_min: c_min,
        customer_inc: c_inc,
        duration_ms,
        vendor_billed_s,
        customer_billed_s,
        cost_e7: rate.map(|r| amount_e7(vendor_billed_s, r)).unwrap_or(0),
        price_e7: crate_.map(|r| amount_e7(customer_billed_s, r)).unwrap_or(0),
        disposition: disp,
        sip_code,
        hangup: end.and_then(|e| e.hangup.clone()),
        cause: rejected
            .map(|r| r.reason.clone())
            .or_else(|| end.and_then(|e| e.cause.clone())),
        pdd_ms: ring_us.map(|r| (r - started_us).max(0) / 1000),
        mos: end.and_then(|e| e.media.mos),
        jitter_ms: end.and_then(|e| e.media.jitter_ms),
        loss_pct: end.and_then(|e| e.media.loss_pct),
        recording: end.and_then(|e| e.media.recording.clone()),
        recording_node: end.and_then(|e| e.media.recording_node.clone()),
        flags,
        direction: match start.and_then(|s| s.direction.as_deref()) {
            Some("inbound") => "inbound",
            _ => "outbound",
        },
        trunk: start.and_then(|s| s.trunk.clone()),
        number: start.and_then(|s| s.number.clone()),
        stir_attest: start.and_then(|s| s.stir_attest.clone()),
        stir_origid: start.and_then(|s| s.stir_origid.clone()),
        stir_verstat: start.and_then(|s| s.stir_verstat.clone()),
        stir_reason: start.and_then(|s| s.stir_reason.clone()),
        orphan: start.is_none(),
    }
}

/// Columns written by [`Cdr::copy_line`], in order (plus the staging-only `orphan`).
pub const COPY_COLUMNS: &str =
    "call_id, started_at, ring_at, answered_at, ended_at, customer_ban, \
    src_ip, ani, dnis, lrn, ocn, lata, state, zone, partition, route_id, vendor, attempts, attempt_count, vendor_rate, \
    customer_rate, vendor_min, vendor_inc, customer_min, customer_inc, duration_ms, \
    vendor_billed_s, customer_billed_s, cost, price, disposition, sip_code, hangup, cause, pdd_ms, \
    mos, jitter_ms, loss_pct, recording, recording_node, flags, direction, trunk, number, \
    stir_attest, stir_origid, stir_verstat, stir_reason";

/// Escapes text for COPY text format. Every byte that needs escaping is ASCII, so the text
/// between two of them is copied as one slice (the per-`char` version was ~2 % of warpd's CPU
/// under dip load: every dip's call-start event body passes through here).
pub fn esc(out: &mut String, s: &str) {
    let mut start = 0;
    for (i, b) in s.bytes().enumerate() {
        let escaped = match b {
            b'\\' => "\\\\",
            b'\t' => "\\t",
            b'\n' => "\\n",
            b'\r' => "\\r",
            // PostgreSQL text cannot hold NUL: dropped rather than poisoning the batch
            0 => "",
            _ => continue,
        };
        out.push_str(&s[start..i]);
        out.push_str(escaped);
        start = i + 1;
    }
    out.push_str(&s[start..]);
}

fn ts(out: &mut String, us: i64) {
    match chrono::DateTime::from_timestamp_micros(us) {
        Some(t) => {
            let _ = write!(out, "{}", t.format("%Y-%m-%d %H:%M:%S%.6f+00"));
        }
        None => out.push_str("\\N"),
    }
}

impl Cdr {
    /// Appends the row in PostgreSQL COPY text format (tab separated, `\N` for NULL), with the
    /// staging column `orphan` last when `staging`.
    pub fn copy_line(&self, out: &mut String, staging: bool) {
        macro_rules! opt {
            ($v:expr, $f:expr) => {
                match $v {
                    Some(v) => $f(out, v),
                    None => out.push_str("\\N"),
                }
            };
        }
        // integer columns are int4 except duration_ms: clamp so no value can fail the batch
        let num = |out: &mut String, v: i64| {
            let _ = write!(out, "{}", v.clamp(i32::MIN as i64, i32::MAX as i64));
        };
        esc(out, &self.call_id);
        out.push('\t');
        ts(out, self.started_us);
        for t in [self.ring_us, self.answered_us, self.ended_us] {
            out.push('\t');
            opt!(t, |o: &mut String, v| ts(o, v));
        }
        for s in [
            &self.customer_ban,
            &self.src_ip,
            &self.ani,
            &self.dnis,
            &self.lrn,
            &self.ocn,
            &self.lata,
            &self.state,
            &self.zone,
            &self.partition,
            &self.route_id,
            &self.vendor,
        ] {
            out.push('\t');
            opt!(s.as_deref(), |o: &mut String, v: &str| esc(o, v));
        }
        out.push('\t');
        esc(
            out,
            &serde_json::to_string(&self.attempts).unwrap_or_else(|_| "[]".into()),
        );
        out.push('\t');
        num(out, self.attempts.len() as i64);
        for r in [self.vendor_rate_e7, self.customer_rate_e7] {
            out.push('\t');
            opt!(r, |o: &mut String, v| o.push_str(&fmt_e7(v)));
        }
        for v in [
            self.vendor_min,
            self.vendor_inc,
            self.customer_min,
            self.customer_inc,
        ] {
            out.push('\t');
            opt!(v, |o: &mut String, v: u32| num(o, v as i64));
        }
        out.push('\t');
        let _ = write!(out, "{}", self.duration_ms);
        for v in [self.vendor_billed_s as i64, self.customer_billed_s as i64] {
            out.push('\t');
            num(out, v);
        }
        out.push('\t');
        out.push_str(&fmt_e7(self.cost_e7));
        out.push('\t');
        out.push_str(&fmt_e7(self.price_e7));
        out.push('\t');
        out.push_str(self.disposition);
        out.push('\t');
        opt!(self.sip_code, |o: &mut String, v: u16| num(o, v as i64));
        for s in [&self.hangup, &self.cause] {
            out.push('\t');
            opt!(s.as_deref(), |o: &mut String, v: &str| esc(o, v));
        }
        out.push('\t');
        opt!(self.pdd_ms, |o: &mut String, v| num(o, v));
        for f in [self.mos, self.jitter_ms, self.loss_pct] {
            out.push('\t');
            opt!(f, |o: &mut String, v: f32| {
                let _ = write!(o, "{v}");
            });
        }
        for s in [&self.recording, &self.recording_node] {
            out.push('\t');
            opt!(s.as_deref(), |o: &mut String, v: &str| esc(o, v));
        }
        out.push('\t');
        out.push('{');
        out.push_str(&self.flags.join(","));
        out.push('}');
        out.push('\t');
        // a CDR built by hand (`Default`) has no direction: outbound, the column's default
        out.push_str(if self.direction.is_empty() {
            "outbound"
        } else {
            self.direction
        });
        for s in [
            &self.trunk,
            &self.number,
            &self.stir_attest,
            &self.stir_origid,
            &self.stir_verstat,
            &self.stir_reason,
        ] {
            out.push('\t');
            opt!(s.as_deref(), |o: &mut String, v: &str| esc(o, v));
        }
        if staging {
            out.push('\t');
            out.push_str(if self.orphan { "t" } else { "f" });
        }
        out.push('\n');
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::calls::events::{AnswerInfo, AttemptInfo, EndInfo, RouteOffer, StartInfo};

    fn offer(id: &str, rate: i64, sell: i64, min: u32, inc: u32) -> RouteOffer {
        RouteOffer {
            route_id: id.into(),
            vendor: format!("v-{id}"),
            rate_e7: rate,
            customer_rate_e7: sell,
            min,
            inc,
            zone: None,
        }
    }

    fn call(cmin: Option<u32>, cinc: Option<u32>, end_s: i64) -> CallRecord {
        let a = |n: u32, r: &str, code: u16, t: i64| {
            (
                t,
                AttemptInfo {
                    attempt: n,
                    route_id: r.into(),
                    sip_code: code,
                    reason: None,
                    ring_us: (code == 200).then_some(t - 500_000),
                },
            )
        };
        CallRecord {
            call_id: "c\t1".into(),
            start: Some(StartInfo {
                ban: Some("10001".into()),
                ani: "13125550100".into(),
                dnis: "12125550100".into(),
                routes: vec![
                    offer("r1", 45_000, 60_000, 6, 6),
                    offer("r2", 50_000, 70_000, 30, 6),
                ],
                customer_min: cmin,
                customer_inc: cinc,
                ..Default::default()
            }),
            start_us: 1_700_000_000_000_000,
            start_logged: true,
            attempts: vec![
                a(1, "r1", 503, 1_700_000_001_000_000),
                a(2, "r2", 200, 1_700_000_003_000_000),
            ],
            answer: Some((1_700_000_003_000_000, AnswerInfo::default())),
            end: Some((
                1_700_000_003_000_000 + end_s * 1_000_000,
                EndInfo::default(),
            )),
            ..Default::default()
        }
    }

    #[test]
    fn failover_rated_on_the_carrying_route() {
        // 31 s on r2 (vendor 30/6 -> 36 s), customer 60/60 -> 60 s
        let c = build(&call(Some(60), Some(60), 31));
        assert_eq!(c.route_id.as_deref(), Some("r2"));
        assert_eq!(c.vendor.as_deref(), Some("v-r2"));
        assert_eq!(c.disposition, "answered");
        assert_eq!(c.duration_ms, 31_000);
        assert_eq!((c.vendor_billed_s, c.customer_billed_s), (36, 60));
        assert_eq!(c.cost_e7, 36 * 50_000 / 60);
        assert_eq!(c.price_e7, 70_000);
        assert_eq!(c.attempts.len(), 2);
        assert_eq!(c.pdd_ms, Some(2_500));
        // customer follows the vendor's terms when it has none
        let c = build(&call(None, None, 31));
        assert_eq!(c.customer_billed_s, 36);
    }

    #[test]
    fn duration_is_capped_and_an_answer_before_the_dip_counts_from_the_dip() {
        // a 30-day call under a 4 h maximum bills 4 h
        let mut rec = call(None, None, 30 * 86_400);
        rec.start.as_mut().unwrap().max_duration_s = Some(4 * 3600);
        let c = build(&rec);
        assert_eq!(c.duration_ms, 4 * 3600 * 1000);
        assert!(c.flags.contains(&"duration_capped"), "{:?}", c.flags);
        // no maximum recorded (starts before this field existed): as before
        let c = build(&call(None, None, 30 * 86_400));
        assert_eq!(c.duration_ms, 30 * 86_400 * 1000);
        // answered "a day before the dip": billed from the dip
        let mut rec = call(None, None, 60);
        let day = 86_400 * 1_000_000;
        rec.answer = Some((rec.start_us - day, AnswerInfo::default()));
        let end = rec.end.as_ref().unwrap().0;
        let c = build(&rec);
        assert!(c.flags.contains(&"answer_before_dip"), "{:?}", c.flags);
        assert_eq!(c.duration_ms, (end - rec.start_us) / 1000);
    }

    #[test]
    fn end_before_answer_is_flagged_not_billed() {
        let c = build(&call(None, None, -5));
        assert_eq!(c.duration_ms, 0);
        assert_eq!(c.vendor_billed_s, 0);
        assert!(c.flags.contains(&"end_before_answer"));
    }

    #[test]
    fn esc_escapes_copy_specials_and_keeps_everything_else() {
        let cases = [
            ("", ""),
            ("plain", "plain"),
            ("a\tb\nc\rd\\e", "a\\tb\\nc\\rd\\\\e"),
            ("\t\t", "\\t\\t"),
            ("nul\0dropped\0", "nuldropped"),
            ("ünï\tcødé €", "ünï\\tcødé €"),
            ("\\", "\\\\"),
        ];
        for (input, want) in cases {
            let mut out = String::from(">");
            esc(&mut out, input);
            assert_eq!(out, format!(">{want}"), "{input:?}");
        }
    }

    proptest::proptest! {
        #[test]
        fn esc_equals_the_char_by_char_definition(input in "[a-z\\\\\t\n\r\0ü€]{0,24}|\\PC{0,24}") {
            let mut want = String::new();
            for ch in input.chars() {
                match ch {
                    '\\' => want.push_str("\\\\"),
                    '\t' => want.push_str("\\t"),
                    '\n' => want.push_str("\\n"),
                    '\r' => want.push_str("\\r"),
                    '\0' => {}
                    c => want.push(c),
                }
            }
            let mut out = String::new();
            esc(&mut out, &input);
            proptest::prop_assert_eq!(out, want);
        }
    }

    #[test]
    fn copy_line_escapes_and_counts_columns() {
        let c = build(&call(None, None, 7));
        let mut s = String::new();
        c.copy_line(&mut s, true);
        assert!(
            s.starts_with("c\\t1\t2023-11-14 22:13:20.000000+00\t"),
            "{s}"
        );
        assert!(
            s.ends_with("\t{}\toutbound\t\\N\t\\N\t\\N\t\\N\t\\N\t\\N\tf\n"),
            "{s}"
        );
        let cols = COPY_COLUMNS.split(',').count() + 1;
        assert_eq!(s.trim_end_matches('\n').split('\t').count(), cols);
    }
}
