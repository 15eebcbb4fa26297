//! Call events: the wire params of `call.attempt` / `call.answer` / `call.end` (validated, errors
//! naming the field) and the persisted [`Event`] format (JSON in `call_events.body` and the spool).
//! Pure: no I/O, no clock except the `now_us` passed in.

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

/// Longest accepted text field.
const MAX_TEXT: usize = 256;
/// Event times must lie in [2000-01-01, 2100-01-01).
const MIN_TS: f64 = 946_684_800.0;
const MAX_TS: f64 = 4_102_444_800.0;
/// At most this many attempts per call.
pub const MAX_ATTEMPTS: u32 = 100;

/// A caller's mistake in an event: the field and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {why}")]
pub struct EventError {
    pub field: String,
    pub why: String,
}

fn err(field: &str, why: impl Into<String>) -> EventError {
    EventError {
        field: field.to_string(),
        why: why.into(),
    }
}

/// One route offered by the dip, with what rating needs.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RouteOffer {
    pub route_id: String,
    pub vendor: String,
    /// buy rate, 1e-7 per minute
    pub rate_e7: i64,
    /// sell rate, 1e-7 per minute
    pub customer_rate_e7: i64,
    pub min: u32,
    pub inc: u32,
    /// the zone this route was rated in when not the call's (`StartInfo::zone`): a Canadian or
    /// Caribbean number priced international-style by this route
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub zone: Option<String>,
}

/// What the dip knew when the call started.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StartInfo {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ban: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub src_ip: Option<String>,
    pub ani: String,
    pub dnis: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lrn: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub zone: Option<String>,
    /// the customer partition the dip's routes came from
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub partition: Option<String>,
    /// OCN / LATA / state of the routing number (LRN, else DNIS), when NANP and known
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ocn: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lata: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<String>,
    pub routes: Vec<RouteOffer>,
    /// the customer's billing increments at dip time (None = the vendor's)
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub customer_min: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub customer_inc: Option<u32>,
    /// the dip refused the call: it is finished at once (a CDR with disposition `rejected`),
    /// never counted live, and Kamailio's later `call.end` for it is dropped as after-finish
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reject: Option<Rejection>,
    /// `calls.max_call_duration_s` at dip time: the CDR bills at most this long (recorded with
    /// the start so that a replay builds the same CDR)
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_duration_s: Option<u64>,
    /// what the call reserves against its customer's credit account until its CDR is charged
    /// (`crate::credit`); rebuilt from the start after a restart
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credit_hold: Option<CreditHold>,
    /// `inbound` for a call to one of the carrier's numbers (issue 19); absent: outbound
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub direction: Option<String>,
    /// the customer trunk: the one the call was delivered to (inbound) or came from (a dip by
    /// trunk or by a trunk's source address)
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trunk: Option<String>,
    /// inbound: the number called (E.164 digits without '+')
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub number: Option<String>,
    /// STIR/SHAKEN (issue 20): outbound, the attestation given (`A`/`B`/`C`, `keep`); inbound,
    /// the verified PASSporT's
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stir_attest: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stir_origid: Option<String>,
    /// inbound: the verification status (`TN-Validation-Passed`, …) and a failure's reason
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stir_verstat: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stir_reason: Option<String>,
}

/// A live call's reservation against its customer's account (money and billed seconds).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreditHold {
    pub reserve_e7: i64,
    pub reserve_s: u32,
}

/// A dip's refusal of a call, as its CDR keeps it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rejection {
    pub sip_code: u16,
    pub reason: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AttemptInfo {
    pub attempt: u32,
    pub route_id: String,
    pub sip_code: u16,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ring_us: Option<i64>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AnswerInfo {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attempt: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub route_id: Option<String>,
}

/// Media statistics and recording reference (the media component fills them; all optional).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct MediaInfo {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mos: Option<f32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jitter_ms: Option<f32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub loss_pct: Option<f32>,
    /// the recording file(s): the end event's `recording`, else the files the media node named
    /// when it started recording the call (RTPEngine's pcap path)
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recording: Option<String>,
    /// the media node holding the recording (its ng address), when warpd's media control saw it
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recording_node: Option<String>,
}

