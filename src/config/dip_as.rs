//! `server.kamailio_dip_as` and `[[server.kamailio_peers]]`: as which customers a source on the
//! Kamailio surface may dip (see README "Which customers a source may dip as").
//!
//! Owns: this schema and its checks. Must not touch: the check itself (see `crate::api`).

use ipnet::IpNet;
use serde::{Deserialize, Serialize};

use super::{key_err, ConfigError};

/// As which customers a source may dip.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum DipAs {
    /// `"src_ip"` (identify the customer by the call's source address only; a dip naming a
    /// `ban` is refused) or `"any"` (any BAN; an explicit choice, never the default).
    Word(DipAsWord),
    /// `["1001", "1002"]`: only these BANs, named or found by `src_ip`.
    Bans(Vec<String>),
}

/// The named [`DipAs`] settings.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DipAsWord {
    SrcIp,
    Any,
}

impl Default for DipAs {
    fn default() -> Self {
        DipAs::Word(DipAsWord::SrcIp)
    }
}

/// `[[server.kamailio_peers]]`: the [`DipAs`] of the sources in `allow` (first match wins;
/// sources matching no peer get `server.kamailio_dip_as`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KamailioPeer {
    /// the peer's source networks (CIDRs; a bare address is one host)
    #[serde(deserialize_with = "super::nets::deserialize")]
    pub allow: Vec<IpNet>,
    pub dip_as: DipAs,
}

impl DipAs {
    pub(super) fn validate(&self, key: &str) -> Result<(), ConfigError> {
        if let DipAs::Bans(bans) = self {
            if bans.is_empty() {
                return Err(key_err(
                    key,
                    "an empty list allows no customer; use \"src_ip\" or list BANs",
                ));
            }
            if let Some(b) = bans.iter().find(|b| b.trim().is_empty() || b.len() > 64) {
                return Err(key_err(
                    key,
                    format!(
                        "{}: not a BAN (1 to 64 characters)",
                        warpd_core::excerpt::excerpt(b)
                    ),
                ));
            }
        }
        Ok(())
    }
}

pub(super) fn validate(default: &DipAs, peers: &[KamailioPeer]) -> Result<(), ConfigError> {
    default.validate("server.kamailio_dip_as")?;
    for (i, p) in peers.iter().enumerate() {
        if p.allow.is_empty() {
            return Err(key_err(
                &format!("server.kamailio_peers[{i}].allow"),
                "must list at least one network",
            ));
        }
        p.dip_as
            .validate(&format!("server.kamailio_peers[{i}].dip_as"))?;
    }
    Ok(())
}
