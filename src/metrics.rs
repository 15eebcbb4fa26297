//! Prometheus metrics shared by the components; rendered in text format at `GET /metrics`.
//!
//! Owns: metric definitions. Must not touch: anything else (components call the methods here).

use std::time::Duration;

use prometheus::{
    Encoder, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge,
    IntGaugeVec, Opts, Registry, TextEncoder,
};

use crate::routing::SnapshotStats;

pub struct Metrics {
    pub registry: Registry,
    /// dip latency in seconds, by surface (rpc, http)
    pub dip_latency: HistogramVec,
    /// dips by outcome (route, or a reject label)
    pub dips: IntCounterVec,
    /// requests refused as the caller's mistake, by surface and kind
    pub bad_requests: IntCounterVec,
    /// requests and connections refused by a listener's guard, by listener and reason
    pub refused: IntCounterVec,
    /// dips answered "unknown customer" without looking further, by reason: `unknown` (no such
    /// customer), `not_allowed` (the source may not dip as it), `ban_not_accepted` (the source
    /// dips by `src_ip` only)
    pub dip_customer_refused: IntCounterVec,
    /// inbound dips (issue 19) by outcome (route, reject_<code>, not_ready)
    pub inbound_dips: IntCounterVec,
    /// credential look-ups by result (found, not_found)
    pub credential_lookups: IntCounterVec,
    /// the routing data version (sql/0011) the active snapshot was loaded at
    pub snapshot_data_version: IntGauge,
    pub snapshot_built_at: IntGauge,
    pub snapshot_generation: IntGauge,
    pub snapshot_size: IntGaugeVec,
    pub reload_duration: Histogram,
    /// reloads by result (ok, error: builds; unchanged: answered without a build because the
    /// routing data version had not moved)
    pub reloads: IntCounterVec,
    /// snapshot parts built, by part and kind (`full`: a full build; `incremental`: re-read
    /// because its tables changed, the other parts shared with the live snapshot)
    pub snapshot_part_builds: IntCounterVec,
    /// routes whose vendor rates an incremental build re-read (the rate part patched for them,
    /// the other routes' rates carried over)
    pub snapshot_rate_routes_rebuilt: IntCounter,
    /// failed digest authentications Kamailio reported (issue 19), by whether the failure
    /// blocked the source (`blocked` = true/false)
    pub auth_failures: IntCounterVec,
    /// STIR/SHAKEN (issue 20): routed outbound dips by the attestation answered (A, B, C,
    /// keep, none)
    pub stir_attestations: IntCounterVec,
    /// inbound dips by verification outcome (passed, failed, none) and failure reason
    pub stir_verifications: IntCounterVec,
    /// source classifications Kamailio asked for before verifying an Identity (RESP `SOURCE`,
    /// `GET /v1/source`), by answer (customer, vendor, unknown: not verified)
    pub stir_source_checks: IntCounterVec,
    /// the signing certificate's notAfter (Unix time; 0: none configured): the scrape shows
    /// `warpd_stir_cert_days_to_expiry`
    pub stir_cert_not_after: IntGauge,
}