impl MediaInfo {
    /// Fills what Kamailio did not send from the media node's own per-call statistics (read by
    /// warpd's ng proxy from RTPEngine's `delete` answer): MOS (lowest over the streams), jitter
    /// (highest), and loss as lost / (received + lost) over the streams RTCP reported.
    pub fn fill_from(&mut self, q: &warpd_ng::Quality) {
        if self.mos.is_none() {
            self.mos = q.mos_x10.map(|m| (m as f32 / 10.0).clamp(0.0, 5.0));
        }
        if self.jitter_ms.is_none() {
            self.jitter_ms = q.jitter.map(|j| j.max(0) as f32);
        }
        if self.loss_pct.is_none() {
            // RTPEngine 10.5 gives per-SSRC loss but no per-SSRC packet count: then the relayed
            // RTP packets (totals) are what was received
            let per_ssrc: u64 = q.ssrcs.iter().filter_map(|s| s.packets).sum();
            let received = if per_ssrc > 0 {
                per_ssrc
            } else {
                q.rtp_packets
            };
            if let Some(lost) = q.packets_lost.filter(|l| received + l > 0) {
                self.loss_pct = Some((lost as f64 * 100.0 / (received + lost) as f64) as f32);
            }
        }
    }
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct EndInfo {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hangup: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cause: Option<String>,
    /// set when warpd closed the call itself (reaper): the CDR flag to record
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reaped: Option<String>,
    #[serde(default, flatten)]
    pub media: MediaInfo,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum EventData {
    /// boxed: a start carries the dip's routes and terms, ten times the other events' size, and
    /// queues hold mostly the small ones
    Start(Box<StartInfo>),
    Attempt(AttemptInfo),
    Answer(AnswerInfo),
    End(EndInfo),
}

/// One call event as warpd stores it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Event {
    pub call_id: String,
    /// event time, unix microseconds
    pub ts_us: i64,
    #[serde(flatten)]
    pub data: EventData,
}

impl Event {
    /// `call_events.kind`.
    pub fn kind(&self) -> &'static str {
        match self.data {
            EventData::Start(_) => "start",
            EventData::Attempt(_) => "attempt",
            EventData::Answer(_) => "answer",
            EventData::End(_) => "end",
        }
    }
    /// `call_events.attempt` (0 except for attempts): with `kind`, the idempotency key.
    pub fn attempt_key(&self) -> i32 {
        match &self.data {
            EventData::Attempt(a) => a.attempt as i32,
            _ => 0,
        }
    }
    /// Order in which a call's events are replayed.
    pub fn rank(&self) -> (u8, i32) {
        let k = match self.data {
            EventData::Start(_) => 0,
            EventData::Attempt(_) => 1,
            EventData::Answer(_) => 2,
            EventData::End(_) => 3,
        };
        (k, self.attempt_key())
    }
    pub fn to_json(&self) -> String {
        // serializing plain data with string keys cannot fail
        serde_json::to_string(self).unwrap_or_default()
    }
    pub fn from_json(s: &[u8]) -> Result<Event, serde_json::Error> {
        serde_json::from_slice(s)
    }
}

