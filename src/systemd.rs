//! systemd service notifications for `warpd serve` under `Type=notify` (systemd/warpd.service).
//!
//! Owns: READY=1 once the first routing snapshot is loaded (so Kamailio, ordered after warpd,
//! starts when dips can be answered), WATCHDOG=1 at half of `WATCHDOG_USEC` while the runtime is
//! alive, STOPPING=1 at shutdown. Without `NOTIFY_SOCKET` (not under systemd) it does nothing.
//! Must not touch: routing, the database, the API; it only reads `Engine::is_ready`.

use std::sync::Arc;
use std::time::Duration;

use sd_notify::NotifyState;
use tokio_util::sync::CancellationToken;

use crate::routing::Engine;

/// How often readiness is checked before the first snapshot is in.
const READY_POLL: Duration = Duration::from_millis(50);

/// Starts the notifier task; it ends with `shutdown`.
pub fn spawn(engine: Arc<Engine>, shutdown: CancellationToken) {
    if std::env::var_os("NOTIFY_SOCKET").is_none() {
        return;
    }
    let mut usec = 0u64;
    // Keep the variables: warpd's children (none today) are not our concern, and tests read them.
    let watchdog = sd_notify::watchdog_enabled(false, &mut usec).then(|| {
        // ping at half the interval, as sd_watchdog_enabled(3) recommends
        Duration::from_micros(usec / 2).max(Duration::from_millis(10))
    });
    tokio::spawn(run(engine, shutdown, watchdog));
}

async fn run(engine: Arc<Engine>, shutdown: CancellationToken, watchdog: Option<Duration>) {
    let mut ready = false;
    let mut next_ping = tokio::time::Instant::now();
    loop {
        if !ready && engine.is_ready() {
            ready = true;
            notify(&[
                NotifyState::Ready,
                NotifyState::Status("routing snapshot loaded, serving dips"),
            ]);
        }
        let now = tokio::time::Instant::now();
        if let Some(every) = watchdog {
            if now >= next_ping {
                notify(&[NotifyState::Watchdog]);
                next_ping = now + every;
            }
        }
        let wait = match (ready, watchdog) {
            (false, Some(every)) => READY_POLL.min(every),
            (false, None) => READY_POLL,
            (true, Some(_)) => next_ping.saturating_duration_since(now),
            (true, None) => {
                shutdown.cancelled().await;
                break;
            }
        };
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = shutdown.cancelled() => break,
        }
    }
    notify(&[NotifyState::Stopping]);
}

fn notify(state: &[NotifyState]) {
    if let Err(e) = sd_notify::notify(false, state) {
        tracing::warn!(error = %e, "systemd notification failed");
    }
}
