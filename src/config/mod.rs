//! Configuration: `warpd.toml` (see `warpd.example.toml`) with environment overrides, validated at
//! start with errors that name the key.
//!
//! Override any key with `WARPD_<SECTION>__<KEY>` (double underscore between section and key), e.g.
//! `WARPD_DATABASE__URL=postgres://…`, `WARPD_SERVER__KAMAILIO_LISTEN=10.0.0.2:8080`,
//! `WARPD_ROUTING__EMERGENCY_NUMBERS='["911","933"]'`. Values are read as TOML values when they parse
//! as one (numbers, booleans, arrays), else as strings.
//!
//! Owns: the config schema and its validation. Must not touch: anything at run time (no I/O beyond
//! reading the file it is given).

mod console;
mod dip_as;
mod nets;
mod server;

use std::net::SocketAddr;
use std::path::Path;

use serde::{Deserialize, Serialize};

pub use console::ConsoleConfig;
pub use dip_as::{DipAs, DipAsWord, KamailioPeer};
pub use server::{ServerConfig, TlsFiles};

use crate::routing::RoutingSettings;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    #[serde(default)]
    pub server: ServerConfig,
    pub database: DatabaseConfig,
    #[serde(default)]
    pub reload: ReloadConfig,
    #[serde(default)]
    pub routing: RoutingSettings,
    #[serde(default)]
    pub log: LogConfig,
    /// media control (RTPEngine over ng); absent = off
    #[serde(default)]
    pub media: Option<crate::media::MediaConfig>,
    #[serde(default)]
    pub calls: CallsConfig,
    #[serde(default)]
    pub cdr: CdrConfig,
    /// optional Consul self-registration (src/consul.rs); absent = off
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub consul: Option<crate::consul::ConsulConfig>,
    /// the ops console (`/console/` on the admin listener)
    #[serde(default)]
    pub console: ConsoleConfig,
    /// STIR/SHAKEN signing key and certificate (issue 20), checked at start; absent = none
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stir: Option<crate::stir::StirConfig>,
}

/// `[calls]`: live call state, limits, reaper, route quality (see `crate::calls`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CallsConfig {
    /// track calls (dips with a call_id, call.* events) and write CDRs
    pub enabled: bool,
    /// an answered call open longer than this is closed by the reaper (CDR flag reaped_max_duration)
    pub max_call_duration_s: u64,
    /// a call not answered and not ended this long after its dip is closed (flag reaped_no_end)
    pub max_setup_s: u64,
    /// events of a call-id never dipped are kept this long, then written as an orphan CDR
    pub orphan_ttl_s: u64,
    /// how often the reaper runs
    pub reaper_interval_ms: u64,
    /// how often customer limits and route capacities are re-read from the database
    pub limits_refresh_ms: u64,
    /// finished call-ids are remembered this long so late retries are recognised
    pub finished_memory_s: u64,
    /// rolling window of route quality (ASR/ACD/PDD)
    pub quality_window_s: u64,
    /// route quality is also kept per destination group: the first N digits of the E.164 DNIS
    /// (0 = per route only)
    pub quality_prefix_digits: usize,
    /// demote (move last) routes whose ASR is under this floor at the dip; 0 = off
    pub asr_floor: f64,
    /// ... once they have at least this many attempts in the window
    pub asr_min_attempts: u64,
    /// Kamailio's JSON-RPC over HTTP (kamailio.cfg `RPC_IP:RPC_PORT`, path `/RPC`): admin
    /// `call.hangup` ends live calls through it (credit, issue 21); unset = no call.hangup
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kamailio_rpc_url: Option<String>,
}

impl Default for CallsConfig {
    fn default() -> Self {
        CallsConfig {
            enabled: true,
            max_call_duration_s: 4 * 3600,
            max_setup_s: 300,
            orphan_ttl_s: 600,
            reaper_interval_ms: 1000,
            limits_refresh_ms: 5000,
            finished_memory_s: 600,
            quality_window_s: 3600,
            quality_prefix_digits: 4,
            asr_floor: 0.0,
            asr_min_attempts: 50,
            kamailio_rpc_url: None,
        }
    }
}

