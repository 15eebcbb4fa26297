//! warpd frozen under load (issue 18): SIPp places 200 calls/s through Kamailio
//! (`kamailio/kamailio.cfg`, the RESP dip, `DIP_FALLBACK_URI` at a SIPp UAS) to warpd run as a
//! process of its own; warpd gets SIGSTOP for 10 s mid-run, then SIGCONT. No call fails, no
//! caller waits longer than the RESP time-outs ([`max_wait`]), ndb_redis's breaker opens (Kamailio
//! logs it) and the calls of the freeze complete through the fallback UAS, and once warpd runs
//! again (and the breaker's `RESP_DISABLE_TIME_S` has passed) calls are dipped over RESP and reach
//! the routed gateway again.

use super::*;

/// Calls per second, and calls in the run (18 s: ~2 s before the freeze, 10 s frozen, ~6 s after).
const RATE: u32 = 200;
const CALLS: usize = 3600;
/// How long warpd stays frozen.
const FREEZE: Duration = Duration::from_secs(10);
/// ndb_redis's connect time-out (`RESP_CONNECT_TIMEOUT_MS`); the command time-out is
/// `RESP_CMD_TIMEOUT_MS` = `DIP_TIMEOUT_MS` ([`Kamailio::start`] sets it).
const RESP_CONNECT_TIMEOUT_MS: u64 = 100;

/// The longest a caller may wait for its final response while warpd is frozen: ndb_redis's
/// command times out (`RESP_CMD_TIMEOUT_MS`), it reconnects (the kernel still accepts into the
/// frozen process's backlog; `RESP_CONNECT_TIMEOUT_MS` when it does not) and its PING times out
/// too (`RESP_CMD_TIMEOUT_MS`): that is the time-out plus one retry, kamailio.cfg's
/// "2 x RESP_CMD_TIMEOUT_MS + RESP_CONNECT_TIMEOUT_MS". With `RESP_ALLOWED_TIMEOUTS=0` (kamailio.cfg's default) a SIP
/// worker's breaker opens on its first failed dip, so a call queued behind a blocked worker waits
/// at most that long too (with a larger allowance a queued call would wait for each failed dip of
/// the worker ahead of it). Plus 300 ms for the rest of the call on a shared 2-core host: the
/// burst of INVITEs queued meanwhile, the fallback UAS's leg, scheduling.
fn max_wait() -> Duration {
    Duration::from_millis(2 * DIP_TIMEOUT_MS + RESP_CONNECT_TIMEOUT_MS + 300)
}

/// warpd's RESP dips so far (`dip_duration_seconds_count{surface="resp",…}`, every series).
fn resp_dips(metrics: &str) -> f64 {
    metrics
        .lines()
        .filter(|l| l.contains("dip_duration_seconds_count") && l.contains("surface=\"resp\""))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// Per-call response times (ms) from SIPp's `-trace_rtt` files in `dir`
/// (`<scenario>_<pid>_rtt.csv`: `date_ms;response_time_ms;rtd_no` per call).
fn response_times_ms(dir: &Path) -> Vec<f64> {
    std::fs::read_dir(dir)
        .expect("read dir")
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().ends_with("_rtt.csv"))
        .filter_map(|e| std::fs::read_to_string(e.path()).ok())
        .flat_map(|text| {
            text.lines()
                .filter_map(|l| l.split(';').nth(1)?.trim().parse::<f64>().ok())
                .collect::<Vec<_>>()
        })
        .collect()
}

