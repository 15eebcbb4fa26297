//! The Kamailio surface over RESP2 (issue 18) against the demo network: a raw TCP client speaks
//! the protocol as Kamailio's ndb_redis (hiredis) does. Authentication (`AUTH <secret>`, the
//! allow-list), the dip (`LCR`) answering the same routes in the same order as `GET /v1/route`,
//! a reject, 911 at the customer's limits, pipelining, and hostile input (an error reply, the
//! connection closed, the listener still serving).

use std::net::SocketAddr;
use std::time::Duration;

use serde_json::Value as Json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use warpd_resp::{Limits, Value};

use crate::support::{self, TestPg, Warpd};

const SECRET: &str = "resp-secret-0123456789";

/// A RESP client over one TCP connection.
struct Client {
    s: TcpStream,
    buf: Vec<u8>,
}

impl Client {
    async fn connect(addr: SocketAddr) -> Client {
        Client {
            s: TcpStream::connect(addr).await.unwrap(),
            buf: Vec::new(),
        }
    }

    async fn send(&mut self, args: &[&str]) {
        let v = Value::Array(args.iter().map(|a| Value::bulk(a.as_bytes())).collect());
        self.s.write_all(&v.to_bytes()).await.unwrap();
    }

    /// The next reply; None when the server closed the connection first.
    async fn reply(&mut self) -> Option<Value> {
        let limits = Limits {
            max_array: 1024,
            ..Limits::default()
        };
        loop {
            if let Some((v, n)) = warpd_resp::decode(&self.buf, &limits).unwrap() {
                self.buf.drain(..n);
                return Some(v);
            }
            let mut chunk = [0u8; 4096];
            let n = tokio::time::timeout(Duration::from_secs(10), self.s.read(&mut chunk))
                .await
                .expect("a reply within 10 s")
                .unwrap_or(0);
            if n == 0 {
                return None;
            }
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }

    async fn cmd(&mut self, args: &[&str]) -> Value {
        self.send(args).await;
        self.reply()
            .await
            .expect("a reply, not a closed connection")
    }

    /// True when the server closes the connection (within 10 s) with nothing more to read.
    async fn closed(&mut self) -> bool {
        self.reply().await.is_none()
    }
}

fn error_text(v: &Value) -> &str {
    match v {
        Value::Error(e) => e,
        other => panic!("expected an error reply, got {other:?}"),
    }
}

fn items(v: &Value) -> &[Value] {
    match v {
        Value::Array(a) => a,
        other => panic!("expected an array, got {other:?}"),
    }
}

fn text(v: &Value) -> String {
    match v {
        Value::Bulk(b) => String::from_utf8(b.clone()).unwrap(),
        other => panic!("expected a bulk string, got {other:?}"),
    }
}

fn int(v: &Value) -> i64 {
    match v {
        Value::Integer(i) => *i,
        other => panic!("expected an integer, got {other:?}"),
    }
}

/// (route_id, vendor, uri) per attempt of an `LCR` answer (README "Wire contract").
fn resp_attempts(a: &[Value]) -> Vec<(String, String, String)> {
    let n = int(&a[7]) as usize;
    // the attempts, then max_duration_s (README "Dip over RESP"); the four STIR/SHAKEN fields
    // follow only when LCR was given its identity argument (7th), which these dips are not
    assert_eq!(a.len(), 8 + 3 * n + 1);
    (0..n)
        .map(|i| {
            (
                text(&a[8 + 3 * i]),
                text(&a[9 + 3 * i]),
                text(&a[10 + 3 * i]),
            )
        })
        .collect()
}

/// The same from the JSON answer, as kamailio.cfg's HTTP path walks it.
fn json_attempts(j: &Json) -> Vec<(String, String, String)> {
    let mut out = Vec::new();
    for r in j["routes"].as_array().unwrap() {
        for u in r["uris"].as_array().unwrap() {
            out.push((
                r["route_id"].as_str().unwrap().to_string(),
                r["vendor"].as_str().unwrap().to_string(),
                u.as_str().unwrap().to_string(),
            ));
        }
    }
    out
}

/// The demo network (without customer 10001's limits) and warpd with a RESP listener and the
/// shared secret.
async fn stack(extra: &[(&str, &str)]) -> (TestPg, tokio_postgres::Client, Warpd) {
    let pg = TestPg::start();
    let client = support::demo::demo_db(&pg).await;
    client
        .execute(
            "UPDATE customers SET max_concurrent_calls = NULL, max_cps = NULL",
            &[],
        )
        .await
        .unwrap();
    let w = Warpd::builder(&pg)
        .env("WARPD_SERVER__KAMAILIO_SECRET", SECRET)
        .env("WARPD_CALLS__LIMITS_REFRESH_MS", "100")
        .envs(extra.iter().copied())
        .resp()
        .await
        .start()
        .await;
    (pg, client, w)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resp_dip_needs_auth_and_answers_the_http_routes() {
    let (_pg, _client, w) = stack(&[]).await;
    let addr = w.resp_addr.unwrap();

    // not authenticated: PING works (ndb_redis's connect check), everything else is NOAUTH
    let mut c = Client::connect(addr).await;
    assert_eq!(c.cmd(&["PING"]).await, Value::Simple("PONG".into()));
    for cmd in [
        &["SELECT", "0"][..],
        &["LCR", "10001", "+12125550100", "+13125550100"],
        &["ECHO", "x"],
    ] {
        let r = c.cmd(cmd).await;
        assert!(error_text(&r).starts_with("NOAUTH"), "{cmd:?}: {r:?}");
    }
    // a wrong secret: refused and closed
    let r = c.cmd(&["AUTH", "wrong-secret-0123456789"]).await;
    assert!(error_text(&r).starts_with("WRONGPASS"), "{r:?}");
    assert!(c.closed().await, "closed after a wrong secret");

    // the right one, as ndb_redis sends it (and the Redis 6 form with a user name)
    let mut c = Client::connect(addr).await;
    assert_eq!(c.cmd(&["AUTH", SECRET]).await, Value::Simple("OK".into()));
    assert_eq!(
        c.cmd(&["AUTH", "kamailio", SECRET]).await,
        Value::Simple("OK".into())
    );
    assert_eq!(c.cmd(&["SELECT", "0"]).await, Value::Simple("OK".into()));
    assert!(error_text(&c.cmd(&["SELECT", "1"]).await).starts_with("ERR"));
    assert_eq!(c.cmd(&["ECHO", "hi"]).await, Value::bulk("hi"));

    // the dip: the same routes in the same order as GET /v1/route
    let (status, http) = w
        .get_json("/v1/route?ban=10001&ani=%2B12125550100&dnis=%2B13125550100")
        .await;
    assert_eq!(status, 200, "{http}");
    let r = c
        .cmd(&["LCR", "10001", "+12125550100", "+13125550100"])
        .await;
    let a = items(&r);
    assert_eq!(text(&a[0]), "route");
    assert_eq!(int(&a[1]), 200);
    assert_eq!(text(&a[3]), http["zone"].as_str().unwrap());
    let attempts = resp_attempts(a);
    assert!(!attempts.is_empty());
    assert_eq!(attempts, json_attempts(&http));
    // STIR/SHAKEN (issue 20): with LCR's identity argument (kamailio.cfg WITH_STIR) the
    // answer's attestation, origid and TNs follow max_duration_s; the rest is the same array
    let r = c
        .cmd(&[
            "LCR",
            "10001",
            "+12125550100",
            "+13125550100",
            "",
            "-",
            "-",
            "none",
        ])
        .await;
    let signed = items(&r);
    let n = attempts.len();
    assert_eq!(signed.len(), 8 + 3 * n + 5, "{signed:?}");
    let tail = 8 + 3 * n + 1;
    assert_eq!(&signed[..tail], a, "the same array up to max_duration_s");
    let stir: Vec<String> = (9..13).map(|i| text(&signed[i + 3 * n])).collect();
    assert_eq!(
        stir,
        ["attest", "origid", "orig", "dest"].map(|k| http["stir"][k].as_str().unwrap().to_string()),
        "{http}"
    );
    // the demo network's [[stir]]: +12125550100 is in ACME's TN range
    assert_eq!(stir[0], "A", "{http}");

    // a reject: blocked prefix 1900
    let r = c
        .cmd(&["LCR", "10001", "+12125550100", "+19005550100"])
        .await;
    let a = items(&r);
    assert_eq!(
        (text(&a[0]), int(&a[1])),
        ("reject".to_string(), 403),
        "{a:?}"
    );
    assert!(!text(&a[2]).is_empty(), "a reason");
    assert_eq!((a.len(), int(&a[7])), (8, 0));

    // unknown customer by source address (the form kamailio.cfg sends): 403
    let r = c
        .cmd(&[
            "LCR",
            "192.0.2.77",
            "+12125550100",
            "+13125550100",
            "cid-unknown",
        ])
        .await;
    assert_eq!(int(&items(&r)[1]), 403, "{r:?}");

    // a bad argument: an error naming the field, the connection stays usable
    let r = c
        .cmd(&[
            "LCR",
            "10001",
            "+12125550100",
            "+13125550100",
            "",
            "",
            "lots",
        ])
        .await;
    assert!(error_text(&r).contains("max_results"), "{r:?}");
    let r = c.cmd(&["NOSUCH", "x"]).await;
    assert!(error_text(&r).starts_with("ERR unknown command"), "{r:?}");

    // pipelined: three commands in one write, three answers in order
    let mut batch = Vec::new();
    for args in [
        &["PING"][..],
        &["LCR", "10001", "+12125550100", "+13125550100"],
        &["ECHO", "last"],
    ] {
        Value::Array(args.iter().map(|a| Value::bulk(a.as_bytes())).collect()).encode(&mut batch);
    }
    c.s.write_all(&batch).await.unwrap();
    assert_eq!(c.reply().await, Some(Value::Simple("PONG".into())));
    assert_eq!(resp_attempts(items(&c.reply().await.unwrap())), attempts);
    assert_eq!(c.reply().await, Some(Value::bulk("last")));

    // inline commands (telnet, nc) work too; QUIT closes
    c.s.write_all(b"PING\r\n").await.unwrap();
    assert_eq!(c.reply().await, Some(Value::Simple("PONG".into())));
    assert_eq!(c.cmd(&["QUIT"]).await, Value::Simple("OK".into()));
    assert!(c.closed().await);

    // the RESP dips are counted under their own surface
    let metrics = w.metrics().await;
    assert!(
        metrics.contains("surface=\"resp\""),
        "dip latency of the resp surface"
    );
    w.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resp_listener_obeys_the_allow_list() {
    let pg = TestPg::start();
    let _client = support::demo::demo_db(&pg).await;
    let w = Warpd::builder(&pg)
        .config(|c| c.server.kamailio_allow = vec!["192.0.2.0/24".parse().unwrap()])
        .resp()
        .await
        .start()
        .await;
    let mut c = Client::connect(w.resp_addr.unwrap()).await;
    let r = c.reply().await.expect("an error reply before closing");
    assert!(error_text(&r).starts_with("NOPERM"), "{r:?}");
    assert!(c.closed().await);
    w.stop().await;
}

/// A table of dips over both transports: every header field and every attempt of the RESP
/// array equals what the JSON answer of `GET /v1/route` says (route or reject alike).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resp_and_http_answer_a_table_of_dips_alike() {
    let (_pg, client, w) = stack(&[]).await;
    let mut c = Client::connect(w.resp_addr.unwrap()).await;
    assert_eq!(c.cmd(&["AUTH", SECRET]).await, Value::Simple("OK".into()));
    let enc = |v: &str| v.replace('+', "%2B");
    let table: [(&str, &str, &str, &str); 9] = [
        ("10001", "+12125550100", "+13125550100", ""),
        ("10001", "+12125550100", "+12125550199", ""),
        ("10001", "+12125550100", "+442071234567", ""),
        ("10001", "+12125550100", "+18005550100", ""),
        ("10001", "+12125550100", "911", ""),
        ("10001", "+12125550100", "+19005550100", ""),
        ("10001", "+12125550100", "12", ""),
        ("99999", "+12125550100", "+13125550100", ""),
        ("10001", "+12125550100", "+13125550100", "2125550000"),
    ];
    for (ban, ani, dnis, lrn) in table {
        let mut q = format!("ban={ban}&ani={}&dnis={}", enc(ani), enc(dnis));
        if !lrn.is_empty() {
            q.push_str(&format!("&lrn={lrn}"));
        }
        let (status, j) = w.get_json(&format!("/v1/route?{q}")).await;
        assert_eq!(status, 200, "{q}: {j}");
        let r = c.cmd(&["LCR", ban, ani, dnis, "", lrn]).await;
        let a = items(&r);
        let s = |k: &str| j[k].as_str().unwrap_or("").to_string();
        assert_eq!(text(&a[0]), s("action"), "{q}");
        if s("action") == "reject" {
            assert_eq!(int(&a[1]) as u64, j["sip_code"].as_u64().unwrap(), "{q}");
            assert_eq!(text(&a[2]), s("reason"), "{q}");
            assert_eq!((a.len(), int(&a[7])), (8, 0), "{q}");
        } else {
            assert_eq!(int(&a[1]), 200, "{q}");
            assert_eq!(
                [text(&a[3]), text(&a[4]), text(&a[5]), text(&a[6])],
                [s("zone"), s("lrn"), s("partition"), s("emergency_callback")],
                "{q}"
            );
            assert_eq!(resp_attempts(a), json_attempts(&j), "{q}");
        }
    }
    // a rejected dip with a call_id over RESP writes the rejected-call CDR, as over HTTP
    let r = c
        .cmd(&["LCR", "10001", "+12125550100", "+19005550100", "resp-rej-1"])
        .await;
    assert_eq!(int(&items(&r)[1]), 403, "{r:?}");
    let row = support::eventually("the rejected CDR", support::DEADLINE, || async {
        client
            .query_opt(
                "SELECT disposition, sip_code, cause FROM cdrs WHERE call_id = 'resp-rej-1'",
                &[],
            )
            .await
            .unwrap()
            .ok_or("no CDR yet")
    })
    .await;
    assert_eq!(row.get::<_, String>(0), "rejected");
    assert_eq!(row.get::<_, Option<i32>>(1), Some(403));
    assert_eq!(
        row.get::<_, Option<String>>(2).as_deref(),
        Some("blocked prefix 1900")
    );
    w.stop().await;
}

/// `server.kamailio_resp_require_secret = false`: with a secret set, RESP connections need no
/// `AUTH` (ndb_redis without `pass=`); the HTTP surface still needs the secret.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resp_without_auth_when_the_secret_is_not_required_there() {
    let (_pg, _client, w) = stack(&[("WARPD_SERVER__KAMAILIO_RESP_REQUIRE_SECRET", "false")]).await;
    let mut c = Client::connect(w.resp_addr.unwrap()).await;
    let r = c
        .cmd(&["LCR", "10001", "+12125550100", "+13125550100"])
        .await;
    assert_eq!(text(&items(&r)[0]), "route", "{r:?}");
    // a secret presented is still checked
    let r = c.cmd(&["AUTH", "wrong-secret-0123456789"]).await;
    assert!(error_text(&r).starts_with("WRONGPASS"), "{r:?}");
    let plain = reqwest::Client::new()
        .get(format!("http://{}/v1/route?ban=10001&ani=1&dnis=2", w.addr))
        .send()
        .await
        .unwrap();
    assert_eq!(plain.status(), 401, "HTTP still needs the secret");
    w.stop().await;
}

/// `server.kamailio_resp_socket`: a unix socket with the configured permissions, a stale socket
/// file replaced, the same commands (and the same AUTH rule) as over TCP, the file removed at
/// shutdown.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resp_over_a_unix_socket() {
    use std::os::unix::fs::PermissionsExt;
    let pg = TestPg::start();
    let _client = support::demo::demo_db(&pg).await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("resp.sock");
    // a stale socket file left by a killed warpd
    drop(std::os::unix::net::UnixListener::bind(&path).unwrap());
    let w = Warpd::builder(&pg)
        .env("WARPD_SERVER__KAMAILIO_SECRET", SECRET)
        .resp_unix(&path, 0o600)
        .start()
        .await;
    let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    let mut s = tokio::net::UnixStream::connect(&path).await.unwrap();
    let mut out = Vec::new();
    for args in [
        &["LCR", "10001", "+12125550100", "+13125550100"][..],
        &["AUTH", SECRET],
        &["LCR", "10001", "+12125550100", "+13125550100"],
    ] {
        Value::Array(args.iter().map(|a| Value::bulk(a.as_bytes())).collect()).encode(&mut out);
    }
    s.write_all(&out).await.unwrap();
    let mut buf = Vec::new();
    let mut replies = Vec::new();
    while replies.len() < 3 {
        let mut chunk = [0u8; 4096];
        let n = tokio::time::timeout(Duration::from_secs(10), s.read(&mut chunk))
            .await
            .expect("replies within 10 s")
            .unwrap();
        assert!(n > 0, "closed early: {replies:?}");
        buf.extend_from_slice(&chunk[..n]);
        let limits = Limits {
            max_array: 1024,
            ..Limits::default()
        };
        while let Some((v, used)) = warpd_resp::decode(&buf, &limits).unwrap() {
            buf.drain(..used);
            replies.push(v);
        }
    }
    assert!(error_text(&replies[0]).starts_with("NOAUTH"), "{replies:?}");
    assert_eq!(replies[1], Value::Simple("OK".into()));
    assert_eq!(text(&items(&replies[2])[0]), "route", "{replies:?}");
    w.stop().await;
    assert!(!path.exists(), "socket file removed at shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resp_911_is_routed_at_the_customers_limits() {
    let (_pg, client, w) = stack(&[]).await;
    client
        .batch_execute(
            "UPDATE customers SET max_concurrent_calls = 1, max_cps = 1 WHERE ban = '10001';
             UPDATE routes SET capacity = 1 WHERE name = 'e911';",
        )
        .await
        .unwrap();
    let addr = w.resp_addr.unwrap();
    // wait for the limits (refreshed every 100 ms): ordinary calls are refused
    let mut n = 0;
    support::eventually("limits in force", support::DEADLINE, || {
        n += 1;
        let id = format!("busy-{n}");
        async move {
            let mut c = Client::connect(addr).await;
            assert_eq!(c.cmd(&["AUTH", SECRET]).await, Value::Simple("OK".into()));
            let r = c
                .cmd(&["LCR", "10001", "+12125550100", "+13125550100", &id])
                .await;
            let a = items(&r);
            if text(&a[0]) == "reject" && text(&a[2]).contains("limit") {
                Ok(())
            } else {
                Err(format!("{a:?}"))
            }
        }
    })
    .await;
    let mut c = Client::connect(addr).await;
    assert_eq!(c.cmd(&["AUTH", SECRET]).await, Value::Simple("OK".into()));
    for i in 0..3 {
        let id = format!("e911-{i}");
        let r = c.cmd(&["LCR", "10001", "+12125550100", "911", &id]).await;
        let a = items(&r);
        assert_eq!(text(&a[0]), "route", "911 #{i} at the limits: {a:?}");
        assert_eq!(text(&a[3]), "emergency", "{a:?}");
        assert_eq!(text(&a[8]), "e911", "{a:?}");
        assert!(text(&a[10]).starts_with("sip:911@"), "{a:?}");
    }
    w.stop().await;
}

/// Framing garbage and oversized input: `-ERR Protocol error`, the connection closed, and the
/// listener still serving (no panic took it down).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resp_garbage_and_oversized_input_get_an_error_and_a_close() {
    let (_pg, _client, w) = stack(&[]).await;
    let addr = w.resp_addr.unwrap();
    let long_line = vec![b'A'; 5000];
    let big_bulk = b"*1\r\n$100000\r\n".to_vec();
    let table: Vec<(&str, Vec<u8>)> = vec![
        ("array length not a number", b"*abc\r\n".to_vec()),
        ("array over the limit", b"*100000\r\n".to_vec()),
        ("negative array length", b"*-5\r\n".to_vec()),
        ("bulk over the limit", big_bulk),
        ("integer instead of a bulk", b"*1\r\n:1\r\n".to_vec()),
        ("bulk without its CRLF", b"*1\r\n$2\r\nabXY".to_vec()),
        ("inline line over the limit, no newline", long_line),
        ("binary junk with a bad length", b"*\x00\xff\r\n".to_vec()),
    ];
    for (what, bytes) in table {
        let mut c = Client::connect(addr).await;
        c.s.write_all(&bytes).await.unwrap();
        let r = c
            .reply()
            .await
            .unwrap_or_else(|| panic!("{what}: closed without a reply"));
        assert!(
            error_text(&r).starts_with("ERR Protocol error"),
            "{what}: {r:?}"
        );
        assert!(c.closed().await, "{what}: connection closed");
    }
    // still serving
    let mut c = Client::connect(addr).await;
    assert_eq!(c.cmd(&["PING"]).await, Value::Simple("PONG".into()));
    w.stop().await;
}