impl Metrics {
    pub fn new() -> Self {
        let registry = Registry::new_custom(Some("warpd".into()), None).unwrap_or_default();
        let dip_buckets = vec![
            0.000_01, 0.000_025, 0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01,
            0.025, 0.05, 0.1,
        ];
        let dip_latency = HistogramVec::new(
            HistogramOpts::new("dip_duration_seconds", "Time to answer a routing dip")
                .buckets(dip_buckets),
            &["surface"],
        )
        .unwrap_or_else(|_| unreachable_metric());
        let dips = IntCounterVec::new(
            Opts::new("dips_total", "Routing dips by outcome"),
            &["outcome"],
        )
        .unwrap_or_else(|_| unreachable_metric());
        let bad_requests = IntCounterVec::new(
            Opts::new(
                "bad_requests_total",
                "Requests refused as the caller's mistake",
            ),
            &["surface", "kind"],
        )
        .unwrap_or_else(|_| unreachable_metric());
        let refused = IntCounterVec::new(
            Opts::new(
                "refused_total",
                "Requests and connections refused by a listener (source not allowed, bad secret, \
                 too many connections from one source)",
            ),
            &["listener", "reason"],
        )
        .unwrap_or_else(|_| unreachable_metric());
        let dip_customer_refused = IntCounterVec::new(
            Opts::new(
                "dip_customer_refused_total",
                "Dips answered 'unknown customer': no such customer, or the source may not dip as it",
            ),
            &["reason"],
        )
        .unwrap_or_else(|_| unreachable_metric());
        let inbound_dips = IntCounterVec::new(
            Opts::new("inbound_dips_total", "Inbound (DID) dips by outcome"),
            &["outcome"],
        )
        .unwrap_or_else(|_| unreachable_metric());
        let credential_lookups = IntCounterVec::new(
            Opts::new(
                "credential_lookups_total",
                "Digest credential look-ups by result",
            ),
            &["result"],
        )
        .unwrap_or_else(|_| unreachable_metric());
        let snapshot_data_version = IntGauge::new(
            "snapshot_data_version",
            "Routing data version (bumped by every change to a table the snapshot reads) of the active snapshot",
        )
        .unwrap_or_else(|_| unreachable_metric());
        let snapshot_built_at = IntGauge::new(
            "snapshot_built_timestamp_seconds",
            "Unix time the active routing snapshot was built",
        )
        .unwrap_or_else(|_| unreachable_metric());
        let snapshot_generation = IntGauge::new(
            "snapshot_generation",
            "Generation of the active routing snapshot",
        )
        .unwrap_or_else(|_| unreachable_metric());
        let snapshot_size = IntGaugeVec::new(
            Opts::new(
                "snapshot_size",
                "Items in the active routing snapshot, by kind",
            ),
            &["kind"],
        )
        .unwrap_or_else(|_| unreachable_metric());
        let reload_duration = Histogram::with_opts(
            HistogramOpts::new(
                "snapshot_reload_duration_seconds",
                "Time to build and swap a snapshot",
            )
            .buckets(vec![
                0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
            ]),
        )
        .unwrap_or_else(|_| unreachable_metric());
        let reloads = IntCounterVec::new(
            Opts::new("snapshot_reloads_total", "Snapshot reloads"),
            &["result"],
        )
        .unwrap_or_else(|_| unreachable_metric());
        let auth_failures = IntCounterVec::new(
            Opts::new(
                "auth_failures_total",
                "Failed SIP digest authentications reported by Kamailio, by whether the source \
                 got blocked",
            ),
            &["blocked"],
        )
        .unwrap_or_else(|_| unreachable_metric());
        let stir_attestations = IntCounterVec::new(
            Opts::new(
                "stir_attestations_total",
                "Routed outbound dips by STIR/SHAKEN attestation (A, B, C, keep, none)",
            ),
            &["attest"],
        )
        .unwrap_or_else(|_| unreachable_metric());
        let stir_verifications = IntCounterVec::new(
            Opts::new(
                "stir_verifications_total",
                "Inbound dips by STIR/SHAKEN verification outcome and failure reason",
            ),
            &["verstat", "reason"],
        )
        .unwrap_or_else(|_| unreachable_metric());
        let stir_source_checks = IntCounterVec::new(
            Opts::new(
                "stir_source_checks_total",
                "Source classifications before STIR/SHAKEN verification (customer, vendor, unknown: not verified)",
            ),
            &["source"],
        )
        .unwrap_or_else(|_| unreachable_metric());
        let stir_cert_not_after = IntGauge::new(
            "stir_cert_not_after_timestamp_seconds",
            "notAfter of the STIR/SHAKEN signing certificate (Unix time; 0: none configured)",
        )
        .unwrap_or_else(|_| unreachable_metric());
        let snapshot_part_builds = IntCounterVec::new(
            Opts::new(
                "snapshot_part_builds_total",
                "Snapshot parts built, by part and build kind (full, incremental)",
            ),
            &["part", "kind"],
        )
        .unwrap_or_else(|_| unreachable_metric());
        let snapshot_rate_routes_rebuilt = IntCounter::new(
            "snapshot_rate_routes_rebuilt_total",
            "Routes whose vendor rates an incremental build re-read (the rest carried over)",
        )
        .unwrap_or_else(|_| unreachable_metric());
        for c in [
            Box::new(snapshot_part_builds.clone()) as Box<dyn prometheus::core::Collector>,
            Box::new(snapshot_rate_routes_rebuilt.clone()),
            Box::new(auth_failures.clone()),
            Box::new(dip_latency.clone()),
            Box::new(dips.clone()),
            Box::new(bad_requests.clone()),
            Box::new(refused.clone()),
            Box::new(dip_customer_refused.clone()),
            Box::new(inbound_dips.clone()),
            Box::new(credential_lookups.clone()),
            Box::new(snapshot_data_version.clone()),
            Box::new(snapshot_built_at.clone()),
            Box::new(snapshot_generation.clone()),
            Box::new(snapshot_size.clone()),
            Box::new(reload_duration.clone()),
            Box::new(reloads.clone()),
            Box::new(stir_attestations.clone()),
            Box::new(stir_verifications.clone()),
            Box::new(stir_source_checks.clone()),
            Box::new(stir_cert_not_after.clone()),
        ] {
            // names are distinct constants; registration cannot collide
            let _ = registry.register(c);
        }
        Metrics {
            registry,
            dip_latency,
            dips,
            bad_requests,
            refused,
            dip_customer_refused,
            inbound_dips,
            credential_lookups,
            snapshot_data_version,
            snapshot_built_at,
            snapshot_generation,
            snapshot_size,
            reload_duration,
            reloads,
            auth_failures,
            snapshot_part_builds,
            snapshot_rate_routes_rebuilt,
            stir_attestations,
            stir_verifications,
            stir_source_checks,
            stir_cert_not_after,
        }
    }

