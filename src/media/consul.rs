//! Consul discovery of RTPEngine nodes: watches `GET /v1/health/service/<service>?passing=true`
//! with blocking queries (`index` + `wait`) and hands the passing instances to the pool.
//!
//! Why a thin client instead of a Consul crate: warpd needs exactly one read-only endpoint. The
//! maintained Consul crates (`rs-consul`, `consulrs`) bring their own HTTP stacks and many
//! transitive crates for a 2-core CI box, while hyper 1 + hyper-util are already in the tree.
//! Re-checked 2026-12-04 against rs-consul 0.15, the maintained one with blocking queries on this
//! endpoint: its `ServiceNode` has no `Weights` (the pool's weight per instance would be lost),
//! it logs through `slog` rather than `tracing`, and it pulls in rustls + ring for a plain-HTTP
//! local agent. This module implements that one endpoint as documented by HashiCorp: the
//! `X-Consul-Index` response header feeds the next `index=`, an index that goes backwards resets
//! to 0, errors back off.
//! The ACL token, if any, comes from the standard `CONSUL_HTTP_TOKEN` environment variable
//! (never from the config file) and is sent as `X-Consul-Token`.
//!
//! Owns: the HTTP watch loop and the parsing of the health answer. Must not touch: node health
//! (the pool pings discovered nodes like configured ones).

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty, Limited};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde::Deserialize;
use tokio_util::sync::CancellationToken;

use super::pool::{NodePool, NodeSource, NodeSpec};
use super::MediaError;

/// Consul settings (`[media.consul]`).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConsulConfig {
    /// Consul agent HTTP address, e.g. `http://127.0.0.1:8500`
    pub url: String,
    /// service name RTPEngine nodes register under; the service port is their ng port
    pub service: String,
    /// optional tag filter
    #[serde(default)]
    pub tag: Option<String>,
    /// optional datacenter
    #[serde(default)]
    pub dc: Option<String>,
    /// blocking query wait in seconds
    #[serde(default = "default_wait")]
    pub wait_secs: u64,
}

