//! Rate decks against a throwaway PostgreSQL: import, diff, future-effective activation (the clock
//! is driven through the dip's `now`), rollback, export, refusal on a bad row with the database
//! unchanged, --skip-invalid, staged versions, margins and shadow evaluation.

use crate::support;

use chrono::{Duration as ChronoDuration, Utc};
use tokio_postgres::Client;
use warpd::deck::{self, DeckError, ImportOptions};
use warpd::routing::{self, DipAnswer, DipRequest, RoutingSettings, Snapshot};

async fn fresh() -> (support::TestPg, Client) {
    let pg = support::TestPg::start();
    let client = support::demo::deck_network_db(&pg).await;
    (pg, client)
}

fn london() -> DipRequest {
    DipRequest {
        ban: Some("1001".into()),
        src_ip: None,
        ani: "+12125550100".into(),
        dnis: "+442071234567".into(),
        lrn: None,
        call_id: None,
        max_results: None,
        identity: None,
        trunk: None,
    }
}

/// (first route, its buy rate) of a dip at `now`.
fn first_route(s: &Snapshot, now: i64) -> (String, f64) {
    match routing::dip(s, &london(), now) {
        DipAnswer::Route(r) => (r.routes[0].route_id.to_string(), r.routes[0].rate),
        DipAnswer::Reject(r) => panic!("rejected: {r:?}"),
    }
}

async fn snapshot(client: &Client) -> Snapshot {
    warpd::db::load_snapshot(client, RoutingSettings::default())
        .await
        .unwrap()
}

async fn import(
    client: &mut Client,
    csv: &str,
    f: impl FnOnce(&mut ImportOptions),
) -> Result<deck::ImportReport, DeckError> {
    let mut o = ImportOptions::new("alpha", "alpha.csv", "test");
    f(&mut o);
    deck::store::import(
        client,
        Box::new(std::io::Cursor::new(csv.as_bytes().to_vec())),
        &o,
    )
    .await
}

async fn count(client: &Client, table: &str) -> i64 {
    client
        .query_one(&format!("SELECT count(*) FROM {table}"), &[])
        .await
        .unwrap()
        .get(0)
}

/// The route's vendor_rates rows, sorted, as text.
async fn route_rows(client: &Client, route: &str) -> Vec<String> {
    let rows = client
        .query(
            "SELECT concat_ws('|', prefix, rate_inter, min_seconds, inc_seconds, effective_from, effective_until) \
             FROM vendor_rates WHERE route_id = (SELECT id FROM routes WHERE name = $1) ORDER BY 1",
            &[&route],
        )
        .await
        .unwrap();
    rows.iter().map(|r| r.get(0)).collect()
}

