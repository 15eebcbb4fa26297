//! Latency distribution of in-memory route computation on the benchmark network (20 routes × 1M
//! prefixes, 1,000 customers): times every single dip and prints p50/p90/p99/p99.9/max, plus the
//! snapshot build time and the process's resident memory. Criterion (crates/core/benches/dip.rs) gives the
//! mean; this gives the tail.
//!
//! Run: cargo bench -p warpd-core --bench dip_latency   (WARPD_BENCH_PREFIXES=… to shrink,
//! WARPD_BENCH_ROUTES=50 for the 50M-row size)

use std::time::Instant;

use warpd_core::routing::{dip, synthetic, DipAnswer, DipRequest};

fn rss_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines().find(|l| l.starts_with("VmRSS:")).and_then(|l| {
                l.split_whitespace()
                    .nth(1)
                    .and_then(|v| v.parse::<f64>().ok())
            })
        })
        .map(|kb| kb / 1024.0)
        .unwrap_or(0.0)
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let prefixes = std::env::var("WARPD_BENCH_PREFIXES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    let routes = std::env::var("WARPD_BENCH_ROUTES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20);
    let spec = synthetic::Spec {
        prefixes,
        routes,
        ..Default::default()
    };
    let t = Instant::now();
    let b = synthetic::builder(&spec).unwrap_or_else(|e| panic!("generate: {e}"));
    let gen = t.elapsed();
    let t = Instant::now();
    let snap = b.build(0).unwrap_or_else(|e| panic!("build: {e}"));
    let build = t.elapsed();
    println!(
        "network: {} routes x {} prefixes = {} rate entries, {} customers; generate {:?}, compile {:?}, RSS {:.0} MiB",
        spec.routes,
        spec.prefixes,
        snap.stats().rate_entries,
        spec.customers,
        gen,
        build,
        rss_mib()
    );
    let n = 1_000_000usize;
    let reqs: Vec<DipRequest> = (0..65_536)
        .map(|k| DipRequest {
            ban: Some(synthetic::ban(k % spec.customers)),
            ani: synthetic::number_in((k * 104_729) % spec.prefixes.min(640_000), k),
            dnis: synthetic::number_in((k * 7919) % spec.prefixes, k + 3),
            ..Default::default()
        })
        .collect();
    let mut lat = Vec::with_capacity(n);
    let mut routed = 0usize;
    for k in 0..n {
        let r = &reqs[k & 65_535];
        let t = Instant::now();
        let a = dip(&snap, r, 1);
        lat.push(t.elapsed().as_nanos() as u64);
        if matches!(a, DipAnswer::Route(_)) {
            routed += 1;
        }
    }
    lat.sort_unstable();
    let p = |q: f64| lat[((lat.len() as f64 * q) as usize).min(lat.len() - 1)] as f64 / 1000.0;
    println!(
        "dips: {n} ({routed} routed); latency µs: p50 {:.2}  p90 {:.2}  p99 {:.2}  p99.9 {:.2}  max {:.2}",
        p(0.5),
        p(0.9),
        p(0.99),
        p(0.999),
        *lat.last().unwrap_or(&0) as f64 / 1000.0
    );
}
