//! Call limits and media policies: dry run, apply and reapply, bad values, YAML.

use super::*;

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
    let bad: [(&str, &str, &[&str]); 10] = [
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
            "customer = 10001\nroute = \"bw-intl\"",
            "customer = 10001\ntrunk = \"acme-main\"",
            &["media_policies[2].trunk", "names the trunk alone"],
        ),
        (
            "customer = 10001\nroute = \"bw-intl\"",
            "trunk = \"bad name\"",
            &["media_policies[2].trunk", "not a trunk name"],
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
    // a trunk's policy (sql/0021): keyed by the trunk alone, applied idempotently
    let yaml = "media_policies:\n  - { trunk: acme-main, codec_allow: [PCMU], record: true }\n";
    for changes in [true, false] {
        let plan = provision::apply_str(&mut c, yaml, Format::Yaml, file.parent().unwrap(), false)
            .await
            .unwrap();
        assert_eq!(plan.has_changes(), changes, "{plan}");
    }
    let row: (
        Option<String>,
        Option<String>,
        Option<bool>,
        Option<Vec<String>>,
    ) = c
        .query_one(
            "SELECT customer_ban, route_name, record, codec_allow FROM media_policies \
             WHERE trunk_name = 'acme-main'",
            &[],
        )
        .await
        .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3)))
        .unwrap();
    assert_eq!(
        row,
        (None, None, Some(true), Some(vec!["PCMU".to_string()]))
    );
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

/// Issue 17: the NANP classes `canada` and `caribbean` are provisioned like the others, and a
/// domestic-only customer is refused +1 876 (Jamaica) as class `caribbean` at the dip; allowed,
/// it is no longer refused for its class.
#[tokio::test]
async fn caribbean_and_canada_are_classes_of_their_own() {
    let (pg, mut c, _) = applied_demo().await;
    let s = support::Warpd::builder(&pg).start().await;
    let jamaica = "ban=10002&ani=%2B12125550100&dnis=%2B18765550100";
    let a = s.dip(jamaica).await;
    assert_eq!(a["sip_code"], 403, "{a}");
    assert_eq!(
        a["reason"], "destination class caribbean not allowed",
        "{a}"
    );
    let text = r#"
[[customers]]
ban = "10002"
allowed_classes = ["domestic", "Caribbean", "canada", "tollfree"]
"#;
    provision::apply_str(&mut c, text, Format::Toml, Path::new("/nonexistent"), false)
        .await
        .unwrap();
    let classes: Vec<String> = c
        .query_one(
            "SELECT allowed_classes::text[] FROM customers WHERE ban = '10002'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(classes, ["domestic", "tollfree", "canada", "caribbean"]);
    support::eventually(
        "the class allowed at the dip",
        support::DEADLINE,
        || async {
            let a = s.dip(jamaica).await;
            if a["reason"] == "destination class caribbean not allowed" {
                Err(a.to_string())
            } else {
                Ok(())
            }
        },
    )
    .await;
    s.stop().await;
}

/// Issue 17: `warpd apply` provisions the emergency callback number (normalized, refused when it
/// is no number, naming the field); a 911 dip answers it for P-Asserted-Identity.
#[tokio::test]
async fn emergency_callback_is_applied_and_answered_with_911() {
    let (pg, mut c, _) = applied_demo().await;
    let bad = "[[customers]]\nban = \"10001\"\nemergency_callback = \"911\"\n";
    let err = provision::apply_str(&mut c, bad, Format::Toml, Path::new("/nonexistent"), false)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("emergency_callback"), "{err}");
    let text = "[[customers]]\nban = \"10001\"\nemergency_callback = \"+1 (212) 555-0100\"\n";
    provision::apply_str(&mut c, text, Format::Toml, Path::new("/nonexistent"), false)
        .await
        .unwrap();
    let stored: Option<String> = c
        .query_one(
            "SELECT emergency_callback FROM customers WHERE ban = '10001'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(stored.as_deref(), Some("12125550100"));
    // applying the same file again changes nothing
    let plan = provision::apply_str(&mut c, text, Format::Toml, Path::new("/nonexistent"), true)
        .await
        .unwrap();
    assert!(
        plan.change(ObjectKind::Customer, "10001").is_none(),
        "{plan:?}"
    );
    let s = support::Warpd::builder(&pg).start().await;
    let a = s.dip("ban=10001&ani=%2B12125550100&dnis=911").await;
    assert_eq!(a["zone"], "emergency", "{a}");
    assert_eq!(a["emergency_callback"], "+12125550100", "{a}");
    let a = s.dip("ban=10002&ani=%2B12125550100&dnis=911").await;
    assert!(
        a.get("emergency_callback").is_none(),
        "none configured: {a}"
    );
    s.stop().await;
}
