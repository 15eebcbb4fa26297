//! Criterion: in-memory route computation (classification + LPM over all routes + filtering +
//! ordering) on the benchmark network: 20 routes × the same 1,000,000 prefixes (20M rate rows),
//! 2 partitions, 1,000 customers. Set WARPD_BENCH_PREFIXES to shrink it, WARPD_BENCH_ROUTES=50
//! for the 50-route network (issue 23: 50 routes in partition "all").
//!
//! Run: cargo bench -p warpd-core --bench dip

use criterion::{black_box, criterion_group, criterion_main, Criterion};
use warpd_core::routing::{dip, synthetic, DipAnswer, DipRequest};

fn spec() -> synthetic::Spec {
    let prefixes = std::env::var("WARPD_BENCH_PREFIXES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    let routes = std::env::var("WARPD_BENCH_ROUTES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20);
    synthetic::Spec {
        prefixes,
        routes,
        ..Default::default()
    }
}

fn requests(spec: &synthetic::Spec, n: usize) -> Vec<DipRequest> {
    (0..n)
        .map(|k| {
            let i = (k * 7919) % spec.prefixes;
            let a = (k * 104_729) % spec.prefixes.min(640_000);
            DipRequest {
                ban: Some(synthetic::ban(k % spec.customers)),
                ani: synthetic::number_in(a, k),
                dnis: synthetic::number_in(i, k + 3),
                call_id: None,
                ..Default::default()
            }
        })
        .collect()
}

fn bench(c: &mut Criterion) {
    let spec = spec();
    let t = std::time::Instant::now();
    let snap = synthetic::builder(&spec)
        .and_then(|b| b.build(0))
        .unwrap_or_else(|e| panic!("build: {e}"));
    eprintln!(
        "built {} rate entries in {:?}",
        snap.stats().rate_entries,
        t.elapsed()
    );
    let reqs = requests(&spec, 4096);
    // sanity: the benchmark must measure real answers
    let routed = reqs
        .iter()
        .filter(|r| matches!(dip(&snap, r, 1), DipAnswer::Route(_)))
        .count();
    assert!(routed > reqs.len() * 9 / 10, "only {routed} routed");
    let mut k = 0usize;
    let name = format!("dip/{}routes_x_{}_prefixes", spec.routes, spec.prefixes);
    c.bench_function(&name, |b| {
        b.iter(|| {
            k = (k + 1) & 4095;
            black_box(dip(&snap, black_box(&reqs[k]), 1))
        })
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
