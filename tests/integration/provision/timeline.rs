//! Issue 17, one deck timeline: a route's `rates =` in `warpd apply` is a deck version made by the
//! code of `warpd deck import` (listed by `deck versions`, written by `deck export`, and
//! `vendor_rates` equals the live versions); an unchanged file makes no version; the apply is one
//! transaction with its audit rows (a failing audit insert leaves nothing).

use super::*;

use warpd::deck::store;

/// The rows a route routes (`vendor_rates`) and the rows of its current version, both as
/// comparable text.
async fn route_rows(c: &Client, route: &str) -> (Vec<String>, Vec<String>) {
    let cols = "prefix || ',' || coalesce(ocn, '') || ',' || coalesce(lata, '') || ',' || \
                coalesce(rate_inter::text, '') || ',' || coalesce(rate_intra::text, '') || ',' || \
                coalesce(rate_local::text, '') || ',' || min_seconds || ',' || inc_seconds";
    let text = |rows: Vec<tokio_postgres::Row>| -> Vec<String> {
        let mut v: Vec<String> = rows.iter().map(|r| r.get(0)).collect();
        v.sort();
        v
    };
    let live = c
        .query(
            &format!(
                "SELECT {cols} FROM vendor_rates WHERE route_id = \
                 (SELECT id FROM routes WHERE name = $1)"
            ),
            &[&route],
        )
        .await
        .unwrap();
    let current = store::versions(c, route)
        .await
        .unwrap()
        .into_iter()
        .find(|v| v.current)
        .expect("a version in force");
    let version = c
        .query(
            &format!("SELECT {cols} FROM deck_rates WHERE version_id = $1"),
            &[&current.id],
        )
        .await
        .unwrap();
    (text(live), text(version))
}

async fn audit_rows(c: &Client, action: &str) -> Vec<(String, String, serde_json::Value)> {
    c.query(
        "SELECT actor, target, after FROM audit_log WHERE action = $1 ORDER BY id",
        &[&action],
    )
    .await
    .unwrap()
    .iter()
    .map(|r| (r.get(0), r.get(1), r.get(2)))
    .collect()
}

fn deck_of<'a>(plan: &'a provision::Plan, route: &str) -> &'a provision::DeckPlan {
    plan.decks
        .iter()
        .find(|d| d.kind == DeckKind::VendorRates && d.target == route)
        .unwrap_or_else(|| panic!("no deck for {route}: {plan:?}"))
}

