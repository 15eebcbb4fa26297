//! The overview's short history: every [`INTERVAL`] the dip counters (by outcome) and the live
//! call count are sampled into a ring of [`KEEP`] samples, so a page can draw dips/s and live
//! calls as sparklines without a time-series store. A sample is a few counters: reading the
//! counters takes no lock on the dip path (prometheus counters are atomics).
//!
//! Owns: the ring. Must not touch: metric definitions.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Mutex;
use std::time::Duration;

use prometheus::core::Collector;

/// Time between samples.
pub const INTERVAL: Duration = Duration::from_secs(2);
/// Samples kept (5 minutes).
pub const KEEP: usize = 150;

#[derive(Clone, Debug, Default)]
pub struct Sample {
    /// unix milliseconds
    pub at_ms: i64,
    /// dips_total by outcome label
    pub dips: BTreeMap<String, u64>,
    pub live_calls: u64,
}

#[derive(Default)]
pub struct Sampler {
    ring: Mutex<VecDeque<Sample>>,
}

/// Every outcome's count of `dips_total`.
pub fn dips_by_outcome(m: &crate::metrics::Metrics) -> BTreeMap<String, u64> {
    let mut out = BTreeMap::new();
    for fam in m.dips.collect() {
        for metric in fam.get_metric() {
            let outcome = metric
                .get_label()
                .iter()
                .find(|l| l.name() == "outcome")
                .map(|l| l.value().to_string())
                .unwrap_or_default();
            out.insert(outcome, metric.get_counter().get_value() as u64);
        }
    }
    out
}

impl Sampler {
    pub fn new() -> Sampler {
        Sampler::default()
    }

    pub fn push(&self, s: Sample) {
        let mut r = self.ring.lock().unwrap_or_else(|p| p.into_inner());
        if r.len() == KEEP {
            r.pop_front();
        }
        r.push_back(s);
    }

    pub fn samples(&self) -> Vec<Sample> {
        self.ring
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .cloned()
            .collect()
    }

    /// Dips per second between consecutive samples (all outcomes), oldest first.
    pub fn dip_rates(samples: &[Sample]) -> Vec<f64> {
        samples
            .windows(2)
            .map(|w| {
                let total = |s: &Sample| s.dips.values().sum::<u64>();
                let dt = (w[1].at_ms - w[0].at_ms).max(1) as f64 / 1000.0;
                total(&w[1]).saturating_sub(total(&w[0])) as f64 / dt
            })
            .collect()
    }

    /// Samples the counters every [`INTERVAL`] until `stop`.
    pub fn spawn(
        self: std::sync::Arc<Self>,
        metrics: std::sync::Arc<crate::metrics::Metrics>,
        calls: Option<std::sync::Arc<crate::calls::CallService>>,
        stop: tokio_util::sync::CancellationToken,
    ) -> tokio::task::JoinHandle<()> {
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(INTERVAL);
            loop {
                tokio::select! {
                    _ = stop.cancelled() => return,
                    _ = tick.tick() => {}
                }
                self.push(Sample {
                    at_ms: chrono::Utc::now().timestamp_millis(),
                    dips: dips_by_outcome(&metrics),
                    live_calls: calls.as_ref().map_or(0, |c| c.live_calls() as u64),
                });
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_come_from_consecutive_samples_and_the_ring_is_bounded() {
        let s = Sampler::new();
        for i in 0..(KEEP as i64 + 10) {
            s.push(Sample {
                at_ms: i * 2000,
                dips: BTreeMap::from([("route".to_string(), (i * 10) as u64)]),
                live_calls: 0,
            });
        }
        let all = s.samples();
        assert_eq!(all.len(), KEEP);
        let r = Sampler::dip_rates(&all);
        assert_eq!(r.len(), KEEP - 1);
        assert!(r.iter().all(|x| (*x - 5.0).abs() < 1e-9), "{r:?}");
    }
}
