//! Incremental snapshot builds (issue 23) against a throwaway PostgreSQL: random sequences of
//! committed changes, each built incrementally from the snapshot before and compared with a
//! full build of the same database state; the cases where the change log cannot say what
//! changed; a one-customer change through the running reloader.

use super::*;

use std::future::ready;
use std::sync::Arc;
use std::time::{Duration, Instant};

use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use tokio_util::sync::CancellationToken;
use warpd::db::loader::{load_incremental, Incremental};
use warpd::routing::{Part, PartSet};

use super::changes::{steps, Change};

/// Trunks and numbers for the inbound part (on top of `seed`): trunk tr1 of BAN1 (customer
/// 1000) with a source network, a destination and credentials, tr2 of BAN2; a number on each;
/// an origination source of vendor beta.
async fn seed_inbound(client: &Client) {
    client
        .batch_execute(
            "INSERT INTO trunks (id, name, customer_id) VALUES (1, 'tr1', 1000), (2, 'tr2', 2000);
             INSERT INTO trunk_sources VALUES (1, '10.8.0.0/16');
             INSERT INTO trunk_destinations (trunk_id, host) VALUES (1, '10.8.0.1'), (2, '10.8.1.1');
             INSERT INTO trunk_credentials (trunk_id, username, realm, ha1)
                 VALUES (1, 'tr1', 'sip.example.net', '0123456789abcdef0123456789abcdef');
             INSERT INTO numbers (number, customer_id, trunk_id) VALUES
                 ('+12125557001', 1000, 1), ('+12125557002', 2000, 2);
             INSERT INTO origination_sources VALUES (2, '203.0.113.0/24');",
        )
        .await
        .unwrap();
}

async fn full(client: &Client) -> Snapshot {
    db::load_snapshot(client, RoutingSettings::default())
        .await
        .unwrap()
}

