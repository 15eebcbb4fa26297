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
//! With `--serve SECONDS` it only serves (for wrk, see docs/BENCHMARKS.md).
//!
//! Run: cargo bench --bench http_load            (or: -- --serve 60)

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
            .map_err(|e| ReloadError::Build(e.to_string()))?
            .map_err(|e| ReloadError::Build(e.to_string()))?;
            let stats = snap.stats();
            let generation = self.engine.install(snap);
            Ok(ReloadReport {
                generation,
                duration_ms: t.elapsed().as_secs_f64() * 1000.0,
                stats,
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

async fn open_loop(
    base: &str,
    spec: &synthetic::Spec,
    rate: u64,
    secs: u64,
    conns: usize,
) -> (Vec<u64>, usize) {
    let per_conn = rate as f64 / conns as f64;
    let interval = Duration::from_secs_f64(1.0 / per_conn);
    let total = (rate * secs) as usize / conns;
    let mut tasks = Vec::new();
    for c in 0..conns {
        let client = reqwest::Client::builder()
            .pool_max_idle_per_host(1)
            .build()
            .unwrap_or_default();
        let base = base.to_string();
        let spec = *spec;
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::with_capacity(total);
            let mut errors = 0usize;
            let start = tokio::time::Instant::now() + Duration::from_millis(c as u64 % 10);
            for i in 0..total {
                let scheduled = start + interval * i as u32;
                tokio::time::sleep_until(scheduled).await;
                let url = format!("{base}{}", query(&spec, c * total + i));
                match client.get(&url).send().await {
                    Ok(r) if r.status().is_success() => {
                        let _ = r.bytes().await;
                    }
                    _ => errors += 1,
                }
                lat.push(scheduled.elapsed().as_micros() as u64);
            }
            (lat, errors)
        }));
    }
    let mut all = Vec::new();
    let mut errors = 0;
    for t in tasks {
        if let Ok((l, e)) = t.await {
            all.extend(l);
            errors += e;
        }
    }
    all.sort_unstable();
    (all, errors)
}

fn report(name: &str, lat: &[u64], errors: usize, secs: f64) {
    let p = |q: f64| {
        lat.get(((lat.len() as f64 * q) as usize).min(lat.len().saturating_sub(1)))
            .copied()
            .unwrap_or(0)
    };
    println!(
        "{name}: {} dips in {secs:.1}s ({:.0}/s), errors {errors}; latency µs p50 {} p90 {} p99 {} p99.9 {} max {}",
        lat.len(),
        lat.len() as f64 / secs,
        p(0.5),
        p(0.9),
        p(0.99),
        p(0.999),
        lat.last().copied().unwrap_or(0)
    );
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.iter().any(|a| a == "--list") {
        return;
    }
    let serve_secs = args
        .iter()
        .position(|a| a == "--serve")
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse::<u64>().ok());
    let prefixes = std::env::var("WARPD_BENCH_PREFIXES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    let spec = synthetic::Spec {
        prefixes,
        ..Default::default()
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
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
            admin: None,
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .unwrap_or_else(|e| panic!("bind: {e}"));
        let addr = listener.local_addr().unwrap_or_else(|e| panic!("{e}"));
        let base = format!("http://{addr}");
        let stop = tokio_util::sync::CancellationToken::new();
        let server = tokio::spawn(api::serve(listener, state, stop.clone()));
        if let Some(secs) = serve_secs {
            println!(
                "serving on {base} for {secs}s; e.g. {base}{}",
                query(&spec, 1)
            );
            tokio::time::sleep(Duration::from_secs(secs)).await;
        } else {
            let (lat, err) = open_loop(&base, &spec, 5_000, 10, 32).await;
            report("steady 5000/s", &lat, err, 10.0);
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
            let (lat, err) = open_loop(&base, &spec, 5_000, 10, 32).await;
            let _ = reloading.await;
            report("5000/s during back-to-back reloads", &lat, err, 10.0);
        }
        stop.cancel();
        let _ = server.await;
    });
}
