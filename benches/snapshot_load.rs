//! Snapshot build from PostgreSQL: generates the benchmark network (20 routes × 1,000,000 prefixes
//! = 20M vendor_rates rows, 2 partitions, 1,000 customers, 640k NPA-NXX) in a throwaway cluster,
//! then times `db::load_snapshot` (streamed read + compile) and reports the process RSS.
//!
//! Then (issue 23) the daemon's reloader on that database: in-process dips at 2,000/s during a
//! full reload (p99), one-customer changes from commit to the swapped snapshot (incremental:
//! only the customers part re-read) with the warpd + PostgreSQL CPU each costs, and a deck
//! change of one route (1M rows updated) from commit to live (only that route's rates re-read).
//!
//! Run: cargo bench --bench snapshot_load      (WARPD_BENCH_PREFIXES=… to shrink;
//! WARPD_BENCH_ROUTES=50 for the 50M-row size; WARPD_BENCH_ROUNDS=… full-build rounds (4);
//! WARPD_BENCH_CHANGES=… one-customer changes (20);
//! WARPD_BENCH_TLS=1: the cluster with TLS, loaded with `sslmode=require`)

#[path = "../tests/support/mod.rs"]
mod support;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;
use warpd::db::DbReloader;
use warpd::metrics::Metrics;
use warpd::reload::Reloader;
use warpd::routing::{DipRequest, Engine, RoutingSettings};

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
        reloader_phase(&url, &c, prefixes * routes).await;
    });
}

fn percentile(sorted: &[Duration], q: f64) -> Duration {
    sorted
        .get(((sorted.len() as f64 * q) as usize).min(sorted.len().saturating_sub(1)))
        .copied()
        .unwrap_or_default()
}

/// Waits (spinning on a blocking thread, 100 µs steps) until the engine serves a data version
/// above `above`; returns when it saw it.
async fn live_above(engine: &Arc<Engine>, above: i64) -> Instant {
    let e = engine.clone();
    tokio::task::spawn_blocking(move || loop {
        if e.load().data_version().unwrap_or(0) > above {
            return Instant::now();
        }
        std::thread::sleep(Duration::from_micros(100));
    })
    .await
    .unwrap_or_else(|e| panic!("wait: {e}"))
}

