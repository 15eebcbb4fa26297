//! Credit enforced by Kamailio (issue 21), with real Kamailio (dialog module), SIPp and warpd:
//! a prepaid customer with credit for 30 s gets `max_duration_s` 30 and Kamailio tears the call
//! down 30 s ± 1 s after the answer (BYE to both SIPp sides), warpd hears `hangup=system` with a
//! max-duration cause, the CDR is billed to the exhausted balance and the next call is refused
//! with 402; a 911 call from the exhausted account still goes through; the admin `call.hangup`
//! ends a live call through Kamailio's RPC (BYE to both sides, the CDR's hangup `system`); an
//! account with `at_limit = cut` whose money an adjustment takes away has its live call ended.
//!
//! A stack of its own (no RTPEngine, no event sink): PostgreSQL with a copy of the demo network,
//! warpd in-process (RESP dip), Kamailio on kamailio/kamailio.cfg, SIPp UASes on every demo
//! gateway port.

use super::*;

struct CreditStack {
    kam: Option<Kamailio>,
    _uas: Vec<Uas>,
    warpd: Option<Warpd>,
    rt: tokio::runtime::Runtime,
    pg: support::TestPg,
    dir: PathBuf,
    /// None when WARPD_E2E_KEEP keeps the directory (its logs) for a look afterwards
    _tmp: Option<tempfile::TempDir>,
}

impl CreditStack {
    fn start() -> CreditStack {
        for tool in ["kamailio", "sipp"] {
            require_tool(tool);
        }
        let tmp = tempfile::Builder::new()
            .prefix("warpd-e2e-credit-")
            .tempdir()
            .expect("tempdir");
        let (dir, tmp) = if std::env::var_os("WARPD_E2E_KEEP").is_some() {
            eprintln!("keeping {}", tmp.path().display());
            (tmp.keep(), None)
        } else {
            (tmp.path().to_path_buf(), Some(tmp))
        };
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("runtime");
        let pg = support::TestPg::start();
        let ports: BTreeMap<u16, u16> = (5081..=5087).map(|p| (p, free_udp_port())).collect();
        let network = demo_copy(&dir, &ports, None);
        rt.block_on(async {
            let mut client = warpd::db::connect(&pg.url()).await.expect("connect");
            warpd::db::migrate::migrate(&mut client)
                .await
                .expect("migrate");
            warpd::provision::apply(&mut client, &network, false)
                .await
                .expect("apply demo copy");
            // one route per answer, billed 1/1: the grant is that route's, to the second
            client
                .batch_execute(
                    "UPDATE customers SET max_results = 1, billing_min_seconds = 1, \
                     billing_inc_seconds = 1, max_concurrent_calls = NULL, max_cps = NULL \
                     WHERE ban = '10001'",
                )
                .await
                .expect("customer terms");
        });
        let uas = ports
            .values()
            .map(|p| Uas::start(&dir, *p, "uas.xml", "credit"))
            .collect();
        let rpc_port = free_tcp_port();
        let builder = Warpd::builder(&pg)
            .spool(&dir.join("spool"))
            .env(
                "WARPD_CALLS__KAMAILIO_RPC_URL",
                format!("http://127.0.0.1:{rpc_port}/RPC"),
            )
            .env("WARPD_CALLS__LIMITS_REFRESH_MS", "200")
            .env("WARPD_SERVER__KAMAILIO_RESP_REQUIRE_SECRET", "false");
        // the RESP dip over warpd's unix socket (kamailio.cfg's default transport)
        let resp_socket = dir.join("resp.sock");
        let warpd = rt.block_on(async { builder.resp_unix(&resp_socket, 0o660).start().await });
        let kam = Kamailio::start(
            &dir,
            "credit",
            &[
                format!(
                    "WARPD_RESP_SERVER=\"name=warpd;unix={}\"",
                    resp_socket.display()
                ),
                format!("WARPD_URL=\"{}\"", warpd.base),
                format!("WARPD_EVENTS_HTTPCON=\"events=>{}/v1/events\"", warpd.base),
                format!("RPC_PORT={rpc_port}"),
            ],
        );
        CreditStack {
            kam: Some(kam),
            _uas: uas,
            warpd: Some(warpd),
            rt,
            pg,
            dir,
            _tmp: tmp,
        }
    }

    fn warpd(&self) -> &Warpd {
        self.warpd.as_ref().expect("warpd")
    }

    fn query<T>(&self, f: impl AsyncFnOnce(tokio_postgres::Client) -> T) -> T {
        self.rt.block_on(async {
            let client = warpd::db::connect(&self.pg.url()).await.expect("connect");
            f(client).await
        })
    }