    /// Whole days until the STIR/SHAKEN signing certificate expires (negative: expired), when
    /// one is configured.
    pub fn stir_days_to_expiry(&self, now_unix: i64) -> Option<i64> {
        let not_after = self.stir_cert_not_after.get();
        (not_after > 0).then(|| (not_after - now_unix).div_euclid(86_400))
    }

    /// Counts the parts a build made (`incremental`: it shared the others).
    pub fn observe_parts(&self, parts: crate::routing::PartSet, incremental: bool) {
        let kind = if incremental { "incremental" } else { "full" };
        for p in parts.iter() {
            self.snapshot_part_builds
                .with_label_values(&[p.name(), kind])
                .inc();
        }
    }

    pub fn observe_reload(&self, took: Duration, ok: bool) {
        self.reload_duration.observe(took.as_secs_f64());
        self.reloads
            .with_label_values(&[if ok { "ok" } else { "error" }])
            .inc();
    }

    pub fn set_snapshot(&self, generation: u64, stats: &SnapshotStats) {
        self.snapshot_generation.set(generation as i64);
        self.snapshot_built_at.set(stats.built_at);
        for (kind, v) in stats.sizes() {
            self.snapshot_size.with_label_values(&[kind]).set(v as i64);
        }
        let ib = &stats.inbound;
        for (kind, v) in [
            ("trunks", ib.trunks),
            ("numbers", ib.numbers),
            ("credentials", ib.credentials),
            ("origination_sources", ib.origination_sources),
        ] {
            self.snapshot_size.with_label_values(&[kind]).set(v as i64);
        }
    }

    /// Text exposition, with `warpd_snapshot_age_seconds` computed at scrape time.
    pub fn render(&self, now_unix: i64) -> String {
        let mut families = self.registry.gather();
        let built = self.snapshot_built_at.get();
        if built > 0 {
            if let Ok(age) = IntGauge::new(
                "warpd_snapshot_age_seconds",
                "Age of the active routing snapshot",
            ) {
                age.set(now_unix - built);
                families.extend(prometheus::core::Collector::collect(&age));
            }
        }
        if let Some(days) = self.stir_days_to_expiry(now_unix) {
            if let Ok(g) = IntGauge::new(
                "warpd_stir_cert_days_to_expiry",
                "Whole days until the STIR/SHAKEN signing certificate expires",
            ) {
                g.set(days);
                families.extend(prometheus::core::Collector::collect(&g));
            }
        }
        let mut buf = Vec::new();
        let _ = TextEncoder::new().encode(&families, &mut buf);
        String::from_utf8(buf).unwrap_or_default()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

#[cold]
fn unreachable_metric<T>() -> T {
    // Metric options above are static and valid; prometheus only fails on invalid names.
    panic!("static metric definition rejected by prometheus")
}
