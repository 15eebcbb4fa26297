//! `[[stir]]` (issue 20): a customer's and a trunk's STIR/SHAKEN settings and the customer's TN
//! ranges land in the database; applying again writes nothing (the routing data version stays);
//! ranges are replaced when given, kept when omitted; bad input (a cap that is none, a reject
//! code that is no Identity failure, customer settings on a trunk entry, an unknown customer or
//! trunk, another customer's trunk, overlapping ranges in the file or with another customer's)
//! is refused with errors naming the field and nothing applied.

use std::path::Path;

use tokio_postgres::Client;
use warpd::provision::{self, Format};

use super::{db, demo};
use crate::support::TestPg;

async fn version(c: &Client) -> i64 {
    c.query_one("SELECT version FROM routing_data_version", &[])
        .await
        .unwrap()
        .get(0)
}

async fn rows(c: &Client) -> Vec<String> {
    c.query(
        "SELECT 'policy ' || cu.ban || ' ' || coalesce(t.name, '-') || ' ' || p.max_attest || ' ' \
           || p.transit || ' ' || coalesce(p.verify_reject_code::text, '-') \
         FROM stir_policies p JOIN customers cu ON cu.id = p.customer_id LEFT JOIN trunks t ON t.id = p.trunk_id \
         UNION ALL SELECT 'range ' || cu.ban || ' ' || r.first_tn || '-' || r.last_tn \
         FROM stir_tn_ranges r JOIN customers cu ON cu.id = r.customer_id ORDER BY 1",
        &[],
    )
    .await
    .unwrap()
    .iter()
    .map(|r| r.get(0))
    .collect()
}

async fn apply(c: &mut Client, text: &str) -> Result<provision::Plan, provision::ProvisionError> {
    provision::apply_str(c, text, Format::Toml, Path::new("."), false).await
}

const FILE: &str = r#"
[[stir]]
customer = "10001"
max_attest = "B"
verify_reject_code = 438
tn_ranges = ["+13125550000-+13125550999", "+17735550100"]

[[stir]]
customer = "10001"
trunk = "acme-sip"
max_attest = "C"

[[stir]]
customer = "10002"
transit = true
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stir_settings_apply_idempotently_and_bad_ones_are_refused() {
    let pg = TestPg::start();
    let mut c = db(&pg).await;
    provision::apply(&mut c, &demo(), false).await.unwrap();
    apply(&mut c, FILE).await.unwrap();
    let want = vec![
        "policy 10001 - B false 438",
        "policy 10001 acme-sip C false -",
        "policy 10002 - A true -",
        "range 10001 +13125550000-+13125550999",
        "range 10001 +17735550100-+17735550100",
    ];
    assert_eq!(rows(&c).await, want);
    // again: nothing written
    let v = version(&c).await;
    apply(&mut c, FILE).await.unwrap();
    assert_eq!(
        version(&c).await,
        v,
        "an unchanged apply moved the data version"
    );
    // ranges omitted: kept; given: replaced
    apply(
        &mut c,
        "[[stir]]\ncustomer = \"10001\"\nmax_attest = \"A\"\n",
    )
    .await
    .unwrap();
    let now = rows(&c).await;
    assert!(
        now.contains(&"policy 10001 - A false -".to_string()),
        "{now:?}"
    );
    assert!(
        now.contains(&"range 10001 +17735550100-+17735550100".to_string()),
        "{now:?}"
    );
    apply(
        &mut c,
        "[[stir]]\ncustomer = \"10001\"\ntn_ranges = [\"+13125551000-+13125551999\"]\n",
    )
    .await
    .unwrap();
    let ranges: Vec<String> = rows(&c)
        .await
        .into_iter()
        .filter(|r| r.starts_with("range"))
        .collect();
    assert_eq!(ranges, vec!["range 10001 +13125551000-+13125551999"]);

    let table: &[(&str, &str, &str)] = &[
        (
            "[[stir]]\ncustomer = \"10001\"\nmax_attest = \"D\"\n",
            "stir[0].max_attest",
            "A, B, C, off",
        ),
        (
            "[[stir]]\ncustomer = \"10001\"\nverify_reject_code = 403\n",
            "stir[0].verify_reject_code",
            "436, 437 or 438",
        ),
        (
            "[[stir]]\ncustomer = \"10001\"\ntrunk = \"acme-sip\"\ntn_ranges = [\"+13125550000\"]\n",
            "stir[0].tn_ranges",
            "a customer setting",
        ),
        (
            "[[stir]]\ncustomer = \"99999\"\n",
            "stir[0].customer",
            "unknown customer",
        ),
        (
            "[[stir]]\ncustomer = \"10001\"\ntrunk = \"nope\"\n",
            "stir[0].trunk",
            "unknown trunk",
        ),
        (
            "[[stir]]\ncustomer = \"10002\"\ntrunk = \"acme-sip\"\n",
            "stir[0].trunk",
            "is not customer",
        ),
        (
            "[[stir]]\ncustomer = \"10001\"\n[[stir]]\ncustomer = \"10001\"\n",
            "stir[1].customer",
            "also stir[0]",
        ),
        (
            "[[stir]]\ncustomer = \"10001\"\ntn_ranges = [\"+13125550000-+13125550999\", \"+13125550500\"]\n",
            "stir[0].tn_ranges[1]",
            "overlaps stir[0].tn_ranges[0]",
        ),
        (
            "[[stir]]\ncustomer = \"10002\"\ntn_ranges = [\"+13125551500-+13125552500\"]\n",
            "stir[0].tn_ranges[0]",
            "of customer \"10001\"",
        ),
        (
            "[[stir]]\ncustomer = \"10001\"\ntn_ranges = [\"+1312555\\u001b[31m\"]\n",
            "stir[0].tn_ranges[0]",
            "not an E.164 number",
        ),
    ];
    for (file, field, why) in table {
        let before = rows(&c).await;
        let v = version(&c).await;
        let e = apply(&mut c, file).await.unwrap_err().to_string();
        assert!(
            e.contains(field) && e.contains(why),
            "{field} / {why}:\n{e}"
        );
        assert!(e.contains("nothing applied"), "{e}");
        assert!(!e.contains('\u{1b}'), "a control character echoed: {e}");
        assert_eq!(rows(&c).await, before, "{field}: something applied");
        assert_eq!(version(&c).await, v, "{field}: the data version moved");
    }
}