fn default_wait() -> u64 {
    30
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Entry {
    node: EntryNode,
    service: EntryService,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct EntryNode {
    #[serde(default)]
    address: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct EntryService {
    #[serde(default)]
    address: String,
    port: u16,
    #[serde(default)]
    weights: Option<Weights>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Weights {
    passing: u32,
}

/// Parses a `/v1/health/service` answer into node specs (service address, else node address).
pub fn parse_health(body: &[u8]) -> Result<Vec<NodeSpec>, MediaError> {
    let entries: Vec<Entry> = serde_json::from_slice(body)
        .map_err(|e| MediaError::Consul(format!("health answer: {e}")))?;
    let mut out = Vec::new();
    for e in entries {
        let host = if e.service.address.is_empty() {
            &e.node.address
        } else {
            &e.service.address
        };
        let Ok(ip) = host.parse::<IpAddr>() else {
            tracing::warn!(address = %host, "consul: skipping an instance whose address is not an IP");
            continue;
        };
        out.push(NodeSpec {
            addr: SocketAddr::new(ip, e.service.port),
            weight: e.service.weights.map(|w| w.passing).unwrap_or(1).max(1),
            source: NodeSource::Consul,
        });
    }
    Ok(out)
}

/// The watch loop: runs until shutdown.
pub async fn watch(cfg: ConsulConfig, pool: Arc<NodePool>, shutdown: CancellationToken) {
    let client: Client<_, Empty<Bytes>> = Client::builder(TokioExecutor::new()).build_http();
    let token = std::env::var("CONSUL_HTTP_TOKEN").ok();
    let mut index: u64 = 0;
    let mut backoff = Duration::from_millis(250);
    loop {
        let uri = watch_uri(&cfg, index);
        let fut = fetch(&client, &uri, token.as_deref(), cfg.wait_secs);
        let r = tokio::select! {
            r = fut => r,
            _ = shutdown.cancelled() => return,
        };
        match r {
            Ok((new_index, nodes)) => {
                backoff = Duration::from_millis(250);
                if new_index != index || index == 0 {
                    tracing::debug!(
                        index = new_index,
                        nodes = nodes.len(),
                        "consul: service changed"
                    );
                    pool.set_discovered(nodes);
                }
                index = if new_index < index { 0 } else { new_index };
            }
            Err(e) => {
                tracing::warn!(error = %e, retry_ms = backoff.as_millis() as u64, "consul watch failed");
                index = 0;
                tokio::select! {
                    _ = tokio::time::sleep(backoff) => {}
                    _ = shutdown.cancelled() => return,
                }
                backoff = (backoff * 2).min(Duration::from_secs(10));
            }
        }
    }
}

/// The blocking query for the next `index`: the service name is a path segment, the tag and
/// datacenter query values, each percent-encoded (a name with a space or `&` stays one value).
fn watch_uri(cfg: &ConsulConfig, index: u64) -> String {
    let enc = |v: &str| -> String { url::form_urlencoded::byte_serialize(v.as_bytes()).collect() };
    let mut uri = format!(
        "{}/v1/health/service/{}?passing=true&index={index}&wait={}s",
        cfg.url.trim_end_matches('/'),
        enc(&cfg.service).replace('+', "%20"),
        cfg.wait_secs
    );
    if let Some(t) = &cfg.tag {
        uri.push_str(&format!("&tag={}", enc(t)));
    }
    if let Some(dc) = &cfg.dc {
        uri.push_str(&format!("&dc={}", enc(dc)));
    }
    uri
}

async fn fetch(
    client: &Client<hyper_util::client::legacy::connect::HttpConnector, Empty<Bytes>>,
    uri: &str,
    token: Option<&str>,
    wait_secs: u64,
) -> Result<(u64, Vec<NodeSpec>), MediaError> {
    let mut req = hyper::Request::get(uri);
    if let Some(t) = token {
        req = req.header("X-Consul-Token", t);
    }
    let req = req
        .body(Empty::new())
        .map_err(|e| MediaError::Consul(format!("request: {e}")))?;
    // Consul adds up to wait/16 of jitter to a blocking query
    let limit = Duration::from_secs(wait_secs + wait_secs / 16 + 5);
    let resp = tokio::time::timeout(limit, client.request(req))
        .await
        .map_err(|_| MediaError::Consul("no answer".into()))?
        .map_err(|e| MediaError::Consul(e.to_string()))?;
    if !resp.status().is_success() {
        return Err(MediaError::Consul(format!("HTTP {}", resp.status())));
    }
    let index = resp
        .headers()
        .get("X-Consul-Index")
        .and_then(|v| v.to_str().ok())
        .and_then(|s| s.parse::<u64>().ok())
        .ok_or_else(|| MediaError::Consul("missing X-Consul-Index".into()))?;
    let body = Limited::new(resp.into_body(), 4 << 20)
        .collect()
        .await
        .map_err(|e| MediaError::Consul(format!("body: {e}")))?
        .to_bytes();
    Ok((index.max(1), parse_health(&body)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_watch_query_encodes_its_values() {
        let cfg = ConsulConfig {
            url: "http://127.0.0.1:8500/".into(),
            service: "rtp engine".into(),
            tag: Some("media&fax".into()),
            dc: Some("dc 1".into()),
            wait_secs: 30,
        };
        assert_eq!(
            watch_uri(&cfg, 42),
            "http://127.0.0.1:8500/v1/health/service/rtp%20engine?passing=true&index=42&wait=30s\
             &tag=media%26fax&dc=dc+1"
        );
    }

    #[test]
    fn parses_health_answer() {
        let body = br#"[
          {"Node":{"Node":"a","Address":"127.0.0.1"},"Service":{"ID":"r1","Service":"rtpengine","Address":"","Port":22222,"Weights":{"Passing":3,"Warning":1}},"Checks":[]},
          {"Node":{"Node":"b","Address":"10.0.0.2"},"Service":{"ID":"r2","Service":"rtpengine","Address":"127.0.0.2","Port":22223},"Checks":[]},
          {"Node":{"Node":"c","Address":"host.example"},"Service":{"Address":"","Port":1}}
        ]"#;
        let n = parse_health(body).unwrap();
        assert_eq!(n.len(), 2);
        assert_eq!(n[0].addr, "127.0.0.1:22222".parse().unwrap());
        assert_eq!(n[0].weight, 3);
        assert_eq!(n[1].addr, "127.0.0.2:22223".parse().unwrap());
        assert_eq!(n[1].weight, 1);
        assert!(parse_health(b"{").is_err());
    }
}