/// `[cdr]`: durable event/CDR writing (see `crate::cdr`).
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CdrConfig {
    /// local spool for events while PostgreSQL is unreachable (fsync'd; replayed when it is back)
    pub spool_dir: String,
    /// most events written in one database transaction
    pub batch_size: usize,
    /// a batch of fire-and-forget events (the dips' call starts) waits this long after its
    /// first event for more, up to `batch_size` (0 = write whatever is queued at once). For a
    /// dip-only deployment (Kamailio sends no events): at 3,000 calls/s, 5 ms cut PostgreSQL's
    /// CPU per call from ~49 to ~23 µs. A batch holding an event somebody waits on (Kamailio's
    /// acked events) does not wait. 0 by default: with events on, 5 ms cost ~10 % of the
    /// end-to-end calls/s in the CDR benchmark.
    pub flush_interval_ms: u64,
    /// bound of the event queue in front of the writer
    pub queue_capacity: usize,
    /// a database write taking longer than this counts as a failure (the batch goes to the spool)
    pub db_timeout_ms: u64,
    /// when set, GET /v1/cdrs and /v1/cdrs/export require `Authorization: Bearer <token>`
    pub api_token: Option<String>,
}

impl Default for CdrConfig {
    fn default() -> Self {
        CdrConfig {
            spool_dir: "/var/lib/warpd/spool".into(),
            batch_size: 5000,
            flush_interval_ms: 0,
            queue_capacity: 65536,
            db_timeout_ms: 5000,
            api_token: None,
        }
    }
}

impl std::fmt::Debug for CdrConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CdrConfig")
            .field("spool_dir", &self.spool_dir)
            .field("batch_size", &self.batch_size)
            .field("flush_interval_ms", &self.flush_interval_ms)
            .field("queue_capacity", &self.queue_capacity)
            .field("db_timeout_ms", &self.db_timeout_ms)
            .field("api_token", &self.api_token.as_ref().map(|_| "***"))
            .finish()
    }
}

#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatabaseConfig {
    /// libpq-style URL; put the password in the environment (WARPD_DATABASE__URL), not the file
    pub url: String,
    #[serde(default = "default_pool")]
    pub pool_size: usize,
}

impl std::fmt::Debug for DatabaseConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DatabaseConfig")
            .field("url", &redact_url(&self.url))
            .field("pool_size", &self.pool_size)
            .finish()
    }
}

fn default_pool() -> usize {
    8
}

