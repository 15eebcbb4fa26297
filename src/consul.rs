//! Optional Consul self-registration (config `[consul]`): once the first routing snapshot is loaded,
//! warpd registers itself with the local Consul agent (`PUT /v1/agent/service/register`) with an
//! HTTP health check on its own `/readyz`, so Kamailio hosts (or DNS) find only ready warpds; at
//! shutdown it deregisters (`PUT /v1/agent/service/deregister/<id>`).
//!
//! Owns: the two agent calls and their retry. Must not touch: routing, the database, the API.
//! The HTTP client is a few lines over a tokio `TcpStream` on purpose: two PUTs to a local agent over
//! plain HTTP do not justify a client crate in the daemon (reqwest is a dev-dependency only).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_util::sync::CancellationToken;

use crate::routing::Engine;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ConsulConfig {
    /// the local Consul agent, plain HTTP (e.g. "http://127.0.0.1:8500")
    pub address: String,
    /// service name registered (Kamailio hosts look this name up)
    pub service: String,
    /// service id; default "<service>-<listen address>"
    pub id: Option<String>,
    /// address other hosts reach this warpd on (default: the listen address)
    pub advertise: Option<String>,
    /// health check interval of /readyz, seconds
    pub check_interval_s: u64,
    /// ACL token (put it in WARPD_CONSUL__TOKEN, not the file)
    pub token: Option<String>,
}

impl Default for ConsulConfig {
    fn default() -> Self {
        ConsulConfig {
            address: "http://127.0.0.1:8500".into(),
            service: "warpd".into(),
            id: None,
            advertise: None,
            check_interval_s: 10,
            token: None,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConsulError {
    #[error("consul.address: {0}")]
    Address(String),
    #[error("consul agent: {0}")]
    Io(#[from] std::io::Error),
    #[error("consul agent answered {0}")]
    Status(String),
}

impl ConsulConfig {
    /// Checks the address (plain http with host and port) for config validation.
    pub fn agent(&self) -> Result<(String, u16), ConsulError> {
        let u = url::Url::parse(&self.address).map_err(|e| ConsulError::Address(e.to_string()))?;
        if u.scheme() != "http" {
            return Err(ConsulError::Address("only http:// (a local agent)".into()));
        }
        let host = u
            .host_str()
            .ok_or_else(|| ConsulError::Address("no host".into()))?;
        Ok((host.to_string(), u.port().unwrap_or(8500)))
    }
}

/// The registration body (Consul agent API) for a warpd serving on `listen`. A warpd listening
/// on every address (`0.0.0.0`, `::`) with no `advertise` registers no address of its own:
/// Consul then hands out the agent's node address, and the agent, which runs on this host,
/// checks `/readyz` over loopback.
pub fn registration(cfg: &ConsulConfig, listen: SocketAddr) -> serde_json::Value {
    let reach = match cfg.advertise.as_deref().map(str::parse::<SocketAddr>) {
        Some(Ok(a)) => a,
        _ => listen,
    };
    let port = reach.port();
    let (address, check_host) = if reach.ip().is_unspecified() {
        let lo = match reach.ip() {
            std::net::IpAddr::V4(_) => "127.0.0.1".to_string(),
            std::net::IpAddr::V6(_) => "[::1]".to_string(),
        };
        (String::new(), lo)
    } else {
        let host = match reach.ip() {
            std::net::IpAddr::V6(ip) => format!("[{ip}]"),
            ip => ip.to_string(),
        };
        (reach.ip().to_string(), host)
    };
    serde_json::json!({
        "ID": service_id(cfg, listen),
        "Name": cfg.service,
        "Address": address,
        "Port": port,
        "Tags": ["warpd", "lcr"],
        "Check": {
            "HTTP": format!("http://{check_host}:{port}/readyz"),
            "Interval": format!("{}s", cfg.check_interval_s.max(1)),
            "Timeout": "2s",
            "DeregisterCriticalServiceAfter": "10m",
        },
    })
}

fn service_id(cfg: &ConsulConfig, listen: SocketAddr) -> String {
    cfg.id
        .clone()
        .unwrap_or_else(|| format!("{}-{}", cfg.service, listen))
}

/// Registers once the engine is ready (retrying every 2 s while the agent is unreachable), then
/// deregisters at shutdown. Await the handle before exiting so the deregistration is sent.
pub fn spawn(
    cfg: ConsulConfig,
    listen: SocketAddr,
    engine: Arc<Engine>,
    shutdown: CancellationToken,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        while !engine.is_ready() {
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_millis(50)) => {}
                _ = shutdown.cancelled() => return,
            }
        }
        let body = registration(&cfg, listen).to_string();
        let mut registered = false;
        while !registered {
            match put(&cfg, "/v1/agent/service/register", &body).await {
                Ok(()) => {
                    tracing::info!(service = %cfg.service, id = %service_id(&cfg, listen), "registered in Consul");
                    registered = true;
                }
                Err(e) => {
                    tracing::warn!(error = %e, "Consul registration failed; retrying");
                    tokio::select! {
                        _ = tokio::time::sleep(Duration::from_secs(2)) => {}
                        _ = shutdown.cancelled() => return,
                    }
                }
            }
        }
        shutdown.cancelled().await;
        let path = format!("/v1/agent/service/deregister/{}", service_id(&cfg, listen));
        match tokio::time::timeout(Duration::from_secs(3), put(&cfg, &path, "")).await {
            Ok(Ok(())) => tracing::info!("deregistered from Consul"),
            Ok(Err(e)) => tracing::warn!(error = %e, "Consul deregistration failed"),
            Err(_) => tracing::warn!("Consul deregistration timed out"),
        }
    })
}