/// Applies random change sequences; after each chosen transaction, builds incrementally from
/// the previous snapshot (chained: each incremental snapshot is the next one's base) and in
/// full, and compares their canonical forms. Bounded: 24 cases of up to 6 transactions.
#[test]
fn incremental_builds_equal_full_builds_for_random_changes() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let (_pg, client) = rt.block_on(async {
        let (pg, client) = fresh().await;
        seed(&client, unix_now()).await;
        seed_inbound(&client).await;
        (pg, client)
    });
    let prev = std::cell::RefCell::new(Some(rt.block_on(full(&client))));
    let outcomes = std::cell::RefCell::new(std::collections::BTreeMap::<String, u32>::new());
    let mut runner = TestRunner::new(Config {
        cases: 24,
        failure_persistence: None,
        // the database keeps every case's changes: shrinking would replay on another state
        max_shrink_iters: 0,
        ..Config::default()
    });
    let result = runner.run(&steps(), |steps| {
        rt.block_on(async {
            let mut seen: Vec<String> = Vec::new();
            let Some(mut base) = prev.borrow_mut().take() else {
                return Err(TestCaseError::fail("an earlier case failed"));
            };
            for (txn, build) in steps {
                let sql: Vec<String> = txn.iter().map(Change::sql).collect();
                client
                    .batch_execute(&format!("BEGIN; {}; COMMIT", sql.join("; ")))
                    .await
                    .map_err(|e| TestCaseError::fail(format!("{txn:?}: {e}")))?;
                if !build {
                    continue;
                }
                let inc = load_incremental(&client, &base, PartSet::all())
                    .await
                    .map_err(|e| TestCaseError::fail(format!("incremental: {e}")))?;
                let want = full(&client).await;
                base = match inc {
                    Incremental::Built {
                        snapshot,
                        rebuilt,
                        rate_routes,
                    } => {
                        let (got, want_lines) = (snapshot.canonical(), want.canonical());
                        let only = |a: &[String], b: &[String]| -> Vec<String> {
                            a.iter().filter(|l| !b.contains(l)).cloned().collect()
                        };
                        prop_assert!(
                            got == want_lines,
                            "after {:?} (rebuilt {:?}): incremental only {:?}, full only {:?}",
                            txn,
                            rebuilt.names(),
                            only(&got, &want_lines),
                            only(&want_lines, &got)
                        );
                        prop_assert_eq!(snapshot.data_version(), want.data_version());
                        // only routes with rates are ever re-read (the others have none)
                        prop_assert!(
                            rate_routes.iter().all(|r| [10, 20].contains(r)),
                            "{:?}",
                            rate_routes
                        );
                        let patched = if rate_routes.is_empty() {
                            ""
                        } else {
                            " patched"
                        };
                        seen.push(format!("{:?}{patched}", rebuilt.names()));
                        *snapshot
                    }
                    Incremental::NeedFull(why) => {
                        // only a new route may force it here (the log is never pruned so soon)
                        prop_assert!(why.contains("routes changed"), "{}", why);
                        seen.push("full".into());
                        want
                    }
                };
            }
            *prev.borrow_mut() = Some(base);
            let mut outcomes = outcomes.borrow_mut();
            for k in seen {
                *outcomes.entry(k).or_default() += 1;
            }
            Ok(())
        })
    });
    if let Err(e) = result {
        panic!("{e}");
    }
    let outcomes = outcomes.into_inner();
    eprintln!("incremental outcomes: {outcomes:?}");
    // the cases exercised incremental builds, not only full ones
    let incremental: u32 = outcomes
        .iter()
        .filter(|(k, _)| *k != "full")
        .map(|(_, n)| n)
        .sum();
    assert!(incremental >= 10, "{outcomes:?}");
    // and rate parts patched for one route
    let patched: u32 = outcomes
        .iter()
        .filter(|(k, _)| k.ends_with("patched"))
        .map(|(_, n)| n)
        .sum();
    assert!(patched >= 3, "{outcomes:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_changed_parts_are_rebuilt_and_unknown_changes_build_in_full() {
    let (_pg, client) = fresh().await;
    seed(&client, unix_now()).await;
    seed_inbound(&client).await;
    let live = full(&client).await;
    assert!(live.rebuilt().is_all());
    let inbound = routing::inbound::InboundRequest {
        src_ip: "10.0.0.2".parse().unwrap(),
        ani: "+13105550000".into(),
        dnis: "+12125557001".into(),
        call_id: None,
        verify: None,
        identity: None,
    };
    let customer_of = |s: &Snapshot| match s.route_inbound(&inbound) {
        routing::inbound::InboundAnswer::Route(r) => r.customer.to_string(),
        other => panic!("{other:?}"),
    };
    assert_eq!(customer_of(&live), "BAN1");

    // STIR/SHAKEN (issue 20): a TN range of customer 1000 is inbound data (by customer id)
    client
        .batch_execute(
            "INSERT INTO stir_tn_ranges (customer_id, first_tn, last_tn) \
             VALUES (1000, '+13125550000', '+13125550999')",
        )
        .await
        .unwrap();
    let Incremental::Built {
        snapshot: live,
        rebuilt,
        ..
    } = load_incremental(&client, &live, PartSet::all())
        .await
        .unwrap()
    else {
        panic!("expected an incremental build");
    };
    assert_eq!(rebuilt.names(), ["inbound"]);
    // the attestation of a call of customer `ban` from `ani`: own number and TN range A,
    // another customer's number B
    let attest = |s: &Snapshot, ban: &str, ani: &str| {
        let r = DipRequest {
            ban: Some(ban.into()),
            ani: ani.into(),
            dnis: "+12125550199".into(),
            ..Default::default()
        };
        match routing::attestation(s, &r) {
            Some((Some(routing::stir::StirAnswer::Sign { attest, .. }), _)) => attest.as_str(),
            other => panic!("{ban} {ani}: {other:?}"),
        }
    };
    let stir_table = [
        ("+12125557001", "A"),
        ("+13125550500", "A"),
        ("+12125557002", "B"),
    ];
    for (ani, want) in stir_table {
        assert_eq!(attest(&live, "BAN1", ani), want, "{ani}");
    }

    // one customer change: only the customers part is read, the rest shared — the inbound
    // part too (a million numbers): it names customers by id, the answer reads the BAN live
    client
        .batch_execute("UPDATE customers SET ban = 'BAN1-new' WHERE id = 1000")
        .await
        .unwrap();
    let Incremental::Built {
        snapshot, rebuilt, ..
    } = load_incremental(&client, &live, PartSet::all())
        .await
        .unwrap()
    else {
        panic!("expected an incremental build");
    };
    assert_eq!(rebuilt.names(), ["customers"]);
    assert!(snapshot.shares(&live, Part::Inbound));
    assert_eq!(customer_of(&snapshot), "BAN1-new");
    // the renamed customer keeps its numbers and TN range for STIR (the part is by id)
    for (ani, want) in stir_table {
        assert_eq!(attest(&snapshot, "BAN1-new", ani), want, "{ani}");
    }
    assert_eq!(
        snapshot.trunk("tr1").map(|t| t.customer.to_string()),
        Some("BAN1-new".into())
    );
    assert_eq!(snapshot.canonical(), full(&client).await.canonical());
    client
        .batch_execute("UPDATE customers SET ban = 'BAN1' WHERE id = 1000")
        .await
        .unwrap();
    let live = full(&client).await;
    client
        .batch_execute("UPDATE customers SET blocked_prefixes = '{1212}' WHERE id = 1000")
        .await
        .unwrap();
    let Incremental::Built {
        snapshot, rebuilt, ..
    } = load_incremental(&client, &live, PartSet::all())
        .await
        .unwrap()
    else {
        panic!("expected an incremental build");
    };
    assert_eq!(rebuilt.names(), ["customers"]);
    for p in [
        Part::Topology,
        Part::Policy,
        Part::Numbering,
        Part::Rates,
        Part::Inbound,
    ] {
        assert!(snapshot.shares(&live, p), "{p:?}");
    }
    assert_eq!(
        reject(&routing::dip(
            &snapshot,
            &req("+12015550123", "+12125550199"),
            unix_now()
        ))
        .0,
        403
    );

    // nothing changed since: nothing is read, everything shared
    let Incremental::Built {
        snapshot: same,
        rebuilt,
        ..
    } = load_incremental(&client, &snapshot, PartSet::all())
        .await
        .unwrap()
    else {
        panic!("expected an incremental build");
    };
    assert!(rebuilt.is_empty());
    assert!(Part::ALL.iter().all(|&p| same.shares(&snapshot, p)));

    // one route's rates (a deck activation's shape: rows re-rated, deleted, new prefixes):
    // the rate part is patched, only that route's rows read, even under the limit the reloader
    // passes (the rates never read whole incrementally)
    client
        .batch_execute(
            "BEGIN;
             UPDATE vendor_rates SET rate_inter = 0.0042 WHERE route_id = 20;
             DELETE FROM vendor_rates WHERE route_id = 10 AND prefix = '44';
             INSERT INTO vendor_rates (route_id, prefix, rate_inter, rate_intra, rate_local)
                 VALUES (10, '1646', 0.003, 0.003, 0.003);
             COMMIT",
        )
        .await
        .unwrap();
    client
        .batch_execute("UPDATE vendor_rates SET rate_local = 0.0011 WHERE route_id = 10")
        .await
        .unwrap();
    let limit: PartSet = PartSet::all()
        .iter()
        .filter(|p| *p != Part::Rates)
        .collect();
    // two transactions since `snapshot`, one of both routes: more than half the routes, so the
    // rates would be read whole, which the limit refuses
    assert!(matches!(
        load_incremental(&client, &snapshot, limit).await.unwrap(),
        Incremental::NeedFull(why) if why.contains("2 of 2 routes")
    ));
    let before = full(&client).await;
    client
        .batch_execute(
            "BEGIN;
             DELETE FROM vendor_rates WHERE route_id = 10 AND prefix = '1646';
             INSERT INTO vendor_rates (route_id, prefix, rate_inter, rate_intra, rate_local)
                 VALUES (10, '1647', 0.003, 0.003, 0.003), (10, '1212', 0.001, 0.001, 0.001)
                 ON CONFLICT DO NOTHING;
             UPDATE vendor_rates SET rate_intra = 0.0031 WHERE route_id = 10 AND prefix = '1212';
             COMMIT",
        )
        .await
        .unwrap();
    let Incremental::Built {
        snapshot: patched,
        rebuilt,
        rate_routes,
    } = load_incremental(&client, &before, limit).await.unwrap()
    else {
        panic!("expected a patched rate part");
    };
    assert_eq!(rebuilt.names(), ["rates"]);
    assert_eq!(rate_routes, [10]);
    for p in [
        Part::Topology,
        Part::Customers,
        Part::Policy,
        Part::Numbering,
    ] {
        assert!(patched.shares(&before, p), "{p:?}");
    }
    assert_eq!(patched.canonical(), full(&client).await.canonical());
    assert_ne!(patched.canonical(), before.canonical());

    // a table no part knows (a feature added later with the trigger but no part yet)
    client
        .batch_execute(
            "CREATE TABLE future_things (id int);
             CREATE TRIGGER future_things_notify AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON future_things
                 FOR EACH STATEMENT EXECUTE FUNCTION warpd_notify_routing_change();
             INSERT INTO future_things VALUES (1)",
        )
        .await
        .unwrap();
    match load_incremental(&client, &same, PartSet::all())
        .await
        .unwrap()
    {
        Incremental::NeedFull(why) => assert!(why.contains("future_things"), "{why}"),
        Incremental::Built { .. } => panic!("an unknown table must build in full"),
    }

    // the change log pruned past the live snapshot: it cannot say what changed
    let live = full(&client).await;
    client
        .batch_execute(
            // as if this very transaction's row had been pruned (the horizon is the newest
            // pruned xid + 1)
            "UPDATE routing_change_log_horizon \
             SET horizon = (pg_current_xact_id()::text::bigint + 1)::text::xid8",
        )
        .await
        .unwrap();
    match load_incremental(&client, &live, PartSet::all())
        .await
        .unwrap()
    {
        Incremental::NeedFull(why) => assert!(why.contains("pruned"), "{why}"),
        Incremental::Built { .. } => panic!("a pruned log must build in full"),
    }
    // a snapshot read after the prune works incrementally again
    let live = full(&client).await;
    client
        .batch_execute("UPDATE exclusions SET prefix = '45' WHERE prefix = '44'")
        .await
        .unwrap();
    assert!(matches!(
        load_incremental(&client, &live, PartSet::all()).await.unwrap(),
        Incremental::Built { rebuilt, .. } if rebuilt.names() == ["policy"]
    ));

    // TRUNCATE logs "every route": the rates are read whole (or, outside the limit, in full)
    let live = full(&client).await;
    client.batch_execute("TRUNCATE vendor_rates").await.unwrap();
    assert!(matches!(
        load_incremental(&client, &live, limit).await.unwrap(),
        Incremental::NeedFull(_)
    ));
    let Incremental::Built {
        snapshot,
        rebuilt,
        rate_routes,
    } = load_incremental(&client, &live, PartSet::all())
        .await
        .unwrap()
    else {
        panic!("expected the rates read whole");
    };
    assert_eq!((rebuilt.names(), rate_routes), (vec!["rates"], vec![]));
    assert_eq!(snapshot.stats().rate_entries, 0);
}