#[tokio::test]
async fn apply_rates_are_deck_versions_on_the_route_timeline() {
    let pg = support::TestPg::start();
    let mut c = db(&pg).await;
    let plan = provision::apply_by(&mut c, &demo(), false, "cli:alice")
        .await
        .unwrap();
    // the first apply makes version 1 of every route with rates
    let v1 = deck_of(&plan, "ns-premium").version.expect("a version");
    let vs = store::versions(&c, "ns-premium").await.unwrap();
    assert_eq!(vs.len(), 1, "{vs:?}");
    assert_eq!(
        (vs[0].id, vs[0].state.as_str(), vs[0].rows, vs[0].current),
        (v1, "live", 6, true)
    );
    assert_eq!(vs[0].created_by, "cli:alice");
    let (live, version) = route_rows(&c, "ns-premium").await;
    assert_eq!(live.len(), 6);
    assert_eq!(live, version);
    let imports = audit_rows(&c, "deck.import").await;
    assert!(
        imports
            .iter()
            .any(|(actor, target, after)| actor == "cli:alice"
                && target == &format!("route ns-premium version {v1}")
                && after["via"] == "apply"
                && after["rows"] == 6),
        "{imports:?}"
    );

    // re-applying the same file: no new version, the plan says unchanged, no audit row
    let audit_before: i64 = c
        .query_one("SELECT count(*) FROM audit_log", &[])
        .await
        .unwrap()
        .get(0);
    let again = provision::apply(&mut c, &demo(), false).await.unwrap();
    assert!(!again.has_changes(), "{again}");
    assert_eq!(deck_of(&again, "ns-premium").action, DeckAction::Unchanged);
    assert!(
        again.to_string().contains(
            "= deck of route ns-premium: 6 rates from rates/northstar_premium.csv unchanged"
        ),
        "{again}"
    );
    assert_eq!(store::versions(&c, "ns-premium").await.unwrap().len(), 1);
    let audit_after: i64 = c
        .query_one("SELECT count(*) FROM audit_log", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(audit_after, audit_before, "a no-op apply wrote audit rows");

    // a version from `warpd deck import`, then a changed file through apply: one timeline
    let csv = std::fs::read(demo_dir().join("rates/northstar_premium.csv")).unwrap();
    let o = warpd::deck::ImportOptions::new("ns-premium", "northstar_premium.csv", "test");
    let imported = store::import(&mut c, Box::new(std::io::Cursor::new(csv)), &o)
        .await
        .unwrap()
        .version
        .unwrap();
    // the file equals the imported version (compared by reading its rows: it has no stored
    // fingerprint, unlike the apply's versions)
    let digests: Vec<Option<String>> = c
        .query(
            "SELECT content_digest FROM deck_versions WHERE id = ANY($1) ORDER BY id",
            &[&vec![v1, imported]],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert!(digests[0].is_some() && digests[1].is_none(), "{digests:?}");
    let same = provision::apply(&mut c, &demo(), false).await.unwrap();
    assert_eq!(deck_of(&same, "ns-premium").action, DeckAction::Unchanged);
    assert_eq!(store::versions(&c, "ns-premium").await.unwrap().len(), 2);
    let dir = demo_copy();
    let file = dir.path().join("network.toml");
    edit(
        &dir.path().join("rates/northstar_premium.csv"),
        "1212,0.0045",
        "1212,0.0044",
    );
    edit(
        &dir.path().join("rates/northstar_premium.csv"),
        "1646,0.0046,0.0061,0.0031,6,6\n",
        "",
    );
    let dry = provision::apply(&mut c, &file, true).await.unwrap();
    assert!(
        dry.to_string()
            .contains("> new deck version for route ns-premium: 5 rates (was 6)"),
        "{dry}"
    );
    assert_eq!(store::versions(&c, "ns-premium").await.unwrap().len(), 2);
    let plan = provision::apply(&mut c, &file, false).await.unwrap();
    let v3 = deck_of(&plan, "ns-premium").version.expect("a version");
    assert!(
        plan.to_string().contains(&format!(
            "> new deck version for route ns-premium: 5 rates (was 6) from rates/northstar_premium.csv (version {v3})"
        )),
        "{plan}"
    );
    let vs = store::versions(&c, "ns-premium").await.unwrap();
    let ids: Vec<(i64, &str, bool)> = vs
        .iter()
        .map(|v| (v.id, v.state.as_str(), v.current))
        .collect();
    assert_eq!(
        ids,
        [
            (v1, "live", false),
            (imported, "live", false),
            (v3, "live", true)
        ]
    );
    let (live, version) = route_rows(&c, "ns-premium").await;
    assert_eq!(live.len(), 5);
    assert_eq!(live, version);
    assert!(
        live.iter().any(|r| r.starts_with("1212,,,0.0044000,")),
        "{live:?}"
    );
    // export writes the version the apply made
    let mut out = Vec::new();
    let n = store::export(&c, "ns-premium", None, &mut out)
        .await
        .unwrap();
    assert_eq!(n, 5);
    let out = String::from_utf8(out).unwrap();
    assert!(out.contains("1212,,,0.0044,0.006,0.003,6,6"), "{out}");
    assert!(!out.contains("1646"), "{out}");
    // and applying it again is a no-op
    let again = provision::apply(&mut c, &file, false).await.unwrap();
    assert_eq!(deck_of(&again, "ns-premium").action, DeckAction::Unchanged);
    assert_eq!(store::versions(&c, "ns-premium").await.unwrap().len(), 3);
}

/// A route whose rows predate deck versions (loaded before this change): its first new version
/// keeps them as `baseline`, like `deck import` does.
#[tokio::test]
async fn rows_from_before_versions_become_the_baseline() {
    let pg = support::TestPg::start();
    let mut c = db(&pg).await;
    provision::apply(&mut c, &demo(), false).await.unwrap();
    // what an apply before versions left: rows, no version
    c.batch_execute(
        "DELETE FROM deck_versions WHERE route_id = (SELECT id FROM routes WHERE name = 'ns-premium')",
    )
    .await
    .unwrap();
    let dir = demo_copy();
    edit(
        &dir.path().join("rates/northstar_premium.csv"),
        "1212,0.0045",
        "1212,0.0044",
    );
    provision::apply(&mut c, &dir.path().join("network.toml"), false)
        .await
        .unwrap();
    let vs = store::versions(&c, "ns-premium").await.unwrap();
    let states: Vec<&str> = vs.iter().map(|v| v.state.as_str()).collect();
    assert_eq!(states, ["baseline", "live"], "{vs:?}");
    assert_eq!(vs[0].rows, 6);
    let (live, version) = route_rows(&c, "ns-premium").await;
    assert_eq!(live, version);
}

/// The whole apply is one transaction with its audit rows: when the audit insert fails, neither
/// the objects nor the deck version nor `vendor_rates` change.
#[tokio::test]
async fn a_failing_audit_insert_rolls_the_whole_apply_back() {
    let pg = support::TestPg::start();
    let mut c = db(&pg).await;
    provision::apply(&mut c, &demo(), false).await.unwrap();
    let dir = demo_copy();
    let file = dir.path().join("network.toml");
    edit(
        &dir.path().join("rates/northstar_premium.csv"),
        "1212,0.0045",
        "1212,0.0044",
    );
    edit(&file, "capacity = 200", "capacity = 201");
    // the apply writes `apply.update` (route) and `deck.import` (version): both must be audited
    for failing in ["apply.update", "deck.import"] {
        support::fail_audit_inserts(&c, failing).await;
        let before = counts(&c).await;
        let versions = store::versions(&c, "ns-premium").await.unwrap().len();
        let err = provision::apply(&mut c, &file, false).await.unwrap_err();
        assert!(err.to_string().contains("audit"), "{failing}: {err}");
        assert_eq!(counts(&c).await, before, "{failing}");
        assert_eq!(
            store::versions(&c, "ns-premium").await.unwrap().len(),
            versions,
            "{failing}"
        );
        let cap: i32 = c
            .query_one("SELECT capacity FROM routes WHERE name = 'ns-premium'", &[])
            .await
            .unwrap()
            .get(0);
        assert_eq!(cap, 200, "{failing}");
        support::allow_audit_inserts(&c).await;
    }
    // with the audit log working again the same file applies, audited
    provision::apply_by(&mut c, &file, false, "cli:bob")
        .await
        .unwrap();
    let updates = audit_rows(&c, "apply.update").await;
    assert!(
        updates.iter().any(|(a, t, after)| a == "cli:bob"
            && t == "route ns-premium"
            && after["capacity"] == "201"),
        "{updates:?}"
    );
}
