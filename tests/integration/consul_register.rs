//! Consul self-registration against a fake Consul agent: a 127.0.0.1 HTTP listener implementing
//! exactly the two agent endpoints warpd uses (`PUT /v1/agent/service/register`, `PUT
//! /v1/agent/service/deregister/<id>`), recording each request and, like a real agent, running
//! the registered HTTP check when the registration arrives. No Consul binary is installable
//! here (Debian ships client libraries only). warpd runs for real (`server::run`, TestPg).

use crate::support::{self, Warpd};

use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use warpd::config::Config;

/// (request line, body) of every request the fake agent got.
type Seen = Arc<Mutex<Vec<(String, String)>>>;
/// The HTTP status of the registration's health check, run as the agent runs it: on receipt.
type Checked = Arc<Mutex<Vec<u16>>>;

async fn fake_agent(listener: tokio::net::TcpListener, seen: Seen, checked: Checked) {
    while let Ok((mut s, _)) = listener.accept().await {
        let seen = seen.clone();
        let checked = checked.clone();
        tokio::spawn(async move {
            let mut buf = Vec::new();
            let mut chunk = [0u8; 1024];
            // read head + Content-Length body
            loop {
                let Ok(n) = s.read(&mut chunk).await else {
                    return;
                };
                if n == 0 {
                    return;
                }
                buf.extend_from_slice(&chunk[..n]);
                let text = String::from_utf8_lossy(&buf).to_string();
                if let Some((head, body)) = text.split_once("\r\n\r\n") {
                    let len = head
                        .lines()
                        .find_map(|l| l.strip_prefix("Content-Length: "))
                        .and_then(|v| v.trim().parse::<usize>().ok())
                        .unwrap_or(0);
                    if body.len() >= len {
                        let line = head.lines().next().unwrap_or_default().to_string();
                        let known = line.starts_with("PUT /v1/agent/service/register ")
                            || line.starts_with("PUT /v1/agent/service/deregister/");
                        if line.starts_with("PUT /v1/agent/service/register ") {
                            // a real agent runs the service's HTTP check right away
                            let reg: Value = serde_json::from_str(body).unwrap_or(Value::Null);
                            let url = reg["Check"]["HTTP"].as_str().unwrap_or_default();
                            let status = match reqwest::get(url).await {
                                Ok(r) => r.status().as_u16(),
                                Err(_) => 0,
                            };
                            checked.lock().unwrap().push(status);
                        }
                        seen.lock().unwrap().push((line, body.to_string()));
                        let status = if known { "200 OK" } else { "404 Not Found" };
                        let _ = s
                            .write_all(
                                format!("HTTP/1.1 {status}\r\nContent-Length: 0\r\n\r\n")
                                    .as_bytes(),
                            )
                            .await;
                        return;
                    }
                }
            }
        });
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn warpd_registers_when_ready_and_deregisters_at_shutdown() {
    let pg = support::TestPg::start();
    let agent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let agent_addr = agent.local_addr().unwrap();
    let seen: Seen = Arc::default();
    let checked: Checked = Arc::default();
    tokio::spawn(fake_agent(agent, seen.clone(), checked.clone()));

    let w = Warpd::builder(&pg)
        .toml(&format!(
            "[consul]\naddress = \"http://{agent_addr}\"\nservice = \"warpd-test\"\ncheck_interval_s = 5\n"
        ))
        .no_wait_ready()
        .start()
        .await;
    let listen = w.addr;

    let (line, body) = support::eventually("registered", Duration::from_secs(20), || {
        let seen = seen.clone();
        async move { seen.lock().unwrap().first().cloned() }
    })
    .await;
    assert!(
        line.starts_with("PUT /v1/agent/service/register "),
        "{line}"
    );
    // registered only once ready: the agent's check, run when the registration arrived, passed
    assert_eq!(*checked.lock().unwrap(), vec![200]);
    let reg: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(reg["Name"], "warpd-test");
    assert_eq!(reg["Port"], listen.port());
    assert_eq!(reg["Check"]["HTTP"], format!("http://{listen}/readyz"));
    assert_eq!(reg["Check"]["Interval"], "5s");
    let id = reg["ID"].as_str().unwrap().to_string();

    w.stop().await;
    let all = seen.lock().unwrap().clone();
    assert_eq!(all.len(), 2, "{all:?}");
    assert_eq!(
        all[1].0,
        format!("PUT /v1/agent/service/deregister/{id} HTTP/1.1")
    );
}

#[test]
fn consul_config_errors_name_the_key() {
    let base = "[database]\nurl = \"postgres://warpd@127.0.0.1/warpd\"\n";
    let err = Config::from_str_with_env(
        &format!("{base}[consul]\naddress = \"https://consul:8501\"\n"),
        Vec::<(String, String)>::new(),
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("consul.address"), "{err}");
    let err = Config::from_str_with_env(
        &format!("{base}[consul]\nadvertise = \"nowhere\"\n"),
        Vec::<(String, String)>::new(),
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("consul.advertise"), "{err}");
}
