//! Which customers a source may dip as (`server.kamailio_dip_as`, `[[server.kamailio_peers]]`):
//! a table of sources × dips against the demo network, over both dip forms. Clients bind
//! 127.0.0.x source addresses (all loopback) to stand for different Kamailio peers.

use std::net::IpAddr;
use std::time::Duration;

use serde_json::{json, Value};

use crate::support::{self, TestPg, Warpd};
use warpd::config::{DipAs, DipAsWord, KamailioPeer};

/// Demo customers: 10001 (source 127.0.0.1/32) and 10002 (198.51.100.0/24).
const ANI: &str = "+12125550100";
const DNIS: &str = "+13125550100";

fn client(source: &str) -> reqwest::Client {
    reqwest::Client::builder()
        .local_address(source.parse::<IpAddr>().unwrap())
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap()
}

/// The dip over `GET /v1/route` and over `lcr.route`; both answers (they must agree).
async fn dip(w: &Warpd, source: &str, key: (&str, &str)) -> Value {
    let c = client(source);
    let q = format!(
        "{}={}&ani={}&dnis={}",
        key.0,
        key.1,
        ANI.replace('+', "%2B"),
        DNIS.replace('+', "%2B")
    );
    let http: Value = c
        .get(w.api.url(&format!("/v1/route?{q}")))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let rpc: Value = c
        .post(w.api.rpc_url("lcr.route"))
        .json(&json!({"jsonrpc": "2.0", "id": 1, "method": "lcr.route",
            "params": {key.0: key.1, "ani": ANI, "dnis": DNIS}}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        http, rpc["result"],
        "{source} {key:?}: HTTP and JSON-RPC differ"
    );
    http
}

/// (source, customer key, routed?, refusal reason counted)
type Case = (
    &'static str,
    (&'static str, &'static str),
    bool,
    Option<&'static str>,
);

async fn refused(w: &Warpd, reason: &str) -> f64 {
    w.api
        .metric(&format!(
            "warpd_dip_customer_refused_total{{reason=\"{reason}\"}}"
        ))
        .await
        .unwrap_or(0.0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sources_dip_only_as_the_customers_they_may() {
    let pg = TestPg::start();
    let _db = support::demo::demo_db(&pg).await;
    let w = Warpd::builder(&pg)
        .config(|c| {
            c.server.kamailio_dip_as = DipAs::Word(DipAsWord::SrcIp);
            c.server.kamailio_peers = vec![
                KamailioPeer {
                    allow: vec!["127.0.0.2/32".parse().unwrap()],
                    dip_as: DipAs::Bans(vec!["10001".into()]),
                },
                KamailioPeer {
                    allow: vec!["127.0.0.3/32".parse().unwrap()],
                    dip_as: DipAs::Word(DipAsWord::Any),
                },
            ];
        })
        .start()
        .await;
    // (source, customer key, routed?, refusal reason counted: unknown / not_allowed /
    // ban_not_accepted)
    let cases: [Case; 12] = [
        // default "src_ip": the customer by source address only
        ("127.0.0.1", ("src_ip", "127.0.0.1"), true, None),
        (
            "127.0.0.1",
            ("ban", "10001"),
            false,
            Some("ban_not_accepted"),
        ),
        (
            "127.0.0.1",
            ("ban", "99999"),
            false,
            Some("ban_not_accepted"),
        ),
        (
            "127.0.0.4",
            ("src_ip", "203.0.113.1"),
            false,
            Some("unknown"),
        ),
        // peer allowed 10001 only, by BAN or by src_ip
        ("127.0.0.2", ("ban", "10001"), true, None),
        ("127.0.0.2", ("src_ip", "127.0.0.1"), true, None),
        ("127.0.0.2", ("ban", "10002"), false, Some("not_allowed")),
        (
            "127.0.0.2",
            ("src_ip", "198.51.100.7"),
            false,
            Some("not_allowed"),
        ),
        ("127.0.0.2", ("ban", "99999"), false, Some("unknown")),
        // peer with "any"
        ("127.0.0.3", ("ban", "10002"), true, None),
        ("127.0.0.3", ("ban", "10001"), true, None),
        ("127.0.0.3", ("ban", "99999"), false, Some("unknown")),
    ];
    let unknown = dip(&w, "127.0.0.3", ("ban", "99999")).await;
    assert_eq!(unknown["action"], "reject", "{unknown}");
    assert_eq!(unknown["sip_code"], 403, "{unknown}");
    for (source, key, routed, reason) in cases {
        let before = match reason {
            Some(r) => refused(&w, r).await,
            None => 0.0,
        };
        let a = dip(&w, source, key).await;
        if routed {
            assert_eq!(a["action"], "route", "{source} {key:?}: {a}");
            // the Kamailio surface's answer: what Kamailio reads, no margin data
            for r in a["routes"].as_array().unwrap() {
                assert!(
                    r["uri"].is_string() && r["route_id"].is_string() && r["vendor"].is_string(),
                    "{r}"
                );
                for k in ["rate", "customer_rate", "billing"] {
                    assert!(r.get(k).is_none(), "{source} {key:?}: {k} in {a}");
                }
            }
        } else {
            // refused and unknown look the same to the caller
            assert_eq!(a, unknown, "{source} {key:?}");
        }
        if let Some(r) = reason {
            // counted once per dip form (HTTP and JSON-RPC)
            assert_eq!(refused(&w, r).await - before, 2.0, "{source} {key:?} {r}");
        }
    }
    // the admin simulation keeps the full detail
    let sim = w
        .api
        .rpc_result(
            "lcr.simulate",
            json!({"ban": "10002", "ani": ANI, "dnis": DNIS}),
        )
        .await;
    assert!(sim["answer"]["routes"][0]["rate"].is_number(), "{sim}");
}

/// kamailio.cfg's BENCH_JANSSONRPC calibration path (janssonrpcc: JSON-RPC in netstrings over
/// plain TCP, no headers, no credentials) pointed at warpd's Kamailio listener: HTTP 400 and
/// the connection closed, never a dip, even with no allow-list or secret configured.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_janssonrpc_netstring_request_gets_no_dip() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let pg = TestPg::start();
    let _db = support::demo::demo_db(&pg).await;
    let w = Warpd::builder(&pg).start().await;
    // what janssonrpc_request("calibration", "lcr.route", …) writes on its TCP connection
    let call = json!({"jsonrpc": "2.0", "id": 1, "method": "lcr.route",
        "params": {"src_ip": "127.0.0.1", "ani": ANI, "dnis": DNIS}})
    .to_string();
    let netstring = format!("{}:{call},", call.len());
    let mut c = tokio::net::TcpStream::connect(w.addr).await.unwrap();
    c.write_all(netstring.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    tokio::time::timeout(support::DEADLINE, c.read_to_end(&mut answer))
        .await
        .expect("warpd closes the connection")
        .unwrap();
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
    assert!(!answer.contains("route"), "{answer}");
    for outcome in ["route", "reject_403", "not_ready"] {
        assert_eq!(
            w.api
                .metric(&format!("warpd_dips_total{{outcome=\"{outcome}\"}}"))
                .await
                .unwrap_or(0.0),
            0.0,
            "{outcome}"
        );
    }
    w.stop().await;
}
