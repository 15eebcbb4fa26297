//! The reloader against a throwaway PostgreSQL: NOTIFY-driven debounced reloads and LISTEN
//! reconnects, explicit reloads coalesced, a failed reload keeping the old snapshot.

use super::*;

use std::future::ready;
use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

struct Running {
    pg: support::TestPg,
    client: Client,
    engine: Arc<Engine>,
    metrics: Arc<Metrics>,
    reloader: Arc<DbReloader>,
    stop: CancellationToken,
}

async fn running(debounce: Duration) -> Running {
    let (pg, client) = fresh().await;
    seed(&client, unix_now()).await;
    let engine = Arc::new(Engine::new(RoutingSettings::default()));
    let metrics = Arc::new(Metrics::new());
    let stop = CancellationToken::new();
    let reloader = DbReloader::start(
        pg.url(),
        engine.clone(),
        metrics.clone(),
        debounce,
        stop.clone(),
    );
    Running {
        pg,
        client,
        engine,
        metrics,
        reloader,
        stop,
    }
}

/// Buy rate of beta for the standard interstate call, outside the daytime window.
fn beta_rate(engine: &Engine) -> Option<f64> {
    let a = routing::dip(
        &engine.snapshot(),
        &req("+12015550123", "+12125550199"),
        unix_now() + DAY / 2,
    );
    match a {
        DipAnswer::Route(r) => r
            .routes
            .iter()
            .find(|c| c.route_id == "r_beta")
            .map(|c| (c.rate * 1e7).round() / 1e7),
        DipAnswer::Reject(_) => None,
    }
}

