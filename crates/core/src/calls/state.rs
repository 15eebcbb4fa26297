//! The live call table: every call that has started (dip with a `call_id`) or has events but no CDR
//! yet; counts of live calls per customer and per route; calls-per-second buckets; a memory of
//! recently finished call-ids so late retries are recognised. Pure: no I/O, no clock (times are
//! passed in), no locking (the service wraps it in a mutex).
//!
//! Events are applied idempotently by (call_id, kind, attempt). A call finishes when it has both
//! its start (the dip) and its end; finishing removes it and hands back the [`CallRecord`] to rate.

use std::collections::{HashMap, VecDeque};

use rustc_hash::{FxHashMap, FxHashSet};

use super::events::{AnswerInfo, AttemptInfo, EndInfo, Event, EventData, StartInfo};
use super::limits::{CustLimits, TokenBucket};

/// Most finished call-ids remembered (bounds memory at high call rates; a retry older than the
/// memory becomes an orphan, and an orphan is never written when its call-id has a CDR).
pub const MAX_FINISHED: usize = 500_000;

/// Everything known about one call.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct CallRecord {
    pub call_id: String,
    pub start: Option<StartInfo>,
    pub start_us: i64,
    /// the start event has been handed to the writer
    pub start_logged: bool,
    /// (event time, attempt), sorted by attempt number
    pub attempts: Vec<(i64, AttemptInfo)>,
    pub answer: Option<(i64, AnswerInfo)>,
    pub end: Option<(i64, EndInfo)>,
    /// earliest event time seen (orphans: calls with events but no start)
    pub first_us: i64,
    /// server time the record was created (orphan reaping)
    pub created_us: i64,
    pub(crate) customer_key: Option<String>,
    pub(crate) route_key: Option<String>,
    /// the customer trunk counted for this call (issue 19)
    pub(crate) trunk_key: Option<String>,
}

impl CallRecord {
    fn new(call_id: &str, now_us: i64) -> CallRecord {
        CallRecord {
            call_id: call_id.to_string(),
            created_us: now_us,
            first_us: i64::MAX,
            ..Default::default()
        }
    }

    /// The route that carried the call, if it was answered.
    pub fn carrying_route(&self) -> Option<&str> {
        if let Some((_, a)) = &self.answer {
            if let Some(r) = &a.route_id {
                return Some(r);
            }
            if let Some(n) = a.attempt {
                if let Some((_, at)) = self.attempts.iter().find(|(_, at)| at.attempt == n) {
                    return Some(&at.route_id);
                }
            }
        }
        self.attempts
            .iter()
            .rev()
            .find(|(_, a)| (200..300).contains(&a.sip_code))
            .map(|(_, a)| a.route_id.as_str())
            .or_else(|| {
                // answered without naming a route: the last attempt tried
                self.answer
                    .as_ref()
                    .and_then(|_| self.attempts.last().map(|(_, a)| a.route_id.as_str()))
            })
    }

    /// Answer time: the answer event, else a 2xx attempt.
    pub fn answered_us(&self) -> Option<i64> {
        if let Some((t, _)) = &self.answer {
            return Some(*t);
        }
        self.attempts
            .iter()
            .find(|(_, a)| (200..300).contains(&a.sip_code))
            .map(|(t, _)| *t)
    }

    pub fn is_orphan(&self) -> bool {
        self.start.is_none()
    }
}

/// Result of applying one event.
#[derive(Debug, PartialEq)]
pub enum Applied {
    /// New information. `inject_start`: the call's start event never reached the writer (its queue
    /// was full at the dip) and must be persisted before this one. `finished`: the call is complete.
    New {
        inject_start: Option<Box<Event>>,
        finished: Option<Box<CallRecord>>,
    },
    /// Already known (a retry): nothing to persist.
    Duplicate,
    /// The call already has its CDR: a late retry, dropped.
    AfterFinish,
}

