//! The inbound dip (issue 19) over 1M numbers: 100 customers × 10 trunks (3 destinations each:
//! two weighted at one priority, one behind), a vendor's origination network. Times every
//! single `route_inbound` (p50/p90/p99/p99.9, the tail the target is about: p99 < 2 µs), then
//! criterion's mean. Also the build time and the resident memory.
//!
//! Run: cargo bench -p warpd-core --bench inbound   (WARPD_BENCH_NUMBERS=… to shrink)

use std::hint::black_box;
use std::time::Instant;

use criterion::Criterion;
use warpd_core::routing::inbound::{
    route_inbound, DestinationRow, InboundAnswer, InboundBuilder, InboundRequest, NumberRow,
    NumberStatus, Peers, TrunkRow,
};
use warpd_core::routing::{Rate, Transport};

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

/// The k-th number: +1 212 2XX XXXX (valid NANP).
fn number(k: usize) -> String {
    format!("+1{}", 2_122_000_000u64 + k as u64)
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let numbers: usize = std::env::var("WARPD_BENCH_NUMBERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    let t = Instant::now();
    let mut b = InboundBuilder::new();
    let trunks = 1000usize;
    for t in 0..trunks {
        b.trunk(TrunkRow {
            id: t as i64,
            name: format!("trunk-{t}"),
            customer_id: (t / 10) as i64,
            max_calls: None,
            max_cps: None,
            media_policy: None,
            enabled: true,
            sources: vec![],
        });
        for (d, (p, w)) in [(10, 3), (10, 1), (20, 1)].into_iter().enumerate() {
            b.destination(DestinationRow {
                id: (t * 3 + d) as i64,
                trunk_id: t as i64,
                uri: None,
                host: Some(format!("10.{}.{}.{}", t / 256, t % 256, d + 1)),
                port: 5060,
                transport: Transport::Udp,
                priority: p,
                weight: w,
                enabled: true,
            });
        }
    }
    b.reserve_numbers(numbers);
    for k in 0..numbers {
        let t = k % trunks;
        b.number(NumberRow {
            number: number(k),
            customer_id: (t / 10) as i64,
            trunk_id: Some(t as i64),
            status: NumberStatus::Active,
            voice: true,
            fax: false,
            destination: None,
            inbound_rate: Rate(60_000),
            cnam: None,
        });
    }
    let mut dir = Peers::new();
    for c in 0..trunks / 10 {
        dir.add_customer(c as i64, &format!("C{c}"), true);
    }
    dir.add_source(
        "V1",
        true,
        "192.0.2.0/24".parse().unwrap_or_else(|e| panic!("{e}")),
    );
    let ib = b.build().unwrap_or_else(|e| panic!("build: {e}"));
    println!(
        "inbound: {} numbers, {trunks} trunks; generate + build {:?}, RSS {:.0} MiB",
        ib.stats().numbers,
        t.elapsed(),
        rss_mib()
    );
    let reqs: Vec<InboundRequest> = (0..65_536usize)
        .map(|k| InboundRequest {
            src_ip: "192.0.2.9".parse().unwrap_or_else(|e| panic!("{e}")),
            ani: "+13105550000".into(),
            dnis: number((k * 7919) % numbers),
            call_id: Some(format!("call-{k}@bench")),
            verify: None,
            identity: None,
        })
        .collect();
    let n = 1_000_000usize;
    let mut lat = Vec::with_capacity(n);
    let mut routed = 0usize;
    for k in 0..n {
        let r = &reqs[k & 65_535];
        let t = Instant::now();
        let a = route_inbound(&ib, &dir, r);
        lat.push(t.elapsed().as_nanos() as u64);
        if matches!(a, InboundAnswer::Route(_)) {
            routed += 1;
        }
    }
    lat.sort_unstable();
    let p = |q: f64| lat[((lat.len() as f64 * q) as usize).min(lat.len() - 1)] as f64 / 1000.0;
    println!(
        "inbound dips: {n} ({routed} routed); latency µs: p50 {:.2}  p90 {:.2}  p99 {:.2}  p99.9 {:.2}  max {:.2}",
        p(0.5),
        p(0.9),
        p(0.99),
        p(0.999),
        *lat.last().unwrap_or(&0) as f64 / 1000.0
    );
    let mut c = Criterion::default().configure_from_args();
    let mut k = 0usize;
    c.bench_function("inbound_route_1m_numbers", |b| {
        b.iter(|| {
            k = (k + 1) & 65_535;
            black_box(route_inbound(&ib, &dir, black_box(&reqs[k])))
        })
    });
    c.final_summary();
}
