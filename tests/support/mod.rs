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
//! - [`demo`]: the databases most tests start from (demo network, admin deck network);
//! - [`media`]: a real `rtpengine` per test and ng helpers (e2e binary).
//!
//! Tests that must not run concurrently in one process take [`serial`] (see its doc).
#![allow(dead_code, unused_imports)]

mod api;
pub mod demo;
pub mod media;
mod pg;
mod tools;
pub mod wait;
pub mod warpd;

pub use api::Api;
pub use pg::TestPg;
pub use tools::{copy_dir, repo, require_tool};
pub use wait::{eventually, eventually_blocking, Outcome, DEADLINE};
pub use warpd::{Warpd, WarpdBuilder};

/// Sends `req` and returns its body as JSON (any status: tests assert on the body).
pub async fn json(req: reqwest::RequestBuilder) -> serde_json::Value {
    req.send()
        .await
        .expect("request")
        .json()
        .await
        .expect("JSON body")
}

/// A process-wide lock for tests that cannot share the process with each other (a fixed port
/// range, a global setting). Hold the guard for the whole test. Poisoning is ignored: a failed
/// test must not fail the next one.
pub fn serial() -> std::sync::MutexGuard<'static, ()> {
    static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
    LOCK.lock().unwrap_or_else(|e| e.into_inner())
}
