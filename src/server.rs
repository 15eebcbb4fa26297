//! `warpd serve`: wires the components together and runs until the shutdown token fires.
//!
//! Owns: start-up order (migrate → reloader → first snapshot → calls/CDR recovery → listener) and
//! shutdown (listener first, then the call writer drains).
//! Must not touch: routing logic, SQL beyond calling `db`, HTTP details beyond calling `api`.

use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::api::{self, ApiLimits, AppState};
use crate::config::Config;
use crate::db;
use crate::metrics::Metrics;
use crate::reload::Reloader;
use crate::routing::Engine;

#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error(transparent)]
    Db(#[from] db::DbError),
    #[error(transparent)]
    Api(#[from] api::ApiError),
    #[error("calls/CDR start-up: {0}")]
    Calls(String),
}

/// Runs the daemon on an already bound listener until `shutdown` is cancelled.
pub async fn run(
    config: Config,
    listener: TcpListener,
    shutdown: CancellationToken,
) -> Result<(), ServeError> {
    let mut client = db::connect(&config.database.url).await?;
    let applied = db::migrate::migrate(&mut client).await?;
    if !applied.is_empty() {
        tracing::info!(?applied, "applied database migrations");
    }
    drop(client);

    let engine = Arc::new(Engine::new(config.routing.clone()));
    let metrics = Arc::new(Metrics::new());
    let reloader = db::reload::DbReloader::start(
        config.database.url.clone(),
        engine.clone(),
        metrics.clone(),
        Duration::from_millis(config.reload.debounce_ms),
        shutdown.clone(),
    );

    // First snapshot: keep trying until it loads (readyz says 503 until then).
    {
        let reloader = reloader.clone();
        let engine = engine.clone();
        let shutdown = shutdown.clone();
        tokio::spawn(async move {
            let mut wait = Duration::from_millis(200);
            while !engine.is_ready() && !shutdown.is_cancelled() {
                match reloader.reload().await {
                    Ok(r) => {
                        tracing::info!(generation = r.generation, ms = r.duration_ms, rate_entries = r.stats.rate_entries,
                            warnings = ?r.stats.warnings, "routing snapshot loaded");
                        break;
                    }
                    Err(e) => tracing::error!(error = %e, "initial snapshot load failed; retrying"),
                }
                tokio::select! {
                    _ = tokio::time::sleep(wait) => {}
                    _ = shutdown.cancelled() => break,
                }
                wait = (wait * 2).min(Duration::from_secs(10));
            }
        });
    }

    // SIGHUP asks for a reload, as operators expect of a daemon.
    #[cfg(unix)]
    {
        let reloader = reloader.clone();
        let shutdown = shutdown.clone();
        tokio::spawn(async move {
            let Ok(mut hup) =
                tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
            else {
                return;
            };
            loop {
                tokio::select! {
                    _ = hup.recv() => {
                        match reloader.reload().await {
                            Ok(r) => tracing::info!(generation = r.generation, ms = r.duration_ms, "reloaded on SIGHUP"),
                            Err(e) => tracing::error!(error = %e, "reload on SIGHUP failed"),
                        }
                    }
                    _ = shutdown.cancelled() => break,
                }
            }
        });
    }

    // calls/CDRs: recover (spool replay, live calls from the database) before serving dips
    // the writer outlives the listener: events acknowledged during the shutdown grace still land
    let calls_stop = CancellationToken::new();
    let calls_guard = calls_stop.clone().drop_guard(); // also stops it on an early return
    let calls = if config.calls.enabled {
        let c = crate::calls::CallService::start(&config, &metrics.registry, calls_stop.clone())
            .await
            .map_err(|e| ServeError::Calls(e.to_string()))?;
        Some(c)
    } else {
        None
    };
    let state = Arc::new(AppState {
        engine,
        reloader: reloader.clone(),
        metrics,
        limits: ApiLimits {
            max_body_bytes: config.server.max_body_bytes,
        },
        calls: calls.clone(),
    });
    tracing::info!(listen = %listener.local_addr().map(|a| a.to_string()).unwrap_or_default(), "serving");
    api::serve(listener, state, shutdown.clone()).await?;
    reloader.join().await;
    drop(calls_guard);
    if let Some(c) = calls {
        c.join().await;
    }
    Ok(())
}