// ---- wire params -------------------------------------------------------------------------

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct AttemptParams {
    call_id: String,
    attempt: u32,
    route_id: String,
    sip_code: u16,
    #[serde(default)]
    reason: Option<String>,
    #[serde(default)]
    ts: Option<f64>,
    #[serde(default)]
    ring_ts: Option<f64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct AnswerParams {
    call_id: String,
    #[serde(default)]
    attempt: Option<u32>,
    #[serde(default)]
    route_id: Option<String>,
    #[serde(default)]
    ts: Option<f64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct EndParams {
    call_id: String,
    #[serde(default)]
    ts: Option<f64>,
    #[serde(default)]
    hangup: Option<String>,
    #[serde(default)]
    cause: Option<String>,
    #[serde(default)]
    mos: Option<f32>,
    #[serde(default)]
    jitter_ms: Option<f32>,
    #[serde(default)]
    loss_pct: Option<f32>,
    #[serde(default)]
    recording: Option<String>,
}

fn parse<T: DeserializeOwned>(raw: &[u8]) -> Result<T, EventError> {
    let first = raw.iter().copied().find(|b| !b.is_ascii_whitespace());
    let mut de = serde_json::Deserializer::from_slice(raw);
    let r = if first == Some(b'[') {
        serde_path_to_error::deserialize::<_, (T,)>(&mut de).map(|(t,)| t)
    } else {
        serde_path_to_error::deserialize::<_, T>(&mut de)
    };
    named(r)
}

/// The params of one form line (see [`form_events`]), already typed.
fn parse_value<T: DeserializeOwned>(v: serde_json::Value) -> Result<T, EventError> {
    named(serde_path_to_error::deserialize::<_, T>(v))
}

/// A deserialization error as the field it is about and why.
fn named<T>(r: Result<T, serde_path_to_error::Error<serde_json::Error>>) -> Result<T, EventError> {
    match r {
        Ok(t) => Ok(t),
        Err(e) => {
            let path = e.path().to_string();
            let msg = e.into_inner().to_string();
            let msg = match msg.rfind(" at line ") {
                Some(i) => msg[..i].to_string(),
                None => msg,
            };
            // a refused value may be a phone number: never echo it (logs, replies)
            let msg = crate::excerpt::serde_message_without_value(&msg);
            // "missing field `x`" / "unknown field `x`" name the field inside the message
            let field = match (path.as_str(), msg.find('`')) {
                (".", Some(i)) => msg[i + 1..]
                    .split('`')
                    .next()
                    .unwrap_or("params")
                    .to_string(),
                (".", None) => "params".to_string(),
                (p, _) => p.trim_start_matches("0.").to_string(),
            };
            Err(err(&field, msg))
        }
    }
}

fn text(field: &str, v: &str, required: bool) -> Result<(), EventError> {
    if required && v.trim().is_empty() {
        return Err(err(field, "must not be empty"));
    }
    if v.len() > MAX_TEXT {
        return Err(err(field, format!("longer than {MAX_TEXT} bytes")));
    }
    if v.chars().any(char::is_control) {
        return Err(err(field, "must not contain control characters"));
    }
    Ok(())
}

/// True when `s` can serve as a call-id (the dip's `call_id` is tracked only then).
pub fn valid_call_id(s: &str) -> bool {
    text("call_id", s, true).is_ok()
}

fn opt_text(field: &str, v: &Option<String>) -> Result<(), EventError> {
    match v {
        Some(s) => text(field, s, false),
        None => Ok(()),
    }
}

/// A SIP reason phrase or cause, as given: any UTF-8 text (a reason phrase may hold tabs and be of
/// any length). Stored with control characters turned into spaces and cut at [`MAX_TEXT`] bytes
/// (at a character boundary), so that a vendor's odd reply never costs a call its CDR.
fn free_text(v: String) -> String {
    let mut end = 0;
    for (i, c) in v.char_indices() {
        if i + c.len_utf8() > MAX_TEXT {
            break;
        }
        end = i + c.len_utf8();
    }
    let cut = &v[..end];
    if cut.chars().any(char::is_control) {
        cut.chars()
            .map(|c| if c.is_control() { ' ' } else { c })
            .collect()
    } else if end < v.len() {
        cut.to_string()
    } else {
        v
    }
}

/// An event time may be at most this far ahead of warpd's clock (clock skew between Kamailio's
/// host and warpd's); later ones are refused: an `end` 30 days ahead was accepted and billed a
/// 2,592,000 s call.
pub const MAX_FUTURE_SKEW_S: i64 = 300;

/// Seconds (float) to microseconds; absent means `now_us`; refused beyond `now_us` plus
/// [`MAX_FUTURE_SKEW_S`].
fn ts_us(field: &str, ts: Option<f64>, now_us: i64) -> Result<i64, EventError> {
    match ts {
        None => Ok(now_us),
        Some(t) if t.is_finite() && (MIN_TS..MAX_TS).contains(&t) => {
            let us = (t * 1e6).round() as i64;
            if us > now_us.saturating_add(MAX_FUTURE_SKEW_S * 1_000_000) {
                return Err(err(
                    field,
                    format!("more than {MAX_FUTURE_SKEW_S} s ahead of warpd's clock"),
                ));
            }
            Ok(us)
        }
        Some(t) => Err(err(
            field,
            format!("{t} is not a unix time in seconds between 2000 and 2100"),
        )),
    }
}

/// The lower time bound of the events of a call warpd never saw dipped (its events alone make
/// an orphan CDR): a call lasts at most `calls.max_call_duration_s`, so its events are no older
/// than that plus [`MAX_FUTURE_SKEW_S`] of clock skew. Older ones are **refused** (not clamped:
/// a clamped time would be invented, and a forged or replayed `end` must not bill). Checks `ts`
/// and an attempt's `ring_ts`; start events (they come from dips) pass.
pub fn check_undipped_age(
    ev: &Event,
    now_us: i64,
    max_call_duration_s: u64,
) -> Result<(), EventError> {
    let window_s = i64::try_from(max_call_duration_s)
        .unwrap_or(i64::MAX)
        .saturating_add(MAX_FUTURE_SKEW_S);
    let floor = now_us.saturating_sub(window_s.saturating_mul(1_000_000));
    let check = |field: &str, us: i64| {
        if us < floor {
            Err(err(
                field,
                format!(
                    "more than {window_s} s before warpd's clock for a call warpd did not route \
                     (calls.max_call_duration_s + {MAX_FUTURE_SKEW_S} s)"
                ),
            ))
        } else {
            Ok(())
        }
    };
    match &ev.data {
        EventData::Start(_) => Ok(()),
        EventData::Attempt(a) => {
            check("ts", ev.ts_us)?;
            match a.ring_us {
                Some(r) => check("ring_ts", r),
                None => Ok(()),
            }
        }
        EventData::Answer(_) | EventData::End(_) => check("ts", ev.ts_us),
    }
}

fn attempt_no(field: &str, a: u32) -> Result<u32, EventError> {
    if a == 0 || a > MAX_ATTEMPTS {
        return Err(err(field, format!("must be between 1 and {MAX_ATTEMPTS}")));
    }
    Ok(a)
}

/// `call.attempt` params → event.
pub fn attempt_event(raw: &[u8], now_us: i64) -> Result<Event, EventError> {
    attempt_checked(parse(raw)?, now_us)
}

fn attempt_checked(p: AttemptParams, now_us: i64) -> Result<Event, EventError> {
    text("call_id", &p.call_id, true)?;
    text("route_id", &p.route_id, true)?;
    attempt_no("attempt", p.attempt)?;
    if !(100..=699).contains(&p.sip_code) {
        return Err(err(
            "sip_code",
            format!("{} is not a SIP status code (100-699)", p.sip_code),
        ));
    }
    let ts = ts_us("ts", p.ts, now_us)?;
    let ring = match p.ring_ts {
        Some(r) => {
            let r = ts_us("ring_ts", Some(r), now_us)?;
            if r > ts {
                return Err(err("ring_ts", "later than ts (the final response)"));
            }
            Some(r)
        }
        None => None,
    };
    Ok(Event {
        call_id: p.call_id,
        ts_us: ts,
        data: EventData::Attempt(AttemptInfo {
            attempt: p.attempt,
            route_id: p.route_id,
            sip_code: p.sip_code,
            reason: p.reason.map(free_text),
            ring_us: ring,
        }),
    })
}

/// `call.answer` params → event.
pub fn answer_event(raw: &[u8], now_us: i64) -> Result<Event, EventError> {
    answer_checked(parse(raw)?, now_us)
}

fn answer_checked(p: AnswerParams, now_us: i64) -> Result<Event, EventError> {
    text("call_id", &p.call_id, true)?;
    opt_text("route_id", &p.route_id)?;
    if let Some(a) = p.attempt {
        attempt_no("attempt", a)?;
    }
    Ok(Event {
        call_id: p.call_id,
        ts_us: ts_us("ts", p.ts, now_us)?,
        data: EventData::Answer(AnswerInfo {
            attempt: p.attempt,
            route_id: p.route_id.filter(|r| !r.is_empty()),
        }),
    })
}

/// `call.end` params → event.
pub fn end_event(raw: &[u8], now_us: i64) -> Result<Event, EventError> {
    end_checked(parse(raw)?, now_us)
}

fn end_checked(p: EndParams, now_us: i64) -> Result<Event, EventError> {
    text("call_id", &p.call_id, true)?;
    opt_text("recording", &p.recording)?;
    if let Some(h) = &p.hangup {
        if !matches!(h.as_str(), "caller" | "callee" | "system") {
            return Err(err("hangup", "expected one of caller, callee, system"));
        }
    }
    for (f, v, max) in [
        ("mos", p.mos, 5.0f32),
        ("jitter_ms", p.jitter_ms, 1e6),
        ("loss_pct", p.loss_pct, 100.0),
    ] {
        if let Some(v) = v {
            if !v.is_finite() || v < 0.0 || v > max {
                return Err(err(f, format!("{v} is out of range 0..{max}")));
            }
        }
    }
    Ok(Event {
        call_id: p.call_id,
        ts_us: ts_us("ts", p.ts, now_us)?,
        data: EventData::End(EndInfo {
            hangup: p.hangup,
            cause: p.cause.map(free_text),
            reaped: None,
            media: MediaInfo {
                mos: p.mos,
                jitter_ms: p.jitter_ms,
                loss_pct: p.loss_pct,
                recording: p.recording,
                recording_node: None,
            },
        }),
    })
}

// ---- form lines (`POST /v1/events`) ---------------------------------------------------------

/// Most events in one `POST /v1/events` body.
pub const MAX_FORM_EVENTS: usize = 100;

/// Form fields whose values are numbers; every other value is text.
const NUMERIC: [&str; 7] = [
    "attempt",
    "sip_code",
    "ts",
    "ring_ts",
    "mos",
    "jitter_ms",
    "loss_pct",
];

/// The body of `POST /v1/events` → events, in order. One event per line, each an
/// `application/x-www-form-urlencoded` form: `event=attempt|answer|end` and the fields of that
/// event's JSON-RPC params (`call.attempt` / `call.answer` / `call.end`, same names, same
/// rules), e.g. `event=end&call_id=a84b4c76e66710&ts=1700000000.25&hangup=caller`.
///
/// Kamailio builds these with `{s.urlencode.param}` instead of a JSON encoder, and sends the
/// events that must stay in order (an attempt and its answer or end) as one body. URL encoding
/// turns a line break inside a value into `%0A`, so lines cannot be confused; empty lines and a
/// trailing `\r` are ignored. All or nothing: the first bad line refuses the whole body, its
/// error naming the line and the field (`line 2: sip_code`).
pub fn form_events(body: &[u8], now_us: i64) -> Result<Vec<Event>, EventError> {
    let mut out = Vec::new();
    for (i, line) in body.split(|b| *b == b'\n').enumerate() {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        if out.len() == MAX_FORM_EVENTS {
            return Err(err(
                "body",
                format!("more than {MAX_FORM_EVENTS} events in one request"),
            ));
        }
        let ev = form_event(line, now_us).map_err(|e| EventError {
            field: format!("line {}: {}", i + 1, e.field),
            why: e.why,
        })?;
        out.push(ev);
    }
    if out.is_empty() {
        return Err(err("body", "no event (expected one form per line)"));
    }
    Ok(out)
}

/// One form line → event.
fn form_event(line: &[u8], now_us: i64) -> Result<Event, EventError> {
    let mut kind = None;
    let mut params = serde_json::Map::new();
    for (k, v) in url::form_urlencoded::parse(line) {
        let (k, v) = (k.into_owned(), v.into_owned());
        if k == "event" {
            if kind.replace(v).is_some() {
                return Err(err("event", "given twice"));
            }
            continue;
        }
        let value = if NUMERIC.contains(&k.as_str()) {
            let n = v
                .trim()
                .parse::<serde_json::Number>()
                .map_err(|_| err(&k, format!("{:?} is not a number", clip(&v))))?;
            serde_json::Value::Number(n)
        } else {
            serde_json::Value::String(v)
        };
        if params.insert(k.clone(), value).is_some() {
            return Err(err(&k, "given twice"));
        }
    }
    let params = serde_json::Value::Object(params);
    match kind.as_deref() {
        Some("attempt") => attempt_checked(parse_value(params)?, now_us),
        Some("answer") => answer_checked(parse_value(params)?, now_us),
        Some("end") => end_checked(parse_value(params)?, now_us),
        Some(other) => Err(err(
            "event",
            format!("{:?}: expected attempt, answer or end", clip(other)),
        )),
        None => Err(err("event", "missing (attempt, answer or end)")),
    }
}

/// The start of a value quoted in an error.
fn clip(s: &str) -> String {
    s.chars().take(32).collect()
}

#[cfg(test)]
mod tests;
