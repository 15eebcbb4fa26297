//! `warpd apply` against a throwaway PostgreSQL: the demo network, idempotency, dry runs, rejection
//! of bad files with nothing applied, YAML, replace semantics of child lists; plus the CSV row
//! reader (quoting, CRLF, BOM, empty files) and a no-panic property test.

mod accounts;
mod csv;
mod files;
mod limits;
mod numbers_import;
mod stir;
mod timeline;
mod trunks;

use crate::support;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use tokio_postgres::Client;
use warpd::provision::csv_rows::CsvTable;
use warpd::provision::{self, Action, DeckAction, DeckKind, Format, ObjectKind, ProvisionError};

const TABLES: [&str; 18] = [
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
    "media_policies",
    "npanxx",
    "local_calling",
    "lnp",
    "dno",
];

async fn db(pg: &support::TestPg) -> Client {
    let mut c = warpd::db::connect(&pg.url()).await.unwrap();
    warpd::db::migrate(&mut c).await.unwrap();
    c
}

fn demo_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/demo")
}

fn demo() -> PathBuf {
    demo_dir().join("network.toml")
}

/// A private copy of the demo network to modify.
fn demo_copy() -> tempfile::TempDir {
    let t = tempfile::tempdir().unwrap();
    support::copy_dir(&demo_dir(), t.path());
    t
}

fn edit(path: &Path, from: &str, to: &str) {
    let s = std::fs::read_to_string(path).unwrap();
    assert!(
        s.contains(from),
        "{} does not contain {from:?}",
        path.display()
    );
    std::fs::write(path, s.replacen(from, to, 1)).unwrap();
}

async fn counts(c: &Client) -> BTreeMap<&'static str, i64> {
    let mut m = BTreeMap::new();
    for t in TABLES {
        let n: i64 = c
            .query_one(&format!("SELECT count(*) FROM {t}"), &[])
            .await
            .unwrap()
            .get(0);
        m.insert(t, n);
    }
    m
}

/// max_concurrent_calls, max_cps, billing_min_seconds, billing_inc_seconds of a customer.
async fn customer_limits(c: &Client, ban: &str) -> [Option<i32>; 4] {
    let r = c
        .query_one(
            "SELECT max_concurrent_calls, max_cps, billing_min_seconds, billing_inc_seconds \
             FROM customers WHERE ban = $1",
            &[&ban],
        )
        .await
        .unwrap();
    [r.get(0), r.get(1), r.get(2), r.get(3)]
}

type PolicyRow = (
    Option<String>,
    Option<String>,
    Option<bool>,
    Option<String>,
    Option<Vec<String>>,
    Option<Vec<String>>,
);

/// All media_policies rows (customer, route, record, t38, allow, strip), customer rows first.
async fn media_policies(c: &Client) -> Vec<PolicyRow> {
    c.query(
        "SELECT customer_ban, route_name, record, t38_mode, codec_allow, codec_strip \
         FROM media_policies ORDER BY customer_ban NULLS LAST, route_name NULLS FIRST",
        &[],
    )
    .await
    .unwrap()
    .iter()
    .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3), r.get(4), r.get(5)))
    .collect()
}

fn expected_demo_counts() -> BTreeMap<&'static str, i64> {
    [
        ("vendors", 5),
        ("gateways", 7),
        ("routes", 6),
        ("partitions", 2),
        ("partition_routes", 7),
        ("customers", 2),
        ("customer_source_ips", 2),
        ("customer_partitions", 3),
        ("customer_margin_rules", 3),
        ("customer_rates", 3),
        ("vendor_rates", 6 + 5 + 5 + 7 + 7),
        ("overrides", 2),
        ("exclusions", 2),
        ("media_policies", 2),
        ("npanxx", 7),
        ("local_calling", 4),
        ("lnp", 1),
        ("dno", 2),
    ]
    .into_iter()
    .collect()
}

