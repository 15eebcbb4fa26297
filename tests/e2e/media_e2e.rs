//! Media control end to end through `server::run`: PostgreSQL (throwaway cluster) with the demo
//! network and its `media_policies` rows, a real rtpengine-daemon (a port range per test in
//! 30300-30349, 30400-30499 and 30500-30549), a dip with a
//! call-id over HTTP, then Kamailio-style ng through warpd's proxy socket: the customer's
//! recording policy from the database applies, `media.*` JSON-RPC methods work, a policy
//! change in the database (NOTIFY warpd_routing) applies to the next call, and RTP + RTCP sent
//! through RTPEngine for a call leave the call's MOS, jitter and loss in its CDR. An inbound call
//! to a customer trunk gets the trunk's policy (sql/0021), over its customer's.

use crate::support::{self, TestPg, Warpd};

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use crate::support::media::{audio_sdp, bs, kamailio_offer, RtpEngine};
use serde_json::json;
use tokio::net::UdpSocket;
use warpd::media::codec::{parse_datagram, Dict};

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

/// The demo network (with its media policies) in PostgreSQL, an RTPEngine relaying on
/// `ports`, warpd with `[media]` (its ng proxy on `proxy`) and a Kamailio-side ng socket.
struct Stack {
    _pg: TestPg,
    client: tokio_postgres::Client,
    node: RtpEngine,
    w: Warpd,
    proxy: SocketAddr,
    sock: UdpSocket,
}

async fn start(ports: (u16, u16)) -> Stack {
    let pg = TestPg::start();
    let node = RtpEngine::start(ports.0, ports.1);
    let client = support::demo::demo_db(&pg).await;
    let ng_port = std::net::UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let w = Warpd::builder(&pg)
        .toml(&format!(
            "[media]\nng_listen = \"127.0.0.1:{ng_port}\"\nnodes = [{{ address = \"{}\" }}]\nhealth_interval_ms = 200\n",
            node.ng
        ))
        .start()
        .await;
    w.wait_metric("warpd_media_policy_loads_total", 1.0).await;
    let proxy: SocketAddr = format!("127.0.0.1:{ng_port}").parse().unwrap();
    let sock = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    Stack {
        _pg: pg,
        client,
        node,
        w,
        proxy,
        sock,
    }
}

