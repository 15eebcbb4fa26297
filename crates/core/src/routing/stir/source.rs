//! Which sources' Identity headers Kamailio may verify (issue 20). Verifying fetches the
//! certificate at the PASSporT's `x5u` from a SIP worker: done for any INVITE, it would let any
//! host on the internet make Kamailio fetch a URL of its choice and hold a SIP worker for the
//! fetch's time-out. So Kamailio first asks warpd what the INVITE's source is (RESP `SOURCE`,
//! `GET /v1/source`, cached for a few seconds in Kamailio) and verifies only for a known one
//! (a trunk authenticated by digest credentials is known once authenticated, without asking).
//!
//! Owns: the classification's values. Must not touch: I/O (the snapshot answers).

use serde::Serialize;

/// What warpd knows a source address as.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SourceKind {
    /// an enabled customer's source address (its own or one of its trunks' networks)
    Customer,
    /// a vendor's or peer's gateway or origination network
    Vendor,
    /// neither: its Identity is not verified
    Unknown,
}

impl SourceKind {
    pub fn as_str(self) -> &'static str {
        match self {
            SourceKind::Customer => "customer",
            SourceKind::Vendor => "vendor",
            SourceKind::Unknown => "unknown",
        }
    }
}

/// `GET /v1/source`'s answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct SourceAnswer {
    pub source: SourceKind,
}