/// The change log's pruning keeps the sum (the data version) and records the horizon.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pruning_the_change_log_moves_the_horizon() {
    let (_pg, client) = fresh().await;
    client
        .batch_execute(
            "INSERT INTO routing_change_log (xid, table_name, logged_at)
                 VALUES ('5'::xid8, 'dno', now() - interval '1 hour')",
        )
        .await
        .unwrap();
    // 1 % of changing transactions prune: enough of them prune once
    support::eventually("a prune", Duration::from_secs(60), || async {
        client
            .batch_execute("DELETE FROM dno WHERE false")
            .await
            .unwrap();
        let left: i64 = client
            .query_one(
                "SELECT count(*) FROM routing_change_log WHERE xid = '5'::xid8",
                &[],
            )
            .await
            .unwrap()
            .get(0);
        if left == 0 {
            Ok(())
        } else {
            Err("not pruned yet")
        }
    })
    .await;
    let horizon: String = client
        .query_one("SELECT horizon::text FROM routing_change_log_horizon", &[])
        .await
        .unwrap()
        .get(0);
    assert!(horizon.parse::<u64>().unwrap() >= 6, "{horizon}");
}

/// Through the running reloader: a change to one customer is installed incrementally, sharing
/// the rate part, and the next dip sees it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_customer_change_goes_live_through_the_reloader_incrementally() {
    let (pg, client) = fresh().await;
    seed(&client, unix_now()).await;
    let engine = Arc::new(Engine::new(RoutingSettings::default()));
    let metrics = Arc::new(Metrics::new());
    let stop = CancellationToken::new();
    let reloader = DbReloader::start(
        pg.url(),
        engine.clone(),
        metrics.clone(),
        Duration::from_millis(50),
        stop.clone(),
    );
    support::eventually("the initial load", Duration::from_secs(10), || {
        ready(engine.generation() >= 1)
    })
    .await;
    let before = engine.snapshot();
    let ask = req("+12015550123", "+12125550199");
    assert!(matches!(
        routing::dip(&before, &ask, unix_now()),
        DipAnswer::Route(_)
    ));
    let t = Instant::now();
    client
        .batch_execute("UPDATE customers SET blocked_prefixes = '{1212}' WHERE id = 1000")
        .await
        .unwrap();
    support::eventually("the blocked prefix live", Duration::from_secs(10), || {
        ready(matches!(
            routing::dip(&engine.snapshot(), &ask, unix_now()),
            DipAnswer::Reject(_)
        ))
    })
    .await;
    eprintln!("commit to live: {:?}", t.elapsed());
    let after = engine.snapshot();
    assert_eq!(after.rebuilt().names(), ["customers"]);
    assert!(after.shares(&before, Part::Rates));
    let parts = |part: &str, kind: &str| {
        metrics
            .snapshot_part_builds
            .with_label_values(&[part, kind])
            .get()
    };
    assert_eq!(parts("customers", "incremental"), 1);
    assert_eq!(parts("rates", "incremental"), 0);
    assert!(parts("rates", "full") >= 1);
    // `warpd reload --full` still builds everything
    let rep = reloader.reload_full().await.unwrap();
    assert_eq!(rep.rebuilt.len(), Part::ALL.len());
    assert!(!engine.snapshot().shares(&after, Part::Rates));
    stop.cancel();
    reloader.join().await;
}

