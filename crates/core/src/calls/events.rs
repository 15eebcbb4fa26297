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
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recording: Option<String>,
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
    Start(StartInfo),
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

/// Seconds (float) to microseconds; absent means `now_us`.
fn ts_us(field: &str, ts: Option<f64>, now_us: i64) -> Result<i64, EventError> {
    match ts {
        None => Ok(now_us),
        Some(t) if t.is_finite() && (MIN_TS..MAX_TS).contains(&t) => Ok((t * 1e6).round() as i64),
        Some(t) => Err(err(
            field,
            format!("{t} is not a unix time in seconds between 2000 and 2100"),
        )),
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
mod tests {

    #[test]
    fn media_info_takes_node_stats_only_where_kamailio_sent_none() {
        use warpd_ng::{Quality, SsrcQuality};
        let q = Quality {
            mos_x10: Some(43),
            jitter: Some(12),
            packets_lost: Some(10),
            ssrcs: vec![
                SsrcQuality {
                    packets: Some(490),
                    ..Default::default()
                },
                SsrcQuality {
                    packets: Some(500),
                    ..Default::default()
                },
            ],
            ..Default::default()
        };
        let mut m = MediaInfo::default();
        m.fill_from(&q);
        assert_eq!(m.mos, Some(4.3));
        assert_eq!(m.jitter_ms, Some(12.0));
        assert_eq!(m.loss_pct, Some(1.0));
        // what Kamailio sent wins; no stats leaves the fields empty
        let mut sent = MediaInfo {
            mos: Some(3.9),
            ..Default::default()
        };
        sent.fill_from(&q);
        assert_eq!(sent.mos, Some(3.9));
        let mut none = MediaInfo::default();
        none.fill_from(&Quality::default());
        assert_eq!(none, MediaInfo::default());
        // RTPEngine 10.5: loss per SSRC, packet counts only in the totals
        let totals_only = Quality {
            rtp_packets: 300,
            packets_lost: Some(0),
            ..Default::default()
        };
        let mut m = MediaInfo::default();
        m.fill_from(&totals_only);
        assert_eq!(m.loss_pct, Some(0.0));
    }
    use super::*;
    use proptest::prelude::*;

    proptest! {
        // the parsers never panic, whatever the bytes
        #[test]
        fn parsers_never_panic(raw in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = attempt_event(&raw, NOW);
            let _ = answer_event(&raw, NOW);
            let _ = end_event(&raw, NOW);
            let _ = Event::from_json(&raw);
        }

        // the form body parser never panics, whatever the bytes
        #[test]
        fn form_parser_never_panics(raw in proptest::collection::vec(any::<u8>(), 0..300)) {
            let _ = form_events(&raw, NOW);
        }

        // well-formed params with any text and numbers, as JSON-RPC params and as a form line
        // (URL-encoded the way Kamailio's {s.urlencode.param} does): the same event, which
        // survives the stored JSON round trip, or the same field refused
        #[test]
        fn form_line_equals_json_params(
            id in "\\PC{0,40}", route in "[a-z0-9-]{0,20}", n in 0u32..200, code in 0u16..800,
            ts in proptest::option::of(0f64..5e9), reason in proptest::option::of("\\PC{0,30}"),
        ) {
            let p = serde_json::json!({"call_id": id, "attempt": n, "route_id": route,
                "sip_code": code, "ts": ts, "reason": reason});
            let mut form = url::form_urlencoded::Serializer::new(String::new());
            form.append_pair("event", "attempt")
                .append_pair("call_id", &id)
                .append_pair("attempt", &n.to_string())
                .append_pair("route_id", &route)
                .append_pair("sip_code", &code.to_string());
            if let Some(ts) = ts {
                form.append_pair("ts", &ts.to_string());
            }
            if let Some(r) = &reason {
                form.append_pair("reason", r);
            }
            let line = form.finish();
            let from_json = attempt_event(p.to_string().as_bytes(), NOW);
            let from_form = form_events(line.as_bytes(), NOW);
            match (from_json, from_form) {
                (Ok(a), Ok(b)) => {
                    prop_assert_eq!(Event::from_json(a.to_json().as_bytes()).ok(), Some(a.clone()));
                    prop_assert_eq!(vec![a], b);
                }
                (Err(a), Err(b)) => {
                    prop_assert!(
                        ["call_id", "route_id", "attempt", "sip_code", "ts", "reason"].contains(&a.field.as_str()),
                        "{}", a
                    );
                    prop_assert_eq!(format!("line 1: {}", a.field), b.field);
                }
                (a, b) => prop_assert!(false, "json {:?} but form {:?}", a, b),
            }
        }
    }

    const NOW: i64 = 1_700_000_000_000_000;

    #[test]
    fn attempt_ok_and_defaults() {
        let e = attempt_event(
            br#"{"call_id":"c1","attempt":1,"route_id":"r1","sip_code":503,"reason":"busy here","ts":1700000001.5,"ring_ts":1700000001.0}"#,
            NOW,
        )
        .unwrap();
        assert_eq!(e.ts_us, 1_700_000_001_500_000);
        assert_eq!(e.kind(), "attempt");
        assert_eq!(e.attempt_key(), 1);
        let back = Event::from_json(e.to_json().as_bytes()).unwrap();
        assert_eq!(back, e);
        let e = answer_event(br#"[{"call_id":"c1"}]"#, NOW).unwrap();
        assert_eq!(e.ts_us, NOW);
    }

    #[test]
    fn bad_input_names_the_field() {
        let cases: &[(&[u8], &str)] = &[
            (br#"{"attempt":1,"route_id":"r","sip_code":200}"#, "call_id"),
            (br#"{"call_id":"c","route_id":"r","sip_code":200}"#, "attempt"),
            (br#"{"call_id":"c","attempt":0,"route_id":"r","sip_code":200}"#, "attempt"),
            (br#"{"call_id":"c","attempt":1,"route_id":"r","sip_code":99}"#, "sip_code"),
            (br#"{"call_id":"","attempt":1,"route_id":"r","sip_code":200}"#, "call_id"),
            (br#"{"call_id":"c","attempt":1,"route_id":"r","sip_code":200,"ts":"x"}"#, "ts"),
            (br#"{"call_id":"c","attempt":1,"route_id":"r","sip_code":200,"ts":5}"#, "ts"),
            (br#"{"call_id":"c","attempt":1,"route_id":"r","sip_code":200,"ts":1700000000,"ring_ts":1700000001}"#, "ring_ts"),
            (br#"{"call_id":"c","attempt":1,"route_id":"r","sip_code":200,"bogus":1}"#, "bogus"),
            (b"not json", "params"),
        ];
        for (raw, field) in cases {
            let e = attempt_event(raw, NOW).unwrap_err();
            assert_eq!(&e.field, field, "{}: {e}", String::from_utf8_lossy(raw));
        }
        let e = end_event(br#"{"call_id":"c","hangup":"nobody"}"#, NOW).unwrap_err();
        assert_eq!(e.field, "hangup");
        let e = end_event(br#"{"call_id":"c","mos":7}"#, NOW).unwrap_err();
        assert_eq!(e.field, "mos");
    }

    #[test]
    fn form_lines_in_order() {
        let body = b"event=attempt&call_id=a%2Bb%22c%5C%3B&attempt=2&route_id=r1&sip_code=200&reason=OK+then&ts=1700000001.5\r\n\
event=answer&call_id=a%2Bb%22c%5C%3B&attempt=2&route_id=r1&ts=1700000001.5\n\n";
        let evs = form_events(body, NOW).unwrap();
        assert_eq!(evs.len(), 2);
        assert_eq!(evs[0].call_id, "a+b\"c\\;");
        assert_eq!(evs[0].ts_us, 1_700_000_001_500_000);
        assert_eq!(
            evs[0].data,
            EventData::Attempt(AttemptInfo {
                attempt: 2,
                route_id: "r1".into(),
                sip_code: 200,
                reason: Some("OK then".into()),
                ring_us: None,
            })
        );
        assert_eq!(
            evs[1].data,
            EventData::Answer(AnswerInfo {
                attempt: Some(2),
                route_id: Some("r1".into()),
            })
        );
        let end = form_events(
            b"event=end&call_id=c&hangup=callee&cause=486+Busy+Here&mos=4.1&ts=1700000002",
            NOW,
        )
        .unwrap();
        assert_eq!(end[0].ts_us, 1_700_000_002_000_000);
        let EventData::End(e) = &end[0].data else {
            panic!("not an end: {end:?}");
        };
        assert_eq!(e.hangup.as_deref(), Some("callee"));
        assert_eq!(e.cause.as_deref(), Some("486 Busy Here"));
        assert_eq!(e.media.mos, Some(4.1));
        // no ts: the time it arrived
        let e = form_events(b"event=answer&call_id=c", NOW).unwrap();
        assert_eq!(e[0].ts_us, NOW);
    }

    #[test]
    fn reason_and_cause_are_free_text() {
        // a tab is legal in a SIP reason phrase; a long phrase is cut, not refused
        let long = "é".repeat(200);
        let e = attempt_event(
            format!(r#"{{"call_id":"c","attempt":1,"route_id":"r","sip_code":503,"reason":"Service\tUnavailable\u0000{long}"}}"#).as_bytes(),
            NOW,
        )
        .unwrap();
        let EventData::Attempt(a) = &e.data else {
            panic!("{e:?}");
        };
        let r = a.reason.as_deref().unwrap();
        assert!(r.starts_with("Service Unavailable é"), "{r}");
        assert!(r.len() <= MAX_TEXT && r.len() > MAX_TEXT - 2, "{}", r.len());
        let evs = form_events(b"event=end&call_id=c&cause=486%09Busy%0AHere", NOW).unwrap();
        let EventData::End(end) = &evs[0].data else {
            panic!("{evs:?}");
        };
        assert_eq!(end.cause.as_deref(), Some("486 Busy Here"));
        assert_eq!(free_text("plain".into()), "plain");
        assert_eq!(free_text(String::new()), "");
    }

    #[test]
    fn bad_form_lines_name_line_and_field() {
        let ok = "event=answer&call_id=c";
        let cases: &[(&str, &str)] = &[
            ("", "body"),
            ("\n\n", "body"),
            ("call_id=c", "line 1: event"),
            ("event=start&call_id=c", "line 1: event"),
            ("event=answer&event=end&call_id=c", "line 1: event"),
            ("event=answer", "line 1: call_id"),
            ("event=answer&call_id=c&call_id=d", "line 1: call_id"),
            ("event=answer&call_id=c&bogus=1", "line 1: bogus"),
            (
                "event=attempt&call_id=c&attempt=x&route_id=r&sip_code=200",
                "line 1: attempt",
            ),
            (
                "event=attempt&call_id=c&attempt=1.5&route_id=r&sip_code=200",
                "line 1: attempt",
            ),
            (
                "event=attempt&call_id=c&attempt=1&route_id=r&sip_code=99",
                "line 1: sip_code",
            ),
            ("event=end&call_id=c&ts=NaN", "line 1: ts"),
            ("event=end&call_id=c&ts=5", "line 1: ts"),
            ("event=end&call_id=c&hangup=nobody", "line 1: hangup"),
            ("event=end&call_id=c%01", "line 1: call_id"),
            // an encoded line break stays inside its value (and is refused there)
            ("event=end&call_id=c%0Aevent=end", "line 1: call_id"),
        ];
        for (body, field) in cases {
            let e = form_events(body.as_bytes(), NOW).unwrap_err();
            assert_eq!(&e.field, field, "{body:?}: {e}");
        }
        // the line number counts every line, empty ones too
        let e = form_events(format!("{ok}\n\nevent=end").as_bytes(), NOW).unwrap_err();
        assert_eq!(e.field, "line 3: call_id");
        let many = vec![ok; MAX_FORM_EVENTS + 1].join("\n");
        assert_eq!(form_events(many.as_bytes(), NOW).unwrap_err().field, "body");
        let most = vec![ok; MAX_FORM_EVENTS].join("\n");
        assert_eq!(
            form_events(most.as_bytes(), NOW).unwrap().len(),
            MAX_FORM_EVENTS
        );
    }
}
