//! TLS: both listeners over TLS (`[server.kamailio_tls]`, `[server.admin_tls]`), client
//! certificates on the Kamailio surface, certificates reloaded on SIGHUP (the binary, a real
//! signal), and TLS to PostgreSQL honouring `sslmode`/`sslrootcert` against a cluster that
//! refuses unencrypted connections. Certificates are generated per test ([`TestCerts`]).

use std::time::{Duration, Instant};

use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::support::certs::{presented_cert, write_private};
use crate::support::{self, TestCerts, TestPg, Warpd};

/// Interstate NY -> IL for Acme (10001).
const Q: &str = "ban=10001&ani=%2B12125550100&dnis=%2B13125550100";

/// Reads until the server closes (or `limit` passes): what came back, and how long it took.
async fn read_until_closed(stream: &mut TcpStream, limit: Duration) -> (Vec<u8>, Duration) {
    let started = Instant::now();
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match tokio::time::timeout_at((started + limit).into(), stream.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return (got, started.elapsed()),
            Ok(Ok(n)) => got.extend_from_slice(&buf[..n]),
            Err(_) => panic!("connection still open after {limit:?} (got {got:?})"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn both_listeners_over_tls_answer_and_close_plain_http_and_stalled_handshakes() {
    let pg = TestPg::start();
    drop(support::demo::demo_db(&pg).await);
    let certs = TestCerts::new("listeners");
    let w = Warpd::builder(&pg)
        .kamailio_tls(&certs)
        .admin_tls(&certs)
        .env("WARPD_SERVER__TLS_HANDSHAKE_TIMEOUT_MS", 1500)
        .start()
        .await;
    assert!(w.base.starts_with("https://") && w.admin_base.starts_with("https://"));
    // a dip on the Kamailio surface, an admin GET on the admin surface
    let a = w.dip(Q).await;
    assert_eq!(a["action"], "route", "{a}");
    let (status, doc) = w.get_json("/v1/openapi.json").await;
    assert_eq!(status, 200, "{doc}");
    assert!(doc["paths"].is_object(), "{doc}");

    for (listener, addr) in [("kamailio", w.addr), ("admin", w.admin_addr)] {
        // plain HTTP to a TLS listener: closed, never answered as HTTP
        let mut plain = TcpStream::connect(addr).await.unwrap();
        plain
            .write_all(b"GET /healthz HTTP/1.1\r\nHost: warpd\r\n\r\n")
            .await
            .unwrap();
        let (got, _) = read_until_closed(&mut plain, Duration::from_secs(10)).await;
        assert!(
            !got.starts_with(b"HTTP/"),
            "{listener}: plain HTTP answered: {:?}",
            String::from_utf8_lossy(&got)
        );
        w.wait_metric(
            &format!("warpd_refused_total{{listener=\"{listener}\",reason=\"tls_handshake\"}}"),
            1.0,
        )
        .await;
        // a handshake that never comes: closed by server.tls_handshake_timeout_ms (1.5 s)
        let mut stalled = TcpStream::connect(addr).await.unwrap();
        let (got, took) = read_until_closed(&mut stalled, Duration::from_secs(10)).await;
        assert!(got.is_empty(), "{listener}: {got:?}");
        assert!(
            took >= Duration::from_millis(1000) && took < Duration::from_secs(8),
            "{listener}: stalled handshake closed after {took:?}"
        );
        w.wait_metric(
            &format!(
                "warpd_refused_total{{listener=\"{listener}\",reason=\"tls_handshake_timeout\"}}"
            ),
            1.0,
        )
        .await;
    }
    // the TLS clients were not hurt
    assert_eq!(w.dip(Q).await["action"], "route");
    assert_eq!(w.get_json("/v1/openapi.json").await.0, 200);
    w.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stalled_handshakes_count_against_the_per_source_connection_cap() {
    let pg = TestPg::start();
    drop(support::demo::demo_db(&pg).await);
    let certs = TestCerts::new("caps");
    let w = Warpd::builder(&pg)
        .kamailio_tls(&certs)
        .env("WARPD_SERVER__MAX_CONNECTIONS_PER_SOURCE", 3)
        .env("WARPD_SERVER__TLS_HANDSHAKE_TIMEOUT_MS", 60_000)
        .start()
        .await;
    // the harness's client holds at most one pooled connection; stall the rest of the cap
    let mut stalled = Vec::new();
    for _ in 0..3 {
        stalled.push(TcpStream::connect(w.addr).await.unwrap());
    }
    // one more from this source is closed at once, though none of them started a handshake
    support::eventually(
        "a connection over the per-source cap refused",
        Duration::from_secs(10),
        || async {
            let mut extra = TcpStream::connect(w.addr).await.unwrap();
            let mut buf = [0u8; 16];
            matches!(
                tokio::time::timeout(Duration::from_secs(1), extra.read(&mut buf)).await,
                Ok(Ok(0) | Err(_))
            )
        },
    )
    .await;
    w.wait_metric(
        "warpd_refused_total{listener=\"kamailio\",reason=\"connections_per_source\"}",
        1.0,
    )
    .await;
    drop(stalled);
    support::eventually(
        "dips again once they closed",
        Duration::from_secs(10),
        || async {
            w.http
                .get(w.url(&format!("/v1/route?{Q}")))
                .send()
                .await
                .is_ok_and(|r| r.status() == 200)
        },
    )
    .await;
    w.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kamailio_surface_with_client_certificates_refuses_clients_without_one() {
    let pg = TestPg::start();
    drop(support::demo::demo_db(&pg).await);
    let certs = TestCerts::new("mtls");
    let w = Warpd::builder(&pg).kamailio_mtls(&certs).start().await;
    assert_eq!(w.dip(Q).await["action"], "route");
    let other = TestCerts::new("stranger");
    let no_cert =
        support::Api::with_admin(w.addr, w.admin_addr).with_tls(true, false, &certs.ca_pem(), None);
    let wrong_ca = support::Api::with_admin(w.addr, w.admin_addr).with_tls(
        true,
        false,
        &certs.ca_pem(),
        Some(&other.client_identity_pem()),
    );
    for (case, api) in [("no certificate", no_cert), ("foreign CA", wrong_ca)] {
        let r = api
            .http
            .get(api.url(&format!("/v1/route?{Q}")))
            .send()
            .await;
        assert!(r.is_err(), "{case}: answered {:?}", r.map(|r| r.status()));
    }
    w.wait_metric(
        "warpd_refused_total{listener=\"kamailio\",reason=\"tls_handshake\"}",
        2.0,
    )
    .await;
    // the admin surface is plain here and unaffected
    assert_eq!(w.get_json("/v1/openapi.json").await.0, 200);
    w.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_reloads_listener_certificates_and_a_bad_file_keeps_the_current_one() {
    let pg = TestPg::start();
    drop(support::demo::demo_db(&pg).await);
    let mut certs = TestCerts::new("reload");
    let ca = certs.ca_pem();
    let first = certs.server_der.clone();
    let p = Warpd::builder(&pg)
        .kamailio_tls(&certs)
        .admin_tls(&certs)
        .spawn_process()
        .await;
    for addr in [p.addr, p.admin_addr] {
        assert_eq!(presented_cert(addr, &ca).await.unwrap(), first);
    }
    // renewal: new files at the same paths, then SIGHUP
    let second = certs.renew_server();
    assert_ne!(second, first);
    p.hangup();
    for addr in [p.addr, p.admin_addr] {
        support::eventually(
            "the renewed certificate presented",
            Duration::from_secs(10),
            || {
                let (ca, second) = (ca.clone(), second.clone());
                async move { presented_cert(addr, &ca).await.is_ok_and(|c| c == second) }
            },
        )
        .await;
    }
    p.wait_metric(
        "warpd_tls_reloads_total{listener=\"kamailio\",result=\"ok\"}",
        1.0,
    )
    .await;

    // bad files: each keeps the renewed certificate, is counted, and leaks no key material
    let (cert, key) = (certs.path("server.pem"), certs.path("server.key"));
    let good_cert = std::fs::read(&cert).unwrap();
    let good_key = std::fs::read(&key).unwrap();
    let client_key = std::fs::read(certs.path("client.key")).unwrap();
    type Break = Box<dyn Fn()>;
    let cases: Vec<(&str, Break)> = vec![
        ("key not PEM", {
            let key = key.clone();
            Box::new(move || write_private(&key, b"not a key"))
        }),
        ("key of another certificate", {
            let (key, client_key) = (key.clone(), client_key.clone());
            Box::new(move || write_private(&key, &client_key))
        }),
        ("key readable by others", {
            let key = key.clone();
            Box::new(move || {
                use std::os::unix::fs::PermissionsExt;
                std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap()
            })
        }),
        ("certificate file empty", {
            let cert = cert.clone();
            Box::new(move || std::fs::write(&cert, b"").unwrap())
        }),
        ("certificate file missing", {
            let cert = cert.clone();
            Box::new(move || std::fs::remove_file(&cert).unwrap())
        }),
    ];
    for (i, (case, break_it)) in cases.iter().enumerate() {
        break_it();
        p.hangup();
        p.wait_metric(
            "warpd_tls_reloads_total{listener=\"kamailio\",result=\"error\"}",
            (i + 1) as f64,
        )
        .await;
        for addr in [p.addr, p.admin_addr] {
            assert_eq!(
                presented_cert(addr, &ca).await.as_ref(),
                Ok(&second),
                "{case}: the current certificate stays"
            );
        }
        assert_eq!(p.dip(Q).await["action"], "route", "{case}");
        std::fs::write(&cert, &good_cert).unwrap();
        write_private(&key, &good_key);
    }
    let log = p.log();
    assert!(log.contains("server.kamailio_tls.key_file"), "{log}");
    assert!(log.contains("server.kamailio_tls.cert_file"), "{log}");
    assert!(log.contains("does not belong to the certificate"), "{log}");
    // no key material: no line of either key's base64 body appears
    for pem in [&good_key, &client_key] {
        for line in String::from_utf8_lossy(pem)
            .lines()
            .filter(|l| !l.starts_with("-----"))
        {
            assert!(!log.contains(line), "key material in the log: {log}");
        }
    }
}

#[test]
fn bad_listener_tls_files_stop_the_start_naming_key_and_file() {
    let certs = TestCerts::new("start");
    let rt = tokio::runtime::Runtime::new().unwrap();
    let missing = certs.path("nope.pem");
    let cases: Vec<(&str, String, &str)> = vec![
        (
            "missing certificate",
            format!(
                "[server.admin_tls]\ncert_file = \"{}\"\nkey_file = \"{}\"\n",
                missing.display(),
                certs.path("server.key").display()
            ),
            "server.admin_tls.cert_file",
        ),
        (
            "key does not match",
            format!(
                "[server.kamailio_tls]\ncert_file = \"{}\"\nkey_file = \"{}\"\n",
                certs.path("server.pem").display(),
                certs.path("client.key").display()
            ),
            "server.kamailio_tls.key_file",
        ),
        (
            "client CA is not PEM",
            format!(
                "[server.kamailio_tls]\ncert_file = \"{}\"\nkey_file = \"{}\"\nclient_ca_file = \"{}\"\n",
                certs.path("server.pem").display(),
                certs.path("server.key").display(),
                certs.path("server.key").display()
            ),
            "server.kamailio_tls.client_ca_file",
        ),
    ];
    for (case, toml, want) in cases {
        let config = warpd::config::Config::from_str_with_env(
            &format!("{}\n{toml}", support::warpd::EXAMPLE),
            vec![],
        )
        .unwrap();
        let e = rt.block_on(async {
            let listeners = warpd::api::Listeners {
                kamailio: tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap(),
                admin: tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap(),
                kamailio_resp: Vec::new(),
            };
            // the database is never reached: the files are checked first
            warpd::server::run(
                config,
                listeners,
                tokio_util::sync::CancellationToken::new(),
            )
            .await
            .unwrap_err()
            .to_string()
        });
        assert!(e.contains(want), "{case}: {e}");
    }
}

/// A call through warpd: dip, attempt, answer, end; the CDR must reach the database.
async fn one_cdr(w: &Warpd, client: &tokio_postgres::Client, call_id: &str) {
    let a = w.dip(&format!("{Q}&call_id={call_id}")).await;
    assert_eq!(a["action"], "route", "{a}");
    let route_id = a["routes"][0]["route_id"].clone();
    let t0 = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    w.rpc_ok(
        "call.attempt",
        json!({"call_id":call_id,"attempt":1,"route_id":route_id,"sip_code":200,"ts":t0}),
    )
    .await;
    w.rpc_ok(
        "call.answer",
        json!({"call_id":call_id,"attempt":1,"route_id":route_id,"ts":t0}),
    )
    .await;
    w.rpc_ok("call.end", json!({"call_id":call_id,"ts":t0 + 30.0}))
        .await;
    support::eventually("the CDR written", Duration::from_secs(15), || async {
        client
            .query_one("SELECT count(*) FROM cdrs WHERE call_id = $1", &[&call_id])
            .await
            .map(|r| r.get::<_, i64>(0) == 1)
            .unwrap_or(false)
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_over_tls_honours_sslmode_and_sslrootcert() {
    let pg_certs = TestCerts::new("postgres");
    let pg = TestPg::start_tls(&pg_certs);
    // the cluster refuses unencrypted connections over TCP
    let plain = tokio_postgres::connect(&pg.url(), tokio_postgres::NoTls).await;
    assert!(plain.is_err(), "a NoTls connection was accepted");
    let e = match warpd::db::connect(&format!("{}?sslmode=disable", pg.url())).await {
        Ok(_) => panic!("sslmode=disable accepted by a hostssl-only server"),
        Err(e) => e.to_string(),
    };
    assert!(e.contains("no encryption") || e.contains("pg_hba"), "{e}");
    // warpd's default (prefer) encrypts when the server offers it
    let client = support::demo::demo_db(&pg).await;
    let ssl: bool = client
        .query_one(
            "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert!(ssl, "the default sslmode did not encrypt");

    let ca = pg_certs.path("ca.pem");
    let require = format!("{}?sslmode=require", pg.url());
    let verify_full = format!(
        "{}?sslmode=verify-full&sslrootcert={}",
        pg.url(),
        ca.display()
    );
    for url in [&require, &verify_full] {
        let w = Warpd::builder(&pg)
            .env("WARPD_DATABASE__URL", url)
            .start()
            .await;
        // every connection warpd opens is encrypted: loader, pool, LISTEN, call writer
        one_cdr(&w, &client, &format!("tls-{}", url.len())).await;
        let generation = w.metric("warpd_snapshot_generation").await.unwrap();
        client
            .batch_execute("NOTIFY warpd_routing, 'full reload'")
            .await
            .unwrap();
        w.wait_metric("warpd_snapshot_generation", generation + 1.0)
            .await;
        let (tcp, unencrypted): (i64, i64) = client
            .query_one(
                "SELECT count(*), count(*) FILTER (WHERE NOT s.ssl) FROM pg_stat_ssl s \
                 JOIN pg_stat_activity a USING (pid) WHERE a.client_addr IS NOT NULL",
                &[],
            )
            .await
            .map(|r| (r.get(0), r.get(1)))
            .unwrap();
        assert!(tcp >= 3, "warpd's connections are open: {tcp}");
        assert_eq!(unencrypted, 0, "{url}");
        w.stop().await;
    }

    // a CA that did not issue the server's certificate: warpd does not start, and says why
    let stranger = TestCerts::new("stranger");
    for mode in ["verify-full", "verify-ca", "require"] {
        let url = format!(
            "{}?sslmode={mode}&sslrootcert={}",
            pg.url(),
            stranger.path("ca.pem").display()
        );
        let w = Warpd::builder(&pg)
            .env("WARPD_DATABASE__URL", &url)
            .no_wait_ready()
            .start()
            .await;
        let e = match w.join().await {
            Ok(Err(e)) => e.to_string(),
            other => panic!("{mode}: started with a foreign CA: {other:?}"),
        };
        assert!(
            e.contains("cannot connect to the database") && e.contains("certificate"),
            "{mode}: {e}"
        );
    }
}
