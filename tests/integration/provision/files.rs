//! Dry runs, bad files refused with the culprit named and nothing applied, replace semantics of
//! child lists, YAML networks, a large deck streamed in chunks.

use super::*;

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