/// Outcome of the limit check at the dip.
#[derive(Debug, PartialEq, Eq)]
pub enum Admit {
    /// A new call may start.
    Ok,
    /// A retransmitted dip of a call already started: answer it, count nothing.
    Retransmit,
    /// Over a limit: the reason for the 503.
    Reject(LimitReject),
}

/// Whether the call limits apply to a dip. Emergency calls (the dip answered with the emergency
/// route) bypass every limit: concurrent calls, calls per second and route capacity (and, when it
/// exists, credit). They are still tracked and counted live once started.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CallPriority {
    Normal,
    Emergency,
}

/// Which call limit refused a new call. Answered as a 503 with this text; [`label`](Self::label)
/// is the `warpd_calls_limited_total` label.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum LimitReject {
    #[error("concurrent call limit {max} reached")]
    Concurrent { max: u32 },
    #[error("calls per second limit {cps} exceeded")]
    Cps { cps: u32 },
    #[error("trunk concurrent call limit {max} reached")]
    TrunkConcurrent { max: u32 },
    #[error("trunk calls per second limit {cps} exceeded")]
    TrunkCps { cps: u32 },
}

impl LimitReject {
    /// The metric label.
    pub fn label(self) -> &'static str {
        match self {
            LimitReject::Concurrent { .. } => "concurrent",
            LimitReject::Cps { .. } => "cps",
            LimitReject::TrunkConcurrent { .. } => "trunk_concurrent",
            LimitReject::TrunkCps { .. } => "trunk_cps",
        }
    }
}

/// What the reaper found.
#[derive(Debug, Default)]
pub struct Reaped {
    /// synthetic end events for calls over the maximum duration or without an end
    pub ends: Vec<Event>,
    /// calls that never had a start, past the orphan time-to-live
    pub orphans: Vec<CallRecord>,
}

/// Reaper limits, microseconds.
#[derive(Clone, Copy, Debug)]
pub struct ReapLimits {
    pub max_duration_us: i64,
    pub max_setup_us: i64,
    pub orphan_ttl_us: i64,
}

#[derive(Default)]
pub struct CallTable {
    calls: FxHashMap<String, CallRecord>,
    finished: FxHashMap<String, i64>,
    finished_order: VecDeque<(i64, String)>,
    /// the finished ids that were rejected at the dip: a new dip of one is a new call, not a
    /// retransmission (a caller retrying at its limit must not get an untracked route)
    rejected: FxHashSet<String>,
    per_customer: HashMap<String, u32>,
    per_route: HashMap<String, u32>,
    per_trunk: HashMap<String, u32>,
    cps: HashMap<String, TokenBucket>,
    trunk_cps: HashMap<String, TokenBucket>,
    /// how long finished call-ids are remembered
    pub finished_memory_us: i64,
}

fn inc(m: &mut HashMap<String, u32>, k: &str) {
    match m.get_mut(k) {
        Some(v) => *v += 1,
        None => {
            m.insert(k.to_string(), 1);
        }
    }
}

fn dec(m: &mut HashMap<String, u32>, k: &str) {
    if let Some(v) = m.get_mut(k) {
        *v = v.saturating_sub(1);
        if *v == 0 {
            m.remove(k);
        }
    }
}

impl CallTable {
    pub fn new(finished_memory_us: i64) -> CallTable {
        CallTable {
            finished_memory_us,
            ..Default::default()
        }
    }

    pub fn live(&self) -> usize {
        self.calls.len()
    }
    pub fn customer_calls(&self, ban: &str) -> u32 {
        self.per_customer.get(ban).copied().unwrap_or(0)
    }
    pub fn trunk_calls(&self, trunk: &str) -> u32 {
        self.per_trunk.get(trunk).copied().unwrap_or(0)
    }
    pub fn route_calls(&self, route: &str) -> u32 {
        self.per_route.get(route).copied().unwrap_or(0)
    }
    /// Every live call.
    pub fn records(&self) -> impl Iterator<Item = &CallRecord> {
        self.calls.values()
    }
    pub fn get(&self, call_id: &str) -> Option<&CallRecord> {
        self.calls.get(call_id)
    }
    pub fn is_finished(&self, call_id: &str) -> bool {
        self.finished.contains_key(call_id)
    }