/// The daemon's reloader on the generated database (see the module documentation).
async fn reloader_phase(url: &str, c: &tokio_postgres::Client, rows: i64) {
    let settings = RoutingSettings {
        dip_cache_ttl_ms: 0,
        ..Default::default()
    };
    let engine = Arc::new(Engine::new(settings));
    let metrics = Arc::new(Metrics::new());
    let stop = CancellationToken::new();
    let reloader = DbReloader::start(
        url.to_string(),
        engine.clone(),
        metrics.clone(),
        Duration::from_millis(250),
        stop.clone(),
    );
    let t = Instant::now();
    let rep = reloader
        .reload_full()
        .await
        .unwrap_or_else(|e| panic!("reload: {e}"));
    assert_eq!(rep.stats.rate_entries as i64, rows);
    println!(
        "reloader: initial full build {:?}; RSS {:.0} MiB",
        t.elapsed(),
        rss_mib()
    );

    // dips at 2,000/s (in process, one thread) while a full reload runs
    let running = Arc::new(AtomicBool::new(true));
    let dipper = {
        let (engine, running) = (engine.clone(), running.clone());
        std::thread::spawn(move || {
            let mut lat = Vec::new();
            let start = Instant::now();
            let mut k = 0u64;
            while running.load(Ordering::Relaxed) {
                let due = start + Duration::from_micros(500 * k);
                if let Some(wait) = due.checked_duration_since(Instant::now()) {
                    std::thread::sleep(wait);
                }
                let req = DipRequest {
                    ban: Some(format!("{}", 200_001 + k % 1000)),
                    ani: "+12015550123".into(),
                    dnis: format!("+1{}{}5550{:03}", 200 + k % 700, 200 + k % 600, k % 1000),
                    ..Default::default()
                };
                let t = Instant::now();
                std::hint::black_box(engine.dip(&req));
                lat.push(t.elapsed());
                k += 1;
            }
            lat
        })
    };
    let t = Instant::now();
    reloader
        .reload_full()
        .await
        .unwrap_or_else(|e| panic!("reload: {e}"));
    let took = t.elapsed();
    running.store(false, Ordering::Relaxed);
    let mut lat = dipper.join().unwrap_or_else(|_| panic!("dipper"));
    lat.sort();
    println!(
        "dips during a full reload ({took:?}): {} dips at 2,000/s, p50 {:?}, p99 {:?}, p99.9 {:?}, max {:?}; RSS {:.0} MiB",
        lat.len(),
        percentile(&lat, 0.5),
        percentile(&lat, 0.99),
        percentile(&lat, 0.999),
        lat.last().copied().unwrap_or_default(),
        rss_mib()
    );

    // one-customer changes, each after a quiet period (a lone change, not part of a burst)
    let changes: u32 = std::env::var("WARPD_BENCH_CHANGES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20);
    let mut live = Vec::new();
    let mut cpu = (0.0, 0.0);
    for k in 0..changes {
        tokio::time::sleep(Duration::from_millis(400)).await;
        let v = engine.load().data_version().unwrap_or(0);
        let cpu0 = cpu_seconds();
        let t = Instant::now();
        c.batch_execute(&format!(
            "UPDATE customers SET max_rate = {} WHERE ban = '{}'",
            0.01 + f64::from(k) / 1e5,
            200_001 + k
        ))
        .await
        .unwrap_or_else(|e| panic!("change: {e}"));
        let at = live_above(&engine, v).await;
        live.push(at - t);
        let cpu1 = cpu_seconds();
        cpu.0 += cpu1.0 - cpu0.0;
        cpu.1 += cpu1.1 - cpu0.1;
        assert_eq!(engine.load().rebuilt().names(), ["customers"]);
    }
    live.sort();
    println!(
        "one-customer change, commit to live ({changes} changes): p50 {:?}, max {:?}; CPU per change: warpd {:.1} ms, PostgreSQL {:.1} ms (10 ms ticks, summed over the changes)",
        percentile(&live, 0.5),
        live.last().copied().unwrap_or_default(),
        cpu.0 * 1000.0 / f64::from(changes.max(1)),
        cpu.1 * 1000.0 / f64::from(changes.max(1))
    );

    // one route's deck changed (1M rows): the rate part is patched for that route (sql/0019:
    // the statement logs its route ids; only that route's rows are read and merged)
    tokio::time::sleep(Duration::from_millis(400)).await;
    let v = engine.load().data_version().unwrap_or(0);
    let routes0 = metrics.snapshot_rate_routes_rebuilt.get();
    let cpu0 = cpu_seconds();
    let t = Instant::now();
    c.batch_execute(
        "UPDATE vendor_rates SET rate_inter = rate_inter + 0.00001 WHERE route_id = 1001",
    )
    .await
    .unwrap_or_else(|e| panic!("deck change: {e}"));
    let committed = t.elapsed();
    let at = live_above(&engine, v).await;
    let cpu1 = cpu_seconds();
    println!(
        "one route's deck (1M rows updated): statement+commit {committed:?}, commit to live {:?}, statement to live {:?} (built: {:?}, rate routes re-read: {}); CPU: warpd {:.1} s, PostgreSQL {:.1} s (the update included); RSS {:.0} MiB",
        at - (t + committed),
        at - t,
        engine.load().rebuilt().names(),
        metrics.snapshot_rate_routes_rebuilt.get() - routes0,
        cpu1.0 - cpu0.0,
        cpu1.1 - cpu0.1,
        rss_mib()
    );
    // how PostgreSQL read that route (the plan of the patch's query, with its setting)
    let _ = c
        .batch_execute("BEGIN; SET LOCAL enable_seqscan = off")
        .await;
    if let Ok(rows) = c
        .query(
            "EXPLAIN SELECT * FROM vendor_rates WHERE effective_until > now() \
             AND route_id = ANY('{1001}'::bigint[])",
            &[],
        )
        .await
    {
        for r in rows {
            let line: String = r.get(0);
            println!("  plan: {line}");
        }
    }
    let _ = c.batch_execute("COMMIT").await;
    stop.cancel();
    reloader.join().await;
}
