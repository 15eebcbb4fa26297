//! Route quality: rolling answer-seizure ratio (ASR), average call duration (ACD) and post-dial
//! delay (PDD) per route over a window of time buckets, fed from finished calls. Pure data.

use std::collections::HashMap;

use serde::Serialize;

use super::state::CallRecord;

#[derive(Clone, Copy, Debug, Default)]
struct Bucket {
    epoch: i64,
    attempts: u64,
    answered: u64,
    duration_ms: u64,
    pdd_ms: u64,
    pdd_n: u64,
}

/// Figures of one route over the window.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct RouteStats {
    pub route_id: String,
    /// destination group (first digits of the E.164 DNIS) for per-prefix figures
    #[serde(skip_serializing_if = "Option::is_none")]
    pub prefix: Option<String>,
    pub attempts: u64,
    pub answered: u64,
    /// answered / attempts
    pub asr: f64,
    /// mean answered duration, seconds
    pub acd_s: f64,
    /// mean time from the attempt's start to its first ring, milliseconds (when known)
    pub pdd_ms: Option<f64>,
}

pub struct Quality {
    bucket_us: i64,
    buckets: usize,
    routes: HashMap<String, Vec<Bucket>>,
}

impl Quality {
    /// A window of `window_s` seconds in `buckets` buckets.
    pub fn new(window_s: u64, buckets: usize) -> Quality {
        let buckets = buckets.max(1);
        Quality {
            bucket_us: ((window_s.max(1) * 1_000_000) / buckets as u64).max(1) as i64,
            buckets,
            routes: HashMap::new(),
        }
    }

    fn bucket(&mut self, route: &str, t_us: i64) -> &mut Bucket {
        let epoch = t_us.div_euclid(self.bucket_us);
        let n = self.buckets;
        let v = self
            .routes
            .entry(route.to_string())
            .or_insert_with(|| vec![Bucket::default(); n]);
        let b = &mut v[epoch.rem_euclid(n as i64) as usize];
        if b.epoch != epoch {
            *b = Bucket {
                epoch,
                ..Default::default()
            };
        }
        b
    }

    /// Adds a finished call at `now_us` (warpd's clock, so event clocks cannot push figures out of
    /// the window): one attempt per attempted route; the carrying route also gets the answer and
    /// duration. Each figure also goes to (route, destination group) when the call's DNIS is
    /// known, the group being its first `group_digits` digits (0 = no groups).
    pub fn record(&mut self, c: &CallRecord, duration_ms: i64, now_us: i64, group_digits: usize) {
        let carried = c.carrying_route().map(str::to_string);
        let group: Option<String> = c
            .start
            .as_ref()
            .filter(|_| group_digits > 0)
            .map(|s| s.dnis.chars().take(group_digits).collect());
        // (route, answered, pdd)
        let mut updates: Vec<(String, bool, Option<u64>)> = vec![];
        let mut prev = c.start_us;
        for (t, a) in &c.attempts {
            let pdd = a.ring_us.map(|r| (r - prev).max(0) as u64 / 1000);
            let answered = (200..300).contains(&a.sip_code)
                || (carried.as_deref() == Some(a.route_id.as_str())
                    && c.answer.is_some()
                    && a.sip_code < 300);
            updates.push((a.route_id.clone(), answered, pdd));
            prev = *t;
        }
        // answered on a route with no attempt event: count the seizure too
        if let Some(r) = carried {
            if c.answer.is_some() && !c.attempts.iter().any(|(_, a)| a.route_id == r) {
                updates.push((r, true, None));
            }
        }
        for (route, answered, pdd) in updates {
            let mut keys = vec![route.clone()];
            if let Some(g) = &group {
                keys.push(format!("{route}{SEP}{g}"));
            }
            for k in keys {
                let b = self.bucket(&k, now_us);
                b.attempts += 1;
                if let Some(p) = pdd {
                    b.pdd_ms += p;
                    b.pdd_n += 1;
                }
                if answered {
                    b.answered += 1;
                    b.duration_ms += duration_ms.max(0) as u64;
                }
            }
        }
    }

