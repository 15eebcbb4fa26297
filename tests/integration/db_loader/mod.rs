//! Database layer against a throwaway PostgreSQL: migrations, the snapshot loader (a small network
//! checked through real dips), NOTIFY-driven and explicit reloads, bad rows, LISTEN reconnects.

use crate::support;

use chrono::{Datelike, TimeZone, Timelike};
use tokio_postgres::Client;
use warpd::db::{self, DbError, DbReloader};
use warpd::metrics::Metrics;
use warpd::reload::{ReloadError, Reloader};
use warpd::routing::{self, DipAnswer, DipRequest, Engine, RoutingSettings, Snapshot, Zone};

mod changes;
mod data_version;
mod incremental;
mod reload;
mod scale;

const DAY: i64 = 86_400;

async fn fresh() -> (support::TestPg, Client) {
    let pg = support::TestPg::start();
    let mut client = db::connect(&pg.url()).await.unwrap();
    let applied = db::migrate(&mut client).await.unwrap();
    assert_eq!(applied, all_migrations());
    (pg, client)
}

/// Every embedded migration's name, in order (what a fresh database gets).
fn all_migrations() -> Vec<String> {
    db::migrate::MIGRATIONS
        .iter()
        .map(|m| m.name.to_string())
        .collect()
}

fn unix_now() -> i64 {
    chrono::Utc::now().timestamp()
}

/// The daytime partition's window: a 2-hour window starting at the current Chicago hour, only on
/// today's (Chicago) weekday. Open at `t0`, closed 12 hours later and 15 days later.
fn daytime_window(t0: i64) -> (i16, String, String) {
    let local = chrono::Utc
        .timestamp_opt(t0, 0)
        .single()
        .unwrap()
        .with_timezone(&chrono_tz::America::Chicago);
    let h = local.hour();
    (
        local.weekday().number_from_monday() as i16,
        format!("{h:02}:00"),
        format!("{:02}:00", (h + 2) % 24),
    )
}

