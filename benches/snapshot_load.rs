//! Snapshot build from PostgreSQL: generates the benchmark network (20 routes × 1,000,000 prefixes
//! = 20M vendor_rates rows, 2 partitions, 1,000 customers, 640k NPA-NXX) in a throwaway cluster,
//! then times `db::load_snapshot` (streamed read + compile) and reports the process RSS.
//!
//! Run: cargo bench --bench snapshot_load      (WARPD_BENCH_PREFIXES=… to shrink)

#[path = "../tests/support/mod.rs"]
mod support;

use std::time::Instant;

use warpd::routing::RoutingSettings;

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
    let prefixes: i64 = std::env::var("WARPD_BENCH_PREFIXES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap_or_else(|e| panic!("runtime: {e}"));
    rt.block_on(async move {
        let pg = support::TestPg::start();
        let mut c = warpd::db::connect(&pg.url()).await.unwrap_or_else(|e| panic!("{e}"));
        warpd::db::migrate::migrate(&mut c).await.unwrap_or_else(|e| panic!("{e}"));
        let t = Instant::now();
        // Same shape as routing::synthetic: prefix i < 640k is 1+NPA+NXX, beyond that 1+NPA+NXX+X.
        let sql = format!(
            "INSERT INTO vendors (id, name, billing_model) SELECT r, 'vendor' || r, 'LRN' FROM generate_series(1, 20) r;
             INSERT INTO gateways (vendor_id, name, host) SELECT r, 'gw0', '192.0.2.' || r FROM generate_series(1, 20) r;
             INSERT INTO routes (id, name, vendor_id, priority) SELECT 1000 + r, 'route' || r, r, r % 3 FROM generate_series(1, 20) r;
             INSERT INTO partitions (id, name) VALUES (1, 'all'), (2, 'half');
             INSERT INTO partition_routes SELECT 1, 1000 + r FROM generate_series(1, 20) r;
             INSERT INTO partition_routes SELECT 2, 1000 + r FROM generate_series(2, 20, 2) r;
             INSERT INTO customers (id, ban, max_rate, margin_percent) SELECT c, (200000 + c)::text, 0.01, 15 FROM generate_series(1, 1000) c;
             INSERT INTO customer_partitions (customer_id, partition_id) SELECT c, 1 + c % 2 FROM generate_series(1, 1000) c;
             CREATE TEMP TABLE p AS
               SELECT i, CASE WHEN i < 640000
                   THEN '1' || (200 + i / 800)::text || (200 + i % 800)::text
                   ELSE '1' || (200 + ((i - 640000) / 10) / 800)::text || (200 + ((i - 640000) / 10) % 800)::text || ((i - 640000) % 10)::text
                 END AS prefix
               FROM generate_series(0, {prefixes} - 1) i;
             ALTER TABLE vendor_rates SET UNLOGGED;
             INSERT INTO vendor_rates (route_id, prefix, rate_inter, rate_intra, rate_local)
               SELECT 1000 + r, p.prefix, 0.001 + ((p.i * 31 + r * 7) % 1000) / 100000.0,
                      0.001 + ((p.i * 17 + r * 5) % 1000) / 100000.0, 0.001 + ((p.i * 13 + r) % 500) / 100000.0
               FROM p, generate_series(1, 20) r;
             INSERT INTO npanxx (npanxx, state, lata, ocn)
               SELECT substr(prefix, 2, 6), 'NY', '132', '9104' FROM p WHERE i < 640000;
             ANALYZE;"
        );
        c.batch_execute(&sql).await.unwrap_or_else(|e| panic!("generate: {e}"));
        println!("generated {} vendor_rates rows in {:?}", prefixes * 20, t.elapsed());
        let before = rss_mib();
        // rounds 1-2: one stream; rounds 3-4: two streams sharing one database snapshot (what
        // the daemon's reloader does, LOAD_STREAMS = 2)
        let helper = warpd::db::connect(&pg.url())
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        for round in 1..=4 {
            let t = Instant::now();
            let helpers = if round > 2 {
                std::slice::from_ref(&helper)
            } else {
                &[]
            };
            let snap = warpd::db::loader::load_snapshot_parallel(&c, helpers, RoutingSettings::default())
                .await
                .unwrap_or_else(|e| panic!("load: {e}"));
            let took = t.elapsed();
            let s = snap.stats();
            assert_eq!(s.rate_entries as i64, prefixes * 20);
            println!(
                "round {round} ({} stream(s)): snapshot of {} rate entries ({} keys, {} trie nodes) built from PostgreSQL in {:?} ({:.1} M rows/s); RSS {:.0} MiB (before {:.0} MiB)",
                1 + helpers.len(),
                s.rate_entries,
                s.rate_keys,
                s.trie_nodes,
                took,
                s.rate_entries as f64 / took.as_secs_f64() / 1e6,
                rss_mib(),
                before
            );
        }
    });
}