/// alpha's v1, effective an hour ago (alpha becomes the cheapest for London), and v2, effective
/// tomorrow (London up to 0.03); checked as imported. Returns v1's id and v2's report.
async fn alpha_v1_and_future_v2(
    client: &mut Client,
    now: chrono::DateTime<Utc>,
) -> (i64, deck::ImportReport) {
    let t = now.timestamp();
    // v1 for alpha, effective an hour ago, in a vendor's own layout (auto-detected)
    let v1 = import(
        client,
        "Dial Code,Destination,Price,Initial,Interval\n44,UK,0.0100,60,60\n4420,\"London, UK\",0.0080,1,1\n",
        |o| o.effective = Some(now - ChronoDuration::hours(1)),
    )
    .await
    .unwrap();
    assert_eq!((v1.rows, v1.state, v1.skipped_rows), (2, "live", 0));
    let v1_id = v1.version.unwrap();
    assert_eq!(
        first_route(&snapshot(client).await, t),
        ("alpha".into(), 0.008)
    );

    // v2 effective tomorrow: London goes up to 0.03 (beta at 0.02 becomes cheaper)
    let v2 = import(
        client,
        "Dial Code,Destination,Price,Initial,Interval\n44,UK,0.0100,60,60\n4420,\"London, UK\",0.0300,1,1\n",
        |o| o.effective = Some(now + ChronoDuration::days(1)),
    )
    .await
    .unwrap();
    (v1_id, v2)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn future_version_diffs_against_the_live_one_and_prices_by_the_clock() {
    let (_pg, mut client) = fresh().await;
    let now = Utc::now();
    let t = now.timestamp();
    // before: only beta prices 44
    assert_eq!(
        first_route(&snapshot(&client).await, t),
        ("beta".into(), 0.02)
    );

    let (v1_id, v2) = alpha_v1_and_future_v2(&mut client, now).await;
    let v2_id = v2.version.unwrap();
    let d = v2.diff.as_ref().expect("diff against v1");
    assert_eq!(
        (d.from_version, d.up, d.unchanged, d.added, d.removed),
        (v1_id, 1, 1, 0, 0)
    );
    assert_eq!(d.over_threshold, 1);
    assert!(
        v2.warnings.iter().any(|w| w.contains("more than 25%")),
        "{:?}",
        v2.warnings
    );

    // one snapshot, two clocks: today alpha at 0.008, the day after tomorrow beta
    let s = snapshot(&client).await;
    assert_eq!(first_route(&s, t), ("alpha".into(), 0.008));
    assert_eq!(first_route(&s, t + 2 * 86_400), ("beta".into(), 0.02));

    // the incremental activation equals a rebuild of the timeline from the versions
    let incremental = route_rows(&client, "alpha").await;
    deck::store::rebuild_route(&mut client, "alpha")
        .await
        .unwrap();
    assert_eq!(route_rows(&client, "alpha").await, incremental);

    // diff from the CLI's defaults: newest against the one before
    let page = deck::DiffPage {
        sort: deck::DiffSort::Key,
        after: None,
        limit: 10,
    };
    let d = deck::store::diff(&mut client, "alpha", None, None, 25.0, &page)
        .await
        .unwrap();
    assert_eq!((d.from_version, d.to_version), (v1_id, v2_id));
    assert_eq!(d.rows.len(), 1);
    assert_eq!(
        (d.rows[0].key.as_str(), d.rows[0].change.as_str()),
        ("4420", "up")
    );
    assert_eq!(d.rows[0].old_rate.as_deref(), Some("0.008"));
    assert_eq!(d.rows[0].new_rate.as_deref(), Some("0.03"));

    let vs = deck::store::versions(&client, "alpha").await.unwrap();
    assert_eq!(vs.len(), 2, "{vs:?}");
    assert!(vs[0].current && !vs[1].current);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rollback_activate_export_baseline_and_audit() {
    let (_pg, mut client) = fresh().await;
    let now = Utc::now();
    let t = now.timestamp();
    let (_, v2) = alpha_v1_and_future_v2(&mut client, now).await;
    let v2_id = v2.version.unwrap();
    // rollback withdraws v2: the day after tomorrow alpha stays at 0.008
    let rolled = deck::store::rollback(&mut client, "alpha", None, "test")
        .await
        .unwrap();
    assert_eq!(rolled, v2_id);
    let s = snapshot(&client).await;
    assert_eq!(first_route(&s, t + 2 * 86_400), ("alpha".into(), 0.008));
    let vs = deck::store::versions(&client, "alpha").await.unwrap();
    assert_eq!(vs[1].state, "rolled_back");
    // a rolled-back version cannot be rolled back again; it can be activated again
    let e = deck::store::rollback(&mut client, "alpha", Some(v2_id), "test")
        .await
        .unwrap_err();
    assert!(matches!(e, DeckError::Conflict(_)), "{e}");
    deck::store::activate(&mut client, "alpha", v2_id, None, "test")
        .await
        .unwrap();
    assert_eq!(
        first_route(&snapshot(&client).await, t + 2 * 86_400),
        ("beta".into(), 0.02)
    );

    // export writes the version in force now in its imported layout
    let mut out = Vec::new();
    let n = deck::store::export(&client, "alpha", None, &mut out)
        .await
        .unwrap();
    assert_eq!(n, 2);
    assert_eq!(
        String::from_utf8(out).unwrap(),
        "Dial Code,Destination,Price,Initial,Interval\n44,UK,0.01,60,60\n4420,\"London, UK\",0.008,1,1\n"
    );

    // first import on beta keeps its earlier rows as a baseline version
    import(&mut client, "prefix,rate\n44,0.019\n", |o| {
        o.route = "beta".into()
    })
    .await
    .unwrap();
    let vs = deck::store::versions(&client, "beta").await.unwrap();
    assert_eq!(vs[0].state, "baseline");
    assert_eq!(vs[0].rows, 1);

    // every change is audited
    let actions: Vec<String> = client
        .query("SELECT action FROM audit_log ORDER BY id", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(
        actions,
        [
            "deck.import",
            "deck.import",
            "deck.rollback",
            "deck.activate",
            "deck.import"
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_route_and_unknown_version_are_refused() {
    let (_pg, mut client) = fresh().await;
    // unknown route, unknown version
    let e = import(&mut client, "prefix,rate\n44,0.01\n", |o| {
        o.route = "nope".into()
    })
    .await
    .unwrap_err();
    assert!(matches!(e, DeckError::UnknownRoute(_)), "{e}");
    let e = deck::store::rollback(&mut client, "alpha", Some(99_999), "t")
        .await
        .unwrap_err();
    assert!(matches!(e, DeckError::UnknownVersion { .. }), "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_row_refuses_everything_and_skip_invalid_loads_the_rest() {
    let (_pg, mut client) = fresh().await;
    let tables = ["vendor_rates", "deck_versions", "deck_rates", "audit_log"];
    let mut before = vec![];
    for t in tables {
        before.push(count(&client, t).await);
    }
    let csv = "prefix,rate\n44,0.01\n4420,abc\n4421,-1\n4422,0.02\n4422,0.03\n";
    let e = import(&mut client, csv, |_| {}).await.unwrap_err();
    let DeckError::Invalid { issues, total, .. } = &e else {
        panic!("{e}")
    };
    assert_eq!(*total, 3, "{e}");
    assert_eq!(issues[0].line, Some(3));
    assert!(issues[0].message.contains("not a number"), "{e}");
    assert!(issues[1].message.contains("negative"), "{e}");
    assert!(
        issues[2]
            .message
            .contains("different rates (first at line 5)"),
        "{e}"
    );
    for (t, b) in tables.iter().zip(&before) {
        assert_eq!(count(&client, t).await, *b, "{t} changed");
    }

    // dry run: the report, nothing stored
    let r = import(&mut client, "prefix,rate\n44,0.01\n", |o| o.dry_run = true)
        .await
        .unwrap();
    assert!(r.dry_run && r.version.is_none() && r.rows == 1);
    for (t, b) in tables.iter().zip(&before) {
        assert_eq!(count(&client, t).await, *b, "{t} changed by a dry run");
    }

    // --skip-invalid: the good rows go in, the bad ones are reported
    let r = import(&mut client, csv, |o| o.skip_invalid = true)
        .await
        .unwrap();
    assert_eq!((r.rows, r.skipped_rows), (2, 3));
    assert_eq!(r.issues[0].line, Some(3));
    assert_eq!(
        route_rows(&client, "alpha").await.len(),
        2,
        "44 and the first 4422"
    );

    // bad files: wrong columns, empty, nothing valid
    let e = import(&mut client, "code,prise\n44,0.1\n", |_| {})
        .await
        .unwrap_err();
    assert!(e.to_string().contains("not recognized: prise"), "{e}");
    let e = import(&mut client, "", |_| {}).await.unwrap_err();
    assert!(e.to_string().contains("empty file"), "{e}");
    let e = import(&mut client, "prefix,rate\n", |_| {})
        .await
        .unwrap_err();
    assert!(e.to_string().contains("no valid rows"), "{e}");

    // Latin-1, BOM, CRLF, quoted commas, a saved mapping for odd headers
    let mut bytes = b"\xef\xbb\xbfCode;X,Tarif,Pays\r\n".to_vec();
    bytes.extend_from_slice(b"33,0.011,\"France, m\xe9tropole\"\r\n");
    let mut o = ImportOptions::new("alpha", "fr.csv", "test");
    o.mapping = deck::Mapping::parse("Code;X=prefix,Tarif=rate,Pays=description").unwrap();
    o.save_mapping = true;
    let r = deck::store::import(
        &mut client,
        Box::new(std::io::Cursor::new(bytes.clone())),
        &o,
    )
    .await
    .unwrap();
    assert_eq!((r.rows, r.latin1_fields), (1, 1));
    let desc: String = client
        .query_one(
            "SELECT description FROM deck_rates WHERE version_id = $1",
            &[&r.version.unwrap()],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(desc, "France, métropole");
    // the mapping was saved with the vendor: the same layout imports without --map
    let o = ImportOptions::new("alpha", "fr2.csv", "test");
    deck::store::import(&mut client, Box::new(std::io::Cursor::new(bytes)), &o)
        .await
        .unwrap();
    // versions replacing each other at once: the old rows are gone, the same as a rebuild
    let rows = route_rows(&client, "alpha").await;
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert!(rows[0].starts_with("33|0.0110000|"), "{rows:?}");
    deck::store::rebuild_route(&mut client, "alpha")
        .await
        .unwrap();
    assert_eq!(route_rows(&client, "alpha").await, rows);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn staged_version_shadow_and_margins() {
    let (pg, mut client) = fresh().await;
    import(&mut client, "prefix,rate\n44,0.01\n", |_| {})
        .await
        .unwrap();
    // staged: stored, not routed
    let staged = import(&mut client, "prefix,rate\n44,0.04\n", |o| o.stage = true)
        .await
        .unwrap();
    assert_eq!(staged.state, "staged");
    let t = Utc::now().timestamp();
    assert_eq!(
        first_route(&snapshot(&client).await, t),
        ("alpha".into(), 0.01)
    );

    // shadow: the candidate would move London from alpha (0.01) to beta (0.02)
    let samples = vec![london(), london()];
    let mut own = warpd::db::connect(&pg.url()).await.unwrap();
    let r = deck::report::shadow(
        &mut own,
        "alpha",
        staged.version.unwrap(),
        &samples,
        RoutingSettings::default(),
        t,
    )
    .await
    .unwrap();
    assert_eq!((r.samples, r.changed), (2, 2));
    let d = &r.destinations[0];
    assert_eq!((d.destination.as_str(), d.route_changed), ("4420", 2));
    assert_eq!((d.cost_before, d.cost_after), (Some(0.01), Some(0.02)));
    assert_eq!((d.margin_before, d.margin_after), (Some(0.04), Some(0.03)));
    // the temp view is gone and nothing changed: the same connection loads the real data
    assert_eq!(
        first_route(&snapshot(&own).await, t),
        ("alpha".into(), 0.01)
    );

    // margins: 44 sold at 0.05 against alpha 0.01 and beta 0.02
    let m = deck::report::margins(&client, Some("1001"), None, 100)
        .await
        .unwrap();
    let got: Vec<(String, Option<String>, Option<f64>)> = m
        .iter()
        .map(|r| (r.route.clone(), r.margin.clone(), r.margin_pct))
        .collect();
    assert_eq!(
        got,
        [
            ("alpha".into(), Some("0.04".into()), Some(80.0)),
            ("beta".into(), Some("0.03".into()), Some(60.0))
        ]
    );
    let e = deck::report::margins(&client, Some("nobody"), None, 10)
        .await
        .unwrap_err();
    assert!(matches!(e, DeckError::UnknownCustomer(_)), "{e}");

    // activating the staged version routes it
    deck::store::activate(&mut client, "alpha", staged.version.unwrap(), None, "t")
        .await
        .unwrap();
    assert_eq!(
        first_route(&snapshot(&client).await, t),
        ("beta".into(), 0.02)
    );
}

/// A domestic LRN vendor on the test network: route `dom` in partition `intl` of customer 1001,
/// and NANP blocks so that 315 → 212 is intrastate (both NY) and 312 → 212 interstate.
const DOMESTIC: &str = "
INSERT INTO vendors (name, billing_model) VALUES ('Dom', 'LRN');
INSERT INTO gateways (vendor_id, name, host, port) SELECT id, 'gw', '127.0.0.1', 5090 FROM vendors WHERE name = 'Dom';
INSERT INTO routes (name, vendor_id) SELECT 'dom', id FROM vendors WHERE name = 'Dom';
INSERT INTO partition_routes SELECT p.id, r.id FROM partitions p, routes r WHERE r.name = 'dom';
INSERT INTO npanxx (npanxx, state, lata, ocn) VALUES
  ('212555', 'NY', '132', '9104'), ('315555', 'NY', '140', '9206'), ('312555', 'IL', '358', '9500');
";

fn domestic(ani: &str) -> DipRequest {
    DipRequest {
        ban: Some("1001".into()),
        src_ip: None,
        ani: ani.into(),
        dnis: "+12125551234".into(),
        lrn: None,
        call_id: None,
        max_results: None,
        identity: None,
        trunk: None,
    }
}

/// (zone, route, buy rate) of a domestic dip.
fn dom_answer(s: &Snapshot, ani: &str) -> (String, String, f64) {
    match routing::dip(s, &domestic(ani), Utc::now().timestamp()) {
        DipAnswer::Route(r) => (
            format!("{:?}", r.zone).to_lowercase(),
            r.routes[0].route_id.to_string(),
            r.routes[0].rate,
        ),
        DipAnswer::Reject(r) => panic!("rejected: {r:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn zone_layout_deck_imports_and_prices_each_zone() {
    let (_pg, mut client) = fresh().await;
    client.batch_execute(DOMESTIC).await.unwrap();
    let tables = ["vendor_rates", "deck_versions", "deck_rates", "audit_log"];
    let mut before = vec![];
    for t in tables {
        before.push(count(&client, t).await);
    }
    let dom = |o: &mut ImportOptions| {
        o.route = "dom".into();
        o.source = "dom-long.csv".into();
    };

    // an unknown zone refuses the file, naming the line; nothing changes
    let bad = "Prefix,Jurisdiction,Rate\n1212,interstate,0.01\n1212,xyz,0.02\n1212,local,0.005\n";
    let e = import(&mut client, bad, dom).await.unwrap_err();
    let DeckError::Invalid { issues, total, .. } = &e else {
        panic!("{e}")
    };
    assert_eq!((*total, issues[0].line), (1, Some(3)), "{e}");
    assert!(e.to_string().contains("dom-long.csv line 3"), "{e}");
    assert!(issues[0].message.contains("unknown zone \"xyz\""), "{e}");
    // the same prefix and zone with another rate: the duplicate error
    let dup = "Prefix,Zone,Rate\n1212,intra,0.02\n1212,interstate,0.01\n1212,intrastate,0.03\n";
    let e = import(&mut client, dup, dom).await.unwrap_err();
    assert!(
        e.to_string().contains(
            "line 4, Prefix: duplicate prefix 1212 with different rates (first at line 2)"
        ),
        "{e}"
    );
    for (t, b) in tables.iter().zip(&before) {
        assert_eq!(count(&client, t).await, *b, "{t} changed");
    }
    // --skip-invalid loads the rest of the bad file
    let r = import(&mut client, bad, |o| {
        dom(o);
        o.skip_invalid = true;
        o.dry_run = true;
    })
    .await
    .unwrap();
    assert_eq!((r.rows, r.skipped_rows), (1, 1));

    // the real deck: zones in any order, pivoted into one row per prefix
    let deck = "Prefix,Jurisdiction,Rate\n\
                1212,interstate,0.01\n\
                1312,flat,0.04\n\
                1212,intrastate,0.02\n\
                1212,local,0.005\n\
                1212,inter,0.01\n";
    let r = import(&mut client, deck, dom).await.unwrap();
    assert_eq!((r.rows, r.state), (2, "live"), "{r:?}");
    let rows: Vec<String> = client
        .query(
            "SELECT concat_ws('|', prefix, rate_inter, rate_intra, rate_local) FROM vendor_rates \
             WHERE route_id = (SELECT id FROM routes WHERE name = 'dom') ORDER BY 1",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(
        rows,
        [
            "1212|0.0100000|0.0200000|0.0050000",
            "1312|0.0400000|0.0400000|0.0400000"
        ]
    );
    let s = snapshot(&client).await;
    // NY → NY: the intrastate rate; IL → NY: the interstate one
    assert_eq!(
        dom_answer(&s, "+13155550100"),
        ("intrastate".into(), "dom".into(), 0.02)
    );
    assert_eq!(
        dom_answer(&s, "+13125550100"),
        ("interstate".into(), "dom".into(), 0.01)
    );

    // export writes the long layout back, one row per zone
    let mut out = Vec::new();
    deck::store::export(&client, "dom", None, &mut out)
        .await
        .unwrap();
    assert_eq!(
        String::from_utf8(out).unwrap(),
        "Prefix,Jurisdiction,Rate\n1212,interstate,0.01\n1212,intrastate,0.02\n1212,local,0.005\n1312,flat,0.04\n"
    );
}