/// A small network. Vendor alpha (LRN billing) and beta (OCN/LATA billing); customer BAN1 has a
/// "daytime" partition (beta only, time window) before "default" (both routes).
async fn seed(client: &Client, t0: i64) {
    let (dow, start, end) = daytime_window(t0);
    let sql = format!(
        r#"
        INSERT INTO vendors (id, name, billing_model) VALUES (1, 'alpha', 'LRN'), (2, 'beta', 'OCN_LATA');
        UPDATE vendors SET dialstring = 'sip:${{number}}@${{host}}:${{port}};transport=${{transport}}' WHERE id = 2;
        INSERT INTO gateways (vendor_id, name, host, port, transport, priority, enabled) VALUES
            (1, 'a1', '10.0.0.1', 5060, 'udp', 10, true),
            (1, 'a2', '10.0.0.9', 5060, 'udp', 20, false),
            (2, 'b1', '10.0.0.2', 5080, 'tcp', 10, true);
        INSERT INTO routes (id, name, vendor_id) VALUES (10, 'r_alpha', 1), (20, 'r_beta', 2);
        INSERT INTO partitions (id, name) VALUES (100, 'daytime'), (200, 'default');
        INSERT INTO partition_routes VALUES (100, 20), (200, 10), (200, 20);
        INSERT INTO customers (id, ban, name, margin_percent, blocked_prefixes, allowed_classes) VALUES
            (1000, 'BAN1', 'Acme', 10, '{{1876}}', '{{domestic,tollfree,international}}'),
            (2000, 'BAN2', 'Idle', NULL, '{{}}', '{{domestic}}');
        UPDATE customers SET enabled = false WHERE id = 2000;
        INSERT INTO customer_source_ips VALUES (1000, '192.0.2.10/32'), (1000, '198.51.100.0/24');
        INSERT INTO customer_partitions (customer_id, partition_id, priority, days, start_time, end_time, tz) VALUES
            (1000, 100, 1, '{{{dow}}}', '{start}', '{end}', 'America/Chicago'),
            (1000, 200, 2, '{{}}', NULL, NULL, 'UTC');
        INSERT INTO customer_margin_rules (customer_id, prefix, margin_percent) VALUES (1000, '44', 50);
        INSERT INTO customer_rates (customer_id, prefix, rate_inter, rate_intra, rate_local, effective_from, effective_until) VALUES
            (1000, '1212555', 0.0080, 0.0080, 0.0080, '-infinity', 'infinity'),
            (1000, '1201', 0.5, 0.5, 0.5, now() - interval '20 days', now() - interval '1 day');
        INSERT INTO vendor_rates (route_id, prefix, ocn, lata, rate_inter, rate_intra, rate_local, min_seconds, inc_seconds, effective_from, effective_until) VALUES
            (10, '1212555', NULL, NULL, 0.0100, 0.0100, 0.0100, 6, 6, now() - interval '20 days', now() - interval '10 days'),
            (10, '1212555', NULL, NULL, 0.0050, 0.0040, 0.0030, 6, 6, now() - interval '10 days', now() + interval '10 days'),
            (10, '1212555', NULL, NULL, 0.0060, 0.0060, 0.0060, 6, 6, now() + interval '10 days', 'infinity'),
            (10, '1212', NULL, NULL, 0.0090, 0.0090, 0.0090, 6, 6, '-infinity', 'infinity'),
            (10, '44', NULL, NULL, 0.0200, 0.0200, 0.0200, 1, 1, '-infinity', 'infinity'),
            (20, NULL, '9206', '132', 0.0045, 0.0045, 0.0045, 30, 6, '-infinity', 'infinity');
        INSERT INTO npanxx (npanxx, state, lata, ocn) VALUES
            ('212555', 'NY', '132', '9206'), ('2125550', 'NY', '132', '9206'),
            ('212556', 'NY', '132', '9999'), ('201555', 'NJ', '224', '1234');
        INSERT INTO local_calling VALUES ('212555', '212556'), ('212556', '212555');
        INSERT INTO lnp VALUES ('2125570100', '2125560000');
        INSERT INTO dno VALUES ('12015550199'), ('442071234567');
        INSERT INTO overrides (customer_id, prefix, route_id, rate) VALUES (1000, '1201', 20, 0.0010);
        INSERT INTO overrides (customer_id, prefix, route_id, valid_until) VALUES (NULL, '1', 10, now() - interval '1 day');
        INSERT INTO exclusions (customer_id, prefix, vendor_id) VALUES (NULL, '121255599', NULL), (1000, '44', 2);
        "#
    );
    client.batch_execute(&sql).await.unwrap();
}

fn req(ani: &str, dnis: &str) -> DipRequest {
    DipRequest {
        ban: Some("BAN1".into()),
        ani: ani.into(),
        dnis: dnis.into(),
        ..Default::default()
    }
}

/// (route, buy, sell) of a routed answer; panics on a reject.
fn routed(a: &DipAnswer) -> Vec<(String, f64, f64)> {
    match a {
        DipAnswer::Route(r) => r
            .routes
            .iter()
            .map(|c| {
                (
                    c.route_id.to_string(),
                    (c.rate * 1e7).round() / 1e7,
                    (c.customer_rate * 1e7).round() / 1e7,
                )
            })
            .collect(),
        DipAnswer::Reject(r) => panic!("expected a route, got reject {} {}", r.sip_code, r.reason),
    }
}

fn reject(a: &DipAnswer) -> (u16, String) {
    match a {
        DipAnswer::Reject(r) => (r.sip_code, r.reason.clone()),
        DipAnswer::Route(r) => panic!("expected a reject, got {r:?}"),
    }
}

fn r(route: &str, buy: f64, sell: f64) -> (String, f64, f64) {
    (route.to_string(), buy, sell)
}