    fn cdr(&self, call_id: &str) -> Option<Value> {
        let id = call_id.to_string();
        self.query(async move |c| {
            let row = c
                .query_opt(
                    "SELECT row_to_json(c)::text FROM cdrs c WHERE call_id = $1",
                    &[&id],
                )
                .await
                .ok()??;
            serde_json::from_str(&row.get::<_, String>(0)).ok()
        })
    }
}

impl Drop for CreditStack {
    fn drop(&mut self) {
        self.kam.take();
        if let Some(w) = self.warpd.take() {
            self.rt.block_on(w.stop());
        }
    }
}

/// A UAC call that sends an in-dialog OPTIONS 10 s after the answer, then waits for the
/// proxy's BYE (`uac_refresh_wait_bye.xml`): a refresh must not restart the call's max duration.
fn call_refreshing_until_bye(dir: &Path, kam: &Kamailio, dnis: &str, tag: &str) -> CallResult {
    run_until_bye(dir, kam.port, "uac_refresh_wait_bye.xml", dnis, tag, None)
}

/// A UAC call that waits for the proxy's BYE (`uac_wait_bye.xml`), with a fixed Call-ID
/// (`-cid_str`).
fn call_until_bye_as(
    dir: &Path,
    kam_port: u16,
    dnis: &str,
    tag: &str,
    call_id: Option<&str>,
) -> CallResult {
    run_until_bye(dir, kam_port, "uac_wait_bye.xml", dnis, tag, call_id)
}

fn run_until_bye(
    dir: &Path,
    kam_port: u16,
    scenario: &str,
    dnis: &str,
    tag: &str,
    call_id: Option<&str>,
) -> CallResult {
    let trace = dir.join(format!("uac-{tag}.msg"));
    let t = Instant::now();
    let out = Command::new("sipp")
        .arg(format!("127.0.0.1:{kam_port}"))
        .arg("-sf")
        .arg(repo().join("tests/sipp").join(scenario))
        .args(["-key", "ani", ANI, "-key", "dnis", dnis])
        .args(["-m", "1", "-i", "127.0.0.1", "-p"])
        .arg(free_udp_port().to_string())
        .args(["-nostdin", "-timeout", "45s", "-timeout_error"])
        .args(call_id.map(|c| ["-cid_str", c]).into_iter().flatten())
        .args(["-trace_msg", "-message_file"])
        .arg(&trace)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .output()
        .expect("run sipp uac");
    CallResult {
        ok: out.status.success(),
        elapsed: t.elapsed(),
        trace: std::fs::read_to_string(&trace).unwrap_or_default()
            + &String::from_utf8_lossy(&out.stderr),
    }
}

/// Waits until a gateway's SIPp message log shows the BYE of `call_id` (SIPp writes the log
/// buffered: it may show up a little after the call).
fn gateway_got_bye(s: &CreditStack, call_id: &str) {
    support::eventually_blocking(
        format!("the gateway's BYE of {call_id}"),
        Duration::from_secs(10),
        || {
            let byes = s
                ._uas
                .iter()
                .map(|u| std::fs::read_to_string(&u.msgs).unwrap_or_default())
                .map(|log| {
                    log.split("-----------------------------------------------")
                        .filter(|m| {
                            m.lines().any(|l| l.starts_with("BYE sip:"))
                                && m.lines().any(|l| l.trim() == format!("Call-ID: {call_id}"))
                        })
                        .count()
                })
                .sum::<usize>();
            if byes >= 1 {
                Ok(())
            } else {
                Err("no BYE at any gateway".to_string())
            }
        },
    );
}

/// Waits until a dip of `q` is granted `secs` (the books follow the database within
/// calls.limits_refresh_ms); each probe call is ended at once (it holds a reservation).
fn wait_grant(s: &CreditStack, q: &str, secs: u64, tag: &str) {
    let w = s.warpd();
    let mut n = 0;
    support::eventually_blocking("the account at the dip", Duration::from_secs(10), || {
        n += 1;
        let id = format!("probe-{tag}-{n}");
        let a = s.rt.block_on(w.dip(&format!("{q}&call_id={id}")));
        s.rt.block_on(w.rpc(
            "call.end",
            serde_json::json!({"call_id": id, "hangup": "caller"}),
        ));
        if a["max_duration_s"] == secs {
            Ok(())
        } else {
            Err(format!("answer {a}"))
        }
    });
}