    /// Limit check for a dip that would start `call_id` for customer `ban`. An emergency call
    /// is always admitted (and takes no CPS token).
    pub fn admit(
        &mut self,
        call_id: &str,
        ban: &str,
        lim: Option<&CustLimits>,
        now_us: i64,
        priority: CallPriority,
    ) -> Admit {
        if self.calls.get(call_id).is_some_and(|c| c.start.is_some())
            || (self.finished.contains_key(call_id) && !self.rejected.contains(call_id))
        {
            return Admit::Retransmit;
        }
        if priority == CallPriority::Emergency {
            return Admit::Ok;
        }
        let Some(lim) = lim else { return Admit::Ok };
        if let Some(max) = lim.max_calls {
            if self.customer_calls(ban) >= max {
                return Admit::Reject(LimitReject::Concurrent { max });
            }
        }
        if let Some(cps) = lim.max_cps {
            let b = self
                .cps
                .entry(ban.to_string())
                .or_insert_with(|| TokenBucket::full(cps, now_us));
            if !b.take(cps, now_us) {
                return Admit::Reject(LimitReject::Cps { cps });
            }
        }
        Admit::Ok
    }

    /// The trunk's limits for a call [`admit`](Self::admit) let in (issue 19): concurrent calls
    /// of the trunk, then its CPS. Emergency calls are never refused.
    pub fn admit_trunk(
        &mut self,
        trunk: &str,
        max_calls: Option<u32>,
        max_cps: Option<u32>,
        now_us: i64,
        priority: CallPriority,
    ) -> Admit {
        if priority == CallPriority::Emergency {
            return Admit::Ok;
        }
        if let Some(max) = max_calls {
            if self.trunk_calls(trunk) >= max {
                return Admit::Reject(LimitReject::TrunkConcurrent { max });
            }
        }
        if let Some(cps) = max_cps {
            let b = self
                .trunk_cps
                .entry(trunk.to_string())
                .or_insert_with(|| TokenBucket::full(cps, now_us));
            if !b.take(cps, now_us) {
                return Admit::Reject(LimitReject::TrunkCps { cps });
            }
        }
        Admit::Ok
    }

    /// Registers a started call at the dip (after [`admit`](Self::admit) said Ok). Its start
    /// event is not yet persisted: applying that event (queued to the writer) persists it and,
    /// should the call already have its end (an orphan), finishes it.
    pub fn start(&mut self, ev: &Event, now_us: i64) {
        let EventData::Start(s) = &ev.data else {
            return;
        };
        // a call rejected before and dipped again (now admitted) starts afresh
        if self.rejected.remove(&ev.call_id) {
            self.finished.remove(&ev.call_id);
        }
        let c = self
            .calls
            .entry(ev.call_id.clone())
            .or_insert_with(|| CallRecord::new(&ev.call_id, now_us));
        if c.start.is_some() {
            return;
        }
        c.start = Some(StartInfo::clone(s));
        c.start_us = ev.ts_us;
        c.start_logged = false;
        c.first_us = c.first_us.min(ev.ts_us);
        if c.customer_key.is_none() {
            if let Some(k) = s.ban.clone().or_else(|| s.src_ip.clone()) {
                c.customer_key = Some(k.clone());
                inc(&mut self.per_customer, &k);
            }
        }
        if c.trunk_key.is_none() {
            if let Some(t) = s.trunk.clone() {
                inc(&mut self.per_trunk, &t);
                c.trunk_key = Some(t);
            }
        }
    }

