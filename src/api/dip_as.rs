//! As which customers a source on the Kamailio surface may dip ([`DipAsPolicy`], from
//! `server.kamailio_dip_as` and `[[server.kamailio_peers]]`).
//!
//! A refused dip is answered exactly like a dip naming an unknown BAN (403 "unknown customer"),
//! so a source cannot learn which BANs exist; both are counted in
//! `warpd_dip_customer_refused_total{reason}` and logged with the source address and the reason
//! (never numbers; the BAN only when it is a real customer's).
//!
//! Owns: the decision. Must not touch: the dip itself, statuses.

use std::collections::HashSet;
use std::net::IpAddr;

use ipnet::IpNet;

use crate::config::{DipAs, DipAsWord, ServerConfig};
use crate::routing::{DipRequest, Snapshot};

/// One source's rule.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DipAsRule {
    /// Any BAN (explicit setting only).
    Any,
    /// The customer is found by the call's source address; a dip naming a `ban` is refused.
    SrcIp,
    /// Only these customers, whether named by `ban` or found by `src_ip`.
    Bans(HashSet<String>),
}

impl From<&DipAs> for DipAsRule {
    fn from(d: &DipAs) -> Self {
        match d {
            DipAs::Word(DipAsWord::Any) => DipAsRule::Any,
            DipAs::Word(DipAsWord::SrcIp) => DipAsRule::SrcIp,
            DipAs::Bans(b) => DipAsRule::Bans(b.iter().map(|s| s.trim().to_string()).collect()),
        }
    }
}

/// Per-source rules: the first peer whose networks contain the source, else the default.
#[derive(Clone, Debug)]
pub struct DipAsPolicy {
    default: DipAsRule,
    peers: Vec<(Vec<IpNet>, DipAsRule)>,
}

impl Default for DipAsPolicy {
    /// Any source may dip as any customer: for embedding and tests; the daemon always builds the
    /// policy from its configuration ([`DipAsPolicy::from_config`], default `src_ip`).
    fn default() -> Self {
        DipAsPolicy::uniform(DipAsRule::Any)
    }
}

/// Why a dip's customer was refused (the `reason` label).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DipAsRefusal {
    /// the source may not dip as this customer
    NotAllowed,
    /// the source dips by `src_ip` only and named a `ban`
    BanNotAccepted,
}

impl DipAsRefusal {
    pub fn label(self) -> &'static str {
        match self {
            DipAsRefusal::NotAllowed => "not_allowed",
            DipAsRefusal::BanNotAccepted => "ban_not_accepted",
        }
    }
}

impl DipAsPolicy {
    /// The same rule for every source.
    pub fn uniform(rule: DipAsRule) -> DipAsPolicy {
        DipAsPolicy {
            default: rule,
            peers: Vec::new(),
        }
    }

    pub fn from_config(c: &ServerConfig) -> DipAsPolicy {
        DipAsPolicy {
            default: (&c.kamailio_dip_as).into(),
            peers: c
                .kamailio_peers
                .iter()
                .map(|p| (p.allow.clone(), (&p.dip_as).into()))
                .collect(),
        }
    }

    fn rule(&self, source: IpAddr) -> &DipAsRule {
        let source = source.to_canonical();
        self.peers
            .iter()
            .find(|(nets, _)| nets.iter().any(|n| n.contains(&source)))
            .map_or(&self.default, |(_, r)| r)
    }

    /// Whether `source` may dip for customer `ban` (the inbound dip's customer, a credential's):
    /// `any` and `src_ip` sources may, a BAN list only for its BANs.
    pub fn check_ban(&self, source: IpAddr, ban: &str) -> Result<(), DipAsRefusal> {
        match self.rule(source) {
            DipAsRule::Any | DipAsRule::SrcIp => Ok(()),
            DipAsRule::Bans(allowed) if allowed.contains(ban) => Ok(()),
            DipAsRule::Bans(_) => Err(DipAsRefusal::NotAllowed),
        }
    }

    /// Whether `source` may send this dip. A customer the snapshot does not know passes (the
    /// engine answers "unknown customer" for it, the same answer as a refusal).
    pub fn check(
        &self,
        source: IpAddr,
        req: &DipRequest,
        snap: &Snapshot,
    ) -> Result<(), DipAsRefusal> {
        match self.rule(source) {
            DipAsRule::Any => Ok(()),
            // a trunk is named by Kamailio after digest authentication: as good as a source
            DipAsRule::SrcIp if req.ban.is_some() => Err(DipAsRefusal::BanNotAccepted),
            DipAsRule::SrcIp => Ok(()),
            DipAsRule::Bans(allowed) => {
                if !snap.knows_customer(req) {
                    return Ok(());
                }
                match snap.ban_for(req) {
                    Some(ban) if allowed.contains(&ban) => Ok(()),
                    _ => Err(DipAsRefusal::NotAllowed),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_matching_peer_wins_else_default() {
        let c: crate::config::Config = crate::config::Config::from_str_with_env(
            "[database]\nurl = \"postgres://x@127.0.0.1/x\"\n[server]\nkamailio_dip_as = \"src_ip\"\n\
             [[server.kamailio_peers]]\nallow = [\"10.0.0.0/24\"]\ndip_as = [\"1001\"]\n\
             [[server.kamailio_peers]]\nallow = [\"10.0.0.0/8\"]\ndip_as = \"any\"\n",
            vec![],
        )
        .unwrap();
        let p = DipAsPolicy::from_config(&c.server);
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        assert_eq!(
            p.rule(ip("10.0.0.9")),
            &DipAsRule::Bans(["1001".to_string()].into())
        );
        assert_eq!(p.rule(ip("::ffff:10.0.0.9")), p.rule(ip("10.0.0.9")));
        assert_eq!(p.rule(ip("10.1.0.9")), &DipAsRule::Any);
        assert_eq!(p.rule(ip("192.0.2.1")), &DipAsRule::SrcIp);
    }
}
