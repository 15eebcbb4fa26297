//! The ops console (`/console/`): in a real browser (Debian's Chromium driven through
//! ChromeDriver by `support::browser`) and over plain HTTP for what a browser would not send
//! (a forged form without the CSRF token, a readonly user's POST, wrong passwords until the
//! lock-out, a reverse proxy's path prefix). Screenshots of every page land in
//! `target/tmp/console-screenshots/` (docs/CONSOLE.md shows a copy).

mod browser;
mod children;
mod cli;
mod http;
mod paging;
mod progress;
mod timing;

use std::path::PathBuf;

use crate::support::{self, TestPg, Warpd};

pub const ADMIN_PW: &str = "correct-horse-battery";
pub const VIEWER_PW: &str = "viewer-password-123";

/// A warpd on the deck test network (`support::demo::DECK_NETWORK`: customer 1001, routes
/// alpha and beta to London) with console users `root` (admin), `deckops` (ops) and `viewer`
/// (readonly).
pub struct Stack {
    pub _pg: TestPg,
    pub client: tokio_postgres::Client,
    pub warpd: Warpd,
}

pub async fn start(env: &[(&str, &str)]) -> Stack {
    let pg = TestPg::start();
    let client = support::demo::deck_network_db(&pg).await;
    for (name, role, pw) in [
        ("root", "admin", ADMIN_PW),
        ("deckops", "ops", ADMIN_PW),
        ("viewer", "readonly", VIEWER_PW),
    ] {
        warpd::console::auth::add_user(&client, name, role, pw, "test")
            .await
            .unwrap();
    }
    let warpd = Warpd::builder(&pg)
        .env("WARPD_ROUTING__DIP_CACHE_TTL_MS", "0")
        .envs(env.iter().copied())
        .start()
        .await;
    Stack {
        _pg: pg,
        client,
        warpd,
    }
}

pub fn screenshots() -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("console-screenshots")
}
