//! `warpd serve`: wires the components together and runs until the shutdown token fires.
//!
//! Owns: start-up order (migrate → reloader → first snapshot → calls/CDR recovery → listener) and
//! shutdown (listener first, then the call writer drains).
//! Must not touch: routing logic, SQL beyond calling `db`, HTTP details beyond calling `api`.

use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::api::{self, ApiLimits, AppState, KamailioAuth, Listeners, ListenersTls};
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
    #[error(transparent)]
    Media(#[from] crate::media::MediaError),
    #[error("calls/CDR start-up: {0}")]
    Calls(#[from] crate::calls::CallsError),
    #[error("listener TLS: {0}")]
    Tls(#[from] api::TlsError),
    #[error("STIR/SHAKEN: {0}")]
    Stir(#[from] crate::stir::StirError),
}

/// Runs the daemon on already bound listeners until `shutdown` is cancelled.
pub async fn run(
    config: Config,
    listeners: Listeners,
    shutdown: CancellationToken,
) -> Result<(), ServeError> {
    let metrics = Arc::new(Metrics::new());
    // the listeners' certificates first: a missing or bad file stops the start, naming the key
    let tls = ListenersTls::load(&config.server, &metrics.registry)?;
    // STIR/SHAKEN (issue 20): a key readable by others, or not the certificate's, stops the start
    if let Some(stir) = &config.stir {
        let info = crate::stir::check(stir)?;
        let now = chrono::Utc::now().timestamp();
        let line = crate::stir::describe(&info, now);
        if info.days_left(now) < i64::from(stir.expiry_warn_days) {
            tracing::warn!("STIR/SHAKEN signing {line}");
        } else {
            tracing::info!("STIR/SHAKEN signing {line}");
        }
        metrics.stir_cert_not_after.set(info.not_after);
    }
    let mut client = db::connect(&config.database.url).await?;
    let applied = db::migrate::migrate(&mut client).await?;
    if !applied.is_empty() {
        tracing::info!(?applied, "applied database migrations");
    }
    drop(client);

    let engine = Arc::new(Engine::new(config.routing.clone()));
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

    // systemd (Type=notify): READY=1 after the first snapshot, watchdog pings; no-op otherwise.
    crate::systemd::spawn(engine.clone(), shutdown.clone());
    // Consul (optional): register once ready, deregister at shutdown (awaited below).
    // Consul checks /readyz on the Kamailio listener (the one Kamailio hosts look for)
    let consul = match (config.consul.clone(), listeners.kamailio.local_addr()) {
        (Some(c), Ok(addr)) => Some(crate::consul::spawn(
            c,
            addr,
            engine.clone(),
            shutdown.clone(),
        )),
        _ => None,
    };

    // SIGHUP re-reads the listeners' certificates and reloads the routing snapshot, as
    // operators expect of a daemon.
    #[cfg(unix)]
    {
        let reloader = reloader.clone();
        let shutdown = shutdown.clone();
        let tls = tls.clone();
        tokio::spawn(async move {
            let Ok(mut hup) =
                tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
            else {
                return;
            };
            loop {
                tokio::select! {
                    _ = hup.recv() => {
                        tls.reload();
                        match reloader.reload().await {
                            Ok(r) => tracing::info!(generation = r.generation, ms = r.duration_ms, unchanged = r.unchanged, "reloaded on SIGHUP"),
                            Err(e) => tracing::error!(error = %e, "reload on SIGHUP failed"),
                        }
                    }
                    _ = shutdown.cancelled() => break,
                }
            }
        });
    }

    let media = match &config.media {
        Some(mc) => {
            let (ctl, ng) = crate::media::start(
                mc,
                Some(config.database.url.clone()),
                Some(&metrics.registry),
                shutdown.clone(),
            )
            .await?;
            tracing::info!(ng_listen = %ng, nodes = mc.nodes.len(), consul = mc.consul.is_some(), "media control started");
            Some(ctl)
        }
        None => None,
    };
    // calls/CDRs: recover (spool replay, live calls from the database) before serving dips
    // the writer outlives the listener: events acknowledged during the shutdown grace still land
    let calls_stop = CancellationToken::new();
    let calls_guard = calls_stop.clone().drop_guard(); // also stops it on an early return
    let calls = if config.calls.enabled {
        let c = crate::calls::CallService::start(&config, &metrics.registry, calls_stop.clone())
            .await?;
        Some(c)
    } else {
        None
    };
    let admin = Arc::new(
        crate::admin::AdminState::new(&config.database.url, config.routing.clone())?
            .with_calls(calls.clone()),
    );
    let flusher = admin
        .dip_log
        .clone()
        .spawn_flusher(config.database.url.clone(), shutdown.clone());
    let console = config.console.enabled.then(|| {
        Arc::new(crate::console::Console::new(
            admin.clone(),
            engine.clone(),
            calls.clone(),
            metrics.clone(),
            media.clone(),
            config.console.clone(),
        ))
    });
    let sampler = console.as_ref().map(|c| {
        c.sampler
            .clone()
            .spawn(metrics.clone(), calls.clone(), shutdown.clone())
    });
    let state = Arc::new(AppState {
        engine,
        reloader: reloader.clone(),
        metrics,
        limits: ApiLimits::from_config(&config.server),
        media,
        calls: calls.clone(),
        admin: Some(admin),
        console,
        kamailio_auth: KamailioAuth::new(
            config.server.kamailio_allow.clone(),
            config.server.kamailio_secret.as_deref(),
        )
        .with_dip_as(api::DipAsPolicy::from_config(&config.server)),
    });
    let addr =
        |l: &tokio::net::TcpListener| l.local_addr().map(|a| a.to_string()).unwrap_or_default();
    tracing::info!(kamailio = %addr(&listeners.kamailio), admin = %addr(&listeners.admin),
        allow = config.server.kamailio_allow.len(), secret = config.server.kamailio_secret.is_some(),
        kamailio_tls = tls.kamailio.is_some(), admin_tls = tls.admin.is_some(), "serving");
    api::serve_tls(listeners, tls, state, shutdown.clone()).await?;
    if let Some(consul) = consul {
        // serving is over either way: let the registration task deregister and finish
        shutdown.cancel();
        let _ = consul.await;
    }
    reloader.join().await;
    drop(calls_guard);
    if let Some(c) = calls {
        c.join().await;
    }
    let _ = flusher.await;
    if let Some(s) = sampler {
        let _ = s.await;
    }
    Ok(())
}
