//! Media control against real rtpengine-daemon processes on 127.0.0.1 (Debian's
//! rtpengine-daemon, userspace). Each test starts its own daemon(s) with its own RTP port range
//! inside 30000-30299 so the tests run in parallel.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::support;
use crate::support::media::{audio_sdp, bs, kamailio_offer, t38_sdp, RtpEngine};
use tokio::net::UdpSocket;
use tokio_util::sync::CancellationToken;
use warpd::media::codec::{parse_datagram, Dict};
use warpd::media::policy::PolicyRow;
use warpd::media::{MediaConfig, MediaController, NodeConfig, PolicyTable, T38Mode};

struct Proxy {
    ctl: Arc<MediaController>,
    ng: SocketAddr,
    sock: UdpSocket,
    shutdown: CancellationToken,
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

async fn proxy(nodes: &[&RtpEngine]) -> Proxy {
    let cfg = MediaConfig {
        ng_listen: "127.0.0.1:0".into(),
        nodes: nodes
            .iter()
            .map(|n| NodeConfig {
                address: n.ng.to_string(),
                weight: 1,
            })
            .collect(),
        timeout_ms: 200,
        retries: 1,
        health_interval_ms: 200,
        ..MediaConfig::default()
    };
    let shutdown = CancellationToken::new();
    let (ctl, ng) = warpd::media::start(&cfg, None, None, shutdown.clone())
        .await
        .unwrap();
    let sock = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    Proxy {
        ctl,
        ng,
        sock,
        shutdown,
    }
}

impl Proxy {
    /// Sends one datagram as Kamailio would and returns the answer (cookie checked).
    async fn send(&self, data: &[u8]) -> Dict {
        let cookie = data.split(|&b| b == b' ').next().unwrap().to_vec();
        self.sock.send_to(data, self.ng).await.unwrap();
        let mut buf = vec![0u8; 65535];
        let (n, _) = tokio::time::timeout(Duration::from_secs(5), self.sock.recv_from(&mut buf))
            .await
            .expect("proxy answers within 5 s")
            .unwrap();
        let (c, d) = parse_datagram(&buf[..n]).unwrap();
        assert_eq!(c, &cookie[..], "answer carries the sender's cookie");
        d
    }

    async fn offer(&self, cookie: &str, call_id: &str, sdp: &str, flags: &[&str]) -> Dict {
        self.send(&kamailio_offer(cookie, call_id, "ft", sdp, flags))
            .await
    }

    async fn answer(&self, cookie: &str, call_id: &str, sdp: &str) -> Dict {
        let d = format!(
            "{cookie} d7:command6:answer7:call-id{}8:from-tag2:ft6:to-tag2:tt3:sdp{}e",
            bs(call_id),
            bs(sdp)
        );
        self.send(d.as_bytes()).await
    }

