//! The call layer's Prometheus metrics (live calls, events, limits, CDRs, the spool), registered
//! into the shared registry.

use prometheus::{
    GaugeVec, Histogram, HistogramOpts, IntCounter, IntCounterVec, IntGauge, Opts, Registry,
};

/// Prometheus metrics of calls and CDRs (registered into the shared registry).
pub struct CallMetrics {
    pub active: IntGauge,
    /// events by kind and outcome (new, duplicate, after_finish, invalid)
    pub events: IntCounterVec,
    /// dips refused or trimmed by limits, by reason (concurrent, cps, capacity)
    pub limited: IntCounterVec,
    pub cdrs_written: IntCounter,
    /// batches by destination (db, spool) and result
    pub batches: IntCounterVec,
    pub batch_seconds: Histogram,
    pub spool_bytes: IntGauge,
    /// spool records lost to a cut or corrupt tail (never acknowledged)
    pub spool_damaged: IntCounter,
    pub reaped: IntCounterVec,
    pub start_not_queued: IntCounter,
    pub route_quality: GaugeVec,
}

/// Metric definitions below are static and valid; prometheus only rejects invalid names (the
/// same policy as `crate::metrics`).
fn metric<T>(r: Result<T, prometheus::Error>) -> T {
    r.unwrap_or_else(|e| panic!("static metric definition rejected by prometheus: {e}"))
}

impl CallMetrics {
    pub fn new(reg: &Registry) -> CallMetrics {
        let cv = |name: &str, help: &str, labels: &[&str]| {
            metric(IntCounterVec::new(Opts::new(name, help), labels))
        };
        let m = CallMetrics {
            active: metric(IntGauge::new("calls_active", "Live calls")),
            events: cv(
                "call_events_total",
                "Call events by kind and outcome",
                &["kind", "outcome"],
            ),
            limited: cv(
                "call_limit_total",
                "Dips refused or trimmed by call limits",
                &["reason"],
            ),
            cdrs_written: metric(IntCounter::new(
                "cdrs_written_total",
                "CDRs committed to PostgreSQL",
            )),
            batches: cv(
                "cdr_batches_total",
                "Writer batches by target and result",
                &["target", "result"],
            ),
            batch_seconds: metric(Histogram::with_opts(
                HistogramOpts::new("cdr_batch_seconds", "Time to make one batch durable").buckets(
                    vec![
                        0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0,
                    ],
                ),
            )),
            spool_bytes: metric(IntGauge::new(
                "cdr_spool_bytes",
                "Bytes waiting in the local spool",
            )),
            spool_damaged: metric(IntCounter::new(
                "cdr_spool_damaged_total",
                "Spool files with a cut or corrupt tail record",
            )),
            reaped: cv("calls_reaped_total", "Calls closed by the reaper", &["reason"]),
            start_not_queued: metric(IntCounter::new(
                "call_start_not_queued_total",
                "Dip starts not queued (queue full); persisted with the call's next event",
            )),
            route_quality: metric(GaugeVec::new(
                Opts::new(
                    "route_quality",
                    "Rolling route quality by measure: asr (ratio), acd_seconds, pdd_seconds, attempts",
                ),
                &["route", "measure"],
            )),
        };
        for c in [
            Box::new(m.active.clone()) as Box<dyn prometheus::core::Collector>,
            Box::new(m.events.clone()),
            Box::new(m.limited.clone()),
            Box::new(m.cdrs_written.clone()),
            Box::new(m.batches.clone()),
            Box::new(m.batch_seconds.clone()),
            Box::new(m.spool_bytes.clone()),
            Box::new(m.spool_damaged.clone()),
            Box::new(m.reaped.clone()),
            Box::new(m.start_not_queued.clone()),
            Box::new(m.route_quality.clone()),
        ] {
            // distinct constant names; a second service on the same registry keeps the first
            let _ = reg.register(c);
        }
        m
    }
}
