//! warpd: control-plane daemon for wholesale voice carriers. See ARCHITECTURE.md for the map.
#![forbid(unsafe_code)]

pub mod metrics;
pub mod numbering;
pub mod reload;
pub mod routing;