/// Through the running reloader: activating a staged deck of one route (what ops do) patches
/// the rate part for that route only, the other parts and routes carried over, and the result
/// equals a full build.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deck_activation_rebuilds_only_its_routes_rates() {
    let (pg, mut client) = fresh().await;
    seed(&client, unix_now()).await;
    let engine = Arc::new(Engine::new(RoutingSettings::default()));
    let metrics = Arc::new(Metrics::new());
    let stop = CancellationToken::new();
    let reloader = DbReloader::start(
        pg.url(),
        engine.clone(),
        metrics.clone(),
        Duration::from_millis(50),
        stop.clone(),
    );
    support::eventually("the initial load", Duration::from_secs(10), || {
        ready(engine.generation() >= 1)
    })
    .await;
    let before = engine.snapshot();
    let mut o = warpd::deck::ImportOptions::new("r_alpha", "alpha.csv", "test");
    o.stage = true;
    let csv = "prefix,rate\n1212,0.0001\n1646,0.0002\n44,0.0003\n";
    let staged = warpd::deck::store::import(
        &mut client,
        Box::new(std::io::Cursor::new(csv.as_bytes().to_vec())),
        &o,
    )
    .await
    .unwrap();
    let version = staged.version.unwrap();
    warpd::deck::store::activate(&mut client, "r_alpha", version, None, "test")
        .await
        .unwrap();
    let db_version: i64 = client
        .query_one("SELECT version FROM routing_data_version", &[])
        .await
        .unwrap()
        .get(0);
    support::eventually("the activation live", Duration::from_secs(10), || {
        ready(engine.snapshot().data_version() == Some(db_version))
    })
    .await;
    let after = engine.snapshot();
    assert_eq!(after.rebuilt().names(), ["rates"]);
    for p in [
        Part::Topology,
        Part::Customers,
        Part::Policy,
        Part::Numbering,
    ] {
        assert!(after.shares(&before, p), "{p:?}");
    }
    assert_eq!(after.canonical(), full(&client).await.canonical());
    assert_ne!(after.canonical(), before.canonical());
    let parts = |part: &str, kind: &str| {
        metrics
            .snapshot_part_builds
            .with_label_values(&[part, kind])
            .get()
    };
    // the initial load only was full; every later rate build patched the one route
    assert_eq!(parts("rates", "full"), 1);
    assert!(parts("rates", "incremental") >= 1);
    assert_eq!(
        metrics.snapshot_rate_routes_rebuilt.get(),
        parts("rates", "incremental")
    );
    stop.cancel();
    reloader.join().await;
}
