//! Every CDR exactly once: restart with live calls, a PostgreSQL outage mid-stream, `kill -9`
//! of the binary mid-stream, a spool whose last record is cut.

use super::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_rebuilds_live_calls_so_limits_hold() {
    let pg = support::TestPg::start();
    let client = demo_db(&pg).await;
    client
        .execute(
            "UPDATE customers SET max_concurrent_calls = 2 WHERE ban = '10001'",
            &[],
        )
        .await
        .unwrap();
    let spool = tempfile::tempdir().unwrap();
    let s = start(&pg, spool.path(), &[]).await;
    for id in ["live-1", "live-2"] {
        assert_eq!(s.dip(&call(id)).await["action"], "route");
        s.rpc_ok(
            "call.answer",
            json!({"call_id": id, "route_id": "ns-premium"}),
        )
        .await;
    }
    s.stop().await;

    let s = start(&pg, spool.path(), &[]).await;
    let r = s.dip(&call("live-3")).await;
    assert_eq!(r["sip_code"], 503, "limit must survive the restart: {r}");
    for id in ["live-1", "live-2"] {
        s.rpc_ok("call.end", json!({"call_id": id, "hangup": "caller"}))
            .await;
        assert_eq!(cdrs_of(&client, id).await.len(), 1);
    }
    assert_eq!(s.dip(&call("live-3")).await["action"], "route");
    support::eventually("only live-3 unfinished", Duration::from_secs(10), || {
        let c = &client;
        async move {
            let r = c
                .query("SELECT DISTINCT call_id FROM call_events", &[])
                .await
                .unwrap();
            r.len() == 1 && r[0].get::<_, String>(0) == "live-3"
        }
    })
    .await;
    s.stop().await;
}

/// Drives `n` complete calls with `conc` in flight; returns the call-ids whose call.end was
/// acknowledged. Calls numbered `allowed` and above wait until `allowed` grows (the test paces
/// the stream). `fail_ok`: transport errors end a worker instead of failing the test.
async fn stream_calls(
    base: String,
    prefix: &'static str,
    n: usize,
    conc: usize,
    acked: Arc<AtomicUsize>,
    allowed: Arc<AtomicUsize>,
    fail_ok: bool,
) -> Vec<String> {
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    let next = Arc::new(AtomicUsize::new(0));
    let mut tasks = vec![];
    for _ in 0..conc {
        let (http, base, next, acked, allowed) = (
            http.clone(),
            base.clone(),
            next.clone(),
            acked.clone(),
            allowed.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let mut done = vec![];
            loop {
                let i = next.fetch_add(1, Ordering::SeqCst);
                if i >= n {
                    break;
                }
                // the test opens the gate (`allowed`) stage by stage
                support::eventually(
                    format!("the gate open for call {i}"),
                    Duration::from_secs(300),
                    || std::future::ready(i < allowed.load(Ordering::SeqCst)),
                )
                .await;
                let id = format!("{prefix}-{i}");
                let steps: Vec<(&str, Value)> = vec![
                    (
                        "call.attempt",
                        json!({"call_id":id,"attempt":1,"route_id":"ns-premium","sip_code":200}),
                    ),
                    ("call.answer", json!({"call_id":id})),
                    ("call.end", json!({"call_id":id,"hangup":"caller"})),
                ];
                let dip = http
                    .get(format!("{base}/v1/route?{Q}&call_id={id}"))
                    .send()
                    .await;
                if dip.is_err() {
                    assert!(fail_ok, "dip failed: {dip:?}");
                    return done;
                }
                for (method, params) in steps {
                    let r = http
                        .post(format!("{base}/rpc"))
                        .json(&json!({"jsonrpc":"2.0","id":1,"method":method,"params":params}))
                        .send()
                        .await;
                    let body: Option<Value> = match r {
                        Ok(r) => r.json().await.ok(),
                        Err(_) => None,
                    };
                    match body {
                        Some(b) if b["result"]["ok"] == true => {}
                        other => {
                            assert!(fail_ok, "{method} for {id}: {other:?}");
                            return done;
                        }
                    }
                }
                acked.fetch_add(1, Ordering::SeqCst);
                done.push(id);
            }
            done
        }));
    }
    let mut all = vec![];
    for t in tasks {
        all.extend(t.await.unwrap());
    }
    all
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn database_outage_mid_stream_every_cdr_exactly_once() {
    let pg = support::TestPg::start();
    let _client = demo_db(&pg).await;
    drop(_client);
    let spool = tempfile::tempdir().unwrap();
    let s = start(&pg, spool.path(), &[]).await;
    const N: usize = 300;
    let acked = Arc::new(AtomicUsize::new(0));
    let allowed = Arc::new(AtomicUsize::new(N / 3));
    let stream = tokio::spawn(stream_calls(
        s.base.clone(),
        "out",
        N,
        8,
        acked.clone(),
        allowed.clone(),
        false,
    ));
    let reach = |n: usize, what: &'static str| {
        let a = acked.clone();
        support::eventually(what, Duration::from_secs(120), move || {
            let a = a.clone();
            async move { a.load(Ordering::SeqCst) >= n }
        })
    };
    reach(N / 3, "the first third of the calls").await;
    tokio::task::block_in_place(|| pg.stop());
    // the second third runs entirely while PostgreSQL is down
    allowed.store(2 * N / 3, Ordering::SeqCst);
    reach(2 * N / 3, "calls acknowledged while the database is down").await;
    let spooled = std::fs::metadata(spool.path().join("events.spool"))
        .map(|m| m.len())
        .unwrap_or(0);
    assert!(
        spooled > 0,
        "events must be spooled while PostgreSQL is down"
    );
    allowed.store(N, Ordering::SeqCst);
    tokio::task::block_in_place(|| pg.start_server());
    let done = stream.await.unwrap();
    assert_eq!(done.len(), N, "every call acknowledged");
    let client = warpd::db::connect(&pg.url()).await.unwrap();
    support::eventually("every CDR in PostgreSQL", Duration::from_secs(30), || {
        let c = &client;
        async move {
            let n: i64 = c
                .query_one("SELECT count(*) FROM cdrs WHERE call_id LIKE 'out-%'", &[])
                .await
                .unwrap()
                .get(0);
            n >= N as i64
        }
    })
    .await;
    let row = client
        .query_one(
            "SELECT count(*), count(DISTINCT call_id) FROM cdrs WHERE call_id LIKE 'out-%'",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(
        (row.get::<_, i64>(0), row.get::<_, i64>(1)),
        (N as i64, N as i64)
    );
    let left: i64 = count(&client, "SELECT count(*) FROM call_events").await;
    assert_eq!(left, 0, "no finished call left in call_events");
    support::eventually(
        "spool removed after replay",
        Duration::from_secs(10),
        || async { !spool.path().join("events.spool").exists() },
    )
    .await;
    s.stop().await;
}

