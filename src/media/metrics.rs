//! Media metrics, registered into the shared Prometheus registry ([`crate::metrics::Metrics`])
//! so they render at `GET /metrics` with the rest.
//!
//! Owns: the `warpd_media_*` metric definitions. Must not touch: anything else.

use prometheus::{
    Histogram, HistogramOpts, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry,
};

pub struct MediaMetrics {
    /// commands handled by the controller, by command and outcome (ok, error, node_error)
    pub commands: IntCounterVec,
    /// errors by kind, each counted once where it is handled: a failed command by the controller
    /// (timeout, garbage_reply, node_down, …), a bad command by the proxy (no_cookie, decode,
    /// unknown_command, bad_command), a datagram nobody waits for by the client (garbage_reply,
    /// unknown_cookie, reply_from_wrong_node), a failed health ping by the pool (probe_failed)
    pub errors: IntCounterVec,
    /// 1 when the node answers, by node address
    pub node_up: IntGaugeVec,
    /// time from receiving a command to sending its answer (proxy and RPC)
    pub command_duration: Histogram,
    /// warpd's own time per proxied command: receive → answer sent, minus the time spent waiting
    /// for nodes (excludes the one extra loopback hop)
    pub proxy_overhead: Histogram,
    /// datagrams the client sent again after a timeout
    pub retransmits: IntCounter,
    /// repeated cookies from Kamailio answered from the cache (or dropped while in flight)
    pub proxy_retransmits: IntCounter,
    /// media policy rows in effect
    pub policies: IntGauge,
    /// media policy loads from the database (start, NOTIFY)
    pub policy_loads: IntCounter,
}

fn must<T>(r: Result<T, prometheus::Error>) -> T {
    match r {
        Ok(v) => v,
        // names and labels below are static and valid
        Err(e) => panic!("static media metric rejected: {e}"),
    }
}

impl MediaMetrics {
    /// Creates the metrics and registers them in `registry` (a second registration in the same
    /// registry is ignored, so tests may build several controllers).
    pub fn new(registry: Option<&Registry>) -> MediaMetrics {
        let m = MediaMetrics {
            commands: must(IntCounterVec::new(
                Opts::new(
                    "media_commands_total",
                    "ng commands handled, by command and outcome",
                ),
                &["command", "outcome"],
            )),
            errors: must(IntCounterVec::new(
                Opts::new("media_errors_total", "Media control errors, by kind"),
                &["kind"],
            )),
            node_up: must(IntGaugeVec::new(
                Opts::new("media_node_up", "1 when the RTPEngine node is healthy"),
                &["node"],
            )),
            command_duration: must(Histogram::with_opts(
                HistogramOpts::new(
                    "media_command_duration_seconds",
                    "Time to answer an ng command (including the node)",
                )
                .buckets(vec![
                    0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.05, 0.25,
                    1.0, 5.0,
                ]),
            )),
            proxy_overhead: must(Histogram::with_opts(
                HistogramOpts::new(
                    "media_proxy_overhead_seconds",
                    "warpd's own time per proxied ng command (total minus node wait)",
                )
                .buckets(vec![
                    0.000_005, 0.000_01, 0.000_025, 0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001,
                    0.005, 0.025, 0.1,
                ]),
            )),
            retransmits: must(IntCounter::new(
                "media_client_retransmits_total",
                "ng requests sent again after a timeout",
            )),
            proxy_retransmits: must(IntCounter::new(
                "media_proxy_retransmits_total",
                "Repeated cookies from Kamailio answered from cache or absorbed while in flight",
            )),
            policies: must(IntGauge::new(
                "media_policies",
                "Media policy rows in effect",
            )),
            policy_loads: must(IntCounter::new(
                "media_policy_loads_total",
                "Media policy loads from the database",
            )),
        };
        if let Some(r) = registry {
            for c in [
                Box::new(m.commands.clone()) as Box<dyn prometheus::core::Collector>,
                Box::new(m.errors.clone()),
                Box::new(m.node_up.clone()),
                Box::new(m.command_duration.clone()),
                Box::new(m.proxy_overhead.clone()),
                Box::new(m.retransmits.clone()),
                Box::new(m.proxy_retransmits.clone()),
                Box::new(m.policies.clone()),
                Box::new(m.policy_loads.clone()),
            ] {
                let _ = r.register(c);
            }
        }
        m
    }

    pub fn error(&self, kind: &str) {
        self.errors.with_label_values(&[kind]).inc();
    }
}