#[tokio::test]
async fn migrate_is_idempotent_serialized_and_detects_edited_files() {
    let (pg, mut client) = fresh().await;
    assert!(
        db::migrate(&mut client).await.unwrap().is_empty(),
        "second run applies nothing"
    );
    let rows = client
        .query(
            "SELECT version, name, checksum FROM warpd_schema_migrations ORDER BY version",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(rows.len(), db::migrate::MIGRATIONS.len());
    assert_eq!(rows[0].get::<_, i32>(0), 1);
    assert_eq!(rows[0].get::<_, String>(1), "0001_routing.sql");
    assert_eq!(
        rows[0].get::<_, String>(2),
        db::migrate::MIGRATIONS[0].checksum()
    );

    // two nodes migrating a fresh database at once: exactly one applies the schema
    client
        .batch_execute("CREATE DATABASE second")
        .await
        .unwrap();
    let url2 = pg.url().replace("/postgres", "/second");
    let (mut a, mut b) = (
        db::connect(&url2).await.unwrap(),
        db::connect(&url2).await.unwrap(),
    );
    let (ra, rb) = tokio::join!(db::migrate(&mut a), db::migrate(&mut b));
    let mut applied = [ra.unwrap(), rb.unwrap()];
    applied.sort();
    assert_eq!(applied, [vec![], all_migrations()]);

    // an applied file that changed since is refused, naming it
    client
        .execute(
            "UPDATE warpd_schema_migrations SET checksum = '0000000000000000' WHERE version = 1",
            &[],
        )
        .await
        .unwrap();
    let err = db::migrate(&mut client).await.unwrap_err();
    assert!(matches!(err, DbError::ChecksumMismatch { .. }), "{err:?}");
    assert!(err.to_string().contains("0001_routing.sql"), "{err}");
    // the lock was released despite the error: another session can take it
    let other = db::connect(&pg.url()).await.unwrap();
    let got: bool = other
        .query_one("SELECT pg_try_advisory_lock($1)", &[&db::migrate::LOCK_KEY])
        .await
        .unwrap()
        .get(0);
    assert!(got, "migration lock still held after a failed run");
}

#[tokio::test]
async fn loads_a_consistent_snapshot_that_routes() {
    let (_pg, client) = fresh().await;
    let t0 = unix_now();
    seed(&client, t0).await;
    let snap = db::load_snapshot(&client, RoutingSettings::default())
        .await
        .unwrap();
    let s = snap.stats();
    assert!(
        (s.built_at - t0).abs() < 60,
        "built_at {} vs {t0}",
        s.built_at
    );
    assert_eq!(
        (s.vendors, s.routes, s.partitions, s.customers),
        (2, 2, 2, 2)
    );
    // past vendor rate row dropped; current, future and open-ended kept
    assert_eq!((s.rate_keys, s.rate_entries), (4, 5));
    assert_eq!(
        (s.overrides, s.exclusions),
        (1, 2),
        "expired override not loaded"
    );
    assert_eq!((s.npanxx, s.local_pairs, s.lnp, s.dno), (4, 1, 1, 2));
    assert!(s.warnings.is_empty(), "{:?}", s.warnings);
    // the client is usable afterwards (transaction ended)
    client.batch_execute("SELECT 1").await.unwrap();

    check_dips(&snap, t0);
}

fn check_dips(snap: &Snapshot, t0: i64) {
    let later = t0 + DAY / 2;
    let ny = "+12125550199";

    // inside the daytime window: only beta, rated by OCN/LATA of 212555, sold from the sell deck
    let a = routing::dip(snap, &req("+12015550123", ny), t0);
    assert_eq!(routed(&a), vec![r("r_beta", 0.0045, 0.008)]);
    let DipAnswer::Route(ra) = &a else {
        unreachable!()
    };
    assert_eq!(ra.zone, Zone::Interstate);
    assert_eq!(
        ra.routes[0].uri,
        "sip:12125550199@10.0.0.2:5080;transport=tcp"
    );
    assert_eq!(
        (ra.routes[0].billing.min, ra.routes[0].billing.inc),
        (30, 6)
    );
    let sim = routing::simulate(snap, &req("+12015550123", ny), later);
    assert_eq!(
        sim.partitions,
        vec!["daytime (window closed)".to_string(), "default".to_string()]
    );

    // outside it: default partition, cheapest first; alpha's current (not past) 1212555 row
    let a = routing::dip(snap, &req("+12015550123", ny), later);
    assert_eq!(
        routed(&a),
        vec![r("r_beta", 0.0045, 0.008), r("r_alpha", 0.005, 0.008)]
    );
    let DipAnswer::Route(ra) = &a else {
        unreachable!()
    };
    assert_eq!(
        ra.routes[1].uris,
        vec!["sip:+12125550199@10.0.0.1:5060;transport=udp".to_string()]
    );
    // in 15 days alpha's future-effective row applies (window closed then: another weekday)
    let a = routing::dip(snap, &req("+12015550123", ny), t0 + 15 * DAY);
    assert_eq!(
        routed(&a),
        vec![r("r_beta", 0.0045, 0.008), r("r_alpha", 0.006, 0.008)]
    );

    // local zone from local_calling: alpha's local rate
    let a = routing::dip(snap, &req("+12125560123", ny), later);
    let DipAnswer::Route(ra) = &a else {
        panic!("{a:?}")
    };
    assert_eq!(ra.zone, Zone::Local);
    assert_eq!(
        routed(&a),
        vec![r("r_alpha", 0.003, 0.008), r("r_beta", 0.0045, 0.008)]
    );

    // ported number: LRN from lnp, alpha by LRN prefix 1212, beta has no rate for 212556's OCN;
    // no sell-deck row, so the 10% default margin
    let a = routing::dip(snap, &req("+12015550123", "+12125570100"), later);
    let DipAnswer::Route(ra) = &a else {
        panic!("{a:?}")
    };
    assert_eq!(ra.lrn.as_deref(), Some("2125560000"));
    assert_eq!(routed(&a), vec![r("r_alpha", 0.009, 0.0099)]);

    // customer override forces beta at the override rate; the expired sell row is not loaded
    let a = routing::dip(snap, &req("+12125550123", "+12015550100"), later);
    let DipAnswer::Route(ra) = &a else {
        panic!("{a:?}")
    };
    assert!(ra.routes[0].forced);
    assert_eq!(routed(&a), vec![r("r_beta", 0.001, 0.0011)]);

    // international: margin rule for 44 (50%); beta excluded for 44 for this customer anyway
    let a = routing::dip(snap, &req("+12125550123", "+442071234500"), later);
    assert_eq!(routed(&a), vec![r("r_alpha", 0.02, 0.03)]);

    // rejects: DNO (NANP and international entries), global exclusion, blocked prefix,
    // disabled customer
    assert_eq!(
        reject(&routing::dip(snap, &req("+12015550199", ny), later)).0,
        403
    );
    let (code, why) = reject(&routing::dip(snap, &req("+442071234567", ny), later));
    assert_eq!(code, 403);
    assert!(why.contains("do-not-originate"), "{why}");
    let (code, why) = reject(&routing::dip(
        snap,
        &req("+12015550123", "+12125559911"),
        later,
    ));
    assert_eq!(
        (code, why.as_str()),
        (403, "destination excluded by prefix 121255599")
    );
    let (code, why) = reject(&routing::dip(
        snap,
        &req("+12015550123", "+18765551234"),
        later,
    ));
    assert_eq!((code, why.as_str()), (403, "blocked prefix 1876"));
    let mut by_ip = req("+12015550123", ny);
    by_ip.ban = None;
    by_ip.src_ip = Some("198.51.100.77".parse().unwrap());
    assert_eq!(
        routed(&routing::dip(snap, &by_ip, later)).len(),
        2,
        "customer found by source CIDR"
    );
    let mut idle = req("+12015550123", ny);
    idle.ban = Some("BAN2".into());
    assert_eq!(
        reject(&routing::dip(snap, &idle, later)),
        (403, "customer disabled".into())
    );
}

#[tokio::test]
async fn bad_rows_fail_the_load_naming_the_row() {
    let (_pg, client) = fresh().await;
    seed(&client, unix_now()).await;
    client
        .batch_execute(
            "UPDATE customer_partitions SET tz = 'Mars/Olympus' WHERE partition_id = 100",
        )
        .await
        .unwrap();
    let err = db::load_snapshot(&client, RoutingSettings::default())
        .await
        .unwrap_err();
    let msg = err.to_string();
    assert!(
        matches!(
            &err,
            DbError::BadRow {
                table: "customer_partitions",
                ..
            }
        ),
        "{err:?}"
    );
    assert!(
        msg.contains("BAN1") && msg.contains("Mars/Olympus"),
        "{msg}"
    );
    // the failed load rolled back its transaction: the connection works
    client
        .batch_execute("UPDATE customer_partitions SET tz = 'UTC'")
        .await
        .unwrap();

    // the schema refuses a weekday outside 1..7, naming its constraint ...
    let refused = client
        .batch_execute("UPDATE customer_partitions SET days = '{8}' WHERE partition_id = 100")
        .await
        .unwrap_err();
    assert!(
        format!("{refused:?}").contains("customer_partitions_days_iso"),
        "{refused:?}"
    );
    // ... and the loader still checks on its own (data written before the constraint existed)
    client
        .batch_execute(
            "ALTER TABLE customer_partitions DROP CONSTRAINT customer_partitions_days_iso;
             UPDATE customer_partitions SET days = '{8}' WHERE partition_id = 100",
        )
        .await
        .unwrap();
    let msg = db::load_snapshot(&client, RoutingSettings::default())
        .await
        .unwrap_err()
        .to_string();
    assert!(msg.contains("weekday 8") && msg.contains("BAN1"), "{msg}");
    client
        .batch_execute("UPDATE customer_partitions SET days = '{}'")
        .await
        .unwrap();

    client
        .batch_execute("UPDATE overrides SET tz = 'Nowhere/City'")
        .await
        .unwrap();
    let msg = db::load_snapshot(&client, RoutingSettings::default())
        .await
        .unwrap_err()
        .to_string();
    assert!(
        msg.contains("overrides")
            && msg.contains("override")
            && msg.contains("BAN1")
            && msg.contains("Nowhere/City"),
        "{msg}"
    );
    client
        .batch_execute("UPDATE overrides SET tz = 'UTC'")
        .await
        .unwrap();

    // a rate beyond what Rate can hold (~429.49/min) names the row by route, key and start
    let refused = client
        .batch_execute("UPDATE vendor_rates SET rate_local = 500 WHERE prefix = '44'")
        .await
        .unwrap_err();
    assert!(
        format!("{refused:?}").contains("vendor_rates_rate_range"),
        "{refused:?}"
    );
    client
        .batch_execute(
            "ALTER TABLE vendor_rates DROP CONSTRAINT vendor_rates_rate_range;
             UPDATE vendor_rates SET rate_local = 500 WHERE prefix = '44'",
        )
        .await
        .unwrap();
    let msg = db::load_snapshot(&client, RoutingSettings::default())
        .await
        .unwrap_err()
        .to_string();
    assert!(
        msg.contains("vendor_rates")
            && msg.contains("route \"r_alpha\", prefix 44, effective_from -infinity")
            && msg.contains("rate_local 500"),
        "{msg}"
    );
    // NaN fits numeric(12,7) once the range check is gone: `load_row` carries it, the loader
    // refuses it by name
    client
        .batch_execute(
            "UPDATE vendor_rates SET rate_local = 0.02, rate_intra = 'NaN' WHERE prefix = '44'",
        )
        .await
        .unwrap();
    let msg = db::load_snapshot(&client, RoutingSettings::default())
        .await
        .unwrap_err()
        .to_string();
    assert!(
        msg.contains("route \"r_alpha\", prefix 44, effective_from -infinity")
            && msg.contains("unreadable rate_intra"),
        "{msg}"
    );
    client
        .batch_execute(
            "UPDATE vendor_rates SET rate_local = 0.02, rate_intra = 0.02 WHERE prefix = '44'",
        )
        .await
        .unwrap();

    // a DNO number too short to be E.164 is masked in the error
    let refused = client
        .batch_execute("INSERT INTO dno VALUES ('55512')")
        .await
        .unwrap_err();
    assert!(
        format!("{refused:?}").contains("dno_number_e164"),
        "{refused:?}"
    );
    client
        .batch_execute(
            "ALTER TABLE dno DROP CONSTRAINT dno_number_e164;
             INSERT INTO dno VALUES ('55512')",
        )
        .await
        .unwrap();
    let msg = db::load_snapshot(&client, RoutingSettings::default())
        .await
        .unwrap_err()
        .to_string();
    assert!(msg.contains("dno") && !msg.contains("55512"), "{msg}");
    client
        .batch_execute("DELETE FROM dno WHERE number = '55512'")
        .await
        .unwrap();

    db::load_snapshot(&client, RoutingSettings::default())
        .await
        .unwrap();
}

/// Money and timestamps come over binary COPY and are decoded by hand: every value must equal
/// what PostgreSQL itself computes (`round(x * 1e7)`, `floor(epoch)`), checked through dips.
#[tokio::test]
async fn binary_decoding_matches_postgres_arithmetic() {
    let (_pg, client) = fresh().await;
    let t0 = unix_now();
    seed(&client, t0).await;
    // 300 prefixes under 1303555 with awkward rates: tiny, large, many digits, exact halves
    // beyond the 7th decimal are impossible in numeric(12,7), so random 7-decimal values
    client
        .batch_execute(
            "INSERT INTO vendor_rates (route_id, prefix, rate_inter, effective_from, effective_until)
             SELECT 10, '1303555' || lpad(i::text, 4, '0'),
                    CASE i WHEN 0 THEN 0 WHEN 1 THEN 0.0000001 WHEN 2 THEN 429.4967294
                           WHEN 3 THEN 99.9999999 WHEN 4 THEN 1
                           ELSE round((random() * 400)::numeric, 7) END,
                    now() - make_interval(secs => random() * 1e6),
                    now() + make_interval(secs => 1 + random() * 1e6)
             FROM generate_series(0, 299) i",
        )
        .await
        .unwrap();
    let expect = client
        .query(
            "SELECT prefix, round(rate_inter * 10000000)::bigint,
                    floor(extract(epoch FROM effective_from))::bigint,
                    floor(extract(epoch FROM effective_until))::bigint
             FROM vendor_rates WHERE prefix LIKE '1303555%'",
            &[],
        )
        .await
        .unwrap();
    let snap = db::load_snapshot(&client, RoutingSettings::default())
        .await
        .unwrap();
    let mut margin_free = req("+12015550123", "");
    for row in &expect {
        let (prefix, scaled, from, until): (String, i64, i64, i64) =
            (row.get(0), row.get(1), row.get(2), row.get(3));
        margin_free.dnis = format!("+{prefix}");
        // inside the row's window: alpha at exactly that rate
        let a = routing::dip(&snap, &margin_free, from);
        let DipAnswer::Route(ra) = &a else {
            panic!("{prefix}: {a:?}")
        };
        let alpha = ra.routes.iter().find(|c| c.route_id == "r_alpha").unwrap();
        assert_eq!((alpha.rate * 1e7).round() as i64, scaled, "{prefix}");
        // one second before its start and at its end it no longer applies
        for t in [from - 1, until] {
            let a = routing::dip(&snap, &margin_free, t);
            if let DipAnswer::Route(ra) = &a {
                assert!(
                    ra.routes.iter().all(|c| c.route_id != "r_alpha"),
                    "{prefix} at {t} (window {from}..{until}): {a:?}"
                );
            }
        }
    }
}

/// vendor_rates split over helper connections (page ranges, shared snapshot) gives the same
/// snapshot as one stream.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parallel_streams_load_the_same_snapshot() {
    let (pg, client) = fresh().await;
    let t0 = unix_now();
    seed(&client, t0).await;
    client
        .batch_execute(
            "INSERT INTO vendor_rates (route_id, prefix, rate_inter, rate_intra, rate_local)
             SELECT 10 + 10 * (i % 2), '1303' || lpad((i / 2)::text, 6, '0'), i / 1e6, i / 1e6, NULL
             FROM generate_series(0, 59999) i",
        )
        .await
        .unwrap();
    let single = db::load_snapshot(&client, RoutingSettings::default())
        .await
        .unwrap();
    let mut helpers = Vec::new();
    for _ in 0..2 {
        helpers.push(db::connect(&pg.url()).await.unwrap());
    }
    let parallel =
        db::loader::load_snapshot_parallel(&client, &helpers, RoutingSettings::default())
            .await
            .unwrap();
    let (mut s1, mut s3) = (single.stats(), parallel.stats());
    assert_eq!(s1.rate_entries, 60_005);
    s1.built_at = 0;
    s3.built_at = 0;
    assert_eq!(s1, s3);
    for i in (0..30_000).step_by(997) {
        let r = req("+12015550123", &format!("+1303{i:06}1"));
        assert_eq!(
            routing::dip(&single, &r, t0 + DAY / 2),
            routing::dip(&parallel, &r, t0 + DAY / 2),
            "{i}"
        );
    }
    check_dips(&parallel, t0);
    // the helpers ended their transactions and are reusable
    for h in &helpers {
        h.batch_execute("SELECT 1").await.unwrap();
    }
}

