//! Waiting on a real condition instead of sleeping: [`eventually`] polls until the condition holds
//! or a deadline passes, then fails naming what was awaited (and the last thing seen).

use std::fmt::Display;
use std::future::Future;
use std::time::{Duration, Instant};

/// The usual deadline: generous, since a loaded 2-core CI machine runs many tests at once.
pub const DEADLINE: Duration = Duration::from_secs(15);

/// How often a condition is checked.
const POLL: Duration = Duration::from_millis(25);

/// What a check returns: `bool` (done or not), `Option<T>` (done with `T`), or `Result<T, E>`
/// (done with `T`, or not yet with `E` describing the last thing seen, shown on timeout).
pub trait Outcome {
    type Value;
    fn into_result(self) -> Result<Self::Value, String>;
}

impl Outcome for bool {
    type Value = ();
    fn into_result(self) -> Result<(), String> {
        if self {
            Ok(())
        } else {
            Err(String::new())
        }
    }
}

impl<T> Outcome for Option<T> {
    type Value = T;
    fn into_result(self) -> Result<T, String> {
        self.ok_or_else(String::new)
    }
}

impl<T, E: Display> Outcome for Result<T, E> {
    type Value = T;
    fn into_result(self) -> Result<T, String> {
        self.map_err(|e| e.to_string())
    }
}

fn timed_out(what: &dyn Display, within: Duration, last: &str) -> ! {
    if last.is_empty() {
        panic!("timed out after {within:?} waiting for {what}");
    }
    panic!("timed out after {within:?} waiting for {what}; last seen: {last}");
}

/// Checks `check` at once and then every 25 ms until it is done; returns its value. Panics after
/// `within` with "timed out … waiting for {what}" and the last `Err` the check gave.
pub async fn eventually<O, F, Fut>(what: impl Display, within: Duration, mut check: F) -> O::Value
where
    O: Outcome,
    F: FnMut() -> Fut,
    Fut: Future<Output = O>,
{
    let t = Instant::now();
    loop {
        match check().await.into_result() {
            Ok(v) => return v,
            Err(last) if t.elapsed() >= within => timed_out(&what, within, &last),
            Err(_) => tokio::time::sleep(POLL).await,
        }
    }
}

/// [`eventually`] for synchronous tests (threads, no runtime).
pub fn eventually_blocking<O, F>(what: impl Display, within: Duration, mut check: F) -> O::Value
where
    O: Outcome,
    F: FnMut() -> O,
{
    let t = Instant::now();
    loop {
        match check().into_result() {
            Ok(v) => return v,
            Err(last) if t.elapsed() >= within => timed_out(&what, within, &last),
            Err(_) => std::thread::sleep(POLL),
        }
    }
}

/// Checks `check` until it gives `Some` or `within` passes (then `None`): for callers that
/// handle a timeout themselves (retry elsewhere) instead of failing.
pub fn poll_blocking<T>(within: Duration, mut check: impl FnMut() -> Option<T>) -> Option<T> {
    let t = Instant::now();
    loop {
        if let Some(v) = check() {
            return Some(v);
        }
        if t.elapsed() >= within {
            return None;
        }
        std::thread::sleep(POLL);
    }
}