/// The dip carries the call-id: warpd remembers BAN and routes for the media side. It names the
/// customer by source address only (as kamailio.cfg does): the BAN comes from the snapshot, so
/// the customer's recording policy still applies. Returns the first route.
async fn dip_call(st: &Stack, call_id: &str) -> String {
    let q = format!("src_ip=127.0.0.1&ani=%2B12125550100&dnis=%2B13125550100&call_id={call_id}");
    let first = st.w.dip(&q).await;
    assert_eq!(first["action"], "route", "{first}");
    first["routes"][0]["route_id"].as_str().unwrap().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn database_recording_policy_applies_through_warpds_ng_proxy_and_follows_changes() {
    let st = start((30300, 30349)).await;
    let (w, node, sock, proxy) = (&st.w, &st.node, &st.sock, st.proxy);
    // the demo network's media policy records customer 10001's calls
    let record: Option<bool> = st
        .client
        .query_one(
            "SELECT record FROM media_policies WHERE customer_ban = '10001' AND route_name IS NULL",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(record, Some(true));
    // the demo's two policies: customer 10001 (record) and route bw-intl (T.38, codecs)
    assert_eq!(w.metric("warpd_media_policies").await, Some(2.0));

    let route = dip_call(&st, "e2e-call-1").await;
    let pong = ng(sock, proxy, b"p1 d7:command4:pinge").await;
    assert_eq!(pong.str("result"), Some("pong"));
    let offer = call(sock, proxy, "e2e-call-1").await;
    let sdp = offer.str("sdp").unwrap();
    assert!(sdp.contains("c=IN IP4 127.0.0.1"), "{sdp}");
    delete_call(sock, proxy, "d1", "e2e-call-1").await;

    // the recording policy of BAN 10001 (from the database) applied, with BAN and route
    let meta = support::eventually("the metadata of e2e-call-1", Duration::from_secs(5), || {
        let meta: String = node
            .recordings()
            .iter()
            .filter(|f| f.to_string_lossy().contains("e2e-call-1"))
            .filter(|f| f.to_string_lossy().contains("metadata"))
            .filter_map(|f| std::fs::read_to_string(f).ok())
            .collect();
        std::future::ready((!meta.is_empty()).then_some(meta))
    })
    .await;
    assert!(
        meta.contains(&format!("ban:10001|route:{route}")),
        "metadata: {meta:?}"
    );

    // turn recording off in the database: the NOTIFY reload applies it to the next call
    let loads = w.metric("warpd_media_policy_loads_total").await.unwrap();
    st.client
        .execute(
            "UPDATE media_policies SET record = false WHERE customer_ban = '10001'",
            &[],
        )
        .await
        .unwrap();
    w.wait_metric("warpd_media_policy_loads_total", loads + 1.0)
        .await;
    let (status, _) = w
        .get_json("/v1/route?ban=10001&ani=%2B12125550100&dnis=%2B13125550100&call_id=e2e-call-2")
        .await;
    assert_eq!(status, 200);
    call(sock, proxy, "e2e-call-2").await;
    delete_call(sock, proxy, "d2", "e2e-call-2").await;
    // part of the scenario, not synchronisation: time for a recording to appear, to show none does
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        !node
            .recordings()
            .iter()
            .any(|f| f.to_string_lossy().contains("e2e-call-2")),
        "no recording after the policy was turned off"
    );
    assert!(w
        .metric("warpd_media_commands_total{command=\"offer\",outcome=\"ok\"}")
        .await
        .is_some_and(|v| v >= 2.0));
    st.w.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn media_rpc_methods_nodes_query_record_and_errors() {
    let st = start((30400, 30449)).await;
    let (w, node, sock, proxy) = (&st.w, &st.node, &st.sock, st.proxy);
    dip_call(&st, "e2e-call-1").await;
    call(sock, proxy, "e2e-call-1").await;
    let nodes = w.rpc("media.nodes", json!(null)).await;
    assert_eq!(
        nodes["result"][0]["address"],
        node.ng.to_string(),
        "{nodes}"
    );
    assert_eq!(nodes["result"][0]["healthy"], true);
    assert_eq!(nodes["result"][0]["calls"], 1);
    let qr = w.rpc("media.query", json!({"call_id":"e2e-call-1"})).await;
    assert_eq!(qr["result"]["node"], node.ng.to_string(), "{qr}");
    assert!(qr["result"]["answer"]["tags"].is_object(), "{qr}");
    for m in ["media.record.stop", "media.record.start"] {
        let r = w.rpc(m, json!({"call_id":"e2e-call-1"})).await;
        assert_eq!(r["result"]["answer"]["result"], "ok", "{m}: {r}");
    }
    let unknown = w.rpc("media.query", json!({"call_id":"nope"})).await;
    assert_eq!(unknown["error"]["code"], -32602, "{unknown}");
    let bad = w.rpc("media.query", json!({"callid":"x"})).await;
    assert_eq!(bad["error"]["code"], -32602, "{bad}");
    delete_call(sock, proxy, "d1", "e2e-call-1").await;
    st.w.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rtp_and_rtcp_flow_through_rtpengine_and_the_mos_lands_in_the_cdr() {
    let st = start((30450, 30499)).await;
    // --- RTP and RTCP really flow through RTPEngine; the call's MOS lands in its CDR -----------
    let route3 = dip_call(&st, "e2e-rtp").await;
    let (a_rtp, a_rtcp, pa) = rtp_pair();
    let (b_rtp, b_rtcp, pb) = rtp_pair();
    let o = ng(
        &st.sock,
        st.proxy,
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
    let ans = ng(&st.sock, st.proxy, a.as_bytes()).await;
    assert_eq!(ans.str("result"), Some("ok"), "{ans:?}");
    let to_a_side = sdp_port(ans.str("sdp").unwrap()); // where A sends
    for (m, p) in [("call.attempt", 200), ("call.answer", 0)] {
        let mut params = json!({"call_id":"e2e-rtp","attempt":1,"route_id":route3});
        if p > 0 {
            params["sip_code"] = json!(p);
        }
        let r = st.w.rpc(m, params).await;
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
        // pacing: a 100-packet stream over a second, as a phone sends it, not one burst
        tokio::time::sleep(Duration::from_millis(10)).await;
        got_a += drain(&a_rtp);
        got_b += drain(&b_rtp);
        drain(&a_rtcp);
        drain(&b_rtcp);
    }
    // the packets still in flight arrive
    support::eventually("RTP relayed both ways", Duration::from_secs(5), || {
        got_a += drain(&a_rtp);
        got_b += drain(&b_rtp);
        let done = got_a >= 95 && got_b >= 95;
        std::future::ready(if done {
            Ok(())
        } else {
            Err(format!("A got {got_a}, B got {got_b} of 100"))
        })
    })
    .await;
    assert!(
        got_a >= 95 && got_b >= 95,
        "RTP relayed: A got {got_a}, B got {got_b} of 100"
    );
    delete_call(&st.sock, st.proxy, "d3", "e2e-rtp").await;
    let r =
        st.w.rpc("call.end", json!({"call_id":"e2e-rtp","hangup":"caller"}))
            .await;
    assert_eq!(r["result"]["ok"], true, "call.end: {r}");
    let client = &st.client;
    let row = support::eventually("the call's CDR", Duration::from_secs(10), || async {
        client
            .query_opt(
                "SELECT disposition, mos, jitter_ms, loss_pct FROM cdrs WHERE call_id = 'e2e-rtp'",
                &[],
            )
            .await
            .unwrap()
    })
    .await;
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

    st.w.stop().await;
}

/// An inbound call (a vendor delivering a call to a DID): the inbound dip with the call-id tells
/// the ng proxy the call's customer and trunk, and the trunk's `media_policies` row applies to
/// its offer over the customer's: only PCMU offered onward (the customer's row says nothing
/// about codecs) and recorded with the trunk in the metadata; a call of another trunk of the
/// same customer keeps the customer's policy only.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trunks_media_policy_applies_to_its_inbound_calls() {
    let st = start((30500, 30549)).await;
    let (w, node, sock, proxy) = (&st.w, &st.node, &st.sock, st.proxy);
    let loads = w.metric("warpd_media_policy_loads_total").await.unwrap();
    st.client
        .batch_execute(
            "INSERT INTO trunks (name, customer_id) SELECT n, id FROM customers, \
                 (VALUES ('e2e-main'), ('e2e-other')) t(n) WHERE ban = '10001';
             INSERT INTO trunk_destinations (trunk_id, host)
                 SELECT id, '127.0.0.1' FROM trunks WHERE name LIKE 'e2e-%';
             INSERT INTO numbers (number, customer_id, trunk_id)
                 SELECT CASE name WHEN 'e2e-main' THEN '+12125550190' ELSE '+12125550191' END,
                        customer_id, id FROM trunks WHERE name LIKE 'e2e-%';
             INSERT INTO media_policies (trunk_name, codec_allow, record) VALUES ('e2e-main', '{PCMU}', true);",
        )
        .await
        .unwrap();
    w.wait_metric("warpd_media_policy_loads_total", loads + 1.0)
        .await;
    // (call id, DNIS, trunk, codecs offered onward)
    let calls = [
        ("e2e-in-1", "%2B12125550190", "e2e-main", "RTP/AVP 0\r"),
        ("e2e-in-2", "%2B12125550191", "e2e-other", "RTP/AVP 0 8 9\r"),
    ];
    for (call_id, dnis, trunk, codecs) in calls {
        // the vendor's source (the demo's gateways are 127.0.0.1) delivers the call to the DID
        let q = format!(
            "/v1/inbound?src_ip=127.0.0.1&ani=%2B13105550000&dnis={dnis}&call_id={call_id}"
        );
        let a = support::eventually("the inbound dip routes", support::DEADLINE, || async {
            let (_, a) = w.get_json(&q).await;
            if a["action"] == "route" {
                Ok(a)
            } else {
                Err(a.to_string())
            }
        })
        .await;
        assert_eq!(a["trunk"], trunk, "{a}");
        let offer = call(sock, proxy, call_id).await;
        let sdp = offer.str("sdp").unwrap();
        assert!(sdp.contains(codecs), "{call_id}: {sdp}");
        delete_call(sock, proxy, &format!("d-{call_id}"), call_id).await;
    }
    // both recorded (the trunk's row, and for the other trunk its customer's), the trunk named
    for (call_id, want) in [
        ("e2e-in-1", "ban:10001|route:-|trunk:e2e-main"),
        ("e2e-in-2", "ban:10001|route:-|trunk:e2e-other"),
    ] {
        let meta = support::eventually("the call's metadata", Duration::from_secs(5), || {
            let meta: String = node
                .recordings()
                .iter()
                .filter(|f| f.to_string_lossy().contains(call_id))
                .filter(|f| f.to_string_lossy().contains("metadata"))
                .filter_map(|f| std::fs::read_to_string(f).ok())
                .collect();
            std::future::ready((!meta.is_empty()).then_some(meta))
        })
        .await;
        assert!(meta.contains(want), "{call_id} metadata: {meta:?}");
    }
    st.w.stop().await;
}
