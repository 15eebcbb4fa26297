//! warpd: control-plane daemon for wholesale voice carriers. See ARCHITECTURE.md for the map.
#![forbid(unsafe_code)]
#![deny(clippy::unwrap_used, clippy::expect_used)]

pub mod admin;
pub mod api;
pub mod calls;
pub mod cdr;
pub mod cli;
pub mod config;
pub mod console;
pub mod consul;
pub mod credit;
pub mod db;
pub mod deck;
pub mod http_body;
pub mod media;
pub mod metrics;
pub mod provision;
pub mod reload;
pub mod server;
pub mod stir;
pub mod systemd;
pub mod tls;

// The pure core (no I/O; see crates/core) under the paths the daemon has always used.
pub use warpd_core::{numbering, routing, rules};