/// Hides the password of a database URL for logs.
pub fn redact_url(u: &str) -> String {
    match url::Url::parse(u) {
        Ok(mut p) if p.password().is_some() => {
            let _ = p.set_password(Some("***"));
            p.to_string()
        }
        Ok(p) => p.to_string(),
        Err(_) => "<unparsable url>".into(),
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ReloadConfig {
    /// quiet time after the last change notification of a burst before rebuilding the snapshot
    /// (the first notification after a quiet period is built at once)
    pub debounce_ms: u64,
}

impl Default for ReloadConfig {
    fn default() -> Self {
        ReloadConfig { debounce_ms: 250 }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    #[default]
    Json,
    Text,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogConfig {
    /// tracing filter, e.g. "info" or "warpd=debug,info"; RUST_LOG wins when set
    pub level: String,
    pub format: LogFormat,
    /// log phone numbers in clear (debugging only); masked (+1******1234) otherwise
    pub log_numbers: bool,
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            level: "info".into(),
            format: LogFormat::Json,
            log_numbers: false,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("config is not valid TOML: {0}")]
    Syntax(String),
    #[error("config key `{key}`: {message}")]
    Key { key: String, message: String },
    #[error("environment variable {var}: {message}")]
    Env { var: String, message: String },
}

fn key_err(key: &str, message: impl Into<String>) -> ConfigError {
    ConfigError::Key {
        key: key.into(),
        message: message.into(),
    }
}

impl Config {
    /// Reads the file, applies `WARPD_…` overrides from the process environment, validates.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.display().to_string(),
            source,
        })?;
        Self::from_str_with_env(&text, std::env::vars())
    }

    /// Parses config text with the given environment (tests pass their own).
    pub fn from_str_with_env(
        text: &str,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Config, ConfigError> {
        let mut table: toml::Table = text
            .parse()
            .map_err(|e: toml::de::Error| ConfigError::Syntax(e.to_string()))?;
        let mut env: Vec<(String, String)> = env.into_iter().collect();
        env.sort();
        for (var, value) in env {
            let Some(rest) = var.strip_prefix("WARPD_") else {
                continue;
            };
            let Some((section, key)) = rest.split_once("__") else {
                continue;
            };
            let (section, key) = (section.to_ascii_lowercase(), key.to_ascii_lowercase());
            if section.is_empty() || key.is_empty() {
                return Err(ConfigError::Env {
                    var,
                    message: "expected WARPD_<SECTION>__<KEY>".into(),
                });
            }
            let parsed = format!("v = {value}")
                .parse::<toml::Table>()
                .ok()
                .and_then(|mut t| t.remove("v"))
                .unwrap_or(toml::Value::String(value));
            let sec = table
                .entry(section.clone())
                .or_insert_with(|| toml::Value::Table(toml::Table::new()));
            match sec {
                toml::Value::Table(t) => {
                    t.insert(key, parsed);
                }
                _ => {
                    return Err(ConfigError::Env {
                        var,
                        message: format!("`{section}` is not a section"),
                    })
                }
            }
        }
        let de = toml::Value::Table(table);
        let cfg: Config = serde_path_to_error::deserialize(de).map_err(|e| {
            let key = e.path().to_string();
            key_err(&key, e.into_inner().to_string())
        })?;
        cfg.validate()?;
        Ok(cfg)
    }

    pub fn validate(&self) -> Result<(), ConfigError> {
        self.server.validate()?;
        self.console.validate()?;
        if let Some(c) = &self.consul {
            c.agent()
                .map_err(|e| key_err("consul.address", e.to_string()))?;
            if let Some(a) = &c.advertise {
                a.parse::<SocketAddr>()
                    .map_err(|e| key_err("consul.advertise", format!("{a:?}: {e}")))?;
            }
        }
        match url::Url::parse(&self.database.url) {
            Ok(u) if u.scheme() == "postgres" || u.scheme() == "postgresql" => {}
            Ok(_) => return Err(key_err("database.url", "scheme must be postgres://")),
            Err(e) => return Err(key_err("database.url", e.to_string())),
        }
        if self.database.pool_size == 0 {
            return Err(key_err("database.pool_size", "must be at least 1"));
        }
        if self.reload.debounce_ms == 0 || self.reload.debounce_ms > 60_000 {
            return Err(key_err("reload.debounce_ms", "must be between 1 and 60000"));
        }
        let r = &self.routing;
        if r.max_results_limit == 0 {
            return Err(key_err("routing.max_results_limit", "must be at least 1"));
        }
        if r.default_max_results == 0 || r.default_max_results > r.max_results_limit {
            return Err(key_err(
                "routing.default_max_results",
                format!(
                    "must be between 1 and routing.max_results_limit ({})",
                    r.max_results_limit
                ),
            ));
        }
        if let Some(bad) = r
            .emergency_numbers
            .iter()
            .find(|n| n.is_empty() || !n.bytes().all(|b| b.is_ascii_digit()))
        {
            return Err(key_err(
                "routing.emergency_numbers",
                format!("{bad:?} is not a digit string"),
            ));
        }
        if r.emergency_route.as_deref() == Some("") {
            return Err(key_err(
                "routing.emergency_route",
                "must not be empty (omit it instead)",
            ));
        }
        if let Some(m) = &self.media {
            m.validate().map_err(|e| match e {
                crate::media::MediaError::Config { key, message } => key_err(&key, message),
                other => key_err("media", other.to_string()),
            })?;
        }
        let (c, d) = (&self.calls, &self.cdr);
        for (key, v) in [
            ("calls.max_call_duration_s", c.max_call_duration_s),
            ("calls.max_setup_s", c.max_setup_s),
            ("calls.orphan_ttl_s", c.orphan_ttl_s),
            ("calls.reaper_interval_ms", c.reaper_interval_ms),
            ("calls.limits_refresh_ms", c.limits_refresh_ms),
            ("calls.quality_window_s", c.quality_window_s),
            ("cdr.batch_size", d.batch_size as u64),
            ("cdr.queue_capacity", d.queue_capacity as u64),
            ("cdr.db_timeout_ms", d.db_timeout_ms),
        ] {
            if v == 0 {
                return Err(key_err(key, "must be at least 1"));
            }
        }
        if !(0.0..=1.0).contains(&c.asr_floor) {
            return Err(key_err("calls.asr_floor", "must be between 0 and 1"));
        }
        if c.enabled && d.spool_dir.trim().is_empty() {
            return Err(key_err("cdr.spool_dir", "must not be empty"));
        }
        if d.api_token.as_deref().is_some_and(|t| t.len() < 16) {
            return Err(key_err("cdr.api_token", "must be at least 16 characters"));
        }
        if tracing_subscriber::EnvFilter::try_new(&self.log.level).is_err() {
            return Err(key_err(
                "log.level",
                format!("{:?} is not a valid filter", self.log.level),
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIN: &str = "[database]\nurl = \"postgres://warpd@127.0.0.1/warpd\"\n";

    fn env(v: &[(&str, &str)]) -> Vec<(String, String)> {
        v.iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect()
    }

    #[test]
    fn example_config_is_valid() {
        let text = include_str!("../../warpd.example.toml");
        let c = Config::from_str_with_env(text, vec![]).unwrap();
        assert_eq!(c.routing.emergency_numbers, vec!["911", "933"]);
        assert!(c.media.is_none(), "media stays off in the example");
        // the commented [media] section is valid once uncommented
        let (_, media) = text
            .split_once("\n# [media]")
            .expect("example documents [media]");
        let media: String = std::iter::once("[media]")
            .chain(
                media
                    .lines()
                    .skip(1)
                    .take_while(|l| !l.trim().is_empty())
                    .filter_map(|l| l.strip_prefix("# ")),
            )
            .collect::<Vec<_>>()
            .join("\n");
        let c = Config::from_str_with_env(&format!("{text}\n{media}\n"), vec![]).unwrap();
        let m = c.media.expect("uncommented [media] parses");
        assert_eq!(m.node_specs().unwrap().len(), 1);
        assert_eq!(m.ng_listen, "127.0.0.1:22223");
    }

    #[test]
    fn media_section_is_optional_and_validated() {
        let c = Config::from_str_with_env(MIN, vec![]).unwrap();
        assert!(c.media.is_none());
        let err = Config::from_str_with_env(
            &format!("{MIN}[media]\nnodes = [{{ address = \"x\" }}]\n"),
            vec![],
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("media.nodes[0].address"), "{err}");
        let c = Config::from_str_with_env(
            &format!("{MIN}[media]\nnodes = [{{ address = \"127.0.0.1:22222\", weight = 2 }}]\n"),
            env(&[("WARPD_MEDIA__NG_LISTEN", "127.0.0.1:30222")]),
        )
        .unwrap();
        let m = c.media.unwrap();
        assert_eq!(m.ng_listen, "127.0.0.1:30222");
        assert_eq!(m.nodes[0].weight, 2);
    }

    #[test]
    fn defaults_and_env_overrides() {
        let c = Config::from_str_with_env(MIN, vec![]).unwrap();
        assert_eq!(c.server.kamailio_listen, "127.0.0.1:8080");
        assert_eq!(c.server.admin_listen, "127.0.0.1:8081");
        let c = Config::from_str_with_env(
            MIN,
            env(&[
                ("WARPD_SERVER__KAMAILIO_LISTEN", "127.0.0.2:9090"),
                ("WARPD_ROUTING__DIP_CACHE_TTL_MS", "0"),
                ("WARPD_ROUTING__EMERGENCY_NUMBERS", "[\"911\", \"112\"]"),
                ("WARPD_ROUTING__UNKNOWN_ANI_POLICY", "higher"),
                ("WARPD_PG_BIN", "/ignored/without/double/underscore"),
                ("HOME", "/root"),
            ]),
        )
        .unwrap();
        assert_eq!(c.server.kamailio_listen, "127.0.0.2:9090");
        assert_eq!(c.routing.dip_cache_ttl_ms, 0);
        assert_eq!(c.routing.emergency_numbers, vec!["911", "112"]);
        assert_eq!(
            c.routing.unknown_ani_policy,
            crate::routing::UnknownAniPolicy::Higher
        );
    }

    #[test]
    fn errors_name_the_key() {
        type Case = (&'static str, Vec<(String, String)>, &'static str);
        let cases: &[Case] = &[
            (
                "[server]\nkamailio_listen = \"nope\"\n",
                vec![],
                "server.kamailio_listen",
            ),
            (
                "[server]\nadmin_listen = \"nope\"\n",
                vec![],
                "server.admin_listen",
            ),
            ("[server]\nlistne = \"x\"\n", vec![], "listne"),
            ("", vec![], "database"),
            (
                "[routing]\ndefault_max_results = \"five\"\n",
                vec![],
                "routing.default_max_results",
            ),
            (
                "[routing]\nunknown_ani_policy = \"cheapest\"\n",
                vec![],
                "routing.unknown_ani_policy",
            ),
            (
                "",
                env(&[("WARPD_DATABASE__POOL_SIZE", "0")]),
                "database.pool_size",
            ),
            (
                "",
                env(&[("WARPD_DATABASE__URL", "mysql://x")]),
                "database.url",
            ),
            ("", env(&[("WARPD_ROUTING__BOGUS", "1")]), "bogus"),
            ("", env(&[("WARPD_LOG__LEVEL", "[[[")]), "log.level"),
        ];
        for (extra, e, key) in cases {
            let text = if extra.contains("[database]") || extra.is_empty() && key == &"database" {
                extra.to_string()
            } else {
                format!("{MIN}{extra}")
            };
            let err = Config::from_str_with_env(&text, e.clone())
                .unwrap_err()
                .to_string();
            assert!(err.contains(key), "{key}: {err}");
        }
    }

    #[test]
    fn database_password_is_redacted_in_debug() {
        let c = Config::from_str_with_env(
            "[database]\nurl = \"postgres://warpd:s3cret@db/warpd\"\n",
            vec![],
        )
        .unwrap();
        let dbg = format!("{c:?}");
        assert!(!dbg.contains("s3cret"), "{dbg}");
        assert!(dbg.contains("***"));
    }
}
