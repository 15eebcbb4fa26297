//! The integration tests: one binary (one link of the crate) with one module per area. Every test
//! starts what it needs (a throwaway PostgreSQL, an in-process warpd on 127.0.0.1:0) through the
//! shared harness in `tests/support`, so tests of this binary run in parallel threads safely and
//! none is serialized: no fixed ports, no environment variables set in-process, no process-wide
//! setting changed (`warpd::numbering::set_log_numbers` is reached only through the CLI, which
//! the tests run as a child process: `CARGO_BIN_EXE_warpd`).
//!
//! The external SIP/media stack (Kamailio, SIPp, RTPEngine) is in the `e2e` binary.

#[path = "../support/mod.rs"]
mod support;

mod admin_api;
mod api_http;
mod calls_cdr;
mod console;
mod consul_register;
mod db_loader;
mod deck;
mod deck_diff;
mod dip_as;
mod e2e_dip;
mod fd_exhaustion;
mod harness;
mod inbound;
mod inbound_chain;
mod listeners;
mod provision;
mod resp_dip;
mod stir_keys;
mod systemd_units;
mod tls;
mod trunks_admin;
mod vagrant;
