//! The one test harness of the integration binaries (`tests/integration`, `tests/e2e`):
//!
//! - [`TestPg`]: a throwaway PostgreSQL cluster per test ([`pg`]);
//! - [`Warpd`]: `warpd::server::run` in-process on 127.0.0.1, built with
//!   `Warpd::builder(&pg).env(..).toml(..).config(|c| ..).start().await`, ready once `/readyz`
//!   answers 200, stopped with [`Warpd::stop`] (cancel + join, checked clean);
//! - [`Api`]: a base URL and an HTTP client with the requests tests make (`get_json`, `rpc`,
//!   `dip`, `events`, `metric`, admin `request`), shared by [`Warpd`] and by tests that run
//!   `warpd::api::serve` themselves;
//! - [`eventually`] / [`eventually_blocking`]: poll a condition until a deadline, failing with what
//!   was awaited. Tests never sleep to synchronise; a sleep that is part of a scenario says why;
//! - [`TestCerts`]: a CA and certificates generated at test time; `Warpd::builder(..)
//!   .kamailio_tls(&certs)` / `.admin_tls(&certs)` serve a listener over TLS, and the [`Api`]
//!   talks HTTPS to it; [`Warpd::builder(..).spawn_process()`](WarpdBuilder::spawn_process) runs
//!   the binary instead (a real SIGHUP);
//! - [`demo`]: the databases most tests start from (demo network, admin deck network);
//! - [`media`]: a real `rtpengine` per test and ng helpers (e2e binary).
//!
//! Everything here is per test (a free port, a temp dir, a cluster of its own) and nothing sets a
//! process-wide value (environment, `warpd::numbering::set_log_numbers`, a tracing subscriber is
//! only ever `try_init`ed), so the tests of one binary run in parallel threads safely.
#![allow(dead_code, unused_imports)]

mod api;
mod audit;
pub mod bignet;
pub mod browser;
pub mod certs;
pub mod demo;
pub mod media;
mod pg;
mod tools;
pub mod wait;
pub mod warpd;

pub use api::Api;
pub use audit::{actors, allow_audit_inserts, fail_audit_inserts};
pub use certs::TestCerts;
pub use pg::TestPg;
pub use tools::{copy_dir, repo, require_tool};
pub use wait::{eventually, eventually_blocking, Outcome, DEADLINE};
pub use warpd::{Warpd, WarpdBuilder, WarpdProcess};

/// Sends `req` and returns its body as JSON (any status: tests assert on the body).
pub async fn json(req: reqwest::RequestBuilder) -> serde_json::Value {
    req.send()
        .await
        .expect("request")
        .json()
        .await
        .expect("JSON body")
}

/// Sends `req` and returns its body as text (any status).
pub async fn text(req: reqwest::RequestBuilder) -> String {
    req.send()
        .await
        .expect("request")
        .text()
        .await
        .expect("text body")
}
