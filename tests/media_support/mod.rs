//! The media helpers for `benches/media_proxy.rs`, which includes this file by path: they live in
//! `tests/support/media.rs` (the tests reach them as `support::media`).

#[allow(dead_code)]
#[path = "../support/media.rs"]
mod media;
#[allow(dead_code)]
#[path = "../support/wait.rs"]
mod wait;

#[allow(unused_imports)]
pub use media::*;