#[tokio::test]
async fn demo_network_applies_with_the_expected_plan() {
    let pg = support::TestPg::start();
    let mut c = db(&pg).await;

    let plan = provision::apply(&mut c, &demo(), false).await.unwrap();
    assert!(plan.applied && !plan.dry_run);
    assert_eq!(
        plan.count(Action::Create),
        5 + 7 + 6 + 2 + 7 + 2 + 2 + 3 + 3 + 2 + 2 + 2
    );
    assert_eq!(plan.count(Action::Update) + plan.count(Action::Delete), 0);
    assert_eq!(plan.rows_to_load(), 30 + 3 + 7 + 4 + 1 + 2);
    let text = plan.to_string();
    assert!(text.contains("+ vendor northstar"), "{text}");
    assert!(
        text.contains(
            "new deck version for route ns-premium: 6 rates (was 0) from rates/northstar_premium.csv"
        ),
        "{text}"
    );
    let json = serde_json::to_value(&plan).unwrap();
    assert_eq!(json["applied"], true);
    assert_eq!(json["changes"][0]["kind"], "vendor");

    assert_eq!(counts(&c).await, expected_demo_counts());
}

/// A specific gateway; the default dialstring.
async fn check_gateway_and_dialstring(c: &Client) {
    // a specific gateway
    let g = c
        .query_one(
            "SELECT g.host, g.port, g.transport::text, g.priority, g.weight, g.enabled FROM gateways g \
             JOIN vendors v ON v.id = g.vendor_id WHERE v.name = 'northstar' AND g.name = 'ns-gw2'",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(g.get::<_, String>(0), "127.0.0.1");
    assert_eq!(g.get::<_, i32>(1), 5082);
    assert_eq!(g.get::<_, String>(2), "udp");
    assert_eq!(
        (g.get::<_, i32>(3), g.get::<_, i32>(4), g.get::<_, bool>(5)),
        (20, 1, true)
    );
    let ds: String = c
        .query_one(
            "SELECT dialstring FROM vendors WHERE name = 'northstar'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(ds, provision::DEFAULT_DIALSTRING);
}

/// Specific rates: zone columns, a single rate copied into all zones, OCN/LATA keys, effective_from.
async fn check_rates(c: &Client) {
    // specific rates: zone columns, a single rate copied into all zones, OCN/LATA keys, effective_from
    let r = c
        .query_one(
            "SELECT rate_inter::text, rate_intra::text, rate_local::text, min_seconds, inc_seconds, \
             effective_from = '-infinity', effective_until = 'infinity' FROM vendor_rates v \
             JOIN routes r ON r.id = v.route_id WHERE r.name = 'ns-premium' AND v.prefix = '1212'",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(r.get::<_, String>(0), "0.0045000");
    assert_eq!(r.get::<_, String>(1), "0.0060000");
    assert_eq!(r.get::<_, String>(2), "0.0030000");
    assert_eq!((r.get::<_, i32>(3), r.get::<_, i32>(4)), (6, 6));
    assert!(r.get::<_, bool>(5) && r.get::<_, bool>(6));
    let r = c
        .query_one(
            "SELECT rate_inter::text, rate_intra::text, rate_local::text, min_seconds, inc_seconds \
             FROM vendor_rates v JOIN routes r ON r.id = v.route_id WHERE r.name = 'bw-intl' AND v.prefix = '4420'",
            &[],
        )
        .await
        .unwrap();
    for i in 0..3 {
        assert_eq!(r.get::<_, String>(i), "0.0095000");
    }
    assert_eq!((r.get::<_, i32>(3), r.get::<_, i32>(4)), (1, 1));
    let n: i64 = c
        .query_one(
            "SELECT count(*) FROM vendor_rates v JOIN routes r ON r.id = v.route_id \
             WHERE r.name = 'ks-ocn' AND v.prefix IS NULL AND v.ocn = '9740' AND v.lata = '722' \
             AND v.rate_intra = 0.0046",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(n, 1);
    let from: bool = c
        .query_one(
            "SELECT bool_and(effective_from = '2024-01-01T00:00:00Z') FROM vendor_rates v \
             JOIN routes r ON r.id = v.route_id WHERE r.name = 'ns-budget'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert!(from);
}

/// The business-hours window of customer 10002.
async fn check_business_hours_window(c: &Client) {
    // the business-hours window of customer 10002
    let w = c
        .query_one(
            "SELECT cp.priority, cp.days, cp.start_time::text, cp.end_time::text, cp.tz FROM customer_partitions cp \
             JOIN customers c ON c.id = cp.customer_id JOIN partitions p ON p.id = cp.partition_id \
             WHERE c.ban = '10002' AND p.name = 'premium'",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(w.get::<_, i32>(0), 10);
    assert_eq!(w.get::<_, Vec<i16>>(1), vec![1, 2, 3, 4, 5]);
    assert_eq!(w.get::<_, String>(2), "08:00:00");
    assert_eq!(w.get::<_, String>(3), "18:00:00");
    assert_eq!(w.get::<_, String>(4), "America/New_York");
}

/// Customer 10001: limits, blocked prefixes, source address, margin; 10002 has none.
async fn check_customers(c: &Client) {
    // customer 10001: limits, blocked prefixes, source address, margin
    let cu = c
        .query_one(
            "SELECT max_rate::text, blocked_prefixes, allowed_classes::text[], margin_percent::text, \
             (SELECT array_agg(cidr::text) FROM customer_source_ips s WHERE s.customer_id = customers.id) \
             FROM customers WHERE ban = '10001'",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(cu.get::<_, String>(0), "0.0500000");
    assert_eq!(cu.get::<_, Vec<String>>(1), vec!["1900", "1976"]);
    assert_eq!(
        cu.get::<_, Vec<String>>(2),
        vec!["domestic", "international", "tollfree"]
    );
    assert_eq!(cu.get::<_, String>(3), "20.0000");
    assert_eq!(cu.get::<_, Vec<String>>(4), vec!["127.0.0.1/32"]);
    assert_eq!(
        customer_limits(c, "10001").await,
        [Some(100), Some(20), Some(6), Some(6)]
    );
    // 10002 gives none of them: no limits, the vendor's increments
    assert_eq!(customer_limits(c, "10002").await, [None; 4]);
}

/// Media policies: 10001's calls recorded; bw-intl decodes T.38 and strips G.729.
async fn check_media_policies(c: &Client) {
    // media policies: 10001's calls recorded; bw-intl decodes T.38 and strips G.729
    assert_eq!(
        media_policies(c).await,
        vec![
            (Some("10001".into()), None, Some(true), None, None, None),
            (
                None,
                Some("bw-intl".into()),
                None,
                Some("gateway".into()),
                None,
                Some(vec!["G729".into()])
            ),
        ]
    );
}

/// Numbering (local pair both ways, the ported number) and the override window.
async fn check_numbering_and_override_window(c: &Client) {
    // numbering: local pair stored both ways, the ported number
    let n: i64 = c
        .query_one(
            "SELECT count(*) FROM local_calling WHERE (a_npanxx, b_npanxx) IN (('212226','212555'),('212555','212226'))",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(n, 2);
    let lrn: String = c
        .query_one("SELECT lrn FROM lnp WHERE tn = '2125550123'", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(lrn, "6465550000");

    // the override window survives the round trip
    let o: bool = c
        .query_one(
            "SELECT valid_from = '2025-01-01T00:00:00Z' AND valid_until = '2030-01-01T00:00:00Z' AND rate = 0.0085 \
             FROM overrides WHERE customer_id IS NULL AND prefix = '5255'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert!(o);
}

#[tokio::test]
async fn demo_network_rows_are_stored_as_written() {
    let pg = support::TestPg::start();
    let mut c = db(&pg).await;
    provision::apply(&mut c, &demo(), false).await.unwrap();
    check_gateway_and_dialstring(&c).await;
    check_rates(&c).await;
    check_business_hours_window(&c).await;
    check_customers(&c).await;
    check_media_policies(&c).await;
    check_numbering_and_override_window(&c).await;
}

#[tokio::test]
async fn reapplying_the_demo_network_changes_nothing() {
    let pg = support::TestPg::start();
    let mut c = db(&pg).await;
    provision::apply(&mut c, &demo(), false).await.unwrap();
    // re-applying: no changes, same rows (ids included: nothing was rewritten)
    let ids_before: Vec<i64> = c
        .query("SELECT id FROM vendor_rates ORDER BY id", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    let again = provision::apply(&mut c, &demo(), false).await.unwrap();
    assert!(!again.has_changes(), "{again}");
    assert!(again.changes.is_empty());
    assert!(again
        .decks
        .iter()
        .all(|d| d.action == DeckAction::Unchanged));
    assert_eq!(again.unchanged_count(ObjectKind::Vendor), 5);
    assert_eq!(again.unchanged_count(ObjectKind::Gateway), 7);
    assert_eq!(again.unchanged_count(ObjectKind::Override), 2);
    assert_eq!(again.unchanged_count(ObjectKind::MediaPolicy), 2);
    assert_eq!(again.unchanged_count(ObjectKind::Customer), 2);
    assert!(again.to_string().contains("summary: no changes"), "{again}");
    assert_eq!(counts(&c).await, expected_demo_counts());
    let ids_after: Vec<i64> = c
        .query("SELECT id FROM vendor_rates ORDER BY id", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(ids_before, ids_after);
}

#[tokio::test]
async fn demo_network_loads_into_a_snapshot_with_interstate_intrastate_and_local_calls() {
    use warpd::routing::{dip, DipAnswer, DipRequest, RoutingSettings, Zone};
    let pg = support::TestPg::start();
    let mut c = db(&pg).await;
    provision::apply(&mut c, &demo(), false).await.unwrap();
    let snap = warpd::db::load_snapshot(&c, RoutingSettings::default())
        .await
        .unwrap();
    let stats = snap.stats();
    assert_eq!((stats.vendors, stats.routes, stats.customers), (5, 6, 2));
    assert_eq!(stats.rate_entries, 30);
    assert!(stats.warnings.is_empty(), "{:?}", stats.warnings);

    let now = 1_750_000_000; // 2025-06-15
    let zone_of = |ani: &str, dnis: &str| {
        let req = DipRequest {
            ban: Some("10001".into()),
            ani: ani.into(),
            dnis: dnis.into(),
            ..DipRequest::default()
        };
        match dip(&snap, &req, now) {
            DipAnswer::Route(r) => {
                assert!(!r.routes.is_empty());
                r.zone
            }
            DipAnswer::Reject(r) => panic!("{ani} -> {dnis} rejected: {r:?}"),
        }
    };
    assert_eq!(zone_of("+12125550100", "+13125550100"), Zone::Interstate);
    assert_eq!(zone_of("+12132290100", "+14155550100"), Zone::Intrastate);
    assert_eq!(zone_of("+12122260100", "+12125550100"), Zone::Local);
    // blocked prefix from the file
    let req = DipRequest {
        ban: Some("10001".into()),
        ani: "+12125550100".into(),
        dnis: "+19005550100".into(),
        ..DipRequest::default()
    };
    assert!(matches!(dip(&snap, &req, now), DipAnswer::Reject(_)));
}

async fn assert_rejected(c: &mut Client, file: &Path, needles: &[&str]) -> ProvisionError {
    let before = counts(c).await;
    let err = provision::apply(c, file, false)
        .await
        .expect_err("must be rejected");
    let msg = err.to_string();
    for n in needles {
        assert!(msg.contains(n), "error does not mention {n:?}:\n{msg}");
    }
    assert!(msg.contains("nothing applied"), "{msg}");
    assert_eq!(
        counts(c).await,
        before,
        "a rejected file changed the database"
    );
    err
}
