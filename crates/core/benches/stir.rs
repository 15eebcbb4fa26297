//! Criterion: what the STIR/SHAKEN attestation (issue 20) adds to a dip. The benchmark network
//! (synthetic, 20 routes × WARPD_BENCH_PREFIXES prefixes, default 100,000; 1,000 customers, dipped
//! by BAN; customer c has id c + 1) with an inbound part of 1,000,000 numbers spread over the
//! customers, a TN range and a B cap for every tenth customer. Measures `attestation` alone (the
//! work `dip` adds to a routed answer: the customer and trunk look-up, the ANI's number/range
//! look-up, the decision, the origid and the canonical TNs) and the whole `dip` for scale, over
//! requests whose ANIs are half the customer's own numbers, half foreign.
//!
//! Run: cargo bench -p warpd-core --bench stir

use criterion::{black_box, criterion_group, criterion_main, Criterion};
use warpd_core::routing::inbound::{InboundBuilder, NumberRow, NumberStatus};
use warpd_core::routing::stir::{AttestCap, StirPolicyRow, TnRangeRow};
use warpd_core::routing::{attestation, dip, synthetic, DipAnswer, DipRequest, Rate};

const NUMBERS: usize = 1_000_000;

/// The k-th number: +1 212 2XX XXXX.
fn number(k: usize) -> String {
    format!("+1{}", 2_122_000_000u64 + k as u64)
}

fn bench(c: &mut Criterion) {
    let spec = synthetic::Spec {
        prefixes: std::env::var("WARPD_BENCH_PREFIXES")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(100_000),
        ..Default::default()
    };
    let mut b = synthetic::builder(&spec).unwrap_or_else(|e| panic!("build: {e}"));
    let mut ib = InboundBuilder::new();
    ib.reserve_numbers(NUMBERS);
    for k in 0..NUMBERS {
        ib.number(NumberRow {
            number: number(k),
            customer_id: (k % spec.customers) as i64 + 1,
            trunk_id: None,
            status: NumberStatus::Active,
            voice: true,
            fax: false,
            destination: None,
            inbound_rate: Rate(0),
            cnam: None,
        });
    }
    for cix in (0..spec.customers).step_by(10) {
        ib.stir_policy(StirPolicyRow {
            customer_id: cix as i64 + 1,
            trunk_id: None,
            max_attest: AttestCap::parse("B").unwrap_or(AttestCap::Off),
            transit: false,
            verify_reject_code: None,
        });
        let base = 13_120_000_000u64 + (cix as u64) * 1000;
        ib.tn_range(TnRangeRow {
            customer_id: cix as i64 + 1,
            first: format!("+{base}"),
            last: format!("+{}", base + 999),
        });
    }
    b.set_inbound(std::sync::Arc::new(
        ib.build().unwrap_or_else(|e| panic!("{e}")),
    ));
    let snap = b.build(0).unwrap_or_else(|e| panic!("build: {e}"));
    let reqs: Vec<DipRequest> = (0..4096)
        .map(|k| {
            let cix = k % spec.customers;
            // own: a number of customer cix (k ≡ cix mod customers); foreign: someone else's
            let n = if k % 2 == 0 {
                cix + spec.customers * k
            } else {
                cix + 1 + spec.customers * k
            };
            DipRequest {
                ban: Some(synthetic::ban(cix)),
                ani: number(n % NUMBERS),
                dnis: synthetic::number_in((k * 7919) % spec.prefixes, k + 3),
                ..Default::default()
            }
        })
        .collect();
    let signed = reqs
        .iter()
        .filter(|r| match dip(&snap, r, 1) {
            DipAnswer::Route(a) => a.stir.is_some(),
            DipAnswer::Reject(_) => false,
        })
        .count();
    assert!(
        signed > reqs.len() * 3 / 4,
        "only {signed} signed; e.g. {:?}",
        dip(&snap, &reqs[1], 1)
    );
    let mut k = 0usize;
    c.bench_function("stir/attestation", |b| {
        b.iter(|| {
            k = (k + 1) & 4095;
            black_box(attestation(&snap, black_box(&reqs[k])))
        })
    });
    c.bench_function("stir/dip_with_attestation", |b| {
        b.iter(|| {
            k = (k + 1) & 4095;
            black_box(dip(&snap, black_box(&reqs[k]), 1))
        })
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
