//! warpd: control-plane daemon for wholesale voice carriers. See ARCHITECTURE.md for the map.
#![forbid(unsafe_code)]

pub mod admin;
pub mod api;
pub mod calls;
pub mod cdr;
pub mod cli;
pub mod config;
pub mod consul;
pub mod db;
pub mod deck;
pub mod http_body;
pub mod media;
pub mod metrics;
pub mod numbering;
pub mod provision;
pub mod reload;
pub mod routing;
pub mod rules;
pub mod server;
pub mod systemd;
