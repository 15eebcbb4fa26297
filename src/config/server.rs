//! `[server]`: the two listeners (the Kamailio surface and the admin surface), how the Kamailio
//! surface authenticates, and the HTTP availability limits, with validation naming the key.
//!
//! Owns: this section's schema and its checks. Must not touch: sockets (see `crate::api`).

use std::net::SocketAddr;

use ipnet::IpNet;
use serde::{Deserialize, Serialize};

use super::dip_as::{DipAs, KamailioPeer};
use super::{key_err, ConfigError};

/// `[server]`.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    /// Before the split into two listeners: refused with a message naming the new keys.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub listen: Option<String>,
    /// The Kamailio surface: dips (`GET /v1/route`, `lcr.route`), call events
    /// (`POST /v1/events`, `call.*`), `/healthz`, `/readyz`. Bind it where Kamailio reaches it.
    pub kamailio_listen: String,
    /// The admin surface: `/v1/admin/…`, CDRs, route quality, `/metrics`, OpenAPI, simulation,
    /// `/rpc` admin methods (`warpd.reload`, `media.*`, `lcr.simulate`). Bind it to loopback or
    /// a management network.
    pub admin_listen: String,
    /// Sources (CIDRs; a bare address is one host) allowed on the Kamailio surface; empty = any.
    pub kamailio_allow: Vec<IpNet>,
    /// Shared secret Kamailio sends as `Authorization: Bearer <secret>` (at least 16 characters;
    /// put it in `WARPD_SERVER__KAMAILIO_SECRET`). Unset = no secret required.
    pub kamailio_secret: Option<String>,
    /// As which customers a Kamailio-surface source may dip (sources matching no
    /// `kamailio_peers` entry): `"src_ip"` (default: by the call's source address only, a dip
    /// naming a `ban` is refused), `"any"`, or a list of BANs.
    pub kamailio_dip_as: DipAs,
    /// Per-source [`DipAs`] settings (first match wins).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub kamailio_peers: Vec<KamailioPeer>,
    /// largest accepted request body in bytes
    pub max_body_bytes: usize,
    /// a request body must arrive completely within this time (else 408)
    pub body_read_timeout_ms: u64,
    /// a connection must send a complete request header within this time after it opens or after
    /// its previous response (so it also bounds keep-alive idle time; keep it above Kamailio's
    /// connection pool idle time, libcurl: 118 s)
    pub header_read_timeout_ms: u64,
    /// most open connections per listener; further ones wait in the kernel's accept queue
    pub max_connections: usize,
    /// most open connections from one source address per listener; further ones are closed
    pub max_connections_per_source: usize,
    /// how long in-flight requests may take to finish at shutdown
    pub shutdown_grace_ms: u64,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            listen: None,
            kamailio_listen: "127.0.0.1:8080".into(),
            admin_listen: "127.0.0.1:8081".into(),
            kamailio_allow: Vec::new(),
            kamailio_secret: None,
            kamailio_dip_as: DipAs::default(),
            kamailio_peers: Vec::new(),
            max_body_bytes: 64 * 1024,
            body_read_timeout_ms: 10_000,
            header_read_timeout_ms: 300_000,
            max_connections: 4096,
            max_connections_per_source: 1024,
            shutdown_grace_ms: 5000,
        }
    }
}

impl std::fmt::Debug for ServerConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerConfig")
            .field("kamailio_listen", &self.kamailio_listen)
            .field("admin_listen", &self.admin_listen)
            .field("kamailio_allow", &self.kamailio_allow)
            .field(
                "kamailio_secret",
                &self.kamailio_secret.as_ref().map(|_| "***"),
            )
            .field("kamailio_dip_as", &self.kamailio_dip_as)
            .field("kamailio_peers", &self.kamailio_peers)
            .field("max_body_bytes", &self.max_body_bytes)
            .field("body_read_timeout_ms", &self.body_read_timeout_ms)
            .field("header_read_timeout_ms", &self.header_read_timeout_ms)
            .field("max_connections", &self.max_connections)
            .field(
                "max_connections_per_source",
                &self.max_connections_per_source,
            )
            .field("shutdown_grace_ms", &self.shutdown_grace_ms)
            .finish()
    }
}

fn addr(key: &str, v: &str) -> Result<SocketAddr, ConfigError> {
    v.parse().map_err(|e| key_err(key, format!("{v:?}: {e}")))
}

impl ServerConfig {
    pub fn kamailio_addr(&self) -> Result<SocketAddr, ConfigError> {
        addr("server.kamailio_listen", &self.kamailio_listen)
    }