    /// Applies one event (idempotent).
    pub fn apply(&mut self, ev: &Event, now_us: i64) -> Applied {
        if self.finished.contains_key(&ev.call_id) {
            return Applied::AfterFinish;
        }
        let c = self
            .calls
            .entry(ev.call_id.clone())
            .or_insert_with(|| CallRecord::new(&ev.call_id, now_us));
        let mut count_route: Option<String> = None;
        let mut count_customer: Option<String> = None;
        let mut count_trunk: Option<String> = None;
        match &ev.data {
            EventData::Start(s) => {
                if c.start.is_some() {
                    if c.start_logged {
                        return Applied::Duplicate;
                    }
                    c.start_logged = true;
                } else {
                    c.start = Some(StartInfo::clone(s));
                    c.start_us = ev.ts_us;
                    c.start_logged = true;
                    // a call rejected at the dip is never counted live
                    if c.customer_key.is_none() && s.reject.is_none() {
                        count_customer = s.ban.clone().or_else(|| s.src_ip.clone());
                    }
                    if c.trunk_key.is_none() && s.reject.is_none() {
                        count_trunk = s.trunk.clone();
                    }
                }
            }
            EventData::Attempt(a) => {
                match c
                    .attempts
                    .binary_search_by_key(&a.attempt, |(_, x)| x.attempt)
                {
                    Ok(_) => return Applied::Duplicate,
                    Err(i) => c.attempts.insert(i, (ev.ts_us, a.clone())),
                }
                if (200..300).contains(&a.sip_code) && c.route_key.is_none() {
                    count_route = Some(a.route_id.clone());
                }
            }
            EventData::Answer(a) => {
                if c.answer.is_some() {
                    return Applied::Duplicate;
                }
                c.answer = Some((ev.ts_us, a.clone()));
                if c.route_key.is_none() {
                    count_route = c.carrying_route().map(str::to_string);
                }
            }
            EventData::End(e) => {
                if c.end.is_some() {
                    return Applied::Duplicate;
                }
                c.end = Some((ev.ts_us, e.clone()));
            }
        }
        c.first_us = c.first_us.min(ev.ts_us);
        let inject_start = match (&c.start, c.start_logged) {
            (Some(s), false) if !matches!(ev.data, EventData::Start(_)) => {
                c.start_logged = true;
                Some(Box::new(Event {
                    call_id: c.call_id.clone(),
                    ts_us: c.start_us,
                    data: EventData::Start(Box::new(s.clone())),
                }))
            }
            _ => None,
        };
        let rejected = c.start.as_ref().is_some_and(|s| s.reject.is_some());
        let done = c.start.is_some() && (c.end.is_some() || rejected);
        if let Some(k) = count_customer {
            c.customer_key = Some(k.clone());
            inc(&mut self.per_customer, &k);
        }
        if let Some(t) = count_trunk {
            inc(&mut self.per_trunk, &t);
            c.trunk_key = Some(t);
        }
        if let Some(k) = count_route {
            if let Some(c) = self.calls.get_mut(&ev.call_id) {
                c.route_key = Some(k.clone());
            }
            inc(&mut self.per_route, &k);
        }
        let finished = if done {
            self.finish(&ev.call_id, now_us).map(Box::new)
        } else {
            None
        };
        Applied::New {
            inject_start,
            finished,
        }
    }

    /// Removes a call, releases its counts and remembers its id.
    fn finish(&mut self, call_id: &str, now_us: i64) -> Option<CallRecord> {
        let c = self.calls.remove(call_id)?;
        if let Some(k) = &c.customer_key {
            dec(&mut self.per_customer, k);
        }
        if let Some(k) = &c.route_key {
            dec(&mut self.per_route, k);
        }
        if let Some(k) = &c.trunk_key {
            dec(&mut self.per_trunk, k);
        }
        self.finished.insert(c.call_id.clone(), now_us);
        if c.start.as_ref().is_some_and(|s| s.reject.is_some()) {
            self.rejected.insert(c.call_id.clone());
        }
        self.finished_order.push_back((now_us, c.call_id.clone()));
        self.expire_finished(now_us);
        Some(c)
    }