/// One `PUT` with a JSON body; Ok when the agent answers 2xx.
async fn put(cfg: &ConsulConfig, path: &str, body: &str) -> Result<(), ConsulError> {
    let (host, port) = cfg.agent()?;
    let mut stream = tokio::time::timeout(
        Duration::from_secs(3),
        TcpStream::connect((host.as_str(), port)),
    )
    .await
    .map_err(|_| ConsulError::Status("connect timed out".into()))??;
    let token = cfg
        .token
        .as_deref()
        .map(|t| format!("X-Consul-Token: {t}\r\n"))
        .unwrap_or_default();
    let request = format!(
        "PUT {path} HTTP/1.1\r\nHost: {host}:{port}\r\nContent-Type: application/json\r\n{token}Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).await?;
    let mut head = Vec::with_capacity(256);
    let mut buf = [0u8; 256];
    // the status line is all we need
    while !head.windows(2).any(|w| w == b"\r\n") && head.len() < 4096 {
        let n = tokio::time::timeout(Duration::from_secs(3), stream.read(&mut buf))
            .await
            .map_err(|_| ConsulError::Status("no answer".into()))??;
        if n == 0 {
            break;
        }
        head.extend_from_slice(&buf[..n]);
    }
    let line = String::from_utf8_lossy(&head);
    let line = line.lines().next().unwrap_or_default().to_string();
    match line.split(' ').nth(1) {
        Some(code) if code.starts_with('2') => Ok(()),
        _ => Err(ConsulError::Status(line)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registration_checks_readyz_on_the_listen_address() {
        let cfg = ConsulConfig::default();
        let listen: SocketAddr = "10.0.0.5:8080".parse().unwrap();
        let r = registration(&cfg, listen);
        assert_eq!(r["ID"], "warpd-10.0.0.5:8080");
        assert_eq!(r["Name"], "warpd");
        assert_eq!(r["Address"], "10.0.0.5");
        assert_eq!(r["Port"], 8080);
        assert_eq!(r["Check"]["HTTP"], "http://10.0.0.5:8080/readyz");
        assert_eq!(r["Check"]["Interval"], "10s");
    }

    #[test]
    fn listening_on_every_address_registers_the_node_address_and_checks_over_loopback() {
        let cfg = ConsulConfig::default();
        let r = registration(&cfg, "0.0.0.0:8080".parse().unwrap());
        assert_eq!(r["Address"], "", "Consul uses the node's address");
        assert_eq!(r["Port"], 8080);
        assert_eq!(r["Check"]["HTTP"], "http://127.0.0.1:8080/readyz");
        let r = registration(&cfg, "[::]:8080".parse().unwrap());
        assert_eq!(r["Address"], "");
        assert_eq!(r["Check"]["HTTP"], "http://[::1]:8080/readyz");
        let r = registration(&cfg, "[2001:db8::5]:8080".parse().unwrap());
        assert_eq!(r["Address"], "2001:db8::5");
        assert_eq!(r["Check"]["HTTP"], "http://[2001:db8::5]:8080/readyz");
    }

    #[test]
    fn advertise_and_id_override() {
        let cfg = ConsulConfig {
            id: Some("warpd-a".into()),
            advertise: Some("192.0.2.7:9000".into()),
            ..ConsulConfig::default()
        };
        let r = registration(&cfg, "127.0.0.1:8080".parse().unwrap());
        assert_eq!(r["ID"], "warpd-a");
        assert_eq!(r["Check"]["HTTP"], "http://192.0.2.7:9000/readyz");
    }

    #[test]
    fn address_must_be_plain_http_with_a_host() {
        let bad = |a: &str| {
            ConsulConfig {
                address: a.into(),
                ..ConsulConfig::default()
            }
            .agent()
            .is_err()
        };
        assert!(bad("https://consul:8501"));
        assert!(bad("not a url"));
        assert!(!bad("http://127.0.0.1:8500"));
    }
}
