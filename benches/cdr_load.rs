//! Calls and CDRs under load, against a throwaway PostgreSQL on this machine (tests/support:
//! initdb cluster with fsync=off; the writer's session sets synchronous_commit=on).
//!
//! Phases:
//!   1. CDR insert rate: 200,000 rated CDRs through the writer's batch path (COPY into staging,
//!      INSERT … ON CONFLICT DO NOTHING into the monthly partition), 5,000 per transaction.
//!   2. Completed calls end to end from events, in process: dip hook (`CallService::on_dip`)
//!      then `call.attempt` (200), `call.answer`, `call.end` each awaited until durable; 256 calls
//!      in flight. Calls/s = calls whose CDR is committed / wall time.
//!   3. Dip latency over HTTP (open loop, 2,000 dips/s for 10 s, every dip with a call_id so the
//!      calls layer runs), first alone, then while phase 2's stream writes CDRs at full speed.
//!
//! Run: cargo bench --bench cdr_load   (WARPD_BENCH_CALLS=N calls in phase 2, WARPD_BENCH_INFLIGHT=M
//! of them in flight, default 256; WARPD_BENCH_DIP_RATE=R dips/s in phase 3, default 2000;
//! WARPD_BENCH_CREDIT=1: customer 10001 has a postpaid credit account from phase 2 on, so every
//! dip runs the credit check and reserves, and every CDR writes its ledger charge)

#[path = "../tests/support/mod.rs"]
mod support;

#[path = "common/raw_http.rs"]
mod raw_http;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use warpd::api::{self, ApiLimits, AppState};
use warpd::calls::events::{answer_event, attempt_event, end_event};
use warpd::calls::CallService;
use warpd::cdr::{self, Cdr};
use warpd::config::Config;
use warpd::metrics::Metrics;
use warpd::routing::{Billing, DipAnswer, DipRequest, Engine, RouteAnswer, RouteChoice, Zone};

fn cdr(i: usize, now_us: i64) -> Cdr {
    Cdr {
        call_id: format!("bench-cdr-{i}"),
        started_us: now_us + i as i64,
        answered_us: Some(now_us + i as i64 + 3_000_000),
        ended_us: Some(now_us + i as i64 + 63_000_000),
        customer_ban: Some("10001".into()),
        ani: Some("12125550100".into()),
        dnis: Some("13125550100".into()),
        zone: Some("interstate".into()),
        route_id: Some("ns-premium".into()),
        vendor: Some("northstar".into()),
        attempts: vec![cdr::AttemptRow {
            attempt: 1,
            route_id: "ns-premium".into(),
            vendor: Some("northstar".into()),
            sip_code: 200,
            reason: None,
            ts_us: now_us + 3_000_000,
            ring_us: Some(now_us + 1_000_000),
        }],
        vendor_rate_e7: Some(42_000),
        customer_rate_e7: Some(50_400),
        vendor_min: Some(6),
        vendor_inc: Some(6),
        customer_min: Some(6),
        customer_inc: Some(6),
        duration_ms: 60_000,
        vendor_billed_s: 60,
        customer_billed_s: 60,
        cost_e7: 42_000,
        price_e7: 50_400,
        disposition: "answered",
        sip_code: Some(200),
        hangup: Some("caller".into()),
        cause: Some("normal".into()),
        pdd_ms: Some(1000),
        ..Default::default()
    }
}

fn answer() -> DipAnswer {
    let r = |id: &str, rate: f64| RouteChoice {
        route_id: id.into(),
        vendor: "northstar".into(),
        uri: "sip:+13125550100@127.0.0.1:5081".into(),
        uris: vec!["sip:+13125550100@127.0.0.1:5081".into()],
        rate,
        customer_rate: rate * 1.2,
        billing: Billing { min: 6, inc: 6 },
        forced: false,
        zone: None,
    };
    DipAnswer::Route(RouteAnswer {
        zone: Zone::Interstate,
        lrn: None,
        partition: Some("premium".into()),
        routes: vec![r("ns-premium", 0.0042), r("ks-ocn", 0.0044)],
        emergency_callback: None,
        max_duration_s: None,
        stir: None,
    })
}

