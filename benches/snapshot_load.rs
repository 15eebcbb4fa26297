//! Snapshot build from PostgreSQL: generates the benchmark network (20 routes × 1,000,000 prefixes
//! = 20M vendor_rates rows, 2 partitions, 1,000 customers, 640k NPA-NXX) in a throwaway cluster,
//! then times `db::load_snapshot` (streamed read + compile) and reports the process RSS.
//!
//! Run: cargo bench --bench snapshot_load      (WARPD_BENCH_PREFIXES=… to shrink;
//! WARPD_BENCH_TLS=1: the cluster with TLS, loaded with `sslmode=require`)

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

/// CPU seconds (user + system) of this process, and of every `postgres` process on the machine
/// (the throwaway cluster's backends): where a load's time goes on 2 shared cores.
fn cpu_seconds() -> (f64, f64) {
    let ticks = |stat: &str| -> Option<f64> {
        // fields after the ")" that ends the command name: utime is the 12th, stime the 13th
        let rest = stat.rsplit_once(')')?.1;
        let f: Vec<&str> = rest.split_whitespace().collect();
        Some(f.get(11)?.parse::<f64>().ok()? + f.get(12)?.parse::<f64>().ok()?)
    };
    let hz = 100.0; // USER_HZ on Linux
    let own = std::fs::read_to_string("/proc/self/stat")
        .ok()
        .and_then(|s| ticks(&s))
        .unwrap_or(0.0);
    let mut pg = 0.0;
    if let Ok(dir) = std::fs::read_dir("/proc") {
        for e in dir.flatten() {
            let path = e.path();
            let comm = std::fs::read_to_string(path.join("comm")).unwrap_or_default();
            if comm.trim() == "postgres" {
                if let Some(t) = std::fs::read_to_string(path.join("stat"))
                    .ok()
                    .and_then(|s| ticks(&s))
                {
                    pg += t;
                }
            }
        }
    }
    (own / hz, pg / hz)
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let prefixes: i64 = std::env::var("WARPD_BENCH_PREFIXES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    let routes: i64 = std::env::var("WARPD_BENCH_ROUTES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap_or_else(|e| panic!("runtime: {e}"));
    rt.block_on(async move {
        let tls = std::env::var("WARPD_BENCH_TLS").is_ok_and(|v| v == "1");
        let certs = support::TestCerts::new("bench");
        let pg = if tls { support::TestPg::start_tls(&certs) } else { support::TestPg::start() };
        let url = if tls { format!("{}?sslmode=require", pg.url()) } else { pg.url() };
        println!("database connections: {}", if tls { "TLS (sslmode=require)" } else { "plain" });
        let mut c = warpd::db::connect(&url).await.unwrap_or_else(|e| panic!("{e}"));
        warpd::db::migrate::migrate(&mut c).await.unwrap_or_else(|e| panic!("{e}"));
        let t = Instant::now();
        let sql = support::bignet::sql(routes, prefixes);
        c.batch_execute(&sql).await.unwrap_or_else(|e| panic!("generate: {e}"));
        println!("generated {} vendor_rates rows in {:?}", prefixes * routes, t.elapsed());
        let before = rss_mib();
        // rounds 1-2: one stream; rounds 3-4: two streams sharing one database snapshot (what
        // the daemon's reloader does, LOAD_STREAMS = 2); each through the reloader's own path
        // (fresh connections driven inside the loading task)
        let rounds: u32 = std::env::var("WARPD_BENCH_ROUNDS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(4);
        for round in 1..=rounds {
            let t = Instant::now();
            let cpu0 = cpu_seconds();
            let streams = if (round - 1) % 4 >= 2 { 2 } else { 1 };
            let snap = warpd::db::reload::load_over_streams(&url, RoutingSettings::default(), streams)
                .await
                .unwrap_or_else(|e| panic!("load: {e}"));
            let took = t.elapsed();
            let cpu1 = cpu_seconds();
            let s = snap.stats();
            assert_eq!(s.rate_entries as i64, prefixes * routes);
            println!(
                "round {round} ({} stream(s)): snapshot of {} rate entries ({} keys, {} trie nodes) built from PostgreSQL in {:?} ({:.1} M rows/s); CPU: warpd {:.1} s, PostgreSQL {:.1} s; RSS {:.0} MiB (before {:.0} MiB)",
                streams,
                s.rate_entries,
                s.rate_keys,
                s.trie_nodes,
                took,
                s.rate_entries as f64 / took.as_secs_f64() / 1e6,
                cpu1.0 - cpu0.0,
                cpu1.1 - cpu0.1,
                rss_mib(),
                before
            );
        }
    });
}