/// sql/0006: vendor_rates.route_id keeps foreign-key integrity without the per-row check.
#[tokio::test]
async fn vendor_rates_route_integrity_is_checked_per_statement() {
    let (_pg, client) = fresh().await;
    seed(&client, unix_now()).await;
    let count = |sql: &'static str| {
        let c = &client;
        async move { c.query_one(sql, &[]).await.unwrap().get::<_, i64>(0) }
    };
    // a row naming no route: refused with the foreign key's SQLSTATE and name, nothing written
    let err = client
        .execute(
            "INSERT INTO vendor_rates (route_id, prefix, rate_inter, rate_intra, rate_local) \
             VALUES (10, '1999', 0.01, 0.01, 0.01), (99, '1998', 0.01, 0.01, 0.01)",
            &[],
        )
        .await
        .unwrap_err();
    let db = err.as_db_error().expect("a database error");
    assert_eq!(
        db.code(),
        &tokio_postgres::error::SqlState::FOREIGN_KEY_VIOLATION
    );
    assert_eq!(db.constraint(), Some("vendor_rates_route_id_fkey"));
    assert!(
        db.detail().unwrap_or("").contains("(route_id)=(99)"),
        "{db:?}"
    );
    assert_eq!(
        count("SELECT count(*) FROM vendor_rates WHERE prefix IN ('1999', '1998')").await,
        0
    );
    // moving rows to a route that does not exist: refused too
    let err = client
        .execute(
            "UPDATE vendor_rates SET route_id = 77 WHERE route_id = 20",
            &[],
        )
        .await
        .unwrap_err();
    assert_eq!(
        err.code(),
        Some(&tokio_postgres::error::SqlState::FOREIGN_KEY_VIOLATION)
    );
    // rows of an existing route: accepted, in bulk
    client
        .execute(
            "INSERT INTO vendor_rates (route_id, prefix, rate_inter, rate_intra, rate_local) \
             SELECT 20, '1' || lpad(g::text, 6, '0'), 0.01, 0.01, 0.01 FROM generate_series(1, 5000) g",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(
        count("SELECT count(*) FROM vendor_rates WHERE route_id = 20").await,
        5001
    );
    // a route id cannot change under its rates
    assert!(client
        .execute("UPDATE routes SET id = 21 WHERE id = 20", &[])
        .await
        .is_err());
    // deleting a route deletes its rates (was ON DELETE CASCADE); other routes keep theirs
    let before_10 = count("SELECT count(*) FROM vendor_rates WHERE route_id = 10").await;
    client
        .batch_execute("DELETE FROM partition_routes WHERE route_id = 20; DELETE FROM overrides WHERE route_id = 20; DELETE FROM routes WHERE id = 20")
        .await
        .unwrap();
    assert_eq!(
        count("SELECT count(*) FROM vendor_rates WHERE route_id = 20").await,
        0
    );
    assert_eq!(
        count("SELECT count(*) FROM vendor_rates WHERE route_id = 10").await,
        before_10
    );
    // deleting a vendor cascades to its routes and from there to their rates
    client
        .batch_execute(
            "DELETE FROM partition_routes; DELETE FROM overrides; DELETE FROM vendors WHERE id = 1",
        )
        .await
        .unwrap();
    assert_eq!(count("SELECT count(*) FROM vendor_rates").await, 0);
}