/// Runs `n` complete calls through the calls layer with `conc` in flight; returns calls/s.
/// `next` hands out call numbers; storing `n` into it stops the stream early.
async fn call_stream(
    calls: Arc<CallService>,
    engine: Arc<Engine>,
    prefix: &str,
    n: usize,
    conc: usize,
    next: Arc<AtomicUsize>,
) -> f64 {
    let t = Instant::now();
    let mut tasks = vec![];
    for _ in 0..conc {
        let (calls, engine, next, prefix) = (
            calls.clone(),
            engine.clone(),
            next.clone(),
            prefix.to_string(),
        );
        tasks.push(tokio::spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= n {
                    break;
                }
                let id = format!("{prefix}-{i}");
                let req = DipRequest {
                    ban: Some("10001".into()),
                    ani: "+12125550100".into(),
                    dnis: "+13125550100".into(),
                    call_id: Some(id.clone()),
                    ..Default::default()
                };
                let snap = engine.load();
                let a = calls.on_dip(&req, snap.ban_for(&req), answer(), &snap);
                drop(snap);
                assert!(matches!(a, DipAnswer::Route(_)));
                let now = warpd::calls::now_us();
                let evs = [
                    attempt_event(format!(r#"{{"call_id":"{id}","attempt":1,"route_id":"ns-premium","sip_code":200}}"#).as_bytes(), now),
                    answer_event(format!(r#"{{"call_id":"{id}"}}"#).as_bytes(), now),
                    end_event(format!(r#"{{"call_id":"{id}","hangup":"caller"}}"#).as_bytes(), now + 60_000_000),
                ];
                for e in evs {
                    let e = e.unwrap_or_else(|e| panic!("{e}"));
                    if let Err(e) = calls.submit(e).await {
                        eprintln!("event not acknowledged: {e}");
                        return;
                    }
                }
            }
        }));
    }
    for t in tasks {
        let _ = t.await;
    }
    n as f64 / t.elapsed().as_secs_f64()
}

/// Open-loop dips with a call_id (raw HTTP sharing warpd's runtime, timed from each send; see
/// `raw_http`).
async fn open_loop(addr: &str, tag: &str, rate: u64, secs: u64, conns: usize) -> (Vec<u64>, usize) {
    let tag = tag.to_string();
    raw_http::open_loop(
        addr,
        rate,
        secs,
        conns,
        move |k| {
            format!("/v1/route?ban=10001&ani=%2B12125550100&dnis=%2B13125550100&call_id={tag}-{k}")
        },
        raw_http::any_body,
        raw_http::Timing::FromSend,
    )
    .await
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let n_calls: usize = std::env::var("WARPD_BENCH_CALLS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000);
    let inflight: usize = std::env::var("WARPD_BENCH_INFLIGHT")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(256);
    let pg = support::TestPg::start();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap_or_else(|e| panic!("runtime: {e}"));
    rt.block_on(async move {
        let mut client = warpd::db::connect(&pg.url()).await.unwrap_or_else(|e| panic!("{e}"));
        warpd::db::migrate::migrate(&mut client).await.unwrap_or_else(|e| panic!("{e}"));
        let demo = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/demo/network.toml");
        warpd::provision::apply(&mut client, &demo, false).await.unwrap_or_else(|e| panic!("{e}"));
        // the demo limits customer 10001 to 20 calls per second; this load must not be throttled
        client
            .execute("UPDATE customers SET max_concurrent_calls = NULL, max_cps = NULL", &[])
            .await
            .unwrap_or_else(|e| panic!("{e}"));

        // 1. CDR insert rate
        cdr::store::prepare(&client).await.unwrap_or_else(|e| panic!("{e}"));
        let now = warpd::calls::now_us();
        let all: Vec<Cdr> = (0..200_000).map(|i| cdr(i, now)).collect();
        let mut parts = std::collections::HashSet::new();
        let t = Instant::now();
        let mut written = 0;
        for chunk in all.chunks(5000) {
            let c = cdr::store::commit_batch(&mut client, &[], chunk, &[], &mut parts, false)
                .await
                .unwrap_or_else(|e| panic!("{e}"));
            written += c.cdrs;
        }
        let secs = t.elapsed().as_secs_f64();
        println!("1. CDR insert: {written} CDRs in {secs:.2}s = {:.0} CDRs/s (batches of 5000, plain COPY)", written as f64 / secs);
        // replaying the same batches writes nothing (idempotent)
        let t = Instant::now();
        let mut again = 0;
        for chunk in all.chunks(5000) {
            again += cdr::store::commit_batch(&mut client, &[], chunk, &[], &mut parts, true)
                .await
                .unwrap_or_else(|e| panic!("{e}"))
                .cdrs;
        }
        println!("   idempotent path (staging + ON CONFLICT), replaying the same 200,000: {again} written in {:.2}s", t.elapsed().as_secs_f64());
        let more: Vec<Cdr> = (200_000..400_000).map(|i| cdr(i, now)).collect();
        let t = Instant::now();
        let mut n = 0;
        for chunk in more.chunks(5000) {
            n += cdr::store::commit_batch(&mut client, &[], chunk, &[], &mut parts, true)
                .await
                .unwrap_or_else(|e| panic!("{e}"))
                .cdrs;
        }
        let secs = t.elapsed().as_secs_f64();
        println!("   idempotent path, 200,000 new: {n} in {secs:.2}s = {:.0} CDRs/s", n as f64 / secs);

        // credit control (issue 21): an account whose limit no call reaches, so the checks run
        // and nothing is refused
        let credit = std::env::var("WARPD_BENCH_CREDIT").is_ok_and(|v| v == "1");
        if credit {
            client
                .batch_execute(
                    "INSERT INTO accounts (ban, mode, credit_limit_e7) VALUES ('10001', 'postpaid', 9000000000000000000)",
                )
                .await
                .unwrap_or_else(|e| panic!("{e}"));
        }
        let dip_rate: u64 = std::env::var("WARPD_BENCH_DIP_RATE")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(2000);

        // the daemon's pieces: config, engine (demo snapshot), calls service, API
        let spool = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        // WARPD_* settings from the environment apply too (e.g. WARPD_CDR__FLUSH_INTERVAL_MS=0)
        let mut env: Vec<(String, String)> =
            std::env::vars()
                .filter(|(k, _)| k.starts_with("WARPD_") && k != "WARPD_DATABASE__URL" && k != "WARPD_CDR__SPOOL_DIR")
                .collect();
        env.push(("WARPD_DATABASE__URL".to_string(), pg.url()));
        env.push(("WARPD_CDR__SPOOL_DIR".to_string(), spool.path().display().to_string()));
        // the benchmark dips by BAN (the default dip-as rule accepts src_ip only)
        if !env.iter().any(|(k, _)| k == "WARPD_SERVER__KAMAILIO_DIP_AS") {
            env.push(("WARPD_SERVER__KAMAILIO_DIP_AS".to_string(), "any".to_string()));
        }
        let config = Config::from_str_with_env(include_str!("../warpd.example.toml"), env)
            .unwrap_or_else(|e| panic!("{e}"));
        let stop = tokio_util::sync::CancellationToken::new();
        let metrics = Arc::new(Metrics::new());
        let mut settings = config.routing.clone();
        settings.dip_cache_ttl_ms = 0;
        let engine = Arc::new(Engine::new(settings));
        let reloader = warpd::db::reload::DbReloader::start(
            pg.url(),
            engine.clone(),
            metrics.clone(),
            Duration::from_millis(250),
            stop.clone(),
        );
        warpd::reload::Reloader::reload(reloader.as_ref()).await.unwrap_or_else(|e| panic!("{e}"));
        let calls = CallService::start(&config, &metrics.registry, stop.clone())
            .await
            .unwrap_or_else(|e| panic!("{e}"));

        // 2. completed calls end to end
        let rate = call_stream(
            calls.clone(),
            engine.clone(),
            "e2e",
            n_calls,
            inflight,
            Arc::new(AtomicUsize::new(0)),
        )
        .await;
        let n: i64 = client
            .query_one("SELECT count(*) FROM cdrs WHERE call_id LIKE 'e2e-%'", &[])
            .await
            .map(|r| r.get(0))
            .unwrap_or(-1);
        println!("2. end to end: {n_calls} calls, {inflight} in flight (dip hook + 3 events each, acked when durable) at {rate:.0} calls/s; CDRs in PostgreSQL: {n}");
        if credit {
            let r = client
                .query_one("SELECT count(*), coalesce(sum(amount_e7), 0)::int8, (SELECT balance_e7 FROM accounts WHERE ban = '10001') FROM account_ledger WHERE call_id LIKE 'e2e-%'", &[])
                .await
                .unwrap_or_else(|e| panic!("{e}"));
            let (rows, sum, bal): (i64, i64, i64) = (r.get(0), r.get(1), r.get(2));
            println!("   credit: {rows} ledger charges of the e2e calls, sum {sum}, account balance {bal} (= the sum: {})", sum == bal);
        }

        // 3. dip latency over HTTP, alone and while CDRs are written
        let state = Arc::new(AppState {
            engine: engine.clone(),
            reloader: reloader.clone(),
            metrics: metrics.clone(),
            limits: ApiLimits::default(),
            calls: Some(calls.clone()),
            media: None,
            admin: None,
            console: None,
            kamailio_auth: Default::default(),
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap_or_else(|e| panic!("{e}"));
        let addr = listener.local_addr().unwrap_or_else(|e| panic!("{e}")).to_string();
        let admin = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap_or_else(|e| panic!("{e}"));
        let server = tokio::spawn(api::serve(api::Listeners { kamailio: listener, admin, kamailio_resp: Vec::new() }, state, stop.clone()));
        let (lat, err) = open_loop(&addr, "quiet", dip_rate, 10, 16).await;
        raw_http::report(&format!("3a. dips at {dip_rate}/s, no CDR load, credit account: {credit}"), &lat, err, 10.0);
        let bg_next = Arc::new(AtomicUsize::new(0));
        let bg = tokio::spawn(call_stream(
            calls.clone(),
            engine.clone(),
            "bg",
            usize::MAX / 2,
            64,
            bg_next.clone(),
        ));
        tokio::time::sleep(Duration::from_millis(500)).await;
        let before = calls.shared().metrics.cdrs_written.get();
        let t = Instant::now();
        let (lat, err) = open_loop(&addr, "loaded", dip_rate, 10, 16).await;
        let cdr_rate = (calls.shared().metrics.cdrs_written.get() - before) as f64 / t.elapsed().as_secs_f64();
        raw_http::report(&format!("3b. dips at {dip_rate}/s while {cdr_rate:.0} CDRs/s are written"), &lat, err, 10.0);
        bg_next.store(usize::MAX / 2, Ordering::Relaxed);
        let _ = bg.await;
        stop.cancel();
        let _ = server.await;
        calls.join().await;
    });
}