    pub fn admin_addr(&self) -> Result<SocketAddr, ConfigError> {
        addr("server.admin_listen", &self.admin_listen)
    }

    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        if self.listen.is_some() {
            return Err(key_err(
                "server.listen",
                "replaced by two listeners: set server.kamailio_listen (dips, call events, \
                 /healthz, /readyz: where Kamailio reaches it) and server.admin_listen (admin API, \
                 CDRs, /metrics, OpenAPI: loopback); see README \"Two listeners\"",
            ));
        }
        let k = self.kamailio_addr()?;
        let a = self.admin_addr()?;
        if k == a {
            return Err(key_err(
                "server.admin_listen",
                "must differ from server.kamailio_listen",
            ));
        }
        if let Some(s) = &self.kamailio_secret {
            if s.len() < 16 || s.bytes().any(|b| !b.is_ascii_graphic()) {
                return Err(key_err(
                    "server.kamailio_secret",
                    "must be at least 16 printable characters without spaces",
                ));
            }
        }
        if !k.ip().is_loopback() && self.kamailio_allow.is_empty() && self.kamailio_secret.is_none()
        {
            return Err(key_err(
                "server.kamailio_listen",
                format!(
                    "{k} is not a loopback address: set server.kamailio_allow (Kamailio's \
                     addresses) and/or server.kamailio_secret, or anyone who reaches the port \
                     can forge calls and CDRs"
                ),
            ));
        }
        super::dip_as::validate(&self.kamailio_dip_as, &self.kamailio_peers)?;
        if self.max_body_bytes < 1024 {
            return Err(key_err("server.max_body_bytes", "must be at least 1024"));
        }
        for (key, v) in [
            ("server.body_read_timeout_ms", self.body_read_timeout_ms),
            ("server.header_read_timeout_ms", self.header_read_timeout_ms),
            ("server.max_connections", self.max_connections as u64),
            (
                "server.max_connections_per_source",
                self.max_connections_per_source as u64,
            ),
        ] {
            if v == 0 {
                return Err(key_err(key, "must be at least 1"));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::super::Config;

    const MIN: &str = "[database]\nurl = \"postgres://warpd@127.0.0.1/warpd\"\n";

    fn err(extra: &str) -> String {
        Config::from_str_with_env(&format!("{MIN}[server]\n{extra}\n"), vec![])
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn old_listen_key_names_the_new_ones() {
        let e = err("listen = \"127.0.0.1:8080\"");
        assert!(e.contains("server.listen"), "{e}");
        assert!(e.contains("server.kamailio_listen"), "{e}");
        assert!(e.contains("server.admin_listen"), "{e}");
    }

    #[test]
    fn public_kamailio_surface_needs_allow_list_or_secret() {
        let e = err("kamailio_listen = \"0.0.0.0:8080\"");
        assert!(e.contains("server.kamailio_listen"), "{e}");
        assert!(e.contains("kamailio_secret"), "{e}");
        let ok = |extra: &str| {
            Config::from_str_with_env(&format!("{MIN}[server]\n{extra}\n"), vec![]).unwrap()
        };
        let c = ok("kamailio_listen = \"0.0.0.0:8080\"\nkamailio_allow = [\"10.0.0.0/24\", \"192.0.2.7/32\"]");
        assert_eq!(c.server.kamailio_allow.len(), 2);
        let c = ok("kamailio_listen = \"0.0.0.0:8080\"\nkamailio_secret = \"0123456789abcdef\"");
        assert!(!format!("{c:?}").contains("0123456789abcdef"));
        assert!(err("kamailio_secret = \"short\"").contains("server.kamailio_secret"));
        assert!(err("kamailio_allow = [\"10.0.0.0/99\"]").contains("server.kamailio_allow"));
        assert!(err("admin_listen = \"127.0.0.1:8080\"").contains("server.admin_listen"));
        assert!(err("max_connections = 0").contains("server.max_connections"));
    }

    #[test]
    fn dip_as_settings() {
        use super::super::dip_as::{DipAs, DipAsWord};
        let ok = |extra: &str| {
            Config::from_str_with_env(&format!("{MIN}[server]\n{extra}\n"), vec![])
                .unwrap_or_else(|e| panic!("{extra}: {e}"))
                .server
        };
        assert_eq!(ok("").kamailio_dip_as, DipAs::Word(DipAsWord::SrcIp));
        assert_eq!(
            ok("kamailio_dip_as = \"any\"").kamailio_dip_as,
            DipAs::Word(DipAsWord::Any)
        );
        assert_eq!(
            ok("kamailio_dip_as = [\"1001\"]").kamailio_dip_as,
            DipAs::Bans(vec!["1001".into()])
        );
        let c = ok(
            "[[server.kamailio_peers]]\nallow = [\"10.0.0.0/24\"]\ndip_as = [\"1001\", \"1002\"]",
        );
        assert_eq!(c.kamailio_peers.len(), 1);
        for (bad, key) in [
            ("kamailio_dip_as = []", "server.kamailio_dip_as"),
            ("kamailio_dip_as = [\"\"]", "server.kamailio_dip_as"),
            ("kamailio_dip_as = \"everyone\"", "server.kamailio_dip_as"),
            (
                "[[server.kamailio_peers]]\nallow = []\ndip_as = \"any\"",
                "server.kamailio_peers[0].allow",
            ),
            (
                "[[server.kamailio_peers]]\nallow = [\"10.0.0.1/32\"]\ndip_as = []",
                "server.kamailio_peers[0].dip_as",
            ),
        ] {
            let e = err(bad);
            assert!(e.contains(key), "{bad}: {e}");
        }
    }
}