/// Kamailio's log lines containing any of `words`.
fn kam_lines(kam: &Kamailio, words: &[&str]) -> String {
    std::fs::read_to_string(&kam.log)
        .unwrap_or_default()
        .lines()
        .filter(|l| words.iter().any(|w| l.contains(w)))
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn kamailio_ends_a_prepaid_call_when_its_credit_runs_out() {
    let s = CreditStack::start();
    let w = s.warpd();
    // credit for 30 s at the customer's sell rate of its one route
    let q = format!(
        "src_ip=127.0.0.1&ani=%2B{}&dnis=%2B{}",
        &ANI[1..],
        &DNIS[1..]
    );
    let priced = s.rt.block_on(w.priced(&q));
    let rate = (priced["routes"][0]["customer_rate"].as_f64().expect("rate") * 1e7).round() as i64;
    assert!(rate > 0, "{priced}");
    let balance = (30 * rate + 30) / 60;
    s.query(async move |c| {
        c.batch_execute("INSERT INTO accounts (ban, mode) VALUES ('10001', 'prepaid')")
            .await
            .expect("account");
        c.execute(
            "INSERT INTO account_ledger (ban, kind, amount_e7) VALUES ('10001', 'topup', $1)",
            &[&balance],
        )
        .await
        .expect("topup");
    });
    // the books follow within calls.limits_refresh_ms (200 ms)
    wait_grant(&s, &q, 30, "a");

    let kam = s.kam.as_ref().expect("kamailio");
    let r = call_refreshing_until_bye(&s.dir, kam, DNIS, "credit-30");
    assert!(
        r.ok,
        "the call must end with the proxy's BYE:\n{}\nkamailio:\n{}",
        r.trace,
        kam_lines(kam, &["credit", "dialog", "ERROR"])
    );
    let call_id = call_id_of(&r.trace);
    // the customer got BYE from the proxy; so did the gateway that carried the call
    assert!(r.trace.contains("BYE sip:"), "{}", r.trace);
    let cdr = support::eventually_blocking("the CDR", Duration::from_secs(15), || {
        s.cdr(&call_id).ok_or_else(|| {
            let log = std::fs::read_to_string(&kam.log).unwrap_or_default();
            let tail: Vec<&str> = log.lines().rev().take(40).collect();
            format!(
                "kamailio log (last lines, newest first):\n{}",
                tail.join("\n")
            )
        })
    });
    let ms = cdr["duration_ms"].as_i64().expect("duration");
    assert!(
        (29_000..=31_000).contains(&ms),
        "torn down 30 s ± 1 s after the answer: {ms} ms (call took {:?}); {cdr}",
        r.elapsed
    );
    assert_eq!(cdr["hangup"], "system", "{cdr}");
    assert!(
        cdr["cause"].as_str().unwrap_or("").contains("max duration"),
        "{cdr}"
    );
    // the CDR caps a duration at the call's max duration; the call itself must not have run
    // longer: the in-dialog OPTIONS at 10 s would have restarted the dialog's timer (BYE at
    // 40 s, 10 s the vendor bills and the customer never pays)
    let id = call_id.clone();
    let lived = s.query(async move |c| {
        c.query_one(
            "SELECT extract(epoch FROM ended_at - answered_at)::float8 FROM cdrs WHERE call_id = $1",
            &[&id],
        )
        .await
        .expect("times")
        .get::<_, f64>(0)
    });
    assert!(
        lived < 35.0,
        "the call outlived its max duration: {lived} s from answer to end; {cdr}\n{}",
        r.trace
    );
    assert_eq!(cdr["customer_billed_s"], 30, "{cdr}");
    // the balance is spent exactly
    let left = s.query(async |c| {
        c.query_one("SELECT balance_e7 FROM accounts WHERE ban = '10001'", &[])
            .await
            .expect("balance")
            .get::<_, i64>(0)
    });
    assert_eq!(left, 0, "{cdr}");

    // the next call: 402 from warpd, through Kamailio
    let r = call(
        &s.dir,
        kam,
        &reject_scenario(&s.dir, 402),
        DNIS,
        "credit-402",
    );
    assert!(r.ok, "expected 402:\n{}", r.trace);

    // 911 from the exhausted account goes through (the demo's emergency route)
    let r = call(
        &s.dir,
        kam,
        &repo().join("tests/sipp/uac.xml"),
        "911",
        "credit-911",
    );
    assert!(r.ok, "911 must go through:\n{}", r.trace);

    // call.hangup: a call with 60 s of credit, ended from the admin listener once answered
    s.query(async move |c| {
        c.execute(
            "INSERT INTO account_ledger (ban, kind, amount_e7) VALUES ('10001', 'topup', $1)",
            &[&(2 * balance)],
        )
        .await
        .expect("topup");
    });
    wait_grant(&s, &q, 60, "b");
    let (dir, port) = (s.dir.clone(), kam.port);
    let uac = std::thread::spawn(move || {
        call_until_bye_as(&dir, port, DNIS, "credit-hangup", Some("e2e-hangup-call"))
    });
    let t = Instant::now();
    support::eventually_blocking("call.hangup ends the call", Duration::from_secs(20), || {
        let v = s.rt.block_on(w.rpc(
            "call.hangup",
            serde_json::json!({"call_id": "e2e-hangup-call"}),
        ));
        if v["result"]["ok"] == true {
            Ok(())
        } else {
            Err(format!("{v}"))
        }
    });
    let r = uac.join().expect("uac thread");
    assert!(r.ok, "the customer gets the proxy's BYE:\n{}", r.trace);
    // the gateway side of both calls got its BYE too
    gateway_got_bye(&s, &call_id);
    gateway_got_bye(&s, "e2e-hangup-call");
    assert!(
        t.elapsed() < Duration::from_secs(20),
        "ended by call.hangup, not by its 60 s"
    );
    let cdr = support::eventually_blocking("the hung-up CDR", Duration::from_secs(15), || {
        s.cdr("e2e-hangup-call")
    });
    assert_eq!(cdr["hangup"], "system", "{cdr}");
    assert_eq!(cdr["cause"], "call.hangup", "{cdr}");
    // a call that is not live: 404-class error naming call_id
    let v = s.rt.block_on(w.rpc(
        "call.hangup",
        serde_json::json!({"call_id": "no-such-call"}),
    ));
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap_or("")
            .contains("call_id"),
        "{v}"
    );

    // at_limit = cut: money taken away while a call is up ends it (Kamailio's BYE to both sides)
    let left = s.query(async |c| {
        c.query_one("SELECT balance_e7 FROM accounts WHERE ban = '10001'", &[])
            .await
            .expect("balance")
            .get::<_, i64>(0)
    });
    s.query(async move |c| {
        c.batch_execute("UPDATE accounts SET at_limit = 'cut' WHERE ban = '10001'")
            .await
            .expect("at_limit");
        let ledger = "INSERT INTO account_ledger (ban, kind, amount_e7) VALUES ('10001', $1, $2)";
        if left != 0 {
            c.execute(ledger, &[&"adjustment", &-left])
                .await
                .expect("zero the balance");
        }
        c.execute(ledger, &[&"topup", &(2 * balance)])
            .await
            .expect("topup");
    });
    wait_grant(&s, &q, 60, "c");
    let (dir, port) = (s.dir.clone(), kam.port);
    let uac = std::thread::spawn(move || {
        call_until_bye_as(&dir, port, DNIS, "credit-cut", Some("e2e-cut-call"))
    });
    let token = s.query(async |c| {
        warpd::admin::create_token(&c, "viewer", "readonly", "test")
            .await
            .expect("token")
    });
    support::eventually_blocking("the call's reservation", Duration::from_secs(10), || {
        let (status, v) = s.rt.block_on(w.request(
            "GET",
            "/v1/admin/customers/10001/account",
            Some(&token),
            None,
        ));
        if v["live"]["calls"] == 1 {
            Ok(())
        } else {
            Err(format!("{status} {v}"))
        }
    });
    let t = Instant::now();
    s.query(async move |c| {
        c.execute(
            "INSERT INTO account_ledger (ban, kind, amount_e7, note) \
             VALUES ('10001', 'adjustment', $1, 'chargeback')",
            &[&-(2 * balance)],
        )
        .await
        .expect("adjustment");
    });
    let r = uac.join().expect("uac thread");
    assert!(
        r.ok,
        "the customer gets the proxy's BYE:\n{}\nkamailio:\n{}",
        r.trace,
        kam_lines(kam, &["credit", "dialog", "ERROR"])
    );
    gateway_got_bye(&s, "e2e-cut-call");
    assert!(
        t.elapsed() < Duration::from_secs(20),
        "ended for the exhausted credit, not by its 60 s"
    );
    let cdr = support::eventually_blocking("the cut call's CDR", Duration::from_secs(15), || {
        s.cdr("e2e-cut-call")
    });
    assert_eq!(cdr["hangup"], "system", "{cdr}");
    assert_eq!(cdr["cause"], "credit exhausted", "{cdr}");
}
