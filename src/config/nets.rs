//! Source networks in the configuration (`server.kamailio_allow`, `[[server.kamailio_peers]]`
//! `allow`), by the provisioning rule (`warpd_core::rules::source_cidr`): a CIDR or a
//! bare address (one host: /32 or /128), host bits refused with a hint, so that one spelling
//! means the same in `warpd apply`, the admin API and the configuration.

use ipnet::IpNet;
use serde::{Deserialize, Deserializer};

/// Deserializes a list of source networks; an error names the entry and says why.
pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<IpNet>, D::Error> {
    let raw = Vec::<String>::deserialize(d)?;
    raw.iter()
        .enumerate()
        .map(|(i, v)| {
            let text = warpd_core::rules::source_cidr(format!("[{i}]"), v)
                .map_err(serde::de::Error::custom)?;
            text.parse::<IpNet>().map_err(serde::de::Error::custom)
        })
        .collect()
}
