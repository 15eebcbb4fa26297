//! `[server]`: the two listeners (the Kamailio surface and the admin surface), how the Kamailio
//! surface authenticates, and the HTTP availability limits, with validation naming the key.
//!
//! Owns: this section's schema and its checks. Must not touch: sockets (see `crate::api`).

use std::net::SocketAddr;
use std::path::PathBuf;

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
    #[serde(deserialize_with = "super::nets::deserialize")]
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
    /// The Kamailio surface over RESP2 (the Redis protocol) on TCP, for Kamailio's ndb_redis:
    /// `AUTH`, `PING`, `SELECT 0`, `QUIT`, `ECHO` and the dip `LCR` (README "Wire contract").
    /// Same guard as `kamailio_listen` (allow-list, `AUTH <kamailio_secret>`). Unset = off.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kamailio_resp_listen: Option<String>,
    /// The same on a unix socket (ndb_redis `unix=<path>`), created with
    /// `kamailio_resp_socket_mode`; a stale socket file at the path is replaced. Unset = off.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kamailio_resp_socket: Option<std::path::PathBuf>,
    /// Whether a RESP connection must `AUTH <kamailio_secret>` when a secret is set (default
    /// true). false: the RESP listeners rely on the allow-list (TCP) and the socket's permissions
    /// (unix) only, for Kamailio configs without `pass=`: ndb_redis 5.6 sends `AUTH` on a
    /// reconnect *before* it applies `cmd_timeout`, so with `pass=` a warpd that accepts but does
    /// not answer (frozen, overloaded) blocks a SIP worker without bound.
    pub kamailio_resp_require_secret: bool,
    /// permissions of `kamailio_resp_socket` (e.g. `0o660`: warpd's user and group, where
    /// Kamailio's user is a member)
    pub kamailio_resp_socket_mode: u32,
    /// a RESP connection with no command for this long is closed (ndb_redis reconnects on its
    /// next command); a command started must complete within `body_read_timeout_ms`
    pub kamailio_resp_idle_timeout_ms: u64,
    /// largest accepted request body in bytes
    pub max_body_bytes: usize,
    /// a request body must arrive completely within this time (else 408)
    pub body_read_timeout_ms: u64,
    /// a connection must send a complete request header within this time after it opens or after
    /// its previous response (so it also bounds keep-alive idle time; keep it above Kamailio's
    /// connection pool idle time, libcurl: 118 s)
    pub header_read_timeout_ms: u64,
    /// on a TLS listener, the handshake must be complete within this time after the connection
    /// opens (it holds a connection slot meanwhile)
    pub tls_handshake_timeout_ms: u64,
    /// most open connections per listener; further ones wait in the kernel's accept queue
    pub max_connections: usize,
    /// most open connections from one source address per listener; further ones are closed
    pub max_connections_per_source: usize,
    /// how long in-flight requests may take to finish at shutdown
    pub shutdown_grace_ms: u64,
    /// TLS on the Kamailio surface (`[server.kamailio_tls]`); unset = plain HTTP.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kamailio_tls: Option<TlsFiles>,
    /// TLS on the admin surface (`[server.admin_tls]`); unset = plain HTTP.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub admin_tls: Option<TlsFiles>,
}