    /// Figures per route over the window ending at `now_us`, sorted by route.
    pub fn stats(&self, now_us: i64) -> Vec<RouteStats> {
        self.collect(now_us, false)
    }

    /// Figures per (route, destination group), sorted; `prefix` is set.
    pub fn stats_by_prefix(&self, now_us: i64) -> Vec<RouteStats> {
        self.collect(now_us, true)
    }

    fn collect(&self, now_us: i64, grouped: bool) -> Vec<RouteStats> {
        let now_epoch = now_us.div_euclid(self.bucket_us);
        let mut out: Vec<RouteStats> =
            self.routes
                .iter()
                .filter(|(k, _)| k.contains(SEP) == grouped)
                .map(|(k, bs)| {
                    let mut s = Bucket::default();
                    for b in bs.iter().filter(|b| {
                        now_epoch - b.epoch < self.buckets as i64 && b.epoch <= now_epoch
                    }) {
                        s.attempts += b.attempts;
                        s.answered += b.answered;
                        s.duration_ms += b.duration_ms;
                        s.pdd_ms += b.pdd_ms;
                        s.pdd_n += b.pdd_n;
                    }
                    let (route, prefix) = match k.split_once(SEP) {
                        Some((r, p)) => (r.to_string(), Some(p.to_string())),
                        None => (k.clone(), None),
                    };
                    RouteStats {
                        route_id: route,
                        prefix,
                        attempts: s.attempts,
                        answered: s.answered,
                        asr: if s.attempts > 0 {
                            s.answered as f64 / s.attempts as f64
                        } else {
                            0.0
                        },
                        acd_s: if s.answered > 0 {
                            s.duration_ms as f64 / s.answered as f64 / 1000.0
                        } else {
                            0.0
                        },
                        pdd_ms: (s.pdd_n > 0).then(|| s.pdd_ms as f64 / s.pdd_n as f64),
                    }
                })
                .collect();
        out.sort_by(|a, b| (&a.route_id, &a.prefix).cmp(&(&b.route_id, &b.prefix)));
        out
    }
}

/// Separates route and destination group in the bucket map's keys (never in a route name from
/// provisioning: it is a control character).
const SEP: char = '\u{1f}';

#[cfg(test)]
mod tests {
    use super::super::events::{AnswerInfo, AttemptInfo};
    use super::*;

    fn call(attempts: &[(&str, u16)], answered: bool) -> CallRecord {
        CallRecord {
            call_id: "x".into(),
            start_us: 0,
            attempts: attempts
                .iter()
                .enumerate()
                .map(|(i, (r, code))| {
                    (
                        (i as i64 + 1) * 1_000_000,
                        AttemptInfo {
                            attempt: i as u32 + 1,
                            route_id: r.to_string(),
                            sip_code: *code,
                            reason: None,
                            ring_us: Some(i as i64 * 1_000_000 + 500_000),
                        },
                    )
                })
                .collect(),
            answer: answered.then(|| (3_000_000, AnswerInfo::default())),
            start: Some(crate::calls::events::StartInfo {
                dnis: "13125550100".into(),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn asr_acd_pdd() {
        let mut q = Quality::new(60, 6);
        q.record(&call(&[("a", 503), ("b", 200)], true), 30_000, 3_000_000, 4);
        q.record(&call(&[("a", 486)], false), 0, 4_000_000, 4);
        let s = q.stats(5_000_000);
        assert_eq!(s.len(), 2);
        assert_eq!((s[0].attempts, s[0].answered), (2, 0));
        assert_eq!(s[0].pdd_ms, Some(500.0));
        assert_eq!((s[1].attempts, s[1].answered), (1, 1));
        assert_eq!(s[1].asr, 1.0);
        assert_eq!(s[1].acd_s, 30.0);
        // per destination group (DNIS 13125550100 → "1312")
        let g = q.stats_by_prefix(5_000_000);
        assert_eq!(g.len(), 2);
        assert_eq!(g[0].prefix.as_deref(), Some("1312"));
        assert_eq!((g[0].route_id.as_str(), g[0].attempts), ("a", 2));
        // the window slides: two minutes later nothing is left
        assert_eq!(q.stats(125_000_000)[0].attempts, 0);
    }
}