    async fn delete(&self, cookie: &str, call_id: &str) -> Dict {
        let d = format!(
            "{cookie} d7:command6:delete7:call-id{}8:from-tag2:fte",
            bs(call_id)
        );
        self.send(d.as_bytes()).await
    }
}

fn sdp_of(d: &Dict) -> String {
    assert_eq!(d.str("result"), Some("ok"), "{d:?}");
    d.str("sdp").expect("sdp in answer").to_string()
}

fn media_port(sdp: &str) -> u16 {
    sdp.lines()
        .find_map(|l| l.strip_prefix("m=audio "))
        .and_then(|r| r.split(' ').next())
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("no audio port in {sdp}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn offer_answer_query_delete_with_sdp_rewritten_and_quality_kept() {
    let node = RtpEngine::start(30000, 30049);
    let p = proxy(&[&node]).await;
    let caller = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let callee = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let (pa, pb) = (
        caller.local_addr().unwrap().port(),
        callee.local_addr().unwrap().port(),
    );

    let offered = sdp_of(&p.offer("k1", "call-1", &audio_sdp(pa), &[]).await);
    let to_callee = media_port(&offered);
    assert!((30000..=30049).contains(&to_callee), "{offered}");
    assert!(offered.contains("c=IN IP4 127.0.0.1"), "{offered}");
    let answered = sdp_of(&p.answer("k2", "call-1", &audio_sdp(pb)).await);
    let to_caller = media_port(&answered);
    assert!((30000..=30049).contains(&to_caller) && to_caller != to_callee);

    // 20 RTP packets each way through the relay
    for seq in 0..20u16 {
        let mut pkt = vec![
            0x80,
            0,
            (seq >> 8) as u8,
            seq as u8,
            0,
            0,
            0,
            0,
            0,
            0,
            0x12,
            0x34,
        ];
        pkt.extend_from_slice(&[0xff; 160]);
        caller.send_to(&pkt, ("127.0.0.1", to_caller)).unwrap();
        callee.send_to(&pkt, ("127.0.0.1", to_callee)).unwrap();
        // pacing: a stream of packets, as a phone sends them, not one burst
        std::thread::sleep(Duration::from_millis(2));
    }
    // the node has counted every packet
    let q = support::eventually("40 RTP packets counted", support::DEADLINE, || async {
        let q = p.ctl.query("call-1").await.unwrap();
        if q["quality"]["rtp_packets"] == 40 {
            Ok(q)
        } else {
            Err(q["quality"].to_string())
        }
    })
    .await;
    assert_eq!(q["node"], node.ng.to_string());
    assert_eq!(q["quality"]["rtp_packets"], 40, "{}", q["quality"]);
    assert!(q["answer"]["tags"]["ft"].is_object(), "{}", q["answer"]);

    // a controller that did not see the offer (warpd restarted) finds the call on its node
    let p2 = proxy(&[&node]).await;
    assert_eq!(p2.ctl.pool().node_of("call-1"), None);
    let q2 = p2.ctl.query("call-1").await.unwrap();
    assert_eq!(q2["node"], node.ng.to_string());
    assert_eq!(p2.ctl.pool().node_of("call-1"), Some(node.ng));

    let del = p.delete("k3", "call-1").await;
    assert_eq!(del.str("result"), Some("ok"));
    // the proxy counts a command after it has sent the answer on, so the test can hold the
    // delete's answer a moment before the count includes it
    let p50 = support::eventually(
        "offer, answer, delete counted as proxied",
        support::DEADLINE,
        || async {
            match p.ctl.proxy_overhead() {
                (3, p50, _) => Ok(p50),
                (n, _, _) => Err(n),
            }
        },
    )
    .await;
    assert!(p50.is_some_and(|v| v > 0.0));
    let quality = p
        .ctl
        .take_quality("call-1")
        .expect("quality kept on delete");
    assert_eq!(quality.rtp_packets, 40);
    assert_eq!(quality.rtp_bytes, 40 * 172);
    assert!(p.ctl.take_quality("call-1").is_none(), "taken once");

    // the call is gone: a later command fails cleanly, naming the call
    let err = p.ctl.query("call-1").await.unwrap_err().to_string();
    assert!(err.contains("call-1"), "{err}");
    let d = p
        .send(format!("k4 d7:command5:query7:call-id{}e", bs("call-1")).as_bytes())
        .await;
    assert_eq!(d.str("result"), Some("error"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recording_only_for_the_recording_customer() {
    let node = RtpEngine::start(30050, 30099);
    let p = proxy(&[&node]).await;
    p.ctl
        .policies()
        .store(Arc::new(PolicyTable::from_rows(vec![PolicyRow {
            ban: Some("10001".into()),
            record: Some(true),
            ..PolicyRow::default()
        }])));
    p.ctl
        .remember_dip("rec-yes", Some("10001"), vec!["lrn-east".into()]);
    p.ctl
        .remember_dip("rec-no", Some("20002"), vec!["lrn-east".into()]);
    for (i, call) in ["rec-yes", "rec-no"].into_iter().enumerate() {
        sdp_of(&p.offer(&format!("o{i}"), call, &audio_sdp(4000), &[]).await);
        sdp_of(&p.answer(&format!("a{i}"), call, &audio_sdp(4002)).await);
        let d = p.delete(&format!("d{i}"), call).await;
        assert_eq!(d.str("result"), Some("ok"));
    }
    let files = support::eventually("the recording of rec-yes", Duration::from_secs(5), || {
        let files = node.recordings();
        let done = files
            .iter()
            .any(|f| f.to_string_lossy().contains("rec-yes"));
        std::future::ready(done.then_some(files))
    })
    .await;
    let names: Vec<String> = files
        .iter()
        .map(|f| f.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    assert!(
        names
            .iter()
            .any(|n| n.starts_with("rec-yes") && n.ends_with(".pcap")),
        "pcap for the recording customer: {names:?}"
    );
    assert!(
        !names.iter().any(|n| n.contains("rec-no")),
        "nothing for the other customer: {names:?}"
    );
    let meta: String = files
        .iter()
        .filter(|f| f.to_string_lossy().contains("metadata"))
        .filter_map(|f| std::fs::read_to_string(f).ok())
        .collect();
    assert!(
        meta.contains("ban:10001|route:lrn-east"),
        "metadata names BAN and route: {meta}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn t38_gateway_decodes_fax_passthrough_keeps_it_and_codecs_are_stripped() {
    let node = RtpEngine::start(30100, 30149);
    let p = proxy(&[&node]).await;
    p.ctl.policies().store(Arc::new(PolicyTable::from_rows(vec![
        PolicyRow {
            route: Some("fax-gw".into()),
            t38: Some(T38Mode::Gateway),
            ..PolicyRow::default()
        },
        PolicyRow {
            route: Some("fax-pass".into()),
            t38: Some(T38Mode::Passthrough),
            ..PolicyRow::default()
        },
        PolicyRow {
            route: Some("no-g722".into()),
            codec_strip: Some(vec!["G722".into()]),
            ..PolicyRow::default()
        },
        PolicyRow {
            route: Some("pcmu-only".into()),
            codec_allow: Some(vec!["PCMU".into()]),
            ..PolicyRow::default()
        },
    ])));
    p.ctl
        .remember_dip("fax-1", Some("10001"), vec!["fax-gw".into()]);
    p.ctl
        .remember_dip("fax-2", Some("10001"), vec!["fax-pass".into()]);
    // the route Kamailio is trying, named by flag, wins over the dip's first route
    p.ctl
        .remember_dip("aud-1", Some("10001"), vec!["fax-gw".into()]);

    let gw = sdp_of(&p.offer("t1", "fax-1", &t38_sdp(4100), &[]).await);
    assert!(
        gw.contains("m=audio ") && gw.contains("RTP/AVP 0 8"),
        "T.38 gateway offers G.711: {gw}"
    );
    assert!(!gw.contains("m=image"), "{gw}");

    let pass = sdp_of(&p.offer("t2", "fax-2", &t38_sdp(4102), &[]).await);
    assert!(
        pass.contains("m=image ") && pass.contains("udptl t38"),
        "passthrough keeps T.38: {pass}"
    );

    let plain = sdp_of(
        &p.offer("t3", "aud-1", &audio_sdp(4104), &["warpd-route=no-g722"])
            .await,
    );
    assert!(plain.contains("m=audio "), "{plain}");
    assert!(
        !plain.contains("G722"),
        "G722 stripped on route no-g722: {plain}"
    );
    assert!(plain.contains("PCMU"), "{plain}");
    // an allow list: RTPEngine strips everything else (codec: {strip: [all], except: [PCMU]})
    p.ctl
        .remember_dip("aud-2", Some("10001"), vec!["pcmu-only".into()]);
    let only = sdp_of(&p.offer("t4", "aud-2", &audio_sdp(4106), &[]).await);
    let m_line = only
        .lines()
        .find(|l| l.starts_with("m=audio "))
        .unwrap_or("");
    assert!(
        m_line.ends_with("RTP/AVP 0"),
        "only PCMU (0) is offered: {only}"
    );
    assert!(!only.contains("G722") && !only.contains("PCMA"), "{only}");
    for (c, call) in ["fax-1", "fax-2", "aud-1", "aud-2"].iter().enumerate() {
        p.delete(&format!("x{c}"), call).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_node_new_calls_fail_over_old_calls_fail_cleanly() {
    let mut a = RtpEngine::start(30150, 30199);
    let b = RtpEngine::start(30200, 30249);
    let p = proxy(&[&a, &b]).await;

    // spread calls until each node holds at least one
    let mut on_a = Vec::new();
    let mut on_b = Vec::new();
    for i in 0..40 {
        let call = format!("fo-{i}");
        sdp_of(
            &p.offer(&format!("o{i}"), &call, &audio_sdp(5000), &[])
                .await,
        );
        match p.ctl.pool().node_of(&call) {
            Some(n) if n == a.ng => on_a.push(call),
            Some(n) if n == b.ng => on_b.push(call),
            other => panic!("call not pinned: {other:?}"),
        }
        if !on_a.is_empty() && !on_b.is_empty() {
            break;
        }
    }
    assert!(
        !on_a.is_empty() && !on_b.is_empty(),
        "weighted spread uses both nodes"
    );
    // keep one call on b (a port range of 50 holds ~12 calls)
    for (i, call) in on_b.split_off(1).iter().enumerate() {
        assert_eq!(
            p.delete(&format!("db{i}"), call).await.str("result"),
            Some("ok")
        );
    }

    a.kill();

    // new calls: all succeed on b, even those whose first choice was a. The order is a
    // rendezvous hash with a per-pool random seed, so each call picks a first with odds 1/2:
    // offer until one did (a is then marked down), at least 6 calls, at most 40 (odds 2^-40)
    let a_is_down = || {
        p.ctl
            .nodes()
            .iter()
            .any(|n| n.address == a.ng.to_string() && !n.healthy)
    };
    for i in 0..40 {
        let call = format!("new-{i}");
        let d = p
            .offer(&format!("n{i}"), &call, &audio_sdp(5002), &[])
            .await;
        let sdp = sdp_of(&d);
        assert!((30200..=30249).contains(&media_port(&sdp)), "{sdp}");
        assert_eq!(p.ctl.pool().node_of(&call), Some(b.ng));
        // a port range of 50 holds ~12 calls: free b's ports as we go
        assert_eq!(
            p.delete(&format!("dn{i}"), &call).await.str("result"),
            Some("ok")
        );
        if i >= 5 && a_is_down() {
            break;
        }
    }
    let nodes = p.ctl.nodes();
    let down = nodes
        .iter()
        .find(|n| n.address == a.ng.to_string())
        .unwrap();
    assert!(!down.healthy, "{nodes:?}");
    assert!(nodes
        .iter()
        .any(|n| n.address == b.ng.to_string() && n.healthy));

    // old calls on a: a clean ng error naming the node, quickly; nothing is sent to b
    let b_answers = b.stat("totalanswercount").unwrap();
    let b_deletes = b.stat("totaldeletecount").unwrap();
    let t = Instant::now();
    let d = p.answer("oa", &on_a[0], &audio_sdp(5004)).await;
    assert_eq!(d.str("result"), Some("error"), "{d:?}");
    let reason = d.str("error-reason").unwrap_or_default();
    assert!(reason.contains(&a.ng.to_string()), "{reason}");
    assert!(t.elapsed() < Duration::from_secs(2));
    let d = p.delete("da", &on_a[0]).await;
    assert_eq!(d.str("result"), Some("error"), "{d:?}");
    assert_eq!(
        (
            b.stat("totalanswercount").unwrap(),
            b.stat("totaldeletecount").unwrap()
        ),
        (b_answers, b_deletes),
        "a dead node's call must never reach (or tear down anything on) the other node"
    );
    // old calls on b are untouched
    let d = p.answer("ob", &on_b[0], &audio_sdp(5006)).await;
    sdp_of(&d);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kamailio_retransmits_reach_the_node_once_and_bad_input_never() {
    let node = RtpEngine::start(30250, 30299);
    let p = proxy(&[&node]).await;
    let before = node.stat("totaloffercount").unwrap();

    // the same datagram three times back to back (Kamailio's retransmit), then once more later
    let dg = kamailio_offer("kam-cookie-1", "rt-1", "ft", &audio_sdp(6000), &[]);
    for _ in 0..3 {
        p.sock.send_to(&dg, p.ng).await.unwrap();
    }
    let mut answers = Vec::new();
    let mut buf = vec![0u8; 65535];
    let deadline = Instant::now() + Duration::from_secs(3);
    while Instant::now() < deadline && answers.is_empty() {
        if let Ok(Ok((n, _))) =
            tokio::time::timeout(Duration::from_millis(500), p.sock.recv_from(&mut buf)).await
        {
            answers.push(buf[..n].to_vec());
        }
    }
    // in-flight repeats are absorbed; a repeat after the answer gets the cached answer
    p.sock.send_to(&dg, p.ng).await.unwrap();
    while let Ok(Ok((n, _))) =
        tokio::time::timeout(Duration::from_millis(500), p.sock.recv_from(&mut buf)).await
    {
        answers.push(buf[..n].to_vec());
    }
    assert!(answers.len() >= 2, "first answer and the cached one");
    assert!(
        answers.iter().all(|a| a == &answers[0]),
        "identical answers"
    );
    assert!(answers[0].starts_with(b"kam-cookie-1 d"));

    // bad input: answered with an error where there is a cookie, never forwarded
    let bad: &[&[u8]] = &[
        b"c1 d7:command5:offer",    // truncated
        b"c2 not-bencode",          // garbage
        b"c3 d7:call-id1:xe",       // no command
        b"c4 d7:command7:explodee", // unknown command
        b"c5 d7:command5:offere",   // offer without call-id
    ];
    for dg in bad {
        let d = p.send(dg).await;
        assert_eq!(
            d.str("result"),
            Some("error"),
            "{:?}",
            String::from_utf8_lossy(dg)
        );
    }
    p.sock.send_to(b"nocookie", p.ng).await.unwrap();
    // ping is answered by warpd itself
    let d = p.send(b"pp d7:command4:pinge").await;
    assert_eq!(d.str("result"), Some("pong"));

    let after = node.stat("totaloffercount").unwrap();
    assert_eq!(after - before, 1, "exactly one offer reached the node");
}