/// `[server.kamailio_tls]` / `[server.admin_tls]`: a listener's certificate, key and optional
/// client CA, PEM files read at start and again on SIGHUP (see `crate::api::tls`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsFiles {
    /// the certificate chain, leaf first (PEM)
    pub cert_file: PathBuf,
    /// its private key (PEM: PKCS#8, PKCS#1 or SEC1); mode 0600 (or 0640 owned by root)
    pub key_file: PathBuf,
    /// when set, clients must present a certificate issued by one of these CAs (PEM): mutual TLS
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_ca_file: Option<PathBuf>,
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
            kamailio_resp_listen: None,
            kamailio_resp_socket: None,
            kamailio_resp_require_secret: true,
            kamailio_resp_socket_mode: 0o660,
            kamailio_resp_idle_timeout_ms: 3_600_000,
            max_body_bytes: 64 * 1024,
            body_read_timeout_ms: 10_000,
            header_read_timeout_ms: 300_000,
            tls_handshake_timeout_ms: 10_000,
            max_connections: 4096,
            max_connections_per_source: 1024,
            shutdown_grace_ms: 5000,
            kamailio_tls: None,
            admin_tls: None,
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
            .field("kamailio_resp_listen", &self.kamailio_resp_listen)
            .field("kamailio_resp_socket", &self.kamailio_resp_socket)
            .field(
                "kamailio_resp_require_secret",
                &self.kamailio_resp_require_secret,
            )
            .field(
                "kamailio_resp_socket_mode",
                &format_args!("{:#o}", self.kamailio_resp_socket_mode),
            )
            .field(
                "kamailio_resp_idle_timeout_ms",
                &self.kamailio_resp_idle_timeout_ms,
            )
            .field("max_body_bytes", &self.max_body_bytes)
            .field("body_read_timeout_ms", &self.body_read_timeout_ms)
            .field("header_read_timeout_ms", &self.header_read_timeout_ms)
            .field("tls_handshake_timeout_ms", &self.tls_handshake_timeout_ms)
            .field("max_connections", &self.max_connections)
            .field(
                "max_connections_per_source",
                &self.max_connections_per_source,
            )
            .field("shutdown_grace_ms", &self.shutdown_grace_ms)
            .field("kamailio_tls", &self.kamailio_tls)
            .field("admin_tls", &self.admin_tls)
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

    /// `server.kamailio_resp_listen`, parsed; None when off.
    pub fn kamailio_resp_addr(&self) -> Result<Option<SocketAddr>, ConfigError> {
        self.kamailio_resp_listen
            .as_deref()
            .map(|v| addr("server.kamailio_resp_listen", v))
            .transpose()
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
        // a client certificate checked against client_ca_file authenticates like a secret
        let mtls = self
            .kamailio_tls
            .as_ref()
            .is_some_and(|t| t.client_ca_file.is_some());
        if !k.ip().is_loopback()
            && self.kamailio_allow.is_empty()
            && self.kamailio_secret.is_none()
            && !mtls
        {
            return Err(key_err(
                "server.kamailio_listen",
                format!(
                    "{k} is not a loopback address: set server.kamailio_allow (Kamailio's \
                     addresses) and/or server.kamailio_secret (or client certificates: \
                     server.kamailio_tls.client_ca_file), or anyone who reaches the port \
                     can forge calls and CDRs"
                ),
            ));
        }
        super::dip_as::validate(&self.kamailio_dip_as, &self.kamailio_peers)?;
        if let Some(r) = self.kamailio_resp_addr()? {
            if r == k || r == a {
                return Err(key_err(
                    "server.kamailio_resp_listen",
                    "must differ from server.kamailio_listen and server.admin_listen",
                ));
            }
            let secret = self.kamailio_secret.is_some() && self.kamailio_resp_require_secret;
            if !r.ip().is_loopback() && self.kamailio_allow.is_empty() && !secret {
                return Err(key_err(
                    "server.kamailio_resp_listen",
                    format!(
                        "{r} is not a loopback address: set server.kamailio_allow and/or \
                         server.kamailio_secret (the same guard as server.kamailio_listen; a \
                         secret counts only with kamailio_resp_require_secret = true)"
                    ),
                ));
            }
        }
        if self.kamailio_resp_socket_mode > 0o777 {
            return Err(key_err(
                "server.kamailio_resp_socket_mode",
                "must be permission bits (at most 0o777)",
            ));
        }
        if self.max_body_bytes < 1024 {
            return Err(key_err("server.max_body_bytes", "must be at least 1024"));
        }
        for (key, v) in [
            ("server.body_read_timeout_ms", self.body_read_timeout_ms),
            ("server.header_read_timeout_ms", self.header_read_timeout_ms),
            (
                "server.tls_handshake_timeout_ms",
                self.tls_handshake_timeout_ms,
            ),
            (
                "server.kamailio_resp_idle_timeout_ms",
                self.kamailio_resp_idle_timeout_ms,
            ),
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
    }

    /// The provisioning rule for source networks: a bare address is one host, host bits are
    /// refused with a hint, and the error names the key and the entry.
    #[test]
    fn allow_lists_take_bare_addresses_and_refuse_host_bits() {
        let ok = |extra: &str| {
            Config::from_str_with_env(&format!("{MIN}[server]\n{extra}\n"), vec![]).unwrap()
        };
        let c = ok("kamailio_allow = [\"192.0.2.7\", \"2001:db8::1\", \"10.0.0.0/8\"]");
        let nets: Vec<String> = c
            .server
            .kamailio_allow
            .iter()
            .map(|n| n.to_string())
            .collect();
        assert_eq!(nets, ["192.0.2.7/32", "2001:db8::1/128", "10.0.0.0/8"]);
        for (allow, want) in [
            ("10.0.0.7/24", "10.0.0.0/24"),
            ("garbage", "not a CIDR"),
            ("", "not a CIDR"),
        ] {
            let e = err(&format!("kamailio_allow = [\"10.1.0.0/16\", \"{allow}\"]"));
            assert!(e.contains("server.kamailio_allow"), "{allow}: {e}");
            assert!(e.contains("[1]"), "{allow}: {e}");
            assert!(e.contains(want), "{allow}: {e}");
        }
        let c = ok("[[server.kamailio_peers]]\nallow = [\"192.0.2.9\"]\ndip_as = \"any\"");
        assert_eq!(
            c.server.kamailio_peers[0].allow[0].to_string(),
            "192.0.2.9/32"
        );
        let e = err("[[server.kamailio_peers]]\nallow = [\"192.0.2.9/24\"]\ndip_as = \"any\"");
        assert!(e.contains("host bits"), "{e}");
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

    #[test]
    fn tls_sections() {
        let ok = |extra: &str| {
            Config::from_str_with_env(&format!("{MIN}[server]\n{extra}\n"), vec![]).unwrap()
        };
        let c = ok("[server.admin_tls]\ncert_file = \"/c.pem\"\nkey_file = \"/k.pem\"");
        let t = c.server.admin_tls.unwrap();
        assert_eq!(t.cert_file.to_str(), Some("/c.pem"));
        assert_eq!(t.client_ca_file, None);
        assert_eq!(c.server.kamailio_tls, None);
        // unknown and missing keys are named
        let e = err("[server.kamailio_tls]\ncert_file = \"/c\"\nkey_file = \"/k\"\nca = \"/x\"");
        assert!(e.contains("server.kamailio_tls") && e.contains("ca"), "{e}");
        let e = err("[server.kamailio_tls]\ncert_file = \"/c\"");
        assert!(e.contains("key_file"), "{e}");
        // client certificates authenticate a public Kamailio surface
        let e = err("kamailio_listen = \"0.0.0.0:8080\"\n[server.kamailio_tls]\ncert_file = \"/c\"\nkey_file = \"/k\"");
        assert!(
            e.contains("server.kamailio_listen"),
            "TLS alone is no authentication: {e}"
        );
        let c = ok("kamailio_listen = \"0.0.0.0:8080\"\n[server.kamailio_tls]\ncert_file = \"/c\"\nkey_file = \"/k\"\nclient_ca_file = \"/ca\"");
        assert!(c.server.kamailio_tls.is_some());
    }

    #[test]
    fn resp_listener_keys() {
        let c = Config::from_str_with_env(MIN, vec![]).unwrap();
        assert_eq!(
            c.server.kamailio_resp_addr().unwrap(),
            None,
            "off by default"
        );
        let c = Config::from_str_with_env(
            &format!("{MIN}[server]\nkamailio_resp_listen = \"127.0.0.1:6380\"\nkamailio_resp_socket = \"/run/warpd/resp.sock\"\nkamailio_resp_socket_mode = 0o600\n"),
            vec![],
        )
        .unwrap();
        assert_eq!(
            c.server.kamailio_resp_addr().unwrap(),
            Some("127.0.0.1:6380".parse().unwrap())
        );
        assert_eq!(c.server.kamailio_resp_socket_mode, 0o600);
        for (bad, key) in [
            (
                "kamailio_resp_listen = \"nope\"",
                "server.kamailio_resp_listen",
            ),
            (
                "kamailio_resp_listen = \"127.0.0.1:8080\"",
                "server.kamailio_resp_listen",
            ),
            (
                "kamailio_resp_listen = \"0.0.0.0:6380\"",
                "server.kamailio_resp_listen",
            ),
            (
                "kamailio_resp_socket_mode = 0o1777",
                "server.kamailio_resp_socket_mode",
            ),
            (
                "kamailio_resp_idle_timeout_ms = 0",
                "server.kamailio_resp_idle_timeout_ms",
            ),
            ("kamailio_resp_port = 6380", "kamailio_resp_port"),
            (
                "kamailio_resp_listen = \"0.0.0.0:6380\"\nkamailio_secret = \"0123456789abcdef\"\nkamailio_resp_require_secret = false",
                "server.kamailio_resp_listen",
            ),
        ] {
            let e = err(bad);
            assert!(e.contains(key), "{bad}: {e}");
        }
    }
}
