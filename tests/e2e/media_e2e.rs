//! Media control end to end through `server::run`: PostgreSQL (throwaway cluster) with the demo
//! network and its `media_policies` rows, a real rtpengine-daemon (ports 30300-30349), a dip with a
//! call-id over HTTP, then Kamailio-style ng through warpd's proxy socket: the customer's
//! recording policy from the database applies, `media.*` JSON-RPC methods work, a policy
//! change in the database (NOTIFY warpd_routing) applies to the next call, and RTP + RTCP sent
//! through RTPEngine for a call leave the call's MOS, jitter and loss in its CDR.

use crate::support;

use std::time::{Duration, Instant};

use crate::support::media::{audio_sdp, bs, kamailio_offer, RtpEngine};
use serde_json::{json, Value};
use tokio::net::UdpSocket;
use tokio_util::sync::CancellationToken;
use warpd::config::Config;
use warpd::media::codec::{parse_datagram, Dict};

async fn rpc(http: &reqwest::Client, base: &str, method: &str, params: Value) -> Value {
    http.post(format!("{base}/rpc"))
        .json(&json!({"jsonrpc":"2.0","id":1,"method":method,"params":params}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

/// `GET /v1/route?{query}` as JSON.
async fn dip(http: &reqwest::Client, base: &str, query: &str) -> Value {
    support::json(http.get(format!("{base}/v1/route?{query}"))).await
}

/// Ends `call_id` through the proxy (ng `delete` with `cookie`) and checks the node said ok.
async fn delete_call(sock: &UdpSocket, proxy: std::net::SocketAddr, cookie: &str, call_id: &str) {
    let del = format!(
        "{cookie} d7:command6:delete7:call-id{}8:from-tag2:fte",
        bs(call_id)
    );
    assert_eq!(
        ng(sock, proxy, del.as_bytes()).await.str("result"),
        Some("ok"),
        "delete of {call_id}"
    );
}

async fn ng(sock: &UdpSocket, to: std::net::SocketAddr, data: &[u8]) -> Dict {
    sock.send_to(data, to).await.unwrap();
    let mut buf = vec![0u8; 65535];
    let (n, _) = tokio::time::timeout(Duration::from_secs(5), sock.recv_from(&mut buf))
        .await
        .expect("ng answer within 5 s")
        .unwrap();
    parse_datagram(&buf[..n]).unwrap().1
}

async fn metric(http: &reqwest::Client, base: &str, name: &str) -> Option<f64> {
    let text = http
        .get(format!("{base}/metrics"))
        .send()
        .await
        .ok()?
        .text()
        .await
        .ok()?;
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
}

async fn wait_metric(http: &reqwest::Client, base: &str, name: &str, at_least: f64) {
    let t = Instant::now();
    while metric(http, base, name).await.unwrap_or(0.0) < at_least {
        assert!(
            t.elapsed() < Duration::from_secs(15),
            "{name} never reached {at_least}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// offer → answer → delete through the proxy for `call_id`; returns the offer's answer.
async fn call(sock: &UdpSocket, proxy: std::net::SocketAddr, call_id: &str) -> Dict {
    let o = ng(
        sock,
        proxy,
        &kamailio_offer(
            &format!("o-{call_id}"),
            call_id,
            "ft",
            &audio_sdp(7000),
            &[],
        ),
    )
    .await;
    assert_eq!(o.str("result"), Some("ok"), "{o:?}");
    let a = format!(
        "a-{call_id} d7:command6:answer7:call-id{}8:from-tag2:ft6:to-tag2:tt3:sdp{}e",
        bs(call_id),
        bs(&audio_sdp(7002))
    );
    assert_eq!(
        ng(sock, proxy, a.as_bytes()).await.str("result"),
        Some("ok")
    );
    o
}

/// An RTP socket on an even port with its RTCP socket on the next one (the SDP's m= port + 1).
fn rtp_pair() -> (std::net::UdpSocket, std::net::UdpSocket, u16) {
    for _ in 0..200 {
        let rtp = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let port = rtp.local_addr().unwrap().port();
        if port % 2 == 1 || port == u16::MAX {
            continue;
        }
        if let Ok(rtcp) = std::net::UdpSocket::bind(("127.0.0.1", port + 1)) {
            rtp.set_nonblocking(true).unwrap();
            rtcp.set_nonblocking(true).unwrap();
            return (rtp, rtcp, port);
        }
    }
    panic!("no free RTP/RTCP port pair");
}

fn sdp_port(sdp: &str) -> u16 {
    sdp.lines()
        .find_map(|l| l.strip_prefix("m=audio ")?.split(' ').next()?.parse().ok())
        .unwrap_or_else(|| panic!("no m=audio port in {sdp}"))
}

/// One PCMU RTP packet (20 ms, 160 bytes of payload).
fn rtp(seq: u16, ssrc: u32) -> Vec<u8> {
    let mut p = vec![0x80, 0];
    p.extend_from_slice(&seq.to_be_bytes());
    p.extend_from_slice(&(u32::from(seq) * 160).to_be_bytes());
    p.extend_from_slice(&ssrc.to_be_bytes());
    p.extend_from_slice(&[0xff; 160]);
    p
}

/// An RTCP sender report from `ssrc`, with a report block on `other` (no loss, jitter 20) that
/// names the other side's last SR (`lsr`, and the delay since: `dlsr`), so RTPEngine gets a
/// round-trip time and computes a MOS.
fn rtcp_sr(ssrc: u32, sent: u32, report: Option<(u32, u32, u32)>) -> (Vec<u8>, u32) {
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap();
    let sec = (t.as_secs() + 2_208_988_800) as u32;
    let frac = ((u64::from(t.subsec_nanos()) << 32) / 1_000_000_000) as u32;
    let mid = ((sec & 0xffff) << 16) | (frac >> 16);
    let mut body = Vec::new();
    for w in [ssrc, sec, frac, sent * 160, sent, sent * 160] {
        body.extend_from_slice(&w.to_be_bytes());
    }
    if let Some((other, lsr, dlsr)) = report {
        for w in [other, 0, sent, 20, lsr, dlsr] {
            body.extend_from_slice(&w.to_be_bytes());
        }
    }
    let rc = u8::from(report.is_some());
    let words = ((body.len() + 4) / 4 - 1) as u16;
    let mut p = vec![0x80 | rc, 200];
    p.extend_from_slice(&words.to_be_bytes());
    p.extend_from_slice(&body);
    (p, mid)
}

/// Counts and drops whatever waits on a non-blocking socket.
fn drain(s: &std::net::UdpSocket) -> usize {
    let mut buf = [0u8; 2048];
    let mut n = 0;
    while s.recv(&mut buf).is_ok() {
        n += 1;
    }
    n
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dip_then_ng_through_warpd_applies_database_policy_and_rpc_methods_work() {
    let pg = support::TestPg::start();
    let node = RtpEngine::start(30300, 30349);
    let mut client = warpd::db::connect(&pg.url()).await.unwrap();
    warpd::db::migrate::migrate(&mut client).await.unwrap();
    let demo = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/demo/network.toml");
    warpd::provision::apply(&mut client, &demo, false)
        .await
        .unwrap();
    // the demo network's media policy records customer 10001's calls
    let record: Option<bool> = client
        .query_one(
            "SELECT record FROM media_policies WHERE customer_ban = '10001' AND route_name IS NULL",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(record, Some(true));

    let ng_port = std::net::UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let text = format!(
        "{}\n[media]\nng_listen = \"127.0.0.1:{ng_port}\"\nnodes = [{{ address = \"{}\" }}]\nhealth_interval_ms = 200\n",
        support::warpd::EXAMPLE,
        node.ng
    );
    let env = vec![
        ("WARPD_DATABASE__URL".to_string(), pg.url()),
        ("WARPD_RELOAD__DEBOUNCE_MS".to_string(), "50".to_string()),
    ];
    let config = Config::from_str_with_env(&text, env).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let shutdown = CancellationToken::new();
    let server = tokio::spawn(warpd::server::run(config, listener, shutdown.clone()));
    let http = reqwest::Client::new();
    let t = Instant::now();
    loop {
        let r = http.get(format!("{base}/readyz")).send().await;
        if r.map(|r| r.status().as_u16() == 200).unwrap_or(false) {
            break;
        }
        assert!(
            t.elapsed() < Duration::from_secs(20),
            "warpd never became ready"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    wait_metric(&http, &base, "warpd_media_policy_loads_total", 1.0).await;
    // the demo's two policies: customer 10001 (record) and route bw-intl (T.38, codecs)
    assert_eq!(
        metric(&http, &base, "warpd_media_policies").await,
        Some(2.0)
    );

    // the dip carries the call-id: warpd remembers BAN and routes for the media side. It names
    // the customer by source address only (as kamailio.cfg does): the BAN comes from the
    // snapshot, so the customer's recording policy still applies (checked below)
    let q = "src_ip=127.0.0.1&ani=%2B12125550100&dnis=%2B13125550100&call_id=e2e-call-1";
    let first = dip(&http, &base, q).await;
    assert_eq!(first["action"], "route", "{first}");
    let route = first["routes"][0]["route_id"].as_str().unwrap().to_string();

    let proxy: std::net::SocketAddr = format!("127.0.0.1:{ng_port}").parse().unwrap();
    let sock = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let pong = ng(&sock, proxy, b"p1 d7:command4:pinge").await;
    assert_eq!(pong.str("result"), Some("pong"));
    let offer = call(&sock, proxy, "e2e-call-1").await;
    let sdp = offer.str("sdp").unwrap();
    assert!(sdp.contains("c=IN IP4 127.0.0.1"), "{sdp}");

    // JSON-RPC: nodes, query, record stop/start, and errors
    let nodes = rpc(&http, &base, "media.nodes", json!(null)).await;
    assert_eq!(
        nodes["result"][0]["address"],
        node.ng.to_string(),
        "{nodes}"
    );
    assert_eq!(nodes["result"][0]["healthy"], true);
    assert_eq!(nodes["result"][0]["calls"], 1);
    let qr = rpc(&http, &base, "media.query", json!({"call_id":"e2e-call-1"})).await;
    assert_eq!(qr["result"]["node"], node.ng.to_string(), "{qr}");
    assert!(qr["result"]["answer"]["tags"].is_object(), "{qr}");
    for m in ["media.record.stop", "media.record.start"] {
        let r = rpc(&http, &base, m, json!({"call_id":"e2e-call-1"})).await;
        assert_eq!(r["result"]["answer"]["result"], "ok", "{m}: {r}");
    }
    let unknown = rpc(&http, &base, "media.query", json!({"call_id":"nope"})).await;
    assert_eq!(unknown["error"]["code"], -32602, "{unknown}");
    let bad = rpc(&http, &base, "media.query", json!({"callid":"x"})).await;
    assert_eq!(bad["error"]["code"], -32602, "{bad}");

    delete_call(&sock, proxy, "d1", "e2e-call-1").await;

    // the recording policy of BAN 10001 (from the database) applied, with BAN and route
    let t = Instant::now();
    let meta = loop {
        let meta: String = node
            .recordings()
            .iter()
            .filter(|f| f.to_string_lossy().contains("e2e-call-1"))
            .filter(|f| f.to_string_lossy().contains("metadata"))
            .filter_map(|f| std::fs::read_to_string(f).ok())
            .collect();
        if !meta.is_empty() || t.elapsed() > Duration::from_secs(5) {
            break meta;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(
        meta.contains(&format!("ban:10001|route:{route}")),
        "metadata: {meta:?}"
    );

    // turn recording off in the database: the NOTIFY reload applies it to the next call
    let loads = metric(&http, &base, "warpd_media_policy_loads_total")
        .await
        .unwrap();
    client
        .execute(
            "UPDATE media_policies SET record = false WHERE customer_ban = '10001'",
            &[],
        )
        .await
        .unwrap();
    wait_metric(&http, &base, "warpd_media_policy_loads_total", loads + 1.0).await;
    let q2 = "ban=10001&ani=%2B12125550100&dnis=%2B13125550100&call_id=e2e-call-2";
    let dip2 = http
        .get(format!("{base}/v1/route?{q2}"))
        .send()
        .await
        .unwrap();
    assert_eq!(dip2.status().as_u16(), 200);
    call(&sock, proxy, "e2e-call-2").await;
    delete_call(&sock, proxy, "d2", "e2e-call-2").await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        !node
            .recordings()
            .iter()
            .any(|f| f.to_string_lossy().contains("e2e-call-2")),
        "no recording after the policy was turned off"
    );
    assert!(metric(
        &http,
        &base,
        "warpd_media_commands_total{command=\"offer\",outcome=\"ok\"}"
    )
    .await
    .is_some_and(|v| v >= 2.0));

    // --- RTP and RTCP really flow through RTPEngine; the call's MOS lands in its CDR -----------
    let q3 = "src_ip=127.0.0.1&ani=%2B12125550100&dnis=%2B13125550100&call_id=e2e-rtp";
    let route3 = dip(&http, &base, q3).await["routes"][0]["route_id"].clone();
    let (a_rtp, a_rtcp, pa) = rtp_pair();
    let (b_rtp, b_rtcp, pb) = rtp_pair();
    let o = ng(
        &sock,
        proxy,
        &kamailio_offer("o-rtp", "e2e-rtp", "ft", &audio_sdp(pa), &[]),
    )
    .await;
    assert_eq!(o.str("result"), Some("ok"), "{o:?}");
    let to_b_side = sdp_port(o.str("sdp").unwrap()); // where B sends
    let a = format!(
        "a-rtp d7:command6:answer7:call-id{}8:from-tag2:ft6:to-tag2:tt3:sdp{}e",
        bs("e2e-rtp"),
        bs(&audio_sdp(pb))
    );
    let ans = ng(&sock, proxy, a.as_bytes()).await;
    assert_eq!(ans.str("result"), Some("ok"), "{ans:?}");
    let to_a_side = sdp_port(ans.str("sdp").unwrap()); // where A sends
    for (m, p) in [("call.attempt", 200), ("call.answer", 0)] {
        let mut params = json!({"call_id":"e2e-rtp","attempt":1,"route_id":route3});
        if p > 0 {
            params["sip_code"] = json!(p);
        }
        let r = rpc(&http, &base, m, params).await;
        assert_eq!(r["result"]["ok"], true, "{m}: {r}");
    }
    let node_at = |port: u16| std::net::SocketAddr::from(([127, 0, 0, 1], port));
    let (ssrc_a, ssrc_b) = (0x1111_u32, 0x2222_u32);
    let (mut got_a, mut got_b) = (0, 0);
    let mut last_sr: [Option<(u32, Instant)>; 2] = [None, None];
    for i in 0..100u16 {
        a_rtp.send_to(&rtp(i, ssrc_a), node_at(to_a_side)).unwrap();
        b_rtp.send_to(&rtp(i, ssrc_b), node_at(to_b_side)).unwrap();
        if i % 20 == 19 {
            let dl = |x: Option<(u32, Instant)>, other| {
                x.map(|(lsr, at)| (other, lsr, (at.elapsed().as_secs_f64() * 65536.0) as u32))
            };
            let (sr_a, mid_a) = rtcp_sr(ssrc_a, u32::from(i), dl(last_sr[1], ssrc_b));
            a_rtcp.send_to(&sr_a, node_at(to_a_side + 1)).unwrap();
            let (sr_b, mid_b) = rtcp_sr(ssrc_b, u32::from(i), dl(last_sr[0], ssrc_a));
            b_rtcp.send_to(&sr_b, node_at(to_b_side + 1)).unwrap();
            last_sr = [Some((mid_a, Instant::now())), Some((mid_b, Instant::now()))];
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
        got_a += drain(&a_rtp);
        got_b += drain(&b_rtp);
        drain(&a_rtcp);
        drain(&b_rtcp);
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    got_a += drain(&a_rtp);
    got_b += drain(&b_rtp);
    assert!(
        got_a >= 95 && got_b >= 95,
        "RTP relayed: A got {got_a}, B got {got_b} of 100"
    );
    delete_call(&sock, proxy, "d3", "e2e-rtp").await;
    let r = rpc(
        &http,
        &base,
        "call.end",
        json!({"call_id":"e2e-rtp","hangup":"caller"}),
    )
    .await;
    assert_eq!(r["result"]["ok"], true, "call.end: {r}");
    let t = Instant::now();
    let row = loop {
        let row = client
            .query_opt(
                "SELECT disposition, mos, jitter_ms, loss_pct FROM cdrs WHERE call_id = 'e2e-rtp'",
                &[],
            )
            .await
            .unwrap();
        if row.is_some() || t.elapsed() > Duration::from_secs(10) {
            break row.expect("the call's CDR within 10 s");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(row.get::<_, String>(0), "answered");
    let mos: Option<f32> = row.get(1);
    assert!(
        mos.is_some_and(|m| (4.0..=5.0).contains(&m)),
        "MOS from RTPEngine's RTCP figures: {mos:?}"
    );
    assert!(row.get::<_, Option<f32>>(2).is_some(), "jitter_ms");
    assert_eq!(
        row.get::<_, Option<f32>>(3),
        Some(0.0),
        "loss_pct: no packet lost"
    );

    shutdown.cancel();
    let _ = tokio::time::timeout(Duration::from_secs(15), server).await;
}
