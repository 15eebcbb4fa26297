//! HTTP dip load on loopback, server and load generator in one process on this machine's 2 cores.
//!
//! The server is warpd's real API (`api::serve`) over the benchmark network (20 routes × 1M
//! prefixes, 1,000 customers; WARPD_BENCH_PREFIXES to shrink), without PostgreSQL: the snapshot is
//! generated. The reloader rebuilds the whole 20M-row snapshot, so phase 2 shows dips during a
//! reload.
//!
//! Phases (open loop: requests are sent on a fixed schedule, latency counts from the scheduled
//! time, so a stalled server cannot hide its queueing):
//!   1. 5,000 dips/s for 10 s over 32 keep-alive connections: p50/p99/p99.9/max.
//!   2. the same while `warpd.reload` rebuilds and swaps the snapshot.
//!
//! With `--serve SECONDS [--port P]` it only serves (for wrk or `--drive`); with
//! `--drive 127.0.0.1:P [--rate R] [--secs S]` it is only the open-loop load generator, so server
//! and load can run as two processes pinned to different cores (see docs/BENCHMARKS.md).
//! The load generator speaks raw HTTP/1.1 over 32 keep-alive connections: it must cost far less
//! CPU per request than the server it measures.
//!
//! Run: cargo bench --bench http_load            (or: -- --serve 60 --port 18080)

#[path = "common/raw_http.rs"]
mod raw_http;

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::future::BoxFuture;
use warpd::api::{self, ApiLimits, AppState};
use warpd::metrics::Metrics;
use warpd::reload::{ReloadError, ReloadReport, Reloader};
use warpd::routing::{synthetic, Engine, RoutingSettings};

struct SyntheticReloader {
    engine: Arc<Engine>,
    spec: synthetic::Spec,
}

impl Reloader for SyntheticReloader {
    fn reload(&self) -> BoxFuture<'_, Result<ReloadReport, ReloadError>> {
        Box::pin(async move {
            let t = Instant::now();
            let spec = self.spec;
            let snap = tokio::task::spawn_blocking(move || {
                synthetic::builder(&spec).and_then(|b| b.build(1))
            })
            .await
            .map_err(|e| ReloadError::Task(Arc::new(e)))?
            .map_err(|e| ReloadError::Build(Arc::new(e)))?;
            let stats = snap.stats();
            let generation = self.engine.install(snap);
            Ok(ReloadReport {
                generation,
                duration_ms: t.elapsed().as_secs_f64() * 1000.0,
                stats,
                unchanged: false,
                data_version: None,
                rebuilt: vec![],
                rate_routes: vec![],
            })
        })
    }
}

fn query(spec: &synthetic::Spec, k: usize) -> String {
    format!(
        "/v1/route?ban={}&ani={}&dnis={}",
        synthetic::ban(k % spec.customers),
        synthetic::number_in((k * 104_729) % spec.prefixes.min(640_000), k),
        synthetic::number_in((k * 7919) % spec.prefixes, k + 3)
    )
}

/// Open loop over the benchmark network's queries (see `raw_http::open_loop`).
async fn open_loop(
    addr: &str,
    spec: &synthetic::Spec,
    rate: u64,
    secs: u64,
    conns: usize,
) -> (Vec<u64>, usize) {
    let spec = *spec;
    raw_http::open_loop(
        addr,
        rate,
        secs,
        conns,
        move |k| query(&spec, k),
        raw_http::any_body,
        raw_http::Timing::FromSchedule,
    )
    .await
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.iter().any(|a| a == "--list") {
        return;
    }
    let opt = |name: &str| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
            .cloned()
    };
    let serve_secs = opt("--serve").and_then(|v| v.parse::<u64>().ok());
    let rate = opt("--rate")
        .and_then(|v| v.parse::<u64>().ok())
        .unwrap_or(5_000);
    let port = opt("--port")
        .and_then(|v| v.parse::<u16>().ok())
        .unwrap_or(0);
    let prefixes = std::env::var("WARPD_BENCH_PREFIXES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    let spec = synthetic::Spec {
        prefixes,
        ..Default::default()
    };
    if let Some(addr) = opt("--drive") {
        // load generator only, in its own process (pin it and the server to different cores)
        let secs = opt("--secs")
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(10);
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap_or_else(|e| panic!("runtime: {e}"));
        rt.block_on(async move {
            let (lat, err) = open_loop(&addr, &spec, rate, secs, 32).await;
            raw_http::report(&format!("open loop {rate}/s"), &lat, err, secs as f64);
        });
        return;
    }
    // --workers 1 when the server is pinned to one core (two threads on one core take turns in
    // scheduler time slices, which shows up as ms-scale latency)
    let workers = opt("--workers")
        .and_then(|v| v.parse::<usize>().ok())
        .unwrap_or(2)
        .max(1);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers)
        .enable_all()
        .build()
        .unwrap_or_else(|e| panic!("runtime: {e}"));
    rt.block_on(async move {
        let engine = Arc::new(Engine::new(RoutingSettings {
            dip_cache_ttl_ms: 0,
            ..Default::default()
        }));
        let reloader = Arc::new(SyntheticReloader {
            engine: engine.clone(),
            spec,
        });
        let first = reloader.reload().await.unwrap_or_else(|e| panic!("{e}"));
        println!(
            "snapshot: {} rate entries built in {:.0} ms",
            first.stats.rate_entries, first.duration_ms
        );
        let state = Arc::new(AppState {
            engine,
            reloader: reloader.clone(),
            metrics: Arc::new(Metrics::new()),
            limits: ApiLimits::default(),
            media: None,
            calls: None,
            admin: None,
            console: None,
            kamailio_auth: Default::default(),
        });
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
            .await
            .unwrap_or_else(|e| panic!("bind: {e}"));
        let addr = listener.local_addr().unwrap_or_else(|e| panic!("{e}"));
        let base = format!("http://{addr}");
        let addr = addr.to_string();
        let stop = tokio_util::sync::CancellationToken::new();
        let admin = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        let server = tokio::spawn(api::serve(
            api::Listeners {
                kamailio: listener,
                admin,
                kamailio_resp: Vec::new(),
            },
            state,
            stop.clone(),
        ));
        if let Some(secs) = serve_secs {
            println!(
                "serving on {base} for {secs}s; e.g. {base}{}",
                query(&spec, 1)
            );
            tokio::time::sleep(Duration::from_secs(secs)).await;
        } else {
            let (lat, err) = open_loop(&addr, &spec, rate, 10, 32).await;
            raw_http::report(&format!("steady {rate}/s"), &lat, err, 10.0);
            let r2 = reloader.clone();
            let reloading = tokio::spawn(async move {
                let mut n = 0;
                let t = Instant::now();
                while t.elapsed() < Duration::from_secs(9) {
                    if let Ok(r) = r2.reload().await {
                        n += 1;
                        println!(
                            "  reload {n}: generation {} in {:.0} ms",
                            r.generation, r.duration_ms
                        );
                    }
                }
            });
            let (lat, err) = open_loop(&addr, &spec, rate, 10, 32).await;
            let _ = reloading.await;
            raw_http::report(
                &format!("{rate}/s during back-to-back reloads"),
                &lat,
                err,
                10.0,
            );
        }
        stop.cancel();
        let _ = server.await;
    });
}