    fn expire_finished(&mut self, now_us: i64) {
        while let Some((t, _)) = self.finished_order.front() {
            if now_us - *t <= self.finished_memory_us && self.finished_order.len() <= MAX_FINISHED {
                break;
            }
            if let Some((t, id)) = self.finished_order.pop_front() {
                if self.finished.get(&id) == Some(&t) {
                    self.finished.remove(&id);
                    self.rejected.remove(&id);
                }
            }
        }
    }

    /// Finds calls to close: synthetic end events (hangup "system") for answered calls over the
    /// maximum duration and unanswered calls past the setup limit; orphans past their TTL are
    /// removed and returned.
    pub fn reap(&mut self, now_us: i64, lim: ReapLimits) -> Reaped {
        let mut out = Reaped::default();
        let mut orphan_ids = vec![];
        for c in self.calls.values() {
            if c.end.is_some() && c.start.is_some() {
                continue;
            }
            if c.start.is_none() {
                if now_us - c.created_us > lim.orphan_ttl_us {
                    orphan_ids.push(c.call_id.clone());
                }
                continue;
            }
            let (ts, flag, cause) = match c.answered_us() {
                Some(a) if now_us - a > lim.max_duration_us => (
                    a + lim.max_duration_us,
                    "reaped_max_duration",
                    "maximum call duration exceeded",
                ),
                Some(_) => continue,
                None if now_us - c.start_us > lim.max_setup_us => {
                    (now_us, "reaped_no_end", "no end event")
                }
                None => continue,
            };
            if c.end.is_none() {
                out.ends.push(Event {
                    call_id: c.call_id.clone(),
                    ts_us: ts,
                    data: EventData::End(EndInfo {
                        hangup: Some("system".into()),
                        cause: Some(cause.into()),
                        reaped: Some(flag.into()),
                        ..Default::default()
                    }),
                });
            }
        }
        for id in orphan_ids {
            if let Some(c) = self.finish(&id, now_us) {
                out.orphans.push(c);
            }
        }
        self.expire_finished(now_us);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::super::events::RouteOffer;
    use super::*;

    fn start(id: &str, ts: i64) -> Event {
        Event {
            call_id: id.into(),
            ts_us: ts,
            data: EventData::Start(Box::new(StartInfo {
                ban: Some("10001".into()),
                ani: "1".into(),
                dnis: "2".into(),
                routes: vec![RouteOffer {
                    route_id: "r1".into(),
                    vendor: "v".into(),
                    rate_e7: 45_000,
                    customer_rate_e7: 60_000,
                    min: 6,
                    inc: 6,
                    zone: None,
                }],
                ..Default::default()
            })),
        }
    }
    fn attempt(id: &str, n: u32, route: &str, code: u16, ts: i64) -> Event {
        Event {
            call_id: id.into(),
            ts_us: ts,
            data: EventData::Attempt(AttemptInfo {
                attempt: n,
                route_id: route.into(),
                sip_code: code,
                reason: None,
                ring_us: None,
            }),
        }
    }
    fn end(id: &str, ts: i64) -> Event {
        Event {
            call_id: id.into(),
            ts_us: ts,
            data: EventData::End(EndInfo::default()),
        }
    }

    #[test]
    fn emergency_calls_bypass_concurrency_and_cps() {
        let mut t = CallTable::new(1_000_000);
        let lim = CustLimits {
            max_calls: Some(1),
            max_cps: Some(1),
            ..Default::default()
        };
        let normal = CallPriority::Normal;
        assert_eq!(t.admit("a", "10001", Some(&lim), 0, normal), Admit::Ok);
        t.start(&start("a", 0), 0);
        // at the concurrent limit and out of CPS tokens: a normal call is refused ...
        assert_eq!(
            t.admit("b", "10001", Some(&lim), 0, normal),
            Admit::Reject(LimitReject::Concurrent { max: 1 })
        );
        // ... an emergency call is not, and it takes no token
        let e = CallPriority::Emergency;
        assert_eq!(t.admit("911-1", "10001", Some(&lim), 0, e), Admit::Ok);
        t.start(&start("911-1", 0), 0);
        assert_eq!(
            t.customer_calls("10001"),
            2,
            "emergency calls are counted live"
        );
        assert_eq!(t.admit("911-2", "10001", Some(&lim), 0, e), Admit::Ok);
        assert_eq!(
            t.admit("911-1", "10001", Some(&lim), 0, e),
            Admit::Retransmit
        );
    }

    /// Issue 17: a call rejected at the dip is finished by its start event alone (never live,
    /// never an orphan); Kamailio's `call.end` for it comes after the finish and is dropped; its
    /// CDR is the customer's, `rejected` with the SIP code and reason.
    #[test]
    fn rejected_call_is_finished_at_once_with_a_rejected_cdr() {
        let mut t = CallTable::new(1_000_000);
        let mut ev = start("rej", 5);
        if let EventData::Start(s) = &mut ev.data {
            s.routes.clear();
            s.reject = Some(super::super::events::Rejection {
                sip_code: 403,
                reason: "destination class caribbean not allowed".into(),
            });
        }
        let Applied::New {
            finished: Some(c), ..
        } = t.apply(&ev, 5)
        else {
            panic!("a rejected start finishes the call");
        };
        assert_eq!(t.live(), 0);
        assert_eq!(t.customer_calls("10001"), 0);
        assert_eq!(t.apply(&end("rej", 6), 6), Applied::AfterFinish);
        assert_eq!(t.live(), 0, "the end of a rejected call is no orphan");
        let cdr = crate::cdr::build(&c);
        assert_eq!(cdr.disposition, "rejected");
        assert_eq!(cdr.sip_code, Some(403));
        assert_eq!(
            cdr.cause.as_deref(),
            Some("destination class caribbean not allowed")
        );
        assert_eq!(cdr.customer_ban.as_deref(), Some("10001"));
        assert_eq!(cdr.dnis.as_deref(), Some("2"));
        assert!(!cdr.orphan && cdr.flags.is_empty(), "{cdr:?}");
        assert_eq!(cdr.ended_us, Some(5));
        // dipped again and admitted this time: a new call, not a retransmission
        let n = CallPriority::Normal;
        assert_eq!(t.admit("rej", "10001", None, 7, n), Admit::Ok);
        t.start(&start("rej", 7), 7);
        assert_eq!(t.customer_calls("10001"), 1);
        assert!(matches!(
            t.apply(&end("rej", 9), 9),
            Applied::New {
                finished: Some(_),
                ..
            }
        ));
        assert_eq!(t.admit("rej", "10001", None, 10, n), Admit::Retransmit);
    }

    #[test]
    fn lifecycle_counts_and_idempotency() {
        let mut t = CallTable::new(1_000_000);
        let lim = CustLimits {
            max_calls: Some(1),
            ..Default::default()
        };
        assert_eq!(
            t.admit("a", "10001", Some(&lim), 0, CallPriority::Normal),
            Admit::Ok
        );
        t.start(&start("a", 0), 0);
        assert!(matches!(
            t.apply(&start("a", 0), 0),
            Applied::New { finished: None, .. }
        ));
        assert_eq!(t.apply(&start("a", 0), 0), Applied::Duplicate);
        assert_eq!(t.customer_calls("10001"), 1);
        assert_eq!(
            t.admit("a", "10001", Some(&lim), 0, CallPriority::Normal),
            Admit::Retransmit
        );
        assert!(matches!(
            t.admit("b", "10001", Some(&lim), 0, CallPriority::Normal),
            Admit::Reject(_)
        ));
        assert!(matches!(
            t.apply(&attempt("a", 1, "r1", 200, 1), 1),
            Applied::New { finished: None, .. }
        ));
        assert_eq!(t.route_calls("r1"), 1);
        assert_eq!(
            t.apply(&attempt("a", 1, "r1", 200, 1), 1),
            Applied::Duplicate
        );
        match t.apply(&end("a", 5), 5) {
            Applied::New {
                finished: Some(c), ..
            } => assert_eq!(c.carrying_route(), Some("r1")),
            other => panic!("{other:?}"),
        }
        assert_eq!(t.customer_calls("10001"), 0);
        assert_eq!(t.route_calls("r1"), 0);
        assert_eq!(t.apply(&end("a", 5), 6), Applied::AfterFinish);
        // forgotten after the memory window
        t.reap(
            3_000_000,
            ReapLimits {
                max_duration_us: 10,
                max_setup_us: 10,
                orphan_ttl_us: 10,
            },
        );
        assert!(!t.is_finished("a"));
    }

    #[test]
    fn orphan_then_start_completes_and_unlogged_start_is_injected() {
        let mut t = CallTable::new(1_000_000);
        assert!(matches!(
            t.apply(&end("o", 9), 9),
            Applied::New { finished: None, .. }
        ));
        assert!(t.get("o").unwrap().is_orphan());
        t.start(&start("o", 1), 10);
        match t.apply(&start("o", 1), 10) {
            Applied::New {
                finished: Some(c), ..
            } => assert_eq!(c.call_id, "o"),
            other => panic!("end was already there: {other:?}"),
        }
        // a call whose start never reached the writer gets it injected with its next event
        t.start(&start("p", 1), 1);
        match t.apply(&attempt("p", 1, "r1", 486, 2), 2) {
            Applied::New {
                inject_start: Some(s),
                ..
            } => assert_eq!(s.kind(), "start"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn out_of_order_events_give_the_same_call() {
        // answer and a later attempt arrive before the first attempt; the end comes last
        let mut t = CallTable::new(1_000_000);
        t.start(&start("x", 0), 0);
        let answer = Event {
            call_id: "x".into(),
            ts_us: 30,
            data: EventData::Answer(AnswerInfo {
                attempt: Some(2),
                route_id: None,
            }),
        };
        for e in [
            start("x", 0),
            answer,
            attempt("x", 2, "r2", 200, 30),
            attempt("x", 1, "r1", 503, 10),
        ] {
            assert!(matches!(
                t.apply(&e, 40),
                Applied::New { finished: None, .. }
            ));
        }
        assert_eq!(t.route_calls("r2"), 1);
        match t.apply(&end("x", 90), 90) {
            Applied::New {
                finished: Some(c), ..
            } => {
                assert_eq!(c.carrying_route(), Some("r2"));
                let order: Vec<u32> = c.attempts.iter().map(|(_, a)| a.attempt).collect();
                assert_eq!(order, vec![1, 2]);
                assert_eq!(c.answered_us(), Some(30));
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(t.route_calls("r2"), 0);
    }

    #[test]
    fn reaper() {
        let mut t = CallTable::new(1_000_000);
        let lim = ReapLimits {
            max_duration_us: 100,
            max_setup_us: 50,
            orphan_ttl_us: 70,
        };
        t.start(&start("long", 0), 0);
        t.apply(&attempt("long", 1, "r1", 200, 10), 10);
        t.start(&start("stuck", 0), 0);
        t.apply(&attempt("orph", 1, "r1", 200, 0), 0);
        let r = t.reap(60, lim);
        assert_eq!(r.ends.len(), 1, "only the unanswered one is past setup");
        assert_eq!(r.ends[0].call_id, "stuck");
        let r = t.reap(111, lim);
        let ids: Vec<_> = r.ends.iter().map(|e| e.call_id.as_str()).collect();
        assert!(ids.contains(&"long"));
        let long = r.ends.iter().find(|e| e.call_id == "long").unwrap();
        assert_eq!(long.ts_us, 110, "closed at answer + max duration");
        assert_eq!(r.orphans.len(), 1);
        assert_eq!(r.orphans[0].call_id, "orph");
    }
}