#[test]
fn warpd_frozen_under_load_costs_calls_at_most_the_resp_timeouts_and_the_fallback_carries_them() {
    for tool in ["kamailio", "sipp"] {
        require_tool(tool);
    }
    let tmp = tempfile::Builder::new()
        .prefix("warpd-e2e-freeze-")
        .tempdir()
        .expect("tempdir");
    let dir = tmp.path();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");

    // --- database: the demo network, gateways on free ports, no call limits (200 calls/s from
    // customer 10001 would hit its max_cps / route capacities otherwise) -----------------------
    let pg = support::TestPg::start();
    let ports: BTreeMap<u16, u16> = (5081..=5087).map(|p| (p, free_udp_port())).collect();
    let network = demo_copy(dir, &ports, None);
    let text = std::fs::read_to_string(&network).expect("network copy");
    let unlimited: String = text
        .lines()
        .filter(|l| {
            !["max_concurrent_calls", "max_cps", "capacity"]
                .iter()
                .any(|k| l.trim_start().starts_with(k))
        })
        .map(|l| format!("{l}\n"))
        .collect();
    std::fs::write(&network, unlimited).expect("write network");
    rt.block_on(async {
        let mut client = warpd::db::connect(&pg.url()).await.expect("connect");
        warpd::db::migrate::migrate(&mut client)
            .await
            .expect("migrate");
        warpd::provision::apply(&mut client, &network, false)
            .await
            .expect("apply demo copy");
    });

    // --- warpd as a process (SIGSTOP must not freeze the test), RESP on a free TCP port: the
    // one scenario over TCP (-A WARPD_RESP_TCP's transport; the others dip over warpd's unix
    // socket, kamailio.cfg's default), where a frozen warpd's kernel still accepts connections --
    let warpd = rt.block_on(async {
        Warpd::builder(&pg)
            // no AUTH on RESP (kamailio.cfg: ndb_redis sends it before its time-outs apply)
            .env("WARPD_SERVER__KAMAILIO_RESP_REQUIRE_SECRET", "false")
            // dips only (Kamailio sends no events here): no call tracking
            .env("WARPD_CALLS__ENABLED", "false")
            .resp()
            .await
            .spawn_process()
            .await
    });
    let resp_port = warpd.resp_addr.expect("RESP listener").port();
    let q = format!(
        "src_ip=127.0.0.1&ani={}&dnis={}",
        ANI.replace('+', "%2B"),
        DNIS.replace('+', "%2B")
    );
    let (api, q) = (&warpd.api, q.as_str());
    let answer = rt.block_on(support::eventually(
        "warpd routing",
        Duration::from_secs(30),
        move || async move { Some(api.dip(q).await).filter(|a| a["action"] == "route") },
    ));
    let first_uri = answer["routes"][0]["uris"][0].as_str().unwrap_or_default();
    let routed = Uas::start(dir, gw_port(first_uri), "uas.xml", "routed");
    let fallback_port = free_udp_port();
    let fallback = Uas::start(dir, fallback_port, "uas.xml", "fallback");

    // --- Kamailio: the RESP dip with the shipped breaker (a worker's first failed dip opens it, 2 s) --
    let kam = Kamailio::start(
        dir,
        "freeze",
        &[
            format!("WARPD_RESP_SERVER=\"name=warpd;addr=127.0.0.1;port={resp_port}\""),
            format!("RESP_CONNECT_TIMEOUT_MS={RESP_CONNECT_TIMEOUT_MS}"),
            format!("DIP_FALLBACK_URI=\"sip:fallback@127.0.0.1:{fallback_port}\""),
            "WITHOUT_EVENTS".into(),
        ],
    );

    // --- the load: CALLS calls at RATE/s, each call's INVITE → 200 time recorded -------------
    // (SIPp names the -trace_rtt file after the scenario path: a copy here keeps it in `dir`)
    std::fs::copy(repo().join("tests/sipp/uac.xml"), dir.join("uac.xml")).expect("copy uac.xml");
    let mut uac = Proc::spawn(
        "uac-load",
        Command::new("sipp")
            .current_dir(dir)
            .arg(format!("127.0.0.1:{}", kam.port))
            .args(["-sf", "uac.xml"])
            .args(["-key", "ani", ANI, "-key", "dnis", DNIS])
            .args([
                "-r",
                &RATE.to_string(),
                "-m",
                &CALLS.to_string(),
                "-d",
                "100",
            ])
            .args(["-i", "127.0.0.1", "-p", &free_udp_port().to_string()])
            .args(["-nostdin", "-buff_size", "4194304", "-recv_timeout", "8000"])
            .args(["-trace_rtt", "-rtt_freq", "1"]),
        &dir.join("uac-load.out"),
    );
    let started = Instant::now();
    // ~1.5 s of routed calls before the freeze
    support::eventually_blocking(
        "calls routed over RESP before the freeze",
        Duration::from_secs(15),
        || routed.invites() >= 300,
    );
    let dips_before = resp_dips(&rt.block_on(warpd.metrics()));
    warpd.freeze();
    let frozen_at = started.elapsed();
    let routed_before = routed.invites();
    // the freeze is the scenario: warpd stays stopped this long whatever happens meanwhile
    std::thread::sleep(FREEZE);
    let (routed_frozen, fallback_frozen) = (routed.invites(), fallback.invites());
    warpd.resume();
    let resumed_at = started.elapsed();

    let done = support::wait::poll_blocking(Duration::from_secs(30), || {
        uac.child.try_wait().ok().flatten()
    });
    let out = std::fs::read_to_string(dir.join("uac-load.out")).unwrap_or_default();
    let status = done.unwrap_or_else(|| panic!("SIPp still running after 30 s:\n{out}"));
    let kam_log = std::fs::read_to_string(&kam.log).unwrap_or_default();
    let tail = |s: &str| s.lines().rev().take(40).collect::<Vec<_>>().join("\n");

    // no call failed, every call's response time recorded, none over the bound
    assert!(status.success(), "calls failed ({status}):\n{out}");
    let times = response_times_ms(dir);
    assert_eq!(times.len(), CALLS, "response times recorded:\n{out}");
    let max = times.iter().cloned().fold(0.0_f64, f64::max);
    let slow = times.iter().filter(|t| **t > 100.0).count();
    let (routed_end, fallback_end) = (routed.invites(), fallback.invites());
    eprintln!(
        "freeze at {frozen_at:?}, resume at {resumed_at:?}; max wait {max:.0} ms (bound {:?}), \
         {slow} calls over 100 ms; routed {routed_before} before the freeze, {routed_frozen} \
         by its end, {routed_end} in all; fallback {fallback_frozen} during the freeze, \
         {fallback_end} in all",
        max_wait()
    );
    assert!(
        max <= max_wait().as_millis() as f64,
        "a caller waited {max:.0} ms (bound {:?})",
        max_wait()
    );

    // the breaker opened, and the fallback carried the calls of the freeze
    assert!(
        kam_log.contains("REDIS server warpd disabled"),
        "the breaker never opened:\n{}",
        tail(&kam_log)
    );
    assert!(
        fallback_frozen >= 1000,
        "only {fallback_frozen} calls reached the fallback during the 10 s freeze"
    );
    assert!(
        routed_end + fallback_end >= CALLS,
        "{routed_end} + {fallback_end} INVITEs at the UASes for {CALLS} calls"
    );

    // after SIGCONT (and the breaker's 2 s) calls are dipped over RESP again: they reach the
    // routed gateway, and warpd counted their dips
    let routed_after = routed_end - routed_frozen;
    assert!(
        routed_after >= 200,
        "only {routed_after} calls routed after the resume:\n{}",
        tail(&kam_log)
    );
    let dips_after = resp_dips(&rt.block_on(warpd.metrics())) - dips_before;
    assert!(
        dips_after >= routed_after as f64,
        "{dips_after} RESP dips since the freeze for {routed_after} routed calls"
    );
}
