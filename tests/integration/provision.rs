//! `warpd apply` against a throwaway PostgreSQL: the demo network, idempotency, dry runs, rejection
//! of bad files with nothing applied, YAML, replace semantics of child lists; plus the CSV row
//! reader (quoting, CRLF, BOM, empty files) and a no-panic property test.

use crate::support;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use proptest::prelude::*;
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
        text.contains("load vendor_rates ns-premium: 6 rows from rates/northstar_premium.csv"),
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

#[tokio::test]
async fn dry_run_reports_changes_and_writes_nothing() {
    let pg = support::TestPg::start();
    let mut c = db(&pg).await;
    provision::apply(&mut c, &demo(), false).await.unwrap();
    let before = counts(&c).await;

    let dir = demo_copy();
    let file = dir.path().join("network.toml");
    edit(&file, "port = 5081", "port = 5091");
    edit(
        &file,
        "name = \"Acme Telecom\"",
        "name = \"Acme Telecom Inc\"",
    );
    edit(
        &file,
        "[[partitions]]\nname = \"budget\"",
        "[[partitions]]\nname = \"night\"\nroutes = [\"ns-budget\"]\n\n[[partitions]]\nname = \"budget\"",
    );
    edit(
        &dir.path().join("rates/bluewave_intl.csv"),
        "4420,0.0095",
        "4420,0.0099",
    );

    let plan = provision::apply(&mut c, &file, true).await.unwrap();
    assert!(plan.dry_run && !plan.applied && plan.has_changes());
    let gw = plan
        .change(ObjectKind::Gateway, "northstar/ns-gw1")
        .expect("gateway change");
    assert_eq!(gw.action, Action::Update);
    assert_eq!(gw.fields.len(), 1);
    assert_eq!(gw.fields[0].field, "port");
    assert_eq!(gw.fields[0].old.as_deref(), Some("5081"));
    assert_eq!(gw.fields[0].new.as_deref(), Some("5091"));
    let cu = plan
        .change(ObjectKind::Customer, "10001")
        .expect("customer change");
    assert_eq!(cu.fields[0].new.as_deref(), Some("Acme Telecom Inc"));
    assert_eq!(
        plan.change(ObjectKind::Partition, "night").unwrap().action,
        Action::Create
    );
    assert_eq!(
        plan.change(ObjectKind::PartitionRoute, "night -> ns-budget")
            .unwrap()
            .action,
        Action::Create
    );
    let decks: Vec<_> = plan
        .decks
        .iter()
        .filter(|d| d.action == DeckAction::Load)
        .collect();
    assert_eq!(decks.len(), 1);
    assert_eq!(
        (decks[0].kind, decks[0].target.as_str(), decks[0].rows),
        (DeckKind::VendorRates, "bw-intl", 7)
    );
    assert_eq!(plan.count(Action::Create), 2);
    assert_eq!(plan.count(Action::Update), 2);
    let text = plan.to_string();
    assert!(
        text.contains("~ gateway northstar/ns-gw1: port: 5081 -> 5091"),
        "{text}"
    );
    assert!(text.contains("dry run"), "{text}");

    // nothing written
    assert_eq!(counts(&c).await, before);
    let port: i32 = c
        .query_one("SELECT port FROM gateways WHERE name = 'ns-gw1'", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(port, 5081);
    let rate: String = c
        .query_one(
            "SELECT rate_inter::text FROM vendor_rates WHERE prefix = '4420'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(rate, "0.0095000");

    // applying for real does exactly that
    let done = provision::apply(&mut c, &file, false).await.unwrap();
    assert!(done.applied);
    let rate: String = c
        .query_one(
            "SELECT rate_inter::text FROM vendor_rates WHERE prefix = '4420'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(rate, "0.0099000");
    assert_eq!(counts(&c).await["partitions"], 3);
    assert!(!provision::apply(&mut c, &file, false)
        .await
        .unwrap()
        .has_changes());
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

#[tokio::test]
async fn invalid_files_are_rejected_with_the_culprit_named_and_nothing_applied() {
    let pg = support::TestPg::start();
    let mut c = db(&pg).await;

    // unknown route reference, into an empty database: not even the valid vendors are created
    let dir = demo_copy();
    let file = dir.path().join("network.toml");
    edit(
        &file,
        "routes = [\"ns-budget\", \"ks-ocn\", \"bw-intl\"]",
        "routes = [\"ns-budget\", \"nope\"]",
    );
    let err = assert_rejected(
        &mut c,
        &file,
        &[
            "partitions[1] \"budget\".routes[1]",
            "unknown route \"nope\"",
        ],
    )
    .await;
    assert_eq!(err.issues().len(), 1);
    assert_eq!(counts(&c).await["vendors"], 0);

    // now with the demo in place, each bad file leaves it exactly as it is
    provision::apply(&mut c, &demo(), false).await.unwrap();

    // bad CSV row: line number, file and column
    let dir = demo_copy();
    edit(
        &dir.path().join("rates/northstar_premium.csv"),
        "1312,0.0042",
        "1312,-0.0042",
    );
    assert_rejected(
        &mut c,
        &dir.path().join("network.toml"),
        &[
            "rates/northstar_premium.csv line 5, interstate",
            "\"-0.0042\"",
        ],
    )
    .await;

    // non-digit prefix and a duplicate prefix
    let dir = demo_copy();
    let csv = dir.path().join("rates/bluewave_intl.csv");
    edit(&csv, "49,0.0110", "+49,0.0110");
    edit(&csv, "52,0.0180", "44,0.0180");
    let err = assert_rejected(
        &mut c,
        &dir.path().join("network.toml"),
        &[
            "rates/bluewave_intl.csv line 5, prefix",
            "rates/bluewave_intl.csv line 7, prefix: duplicate prefix 44 (first at line 2)",
        ],
    )
    .await;
    assert_eq!(err.issues().len(), 2);

    // bad time zone
    let dir = demo_copy();
    let file = dir.path().join("network.toml");
    edit(
        &file,
        "tz = \"America/New_York\"",
        "tz = \"America/Gotham\"",
    );
    assert_rejected(
        &mut c,
        &file,
        &[
            "customers[1] \"10002\".partitions[0] \"premium\".tz",
            "America/Gotham",
        ],
    )
    .await;

    // several problems at once: bad transport, bad CIDR, unknown class, bad time, bad billing model
    let dir = demo_copy();
    let file = dir.path().join("network.toml");
    edit(&file, "transport = \"udp\"", "transport = \"sctp\"");
    edit(&file, "198.51.100.0/24", "198.51.100.7/24");
    edit(&file, "\"international\"]", "\"satellite\"]");
    edit(&file, "end = \"18:00\"", "end = \"18:75\"");
    edit(&file, "billing_model = \"DNIS\"", "billing_model = \"DNS\"");
    let err = assert_rejected(
        &mut c,
        &file,
        &[
            "gateways[0] \"ns-gw1\".transport",
            "did you mean 198.51.100.0/24",
            "\"satellite\"",
            ".end",
            "\"DNS\" is not one of",
        ],
    )
    .await;
    assert_eq!(err.issues().len(), 5, "{err}");

    // OCN_LATA vendor with a prefix deck
    let dir = demo_copy();
    let file = dir.path().join("network.toml");
    edit(
        &file,
        "rates = \"rates/keystone_ocn.csv\"",
        "rates = \"rates/tfn_tollfree.csv\"",
    );
    assert_rejected(
        &mut c,
        &file,
        &["rates/tfn_tollfree.csv line 1", "OCN_LATA"],
    )
    .await;

    // syntax / unknown field: parse error naming the field
    let dir = demo_copy();
    let file = dir.path().join("network.toml");
    edit(&file, "capacity = 200", "capacity = 200\ncolour = \"red\"");
    let before = counts(&c).await;
    let err = provision::apply(&mut c, &file, false).await.unwrap_err();
    assert!(matches!(err, ProvisionError::Parse { .. }), "{err}");
    assert!(err.to_string().contains("colour"), "{err}");
    assert_eq!(counts(&c).await, before);

    // missing CSV file
    let dir = demo_copy();
    std::fs::remove_file(dir.path().join("numbering/lnp.csv")).unwrap();
    assert_rejected(
        &mut c,
        &dir.path().join("network.toml"),
        &["numbering/lnp.csv", "cannot open"],
    )
    .await;
}

#[tokio::test]
async fn child_lists_are_replaced_and_unnamed_objects_left_alone() {
    let pg = support::TestPg::start();
    let mut c = db(&pg).await;
    provision::apply(&mut c, &demo(), false).await.unwrap();

    let text = r#"
[[vendors]]
name = "northstar"
billing_model = "LRN"
[[vendors.gateways]]
name = "ns-gw1"
host = "127.0.0.1"
port = 5081
priority = 10

[[partitions]]
name = "premium"
description = "best-quality routes: full CLI, low PDD"
routes = ["ns-premium"]

[[customers]]
ban = "10001"
name = "Acme Telecom"
max_rate = "0.05"
blocked_prefixes = ["1900", "1976"]
allowed_classes = ["domestic", "tollfree", "international"]
margin_percent = 20
source_ips = ["127.0.0.1", "203.0.113.0/24"]
margin_rules = []
"#;
    let plan = provision::apply_str(&mut c, text, Format::Toml, Path::new("/nonexistent"), false)
        .await
        .unwrap();
    assert_eq!(
        plan.change(ObjectKind::Gateway, "northstar/ns-gw2")
            .unwrap()
            .action,
        Action::Delete
    );
    assert_eq!(
        plan.change(ObjectKind::PartitionRoute, "premium -> ks-ocn")
            .unwrap()
            .action,
        Action::Delete
    );
    assert_eq!(
        plan.change(ObjectKind::CustomerSourceIp, "10001 203.0.113.0/24")
            .unwrap()
            .action,
        Action::Create
    );
    assert_eq!(
        plan.change(ObjectKind::MarginRule, "10001 prefix 44")
            .unwrap()
            .action,
        Action::Delete
    );
    assert!(plan
        .change(ObjectKind::CustomerSourceIp, "10001 127.0.0.1/32")
        .is_none());

    let n = counts(&c).await;
    assert_eq!(n["gateways"], 6);
    assert_eq!(n["partition_routes"], 4);
    assert_eq!(n["customer_source_ips"], 3);
    assert_eq!(n["customer_margin_rules"], 1);
    // not named (keystone, routes, customer 10002, decks, numbering) or not listed (10001's partitions)
    assert_eq!(n["vendors"], 5);
    assert_eq!(n["routes"], 6);
    assert_eq!(n["customers"], 2);
    assert_eq!(n["customer_partitions"], 3);
    assert_eq!(n["vendor_rates"], 30);
    assert_eq!(n["npanxx"], 7);

    // moving a source address between customers works within one file
    let text = r#"
[[customers]]
ban = "10001"
source_ips = ["127.0.0.1/32"]
[[customers]]
ban = "10002"
source_ips = ["203.0.113.0/24"]
"#;
    let plan = provision::apply_str(&mut c, text, Format::Toml, Path::new("."), false)
        .await
        .unwrap();
    assert!(plan.applied);
    let owner: String = c
        .query_one(
            "SELECT c.ban FROM customer_source_ips s JOIN customers c ON c.id = s.customer_id \
             WHERE s.cidr = '203.0.113.0/24'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(owner, "10002");

    // ...but not stealing one from a customer the file does not release it from
    let text = "[[customers]]\nban = \"10003\"\nsource_ips = [\"127.0.0.1/32\"]\n";
    let err = provision::apply_str(&mut c, text, Format::Toml, Path::new("."), false)
        .await
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("127.0.0.1/32 belongs to customer 10001"),
        "{err}"
    );
    assert_eq!(counts(&c).await["customers"], 2);
}

#[tokio::test]
async fn yaml_network_applies_idempotently() {
    let pg = support::TestPg::start();
    let mut c = db(&pg).await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("intl.csv"),
        "\u{feff}prefix,rate,min,increment\r\n44,0.012,1,1\r\n\"4420\",\"0.0095\",1,1\r\n",
    )
    .unwrap();
    let yaml = r#"
vendors:
  - name: carrier-x
    billing_model: INTERNATIONAL
    gateways:
      - { name: gw1, host: 127.0.0.1, port: 5090, transport: tcp }
routes:
  - name: x-intl
    vendor: carrier-x
    capacity: 10
    rates: intl.csv
    rates_effective_from: "2025-03-01T12:00:00+01:00"
partitions:
  - name: all
    routes: [x-intl]
customers:
  - ban: 20001
    name: YAML Customer
    margin_percent: 7.5
    source_ips: ["192.0.2.10"]
    partitions:
      - name: all
        days: [6, 7]
        start: "22:00"
        end: "06:00"
        tz: Europe/London
overrides:
  - customer: 20001
    prefix: "44"
    route: x-intl
    rate: 0.011
exclusions:
  - prefix: "4470"
    vendor: carrier-x
"#;
    let path = dir.path().join("net.yaml");
    std::fs::write(&path, yaml).unwrap();
    let plan = provision::apply(&mut c, &path, false).await.unwrap();
    assert!(plan.applied);
    let n = counts(&c).await;
    assert_eq!(
        (
            n["vendors"],
            n["gateways"],
            n["routes"],
            n["vendor_rates"],
            n["customers"],
            n["overrides"],
            n["exclusions"]
        ),
        (1, 1, 1, 2, 1, 1, 1)
    );
    let r = c
        .query_one(
            "SELECT g.transport::text, g.port, c.margin_percent::text, cp.days, cp.start_time::text, \
             (SELECT bool_and(effective_from = '2025-03-01T11:00:00Z') FROM vendor_rates) \
             FROM gateways g, customers c JOIN customer_partitions cp ON cp.customer_id = c.id",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(r.get::<_, String>(0), "tcp");
    assert_eq!(r.get::<_, i32>(1), 5090);
    assert_eq!(r.get::<_, String>(2), "7.5000");
    assert_eq!(r.get::<_, Vec<i16>>(3), vec![6, 7]);
    assert_eq!(r.get::<_, String>(4), "22:00:00");
    assert!(r.get::<_, bool>(5));

    // the same network from a string, as TOML-equivalent YAML: no changes
    let again = provision::apply_str(&mut c, yaml, Format::Yaml, dir.path(), false)
        .await
        .unwrap();
    assert!(!again.has_changes(), "{again}");
    assert_eq!(counts(&c).await, n);

    // YAML errors name the field
    let err = provision::apply_str(
        &mut c,
        "vendors:\n  - name: a\n    billing: LRN\n",
        Format::Yaml,
        dir.path(),
        true,
    )
    .await
    .unwrap_err();
    assert!(err.to_string().contains("billing"), "{err}");
}

/// The demo applied; its media policies as stored.
async fn applied_demo() -> (support::TestPg, Client, Vec<PolicyRow>) {
    let pg = support::TestPg::start();
    let mut c = db(&pg).await;
    provision::apply(&mut c, &demo(), false).await.unwrap();
    let before = media_policies(&c).await;
    (pg, c, before)
}

/// A demo copy that changes a limit, drops an increment, changes a policy and adds one for
/// customer + route: the copy and its network file.
fn limits_and_policies_changed() -> (tempfile::TempDir, PathBuf) {
    let dir = demo_copy();
    let file = dir.path().join("network.toml");
    edit(&file, "max_cps = 20", "max_cps = 30");
    edit(&file, "billing_min_seconds = 6", "");
    edit(
        &file,
        "record = true",
        "record = false\ncodec_allow = [\"PCMU\", \"PCMA\"]",
    );
    edit(
        &file,
        "# --- numbering",
        "[[media_policies]]\ncustomer = 10001\nroute = \"bw-intl\"\nt38_mode = \"passthrough\"\n\n# --- numbering",
    );

    (dir, file)
}

#[tokio::test]
async fn changed_call_limits_and_media_policies_dry_run_names_the_fields_and_writes_nothing() {
    let (_pg, mut c, before) = applied_demo().await;
    let (_dir, file) = limits_and_policies_changed();
    // dry run: the plan names the changed fields, nothing is written
    let dry = provision::apply(&mut c, &file, true).await.unwrap();
    assert!(dry.dry_run && !dry.applied);
    let cust = dry
        .changes
        .iter()
        .find(|ch| ch.kind == ObjectKind::Customer && ch.name == "10001")
        .expect("customer 10001 changes");
    assert_eq!(cust.action, Action::Update);
    let fields: Vec<(&str, Option<&str>, Option<&str>)> = cust
        .fields
        .iter()
        .map(|f| (f.field.as_str(), f.old.as_deref(), f.new.as_deref()))
        .collect();
    assert_eq!(
        fields,
        vec![
            ("max_cps", Some("20"), Some("30")),
            ("billing_min_seconds", Some("6"), Some("null")),
        ]
    );
    let pol: Vec<(&str, Action)> = dry
        .changes
        .iter()
        .filter(|ch| ch.kind == ObjectKind::MediaPolicy)
        .map(|ch| (ch.name.as_str(), ch.action))
        .collect();
    assert_eq!(
        pol,
        vec![
            ("customer 10001", Action::Update),
            ("customer 10001 route bw-intl", Action::Create),
        ]
    );
    assert_eq!(dry.changes.len(), 3, "{dry}");
    let text = dry.to_string();
    assert!(
        text.contains("media policy customer 10001 route bw-intl"),
        "{text}"
    );
    assert!(text.contains("max_cps"), "{text}");
    assert_eq!(media_policies(&c).await, before);
    assert_eq!(
        customer_limits(&c, "10001").await,
        [Some(100), Some(20), Some(6), Some(6)]
    );
}

#[tokio::test]
async fn changed_call_limits_and_media_policies_apply_and_reapplying_writes_nothing() {
    let (_pg, mut c, before) = applied_demo().await;
    let (_dir, file) = limits_and_policies_changed();
    // apply: the values land
    let plan = provision::apply(&mut c, &file, false).await.unwrap();
    assert!(plan.applied);
    assert_eq!(
        customer_limits(&c, "10001").await,
        [Some(100), Some(30), None, Some(6)]
    );
    let rows = media_policies(&c).await;
    assert_eq!(rows.len(), 3);
    assert_eq!(
        rows[0],
        (
            Some("10001".into()),
            None,
            Some(false),
            None,
            Some(vec!["PCMU".into(), "PCMA".into()]),
            None
        )
    );
    assert_eq!(
        rows[1],
        (
            Some("10001".into()),
            Some("bw-intl".into()),
            None,
            Some("passthrough".into()),
            None,
            None
        )
    );
    assert_eq!(rows[2], before[1]);

    // re-applying writes nothing
    let again = provision::apply(&mut c, &file, false).await.unwrap();
    assert!(!again.has_changes(), "{again}");
    assert_eq!(again.unchanged_count(ObjectKind::MediaPolicy), 3);
    assert_eq!(media_policies(&c).await, rows);
}

#[tokio::test]
async fn bad_call_limit_and_media_policy_values_are_refused_naming_the_field() {
    let (_pg, mut c, _) = applied_demo().await;
    let (_dir, file) = limits_and_policies_changed();
    provision::apply(&mut c, &file, false).await.unwrap();
    let applied = media_policies(&c).await;
    // bad values are refused naming the field; nothing is written
    let bad: [(&str, &str, &[&str]); 8] = [
        (
            "max_cps = 30",
            "max_cps = -1",
            &["customers[0] \"10001\".max_cps", "-1 is out of range 0..="],
        ),
        (
            "billing_inc_seconds = 6",
            "billing_inc_seconds = 0",
            &[
                "customers[0] \"10001\".billing_inc_seconds",
                "out of range 1..=",
            ],
        ),
        (
            "max_concurrent_calls = 100",
            "max_concurrent_calls = 3000000000",
            &[
                "customers[0] \"10001\".max_concurrent_calls",
                "out of range",
            ],
        ),
        (
            "t38_mode = \"passthrough\"",
            "t38_mode = \"fax\"",
            &[
                "media_policies[2].t38_mode",
                "\"fax\" is not one of none, passthrough, gateway",
            ],
        ),
        (
            "customer = 10001\nroute = \"bw-intl\"",
            "customer = 99999\nroute = \"bw-intl\"",
            &["media_policies[2].customer", "unknown customer \"99999\""],
        ),
        (
            "route = \"bw-intl\"\nt38_mode = \"passthrough\"",
            "route = \"nope\"\nt38_mode = \"passthrough\"",
            &["media_policies[2].route", "unknown route \"nope\""],
        ),
        (
            "customer = 10001\nroute = \"bw-intl\"",
            "",
            &["media_policies[2]", "needs a customer, a route or both"],
        ),
        (
            "codec_strip = [\"G729\"]",
            "codec_strip = [\"G729\", \"g729\", \"\"]",
            &[
                "media_policies[1].codec_strip[1]",
                "listed twice",
                "media_policies[1].codec_strip[2]",
                "not a codec name",
            ],
        ),
    ];
    for (from, to, needles) in bad {
        let d = demo_copy();
        let f = d.path().join("network.toml");
        std::fs::copy(&file, &f).unwrap();
        edit(&f, from, to);
        let err = assert_rejected(&mut c, &f, needles).await;
        assert!(err.to_string().contains("network.toml"), "{err}");
        assert_eq!(
            customer_limits(&c, "10001").await,
            [Some(100), Some(30), None, Some(6)]
        );
        assert_eq!(media_policies(&c).await, applied);
    }
}

#[tokio::test]
async fn call_limits_and_media_policies_from_yaml_apply_idempotently_and_a_duplicate_is_refused() {
    let (_pg, mut c, _) = applied_demo().await;
    let dir = demo_copy();
    // YAML: the same fields, and a policy listed twice is refused
    let yaml = r#"
customers:
  - ban: 10001
    max_concurrent_calls: 7
    billing_min_seconds: 30
    billing_inc_seconds: 6
media_policies:
  - { route: ns-premium, codec_strip: [G729, G723] }
"#;
    let plan = provision::apply_str(&mut c, yaml, Format::Yaml, dir.path(), false)
        .await
        .unwrap();
    assert!(plan.applied);
    assert_eq!(
        customer_limits(&c, "10001").await,
        [Some(7), None, Some(30), Some(6)]
    );
    let strip: Option<Vec<String>> = c
        .query_one(
            "SELECT codec_strip FROM media_policies WHERE route_name = 'ns-premium'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(strip, Some(vec!["G729".into(), "G723".into()]));
    let again = provision::apply_str(&mut c, yaml, Format::Yaml, dir.path(), false)
        .await
        .unwrap();
    assert!(!again.has_changes(), "{again}");
    let dup = format!("{yaml}  - {{ route: ns-premium, record: true }}\n");
    let err = provision::apply_str(&mut c, &dup, Format::Yaml, dir.path(), false)
        .await
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("media_policies[1]: media policy for route ns-premium is listed twice"),
        "{err}"
    );
}

// --- CSV row reader ------------------------------------------------------------------------------

/// (headers, (line, fields) of good rows, error messages)
type Parsed = (Vec<String>, Vec<(u64, Vec<String>)>, Vec<String>);

fn rows(text: &str) -> Parsed {
    let t = CsvTable::from_reader(text.as_bytes(), "t.csv").unwrap();
    let headers = t.headers().to_vec();
    let mut ok = vec![];
    let mut errs = vec![];
    for r in t {
        match r {
            Ok(r) => ok.push((r.line, r.fields)),
            Err(e) => errs.push(e.to_string()),
        }
    }
    (headers, ok, errs)
}

fn v(x: &[&str]) -> Vec<String> {
    x.iter().map(|s| s.to_string()).collect()
}

#[test]
fn csv_quoted_fields_keep_commas_quotes_and_newlines() {
    let (h, r, e) = rows("Prefix,Note\n1212,\"New York, NY\"\n\"1213\",\"say \"\"hi\"\"\"\n1312,\"two\nlines\"\n1415,x\n");
    assert_eq!(h, v(&["prefix", "note"]));
    assert!(e.is_empty(), "{e:?}");
    assert_eq!(
        r,
        vec![
            (2, v(&["1212", "New York, NY"])),
            (3, v(&["1213", "say \"hi\""])),
            (4, v(&["1312", "two\nlines"])),
            (6, v(&["1415", "x"])),
        ]
    );
}

#[test]
fn csv_crlf_bom_blank_lines_and_trimming() {
    let (h, r, e) = rows(
        "\u{feff}prefix , rate\r\n1212, 0.01 \r\n\r\n,\r\n1213,0.02\r\n1312,\"a\r\nb\"\r1415,0.03",
    );
    assert_eq!(h, v(&["prefix", "rate"]));
    assert!(e.is_empty(), "{e:?}");
    assert_eq!(
        r,
        vec![
            (2, v(&["1212", "0.01"])),
            (5, v(&["1213", "0.02"])),
            (6, v(&["1312", "a\nb"])),
            (8, v(&["1415", "0.03"])),
        ]
    );
}

#[test]
fn csv_empty_file_and_header_only() {
    for empty in ["", "\n\n", "\u{feff}"] {
        let err = CsvTable::from_reader(empty.as_bytes(), "empty.csv")
            .err()
            .expect("empty file rejected");
        assert!(err.to_string().contains("empty.csv line 1"), "{err}");
        assert!(err.to_string().contains("header"), "{err}");
    }
    let (h, r, e) = rows("prefix,rate\n");
    assert_eq!(h, v(&["prefix", "rate"]));
    assert!(r.is_empty() && e.is_empty());
}

#[test]
fn csv_wrong_field_count_and_bad_header_name_the_line() {
    let (_, r, e) = rows("prefix,rate\n1212\n1213,0.1,extra\n1312,0.2\n");
    assert_eq!(r, vec![(4, v(&["1312", "0.2"]))]);
    assert_eq!(e.len(), 2);
    assert!(e[0].starts_with("t.csv line 2"), "{e:?}");
    assert!(
        e[1].starts_with("t.csv line 3") && e[1].contains("expected 2 fields"),
        "{e:?}"
    );
    let err = CsvTable::from_reader("a,A\n".as_bytes(), "h.csv")
        .err()
        .unwrap();
    assert!(err.to_string().contains("column named twice"), "{err}");
    let t = CsvTable::from_reader(&b"prefix\n\xff\n"[..], "u.csv").unwrap();
    let e: Vec<String> = t.map(|r| r.unwrap_err().to_string()).collect();
    assert!(e[0].contains("line 2") && e[0].contains("UTF-8"), "{e:?}");
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn csv_reader_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        if let Ok(t) = CsvTable::from_reader(&bytes[..], "p.csv") {
            let width = t.headers().len();
            let mut last = 0;
            for r in t.take(1000).flatten() {
                prop_assert_eq!(r.fields.len(), width);
                prop_assert!(r.line > last);
                last = r.line;
            }
        }
    }

    #[test]
    fn csv_reader_never_panics_on_csvish_text(text in "[a-z0-9,\"\r\n \u{feff}]{0,200}") {
        if let Ok(t) = CsvTable::from_reader(text.as_bytes(), "p.csv") {
            for r in t.take(1000) {
                let _ = r;
            }
        }
    }
}

#[tokio::test]
async fn large_deck_streams_in_chunks_and_a_bad_last_row_keeps_the_old_deck() {
    use std::fmt::Write as _;
    let pg = support::TestPg::start();
    let mut c = db(&pg).await;
    let dir = tempfile::tempdir().unwrap();
    let mut deck = String::from("prefix,interstate,intrastate,local\n");
    for i in 0..120_000u32 {
        writeln!(deck, "1{},0.00{:02},0.0100,0.0050", 2_000_000 + i, i % 100).unwrap();
    }
    std::fs::write(dir.path().join("big.csv"), &deck).unwrap();
    let net = "[[vendors]]\nname = \"v\"\nbilling_model = \"LRN\"\n\
               [[routes]]\nname = \"r\"\nvendor = \"v\"\nrates = \"big.csv\"\n";
    let plan = provision::apply_str(&mut c, net, Format::Toml, dir.path(), false)
        .await
        .unwrap();
    assert_eq!(plan.rows_to_load(), 120_000);
    let n: i64 = c
        .query_one(
            "SELECT count(*) FROM vendor_rates WHERE rate_inter = 0.0042",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(n, 1_200);
    assert_eq!(counts(&c).await["vendor_rates"], 120_000);

    let again = provision::apply_str(&mut c, net, Format::Toml, dir.path(), false)
        .await
        .unwrap();
    assert!(!again.has_changes(), "{again}");

    // one changed rate is noticed
    std::fs::write(
        dir.path().join("big.csv"),
        deck.replacen("12000000,0.0000", "12000000,0.0001", 1),
    )
    .unwrap();
    let dry = provision::apply_str(&mut c, net, Format::Toml, dir.path(), true)
        .await
        .unwrap();
    assert_eq!(dry.decks[0].action, DeckAction::Load);
    assert_eq!(dry.decks[0].existing_rows, 120_000);

    // a bad row at the very end rejects the whole apply; the loaded deck stays
    deck.push_str("1999,abc,0.1,0.1\n");
    std::fs::write(dir.path().join("big.csv"), &deck).unwrap();
    let err = provision::apply_str(&mut c, net, Format::Toml, dir.path(), false)
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains("big.csv line 120002, interstate"),
        "{err}"
    );
    assert_eq!(counts(&c).await["vendor_rates"], 120_000);
}
