//! Routing policy settings that come from the config file (not the database).

use serde::{Deserialize, Serialize};

/// How to rate a NANP call whose ANI is unknown or not NANP.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum UnknownAniPolicy {
    #[default]
    Interstate,
    Intrastate,
    /// whichever of the interstate / intrastate rates is higher, per route
    Higher,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RoutingSettings {
    /// dialed strings treated as emergency calls
    pub emergency_numbers: Vec<String>,
    /// route name that carries emergency calls (never blocked, limited or priced out)
    pub emergency_route: Option<String>,
    pub unknown_ani_policy: UnknownAniPolicy,
    /// used when a customer has no max_results of its own and the dip passes none
    pub default_max_results: u16,
    /// upper bound on max_results a dip may ask for
    pub max_results_limit: u16,
    /// how long a repeated identical dip (same call) is answered from cache; 0 disables the cache
    pub dip_cache_ttl_ms: u64,
    pub dip_cache_capacity: u64,
    /// STIR/SHAKEN (issue 20): the namespace of the origids (UUIDv5 of `customer:<BAN>` or
    /// `trunk:<name>`); set your own so that origids are yours, and keep it: changing it changes
    /// every origid
    pub stir_origid_namespace: uuid::Uuid,
}

impl Default for RoutingSettings {
    fn default() -> Self {
        RoutingSettings {
            emergency_numbers: vec!["911".into(), "933".into()],
            emergency_route: None,
            unknown_ani_policy: UnknownAniPolicy::Interstate,
            default_max_results: 5,
            max_results_limit: 20,
            dip_cache_ttl_ms: 2000,
            dip_cache_capacity: 100_000,
            stir_origid_namespace: super::stir::DEFAULT_ORIGID_NAMESPACE,
        }
    }
}