/// The RESP listener runs the HTTP listeners' accept loop: connections from one source over
/// `server.max_connections_per_source` are closed at once and counted, and a slot frees when
/// one closes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resp_connections_per_source_are_capped() {
    let pg = TestPg::start();
    let _client = support::demo::demo_db(&pg).await;
    let w = Warpd::builder(&pg)
        .config(|c| c.server.max_connections_per_source = 2)
        .resp()
        .await
        .start()
        .await;
    let addr = w.resp_addr.unwrap();
    let mut open = Vec::new();
    for _ in 0..2 {
        let mut c = Client::connect(addr).await;
        assert_eq!(c.cmd(&["PING"]).await, Value::Simple("PONG".into()));
        open.push(c);
    }
    let mut third = Client::connect(addr).await;
    third.send(&["PING"]).await;
    assert!(
        third.closed().await,
        "a third connection from 127.0.0.1 is closed"
    );
    let series =
        "warpd_refused_total{listener=\"kamailio_resp\",reason=\"connections_per_source\"}";
    assert_eq!(w.api.metric(series).await, Some(1.0));
    drop(open.pop());
    support::eventually(
        "a RESP slot is free again",
        Duration::from_secs(5),
        || async {
            let mut c = Client::connect(addr).await;
            c.send(&["PING"]).await;
            matches!(c.reply().await, Some(Value::Simple(p)) if p == "PONG")
        },
    )
    .await;
    drop(open);
    w.stop().await;
}
