//! The routing data version (sql/0011): every change to a table the snapshot reads bumps it in
//! the same transaction; a reload whose version check finds it unchanged builds nothing.

use super::*;

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use tokio_util::sync::CancellationToken;

use crate::support::Warpd;

/// Tables whose changes must bump the version: what the snapshot loader reads, plus
/// media_policies (read by the media layer on the same notifications).
const ROUTING_TABLES: [&str; 26] = [
    "vendors",
    "gateways",
    "routes",
    "partitions",
    "partition_routes",
    "customers",
    "customer_source_ips",
    "customer_partitions",
    "customer_margin_rules",
    "customer_rates",
    "vendor_rates",
    "overrides",
    "exclusions",
    "npanxx",
    "local_calling",
    "lnp",
    "dno",
    "media_policies",
    "trunks",
    "trunk_sources",
    "trunk_credentials",
    "trunk_destinations",
    "numbers",
    "origination_sources",
    "stir_policies",
    "stir_tn_ranges",
];

/// Tables no snapshot is built from. A new table must be added to one of the two lists, so a
/// table the loader starts reading cannot be missed.
const OTHER_TABLES: [&str; 17] = [
    "warpd_schema_migrations",
    "routing_data_changes",
    "routing_change_log",
    "routing_change_log_horizon",
    "routing_change_routes",
    "deck_versions",
    "deck_rates",
    "deck_mappings",
    "admin_tokens",
    "audit_log",
    "dip_samples",
    "call_events",
    "cdrs",
    "accounts",
    "account_ledger",
    "console_users",
    "console_sessions",
];

/// The loader's source, for the table names after FROM / JOIN.
const LOADER_SOURCE: [&str; 7] = [
    include_str!("../../../src/db/loader/mod.rs"),
    include_str!("../../../src/db/loader/incremental.rs"),
    include_str!("../../../src/db/loader/small.rs"),
    include_str!("../../../src/db/loader/rates.rs"),
    include_str!("../../../src/db/loader/numbering.rs"),
    include_str!("../../../src/db/loader/copy.rs"),
    include_str!("../../../src/db/loader/inbound.rs"),
];

