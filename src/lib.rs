//! warpd: control-plane daemon for wholesale voice carriers. See ARCHITECTURE.md for the map.
#![forbid(unsafe_code)]

pub mod api;
pub mod cli;
pub mod config;
pub mod consul;
pub mod db;
pub mod metrics;
pub mod numbering;
pub mod provision;
pub mod reload;
pub mod routing;
pub mod server;
pub mod systemd;
