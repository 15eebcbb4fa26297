//! Child collections in a real browser (issue 22): a customer's partitions and source IPs added
//! on the customer's page and seen in the admin API, and a blocked prefix added and deleted; a
//! bad CIDR answered with the admin API's own message next to the field; a trunk's source
//! network, credentials and destination deleted after a confirmation step reached with the
//! keyboard; every change audited with the console user's name; a readonly user sees no add or
//! delete controls, and its forged POSTs (the browser's session, a valid CSRF token) are refused
//! with 403.

use fantoccini::Locator;
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::support::actors;
use crate::support::browser::Browser;

use super::browser::sign_in;
use super::{screenshots, start, ADMIN_PW, VIEWER_PW};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn child_collections_are_edited_and_deleted_in_a_browser() {
    let st = start(&[]).await;
    let base = st.warpd.admin_url("");
    let base = base.trim_end_matches('/');
    let token = warpd::admin::create_token(&st.client, "children", "admin", "test")
        .await
        .unwrap();
    let api = |method: &'static str, path: String, body: Option<Value>| {
        let (w, t) = (&st.warpd, token.clone());
        async move { w.request(method, &path, Some(&t), body).await }
    };
    // a second partition to give customer 1001; a trunk of 1001 with a source network,
    // credentials and a destination to delete
    let (s, v) = api(
        "POST",
        "/v1/admin/partitions".into(),
        Some(json!({"name": "domestic"})),
    )
    .await;
    assert_eq!(s, 201, "{v}");
    let t = "/v1/admin/trunks/acme-1001";
    for (path, body) in [
        (
            "/v1/admin/trunks".to_string(),
            json!({"name": "acme-1001", "customer": "1001"}),
        ),
        (format!("{t}/source_ips"), json!({"cidr": "10.9.0.0/16"})),
        (
            format!("{t}/credentials"),
            json!({"username": "bob", "realm": "sip.example.net", "password": "s3cret-pw"}),
        ),
        (format!("{t}/destinations"), json!({"host": "192.0.2.55"})),
    ] {
        let (s, v) = api("POST", path.clone(), Some(body)).await;
        assert_eq!(s, 201, "{path}: {v}");
    }

    let b = Browser::start(&screenshots()).await;
    sign_in(&b, base, "root", ADMIN_PW).await;
    let customer = format!("{base}/console/r/customers/1001");

    // a partition added through the customer's child form
    b.goto(&customer).await;
    b.fill("partitions-partition", "domestic").await;
    b.fill("partitions-priority", "20").await;
    b.fill("partitions-days", "1, 2, 3, 4, 5").await;
    b.fill("partitions-start_time", "08:00").await;
    b.fill("partitions-end_time", "18:00").await;
    b.fill("partitions-tz", "America/New_York").await;
    b.click("add-partitions").await;
    let main = b.main_text().await;
    assert!(
        main.contains("Saved.") && main.contains("domestic"),
        "{main}"
    );

    // a bad CIDR: the admin API's own message, next to the field it names; nothing stored
    let bad = "10.0.0.300/24";
    let (s, refused) = api(
        "POST",
        "/v1/admin/customers/1001/source_ips".into(),
        Some(json!({ "cidr": bad })),
    )
    .await;
    assert_eq!(s, 400, "{refused}");
    let message = refused["error"].as_str().unwrap().to_string();
    assert!(message.starts_with("cidr: "), "{message}");
    b.fill("source_ips-cidr", bad).await;
    b.click("add-source_ips").await;
    assert_eq!(b.text("source_ips-cidr-error").await, message);
    let field = b.by_id("source_ips-cidr").await;
    assert_eq!(
        field.attr("aria-invalid").await.unwrap().as_deref(),
        Some("true")
    );
    assert_eq!(
        field.attr("aria-describedby").await.unwrap().as_deref(),
        Some("source_ips-cidr-help source_ips-cidr-error")
    );
    assert_eq!(
        b.value_of("#source_ips-cidr").await,
        bad,
        "what was typed stays"
    );
    // the alert at the top links to the field (a same-page link: the page stays)
    let link = b
        .client
        .find(Locator::Css("div.error a"))
        .await
        .expect("the alert's link");
    assert_eq!(link.text().await.unwrap(), message);
    link.click().await.unwrap();
    let at = b.client.current_url().await.unwrap();
    assert_eq!(at.fragment(), Some("source_ips-cidr"), "{at}");
    b.screenshot("20-customer-cidr-error").await;

    // a good one
    b.fill("source_ips-cidr", "192.0.2.0/24").await;
    b.click("add-source_ips").await;
    let main = b.main_text().await;
    assert!(
        main.contains("Saved.") && main.contains("192.0.2.0/24"),
        "{main}"
    );
    // a blocked prefix, added and deleted after the confirmation
    b.fill("blocked_prefixes-prefix", "1900").await;
    b.click("add-blocked_prefixes").await;
    b.click("delete-blocked_prefixes-0").await;
    assert!(b
        .main_text()
        .await
        .contains("Delete blocked prefix 1900 of customer 1001?"));
    b.click("confirm-delete").await;
    assert!(b.main_text().await.contains("Deleted."));
    b.goto(&format!("{customer}#child-partitions")).await;
    b.screenshot("21-customer-children").await;

    // both in the admin API, audited with the console user's name
    let (s, c) = api("GET", "/v1/admin/customers/1001".into(), None).await;
    assert_eq!(s, 200, "{c}");
    assert_eq!(c["source_ips"], json!(["192.0.2.0/24"]), "{c}");
    assert_eq!(c["blocked_prefixes"], json!([]), "{c}");
    let added = c["partitions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["partition"] == "domestic")
        .unwrap_or_else(|| panic!("no partition domestic: {c}"));
    assert_eq!(
        (&added["priority"], &added["days"], &added["tz"]),
        (
            &json!(20),
            &json!([1, 2, 3, 4, 5]),
            &json!("America/New_York")
        ),
        "{c}"
    );
    for action in [
        "customer.partition.add",
        "customer.source_ip.add",
        "customer.blocked_prefix.add",
        "customer.blocked_prefix.remove",
    ] {
        assert_eq!(
            actors(&st.client, action).await,
            ["console:root"],
            "{action}"
        );
    }

    // a trunk's source network deleted with the keyboard, after the confirmation step
    let trunk = format!("{base}/console/r/trunks/acme-1001");
    b.goto(&format!("{trunk}#child-source_ips")).await;
    b.screenshot("22-trunk-children").await;
    for label in [
        "Delete source network 10.9.0.0/16",
        "Delete credentials bob@sip.example.net",
    ] {
        assert!(b.has(&format!("a[aria-label='{label}']")).await, "{label}");
    }
    b.press_enter_on("a[aria-label='Delete source network 10.9.0.0/16']")
        .await;
    assert_eq!(b.h1().await, "Delete source network");
    let main = b.main_text().await;
    assert!(
        main.contains("Delete source network 10.9.0.0/16 of trunk acme-1001?"),
        "{main}"
    );
    b.screenshot("23-trunk-delete-confirm").await;
    // nothing is deleted before the confirmation
    let (_, tr) = api("GET", t.into(), None).await;
    assert_eq!(tr["source_ips"], json!(["10.9.0.0/16"]), "{tr}");
    b.press_enter_on("#confirm-delete").await;
    let main = b.main_text().await;
    assert!(
        main.contains("Deleted.") && !main.contains("10.9.0.0/16"),
        "{main}"
    );
    // credentials and the destination: Cancel first (nothing happens), then confirmed
    b.click("delete-credentials-0").await;
    b.click_link("Cancel").await;
    assert!(b.main_text().await.contains("bob"));
    b.click("delete-credentials-0").await;
    b.click("confirm-delete").await;
    b.click("delete-destinations-0").await;
    b.click("confirm-delete").await;
    let main = b.main_text().await;
    assert!(
        main.contains("Deleted.") && !main.contains("192.0.2.55") && !main.contains("bob"),
        "{main}"
    );
    let (_, tr) = api("GET", t.into(), None).await;
    assert_eq!(
        (&tr["source_ips"], &tr["credentials"], &tr["destinations"]),
        (&json!([]), &json!([]), &json!([])),
        "{tr}"
    );
    for action in [
        "trunk.source_ip.remove",
        "trunk.credential.remove",
        "trunk.destination.remove",
    ] {
        assert_eq!(
            actors(&st.client, action).await,
            ["console:root"],
            "{action}"
        );
    }
    b.click("sign-out").await;

    // a readonly user: the tables, no add form, no delete link, no Save
    sign_in(&b, base, "viewer", VIEWER_PW).await;
    b.goto(&customer).await;
    let main = b.main_text().await;
    assert!(
        main.contains("192.0.2.0/24") && main.contains("domestic"),
        "{main}"
    );
    for css in ["[id^=add-]", "a.delete", "[id^=delete-]", "#save"] {
        assert!(!b.has(css).await, "readonly sees no {css}");
    }
    b.goto(&format!("{customer}#child-partitions")).await;
    b.screenshot("24-readonly-customer-children").await;
    // its forged requests (the browser's session and CSRF token) are refused by the role
    let session = format!("warpd_console={}", b.cookie("warpd_console").await);
    let csrf = b.value_of("input[name=csrf]").await;
    assert_eq!(csrf.len(), 64, "the sign-out form's token");
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let source = "r/customers/1001/source_ips/192.0.2.0%2F24/delete";
    let forged: [(&str, Vec<(&str, &str)>); 3] = [
        (
            "r/customers/1001/source_ips",
            vec![("csrf", csrf.as_str()), ("cidr", "198.51.100.0/24")],
        ),
        (
            "r/customers/1001/partitions",
            vec![("csrf", csrf.as_str()), ("partition", "domestic")],
        ),
        (source, vec![("csrf", csrf.as_str())]),
    ];
    for (path, form) in &forged {
        let r = http
            .post(format!("{base}/console/{path}"))
            .header("cookie", &session)
            .form(form)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::FORBIDDEN, "{path}");
        let body = r.text().await.unwrap();
        assert!(body.contains("has role readonly"), "{path}: {body:.2000}");
    }
    // nor is the confirmation step offered to it
    let r = http
        .get(format!("{base}/console/{source}"))
        .header("cookie", &session)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let (_, c) = api("GET", "/v1/admin/customers/1001".into(), None).await;
    assert_eq!(c["source_ips"], json!(["192.0.2.0/24"]), "unchanged: {c}");
    b.close().await;
    st.warpd.stop().await;
}