async fn version(c: &Client) -> i64 {
    c.query_one("SELECT version FROM routing_data_version", &[])
        .await
        .unwrap()
        .get(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_change_to_every_table_the_snapshot_reads_bumps_the_data_version() {
    let (pg, client) = fresh().await;
    let tables: BTreeSet<String> = client
        .query(
            "SELECT tablename::text FROM pg_tables WHERE schemaname = current_schema()",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    // every table is classified
    for t in &tables {
        assert!(
            ROUTING_TABLES.contains(&t.as_str()) || OTHER_TABLES.contains(&t.as_str()),
            "table {t}: add it to ROUTING_TABLES (a snapshot is built from it: give it the \
             *_notify trigger) or OTHER_TABLES"
        );
    }
    // every table the loader reads is a routing table
    for src in LOADER_SOURCE {
        let words: Vec<&str> = src.split_whitespace().collect();
        for w in words.windows(2) {
            if w[0] == "FROM" || w[0] == "JOIN" {
                let name: String = w[1]
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                    .collect();
                if tables.contains(&name)
                    && ![
                        "routing_data_version",
                        "routing_change_log",
                        "routing_change_log_horizon",
                        "routing_change_routes",
                    ]
                    .contains(&name.as_str())
                {
                    assert!(
                        ROUTING_TABLES.contains(&name.as_str()),
                        "the loader reads {name}"
                    );
                }
            }
        }
    }
    // each statement on a routing table bumps the version in its own transaction (statement-
    // level triggers fire for every statement, rows or not); TRUNCATE too
    for t in ROUTING_TABLES {
        assert!(tables.contains(t), "{t} missing from the schema");
        let v0 = version(&client).await;
        client
            .batch_execute(&format!("DELETE FROM {t} WHERE false"))
            .await
            .unwrap();
        let v1 = version(&client).await;
        assert!(
            v1 > v0,
            "{t}: DELETE did not bump the version ({v0} -> {v1})"
        );
        // ... and logs its table for incremental builds, which know what it feeds
        let logged: i64 = client
            .query_one(
                "SELECT count(*) FROM routing_change_log WHERE table_name = $1",
                &[&t],
            )
            .await
            .unwrap()
            .get(0);
        assert!(logged >= 1, "{t}: not in routing_change_log");
        assert!(
            warpd::routing::Part::of_table(t).is_some(),
            "{t}: routing::Part::of_table does not know which snapshot part it feeds"
        );
    }
    // each committed changing transaction adds exactly one, whatever rows get folded meanwhile
    // (1 % of them fold the table), also from concurrent writers
    let v0 = version(&client).await;
    let writers = (0..4).map(|_| {
        let url = pg.url();
        async move {
            let c = db::connect(&url).await.unwrap();
            for _ in 0..75 {
                c.batch_execute("DELETE FROM dno WHERE false")
                    .await
                    .unwrap();
            }
        }
    });
    futures_util::future::join_all(writers).await;
    assert_eq!(version(&client).await, v0 + 300);
    // a rolled-back change leaves the version as it was
    let v0 = version(&client).await;
    client
        .batch_execute("BEGIN; DELETE FROM dno WHERE false; ROLLBACK")
        .await
        .unwrap();
    assert_eq!(version(&client).await, v0);
    // other tables do not bump it
    client
        .batch_execute("DELETE FROM audit_log WHERE false; DELETE FROM cdrs WHERE false")
        .await
        .unwrap();
    assert_eq!(version(&client).await, v0);
}

fn reloads(m: &Metrics, result: &str) -> u64 {
    m.reloads.with_label_values(&[result]).get()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sequential_reloads_build_only_when_the_data_changed_unless_forced() {
    let (pg, client) = fresh().await;
    seed(&client, unix_now()).await;
    let engine = Arc::new(Engine::new(RoutingSettings::default()));
    let metrics = Arc::new(Metrics::new());
    let stop = CancellationToken::new();
    // a long debounce keeps NOTIFY-driven refreshes out of the count
    let reloader = DbReloader::start(
        pg.url(),
        engine.clone(),
        metrics.clone(),
        Duration::from_secs(60),
        stop.clone(),
    );
    let builds = || reloads(&metrics, "ok") + reloads(&metrics, "error");
    let first = reloader.reload().await.unwrap();
    assert!(!first.unchanged);
    assert_eq!(first.data_version, Some(version(&client).await));
    assert_eq!(engine.snapshot().data_version(), first.data_version);
    // the version check runs over the LISTEN connection, established shortly after start
    support::eventually(
        "a refresh answered unchanged",
        support::DEADLINE,
        || async {
            let r = reloader.reload().await.unwrap();
            if r.unchanged {
                Ok(())
            } else {
                Err(format!("{r:?}"))
            }
        },
    )
    .await;
    let b0 = builds();
    for i in 0..300 {
        let r = reloader.reload().await.unwrap();
        assert!(r.unchanged, "request {i}: {r:?}");
        assert_eq!(r.generation, first.generation.max(engine.generation()));
    }
    assert_eq!(
        builds(),
        b0,
        "300 sequential reloads of unchanged data built"
    );
    // a change: the next request builds, the 299 after it do not
    client
        .execute(
            "UPDATE vendor_rates SET rate_inter = 0.0042 WHERE route_id = 20",
            &[],
        )
        .await
        .unwrap();
    let g = engine.generation();
    for i in 0..300 {
        let r = reloader.reload().await.unwrap();
        assert_eq!(r.unchanged, i > 0, "request {i}: {r:?}");
    }
    assert_eq!(builds(), b0 + 1, "300 sequential reloads after one change");
    assert_eq!(engine.generation(), g + 1);
    assert_eq!(
        engine.snapshot().data_version(),
        Some(version(&client).await)
    );
    // forced: builds anyway
    let r = reloader.reload_full().await.unwrap();
    assert!(!r.unchanged);
    assert_eq!(builds(), b0 + 2);
    assert_eq!(engine.generation(), g + 2);
    stop.cancel();
    reloader.join().await;
}

/// The daemon: `/readyz` and `/metrics` show the generation and data version; `warpd.reload`
/// answers unchanged without a build, `{"force": true}` builds; SIGHUP and NOTIFY take the same
/// path (a NOTIFY without a change builds nothing).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn daemon_reports_the_data_version_and_reload_force() {
    let pg = support::TestPg::start();
    let client = support::demo::demo_db(&pg).await;
    let w = Warpd::builder(&pg).start().await;
    let readyz = |w: &Warpd| {
        let api = w.api.clone();
        async move {
            let (s, body) = api.get("/readyz").await;
            assert_eq!(s, 200, "{body}");
            body
        }
    };
    let v = version(&client).await;
    let body = readyz(&w).await;
    assert!(body.starts_with("ready\n"), "{body}");
    assert!(body.contains(&format!("data_version {v}\n")), "{body}");
    assert_eq!(
        w.api.metric("warpd_snapshot_data_version").await,
        Some(v as f64)
    );
    let builds = || async {
        w.api
            .metric("warpd_snapshot_reloads_total{result=\"ok\"}")
            .await
            .unwrap_or(0.0)
    };
    // once the LISTEN connection (the version check's) is up, a reload builds nothing
    let api = &w.api;
    let r = support::eventually(
        "warpd.reload answered unchanged",
        support::DEADLINE,
        || async {
            let r = api.rpc_result("warpd.reload", json!({})).await;
            if r["unchanged"] == true {
                Ok(r)
            } else {
                Err(r.to_string())
            }
        },
    )
    .await;
    assert_eq!(r["data_version"], v, "{r}");
    let b = builds().await;
    let g = r["generation"].as_u64().unwrap();
    // a NOTIFY without a change ("warpd reload"): refreshed, not built
    let unchanged = "warpd_snapshot_reloads_total{result=\"unchanged\"}";
    let u = w.api.metric(unchanged).await.unwrap_or(0.0);
    client
        .execute("SELECT pg_notify('warpd_routing', 'manual reload')", &[])
        .await
        .unwrap();
    w.api.wait_metric(unchanged, u + 1.0).await;
    assert_eq!(builds().await, b);
    let r = w
        .api
        .rpc_result("warpd.reload", json!({"force": true}))
        .await;
    assert_eq!(r["unchanged"], false, "{r}");
    assert_eq!(r["generation"].as_u64(), Some(g + 1), "{r}");
    assert_eq!(builds().await, b + 1.0);
    assert!(readyz(&w)
        .await
        .contains(&format!("generation {}\n", g + 1)));
    // an unknown parameter is named
    let (code, msg) = w
        .api
        .rpc_error("warpd.reload", json!({"forse": true}))
        .await;
    assert_eq!(code, -32602, "{msg}");
    assert!(
        msg.contains("forse") && msg.contains("unknown parameter"),
        "{msg}"
    );
    w.stop().await;
}