fn reloads(m: &Metrics, result: &str) -> u64 {
    m.reloads.with_label_values(&[result]).get()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn notify_triggers_a_debounced_reload_and_reconnects() {
    let rt = running(Duration::from_millis(150)).await;
    // the first LISTEN counts as "may have missed changes": initial snapshot without a request
    support::eventually("the initial load", Duration::from_secs(10), || {
        ready(rt.engine.generation() >= 1)
    })
    .await;
    assert_eq!(beta_rate(&rt.engine), Some(0.0045));
    let g1 = rt.engine.generation();
    assert_eq!(rt.metrics.snapshot_generation.get() as u64, g1);
    assert!(rt.metrics.snapshot_built_at.get() > 0);

    // a burst of changes: a bounded number of rebuilds, the last one reflecting the last change
    for i in 1..=10 {
        rt.client
            .execute(
                &format!(
                    "UPDATE vendor_rates SET rate_inter = 0.00{} WHERE route_id = 20",
                    40 + i
                ),
                &[],
            )
            .await
            .unwrap();
    }
    support::eventually(
        "the snapshot reflecting the last update",
        Duration::from_secs(10),
        || {
            let rate = beta_rate(&rt.engine);
            ready(if rate == Some(0.005) {
                Ok(())
            } else {
                Err(format!("rate {rate:?}"))
            })
        },
    )
    .await;
    let g2 = rt.engine.generation();
    assert!(
        g2 > g1 && g2 <= g1 + 3,
        "burst of 10 NOTIFYs gave {} rebuilds",
        g2 - g1
    );
    assert_eq!(reloads(&rt.metrics, "ok"), g2);

    // database restart: the listener reconnects and refreshes (changes may have been missed);
    // the data version normally says none were, and nothing is built
    let refreshes = || reloads(&rt.metrics, "unchanged") + reloads(&rt.metrics, "ok");
    let before = refreshes();
    rt.pg.stop();
    // part of the scenario, not synchronisation: an outage that lasts, so the listener's
    // reconnect attempts fail and back off before the server is back
    tokio::time::sleep(Duration::from_millis(500)).await;
    rt.pg.start_server();
    support::eventually(
        "a refresh after the LISTEN connection came back",
        Duration::from_secs(15),
        || ready(refreshes() > before),
    )
    .await;
    // (a version check that fails, e.g. on a connection just re-established, builds instead)

    // after reconnecting, notifications work again
    let client = db::connect(&rt.pg.url()).await.unwrap();
    client
        .execute(
            "UPDATE vendor_rates SET rate_inter = 0.0033 WHERE route_id = 20",
            &[],
        )
        .await
        .unwrap();
    support::eventually(
        "a NOTIFY after the reconnect applied",
        Duration::from_secs(10),
        || ready(beta_rate(&rt.engine) == Some(0.0033)),
    )
    .await;

    rt.stop.cancel();
    rt.reloader.join().await;
    assert!(matches!(
        rt.reloader.reload().await,
        Err(ReloadError::Stopped)
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn explicit_reloads_are_coalesced_and_see_earlier_writes() {
    // a long debounce keeps NOTIFY-driven builds out of the way
    let rt = running(Duration::from_secs(60)).await;
    let rep = rt.reloader.reload().await.unwrap();
    assert_eq!(rep.generation, rt.engine.generation());
    assert_eq!(rep.stats.rate_entries, 5);
    assert_eq!(beta_rate(&rt.engine), Some(0.0045));

    // a request made after a write sees it
    rt.client
        .execute(
            "UPDATE vendor_rates SET rate_inter = 0.0042 WHERE route_id = 20",
            &[],
        )
        .await
        .unwrap();
    let rep2 = rt.reloader.reload().await.unwrap();
    assert!(rep2.generation > rep.generation);
    assert_eq!(beta_rate(&rt.engine), Some(0.0042));

    // concurrent full requests share builds: at most one running plus one coalesced follow-up
    let before = rt.engine.generation();
    let (a, b, c, d) = tokio::join!(
        rt.reloader.reload_full(),
        rt.reloader.reload(),
        rt.reloader.reload_full(),
        rt.reloader.reload_full()
    );
    let mut gens: Vec<u64> = [a, b, c, d]
        .into_iter()
        .map(|r| r.unwrap().generation)
        .collect();
    gens.sort();
    gens.dedup();
    assert!(
        gens.len() <= 2 && gens[0] > before,
        "{gens:?} after {before}"
    );
    assert_eq!(rt.engine.generation(), *gens.last().unwrap());
    assert_eq!(reloads(&rt.metrics, "ok"), rt.engine.generation());
    rt.stop.cancel();
}

/// One thread: each abandoned request is sent and given up within one poll, before the worker
/// runs, as a client that sends `warpd.reload` and hangs up.
#[tokio::test]
async fn requests_during_a_build_share_the_next_one_and_abandoned_ones_build_nothing() {
    let rt = running(Duration::from_secs(60)).await;
    rt.reloader.reload().await.unwrap();
    assert_eq!(reloads(&rt.metrics, "ok"), 1);
    // 50 requests whose callers give up at once: no build (full requests: the data version
    // would spare the builds anyway)
    for _ in 0..50 {
        // sent (one poll), then dropped before this task yields to the worker
        let mut f = rt.reloader.reload_full();
        assert!(futures_util::poll!(f.as_mut()).is_pending());
        drop(f);
    }
    let rep = rt.reloader.reload_full().await.unwrap();
    assert_eq!(
        reloads(&rt.metrics, "ok"),
        2,
        "the abandoned requests ran builds"
    );
    assert_eq!(rep.generation, rt.engine.generation());
    // 30 requests made while a build runs: that build plus ONE more
    let first = rt.reloader.reload_full();
    let mut first = std::pin::pin!(first);
    assert!(futures_util::poll!(first.as_mut()).is_pending());
    tokio::task::yield_now().await; // the worker starts the build
    let rest = futures_util::future::join_all((0..30).map(|_| rt.reloader.reload_full()));
    let (a, rest) = tokio::join!(first, rest);
    let mut gens: Vec<u64> = std::iter::once(a)
        .chain(rest)
        .map(|r| r.unwrap().generation)
        .collect();
    gens.sort();
    gens.dedup();
    assert!(gens.len() <= 2, "{gens:?}");
    assert!(
        reloads(&rt.metrics, "ok") <= 4,
        "{}",
        reloads(&rt.metrics, "ok")
    );
    rt.stop.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_reload_keeps_the_old_snapshot() {
    let rt = running(Duration::from_secs(60)).await;
    let good = rt.reloader.reload().await.unwrap();
    rt.client
        .batch_execute(
            "UPDATE customer_partitions SET tz = 'Mars/Olympus' WHERE partition_id = 100",
        )
        .await
        .unwrap();
    let err = rt.reloader.reload().await.unwrap_err();
    let ReloadError::Build(cause) = &err else {
        panic!("{err:?}")
    };
    let msg = cause.to_string();
    assert!(
        msg.contains("customer_partitions") && msg.contains("BAN1") && msg.contains("Mars/Olympus"),
        "{msg}"
    );
    assert_eq!(rt.engine.generation(), good.generation, "old snapshot kept");
    assert_eq!(
        beta_rate(&rt.engine),
        Some(0.0045),
        "old snapshot still routes"
    );
    assert_eq!(reloads(&rt.metrics, "error"), 1);
    assert_eq!(rt.metrics.snapshot_generation.get() as u64, good.generation);

    // fixed data: the next reload succeeds
    rt.client
        .batch_execute("UPDATE customer_partitions SET tz = 'UTC'")
        .await
        .unwrap();
    assert!(rt.reloader.reload().await.unwrap().generation > good.generation);
    rt.stop.cancel();
}

/// The debounce's leading edge: the first notification after a quiet period (no build started
/// within the debounce) is built at once; before issue 23 it waited the whole debounce.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lone_change_is_built_at_once_not_after_the_debounce() {
    const DEBOUNCE: Duration = Duration::from_secs(4);
    let rt = running(DEBOUNCE).await;
    support::eventually("the initial load", Duration::from_secs(10), || {
        ready(rt.engine.generation() >= 1)
    })
    .await;
    // part of the scenario, not synchronisation: the quiet period that makes the next change
    // a lone one
    tokio::time::sleep(DEBOUNCE + Duration::from_millis(200)).await;
    let g = rt.engine.generation();
    let t = std::time::Instant::now();
    rt.client
        .execute(
            "UPDATE vendor_rates SET rate_inter = 0.0047 WHERE route_id = 20",
            &[],
        )
        .await
        .unwrap();
    // the trailing rule would build DEBOUNCE after the notification at the earliest
    support::eventually(
        "the lone change built before the debounce ran out",
        DEBOUNCE - Duration::from_millis(500),
        || ready(rt.engine.generation() > g),
    )
    .await;
    assert_eq!(beta_rate(&rt.engine), Some(0.0047));
    eprintln!("lone change built {:?} after the update", t.elapsed());
    rt.stop.cancel();
}