fn warpd_child(
    pg: &support::TestPg,
    spool: &Path,
    api: &support::Api,
    cfg: &Path,
) -> std::process::Child {
    std::process::Command::new(env!("CARGO_BIN_EXE_warpd"))
        .arg("--config")
        .arg(cfg)
        .arg("serve")
        .envs(ENV)
        .env("WARPD_DATABASE__URL", pg.url())
        .env("WARPD_RELOAD__DEBOUNCE_MS", "50")
        .env("WARPD_CDR__SPOOL_DIR", spool)
        .env(
            "WARPD_SERVER__KAMAILIO_LISTEN",
            api.base.trim_start_matches("http://"),
        )
        .env(
            "WARPD_SERVER__ADMIN_LISTEN",
            api.admin_base.trim_start_matches("http://"),
        )
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_mid_stream_every_acknowledged_cdr_exactly_once() {
    let pg = support::TestPg::start();
    drop(demo_db(&pg).await);
    let dir = tempfile::tempdir().unwrap();
    let spool: PathBuf = dir.path().join("spool");
    let cfg = dir.path().join("warpd.toml");
    std::fs::write(
        &cfg,
        "[database]\nurl = \"postgres://placeholder@127.0.0.1/x\"\n",
    )
    .unwrap();
    let port = || {
        std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
    };
    let api = support::Api::with_admin(port(), port());

    let mut child = warpd_child(&pg, &spool, &api, &cfg);
    api.wait_ready().await;
    const N: usize = 100_000; // far more than can finish: the kill comes first
    let acked = Arc::new(AtomicUsize::new(0));
    let stream = tokio::spawn(stream_calls(
        api.base.clone(),
        "k9",
        N,
        8,
        acked.clone(),
        Arc::new(AtomicUsize::new(N)),
        true,
    ));
    support::eventually("calls before the kill", Duration::from_secs(60), || {
        let a = acked.clone();
        async move { a.load(Ordering::SeqCst) >= 150 }
    })
    .await;
    child.kill().unwrap(); // SIGKILL
    let _ = child.wait();
    let done = stream.await.unwrap();
    assert!(done.len() >= 150);

    let mut child = warpd_child(&pg, &spool, &api, &cfg);
    api.wait_ready().await;
    let client = warpd::db::connect(&pg.url()).await.unwrap();
    let rows = client
        .query(
            "SELECT call_id, count(*) FROM cdrs WHERE call_id LIKE 'k9-%' GROUP BY call_id",
            &[],
        )
        .await
        .unwrap();
    let mut seen = HashSet::new();
    for r in &rows {
        let n: i64 = r.get(1);
        assert_eq!(n, 1, "duplicate CDR for {}", r.get::<_, String>(0));
        seen.insert(r.get::<_, String>(0));
    }
    for id in &done {
        assert!(
            seen.contains(id),
            "acknowledged call {id} has no CDR after kill -9"
        );
    }
    child.kill().unwrap();
    let _ = child.wait();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spool_with_a_cut_last_record_is_replayed_up_to_the_cut() {
    let pg = support::TestPg::start();
    drop(demo_db(&pg).await);
    let spool = tempfile::tempdir().unwrap();
    // a complete call as warpd spools it, then a record cut in the middle (a crash during write)
    let t = 1_800_000_000_000_000i64;
    let evs = [
        json!({"call_id":"sp-1","ts_us":t,"kind":"start","ban":"10001","ani":"12125550100","dnis":"13125550100",
               "routes":[{"route_id":"ns-premium","vendor":"northstar","rate_e7":45000,"customer_rate_e7":54000,"min":6,"inc":6}]}),
        json!({"call_id":"sp-1","ts_us":t+1_000_000,"kind":"attempt","attempt":1,"route_id":"ns-premium","sip_code":200}),
        json!({"call_id":"sp-1","ts_us":t+1_000_000,"kind":"answer"}),
        json!({"call_id":"sp-1","ts_us":t+8_000_000,"kind":"end","hangup":"caller"}),
    ];
    let mut bytes = vec![];
    for e in &evs {
        warpd::cdr::spool::encode(e.to_string().as_bytes(), &mut bytes);
    }
    let mut cut = vec![];
    warpd::cdr::spool::encode(br#"{"call_id":"sp-2","ts_us":1,"kind":"end"}"#, &mut cut);
    bytes.extend_from_slice(&cut[..cut.len() - 7]);
    std::fs::write(spool.path().join("events.spool"), &bytes).unwrap();

    let s = start(&pg, spool.path(), &[]).await;
    let client = warpd::db::connect(&pg.url()).await.unwrap();
    let rows = cdrs_of(&client, "sp-1").await;
    assert_eq!(rows.len(), 1);
    // 7 s under 6/6 = 12 s; $0.0045/min → 0.0009
    assert_eq!(rows[0].get::<_, i32>(1), 12);
    assert_eq!(rows[0].get::<_, String>(3), "0.0009000");
    assert!(!spool.path().join("events.spool").exists());
    let m = s.metrics().await;
    assert!(m.contains("warpd_cdr_spool_damaged_total 1"), "{m}");
    s.stop().await;

    // the writer's fast path (plain COPY) refuses an existing CDR; the idempotent path skips it
    let mut client = client;
    warpd::cdr::store::prepare(&client).await.unwrap();
    let row: String = client
        .query_one(
            "SELECT row_to_json(c)::text FROM cdrs c WHERE call_id = 'sp-1'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    let started: chrono::DateTime<chrono::Utc> = client
        .query_one("SELECT started_at FROM cdrs WHERE call_id = 'sp-1'", &[])
        .await
        .unwrap()
        .get(0);
    assert!(row.contains("sp-1"));
    let dup = warpd::cdr::Cdr {
        call_id: "sp-1".into(),
        started_us: started.timestamp_micros(),
        disposition: "answered",
        ..Default::default()
    };
    let mut parts = HashSet::new();
    let e = warpd::cdr::store::commit_batch(
        &mut client,
        &[],
        std::slice::from_ref(&dup),
        &[],
        &mut parts,
        false,
    )
    .await
    .unwrap_err();
    assert!(warpd::cdr::store::is_unique_violation(&e), "{e}");
    let c = warpd::cdr::store::commit_batch(&mut client, &[], &[dup], &[], &mut parts, true)
        .await
        .unwrap();
    assert_eq!(c.cdrs, 0);
}
