//! The console in a real browser: sign in, the simulator's explanation table, a deck with a bad
//! line refused naming the line, a good deck live, a staged one diffed and activated after a
//! confirmation (and the simulator's answer changing), a call's CDR found in the search, the
//! audit log, a resource edit refused with the API's message then saved, sign out; a readonly
//! user sees no edit controls and masked numbers. Screenshots of every page are written.

use crate::support::browser::Browser;
use crate::support::{eventually, DEADLINE};

use super::{screenshots, start, ADMIN_PW, VIEWER_PW};

const LONDON: &str = "ban=1001&ani=%2B12125550100&dnis=%2B442071234567";

pub(super) async fn sign_in(b: &Browser, base: &str, user: &str, pw: &str) {
    b.goto(&format!("{base}/console/")).await;
    // not signed in: the sign-in page
    b.fill("username", user).await;
    b.fill("password", pw).await;
    b.click("sign-in").await;
    assert_eq!(b.h1().await, "Overview");
}

/// Uploads `content` as `name` on the open deck page; `stage` sets the checkbox.
async fn upload(b: &Browser, dir: &std::path::Path, name: &str, content: &str, stage: bool) {
    let path = dir.join(name);
    std::fs::write(&path, content).unwrap();
    let file = b.by_id("deck-file").await;
    file.send_keys(path.to_str().unwrap()).await.unwrap();
    let boxed = b.by_id("deck-stage").await;
    if boxed.is_selected().await.unwrap() != stage {
        boxed.click().await.unwrap();
    }
    b.click("upload").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ops_work_through_the_console_in_a_browser() {
    let st = start(&[]).await;
    let base = st.warpd.admin_url("");
    let base = base.trim_end_matches('/');
    let shots = screenshots();
    let files = tempfile::tempdir().unwrap();
    let b = Browser::start(&shots).await;

    // sign-in page, then the overview
    b.goto(&format!("{base}/console/")).await;
    assert!(b
        .client
        .current_url()
        .await
        .unwrap()
        .path()
        .ends_with("/console/login"));
    b.screenshot("01-sign-in").await;
    sign_in(&b, base, "root", ADMIN_PW).await;
    assert!(b.text("generation").await.parse::<u64>().unwrap() >= 1);

    // the simulator: the form, the answer, and every candidate with kept/dropped and why
    b.click_link("Route simulator").await;
    b.fill("ban", "1001").await;
    b.fill("ani", "+12125550100").await;
    b.fill("dnis", "+442071234567").await;
    b.click("simulate").await;
    let answer = b.text("answer").await;
    assert!(answer.starts_with("Route to beta"), "{answer}");
    let table = b.text("candidates").await;
    assert!(
        table.contains("alpha") && table.contains("beta") && table.contains("kept"),
        "{table}"
    );
    b.screenshot("03-simulator").await;

    // decks of alpha: a bad line is refused, naming the file and line; nothing imported
    b.goto(&format!("{base}/console/decks/alpha")).await;
    upload(
        &b,
        files.path(),
        "bad.csv",
        "Code,Price\n44,0.03\n4420,x\n",
        false,
    )
    .await;
    let main = b.main_text().await;
    assert!(main.contains("bad.csv line 3"), "{main}");
    b.screenshot("04-deck-error").await;
    // a good deck, live at once (0.03: beta at 0.02 stays first)
    upload(
        &b,
        files.path(),
        "alpha-live.csv",
        "Code,Destination,Price\n44,UK,0.03\n",
        false,
    )
    .await;
    assert!(b.main_text().await.contains("1 rows, live"));
    // a staged one at 0.01: the diff against the live version shows the decrease
    upload(
        &b,
        files.path(),
        "alpha-cheaper.csv",
        "Code,Destination,Price\n44,UK,0.01\n",
        true,
    )
    .await;
    let summary = b.text("diff-summary").await;
    assert!(summary.contains("decreases 1"), "{summary}");
    let diff = b.text("diff").await;
    assert!(diff.contains("44") && diff.contains("down"), "{diff}");
    b.screenshot("05-deck-diff").await;
    let staged: i64 = st
        .client
        .query_one("SELECT max(id) FROM deck_versions", &[])
        .await
        .unwrap()
        .get(0);
    // activate, after a confirmation page
    b.click(&format!("activate-{staged}")).await;
    b.screenshot("06-deck-activate-confirm").await;
    b.click("confirm-activate").await;
    assert!(b
        .main_text()
        .await
        .contains(&format!("Version {staged} is live")));
    // the simulator's answer changes once the snapshot reloads
    let url = format!("{base}/console/simulate?{LONDON}");
    eventually("the simulator answers alpha", DEADLINE, || {
        let (b, url) = (&b, &url);
        async move {
            b.goto(url).await;
            let a = b.text("answer").await;
            if a.starts_with("Route to alpha") {
                Ok(())
            } else {
                Err(a)
            }
        }
    })
    .await;
    b.screenshot("07-simulator-after").await;

    // a call: dip with a call id, answered and ended; its CDR is found by the search
    let a = st
        .warpd
        .dip(&format!("{LONDON}&call_id=console-call-1"))
        .await;
    assert_eq!(a["routes"][0]["route_id"], "alpha", "{a}");
    let t0 = chrono::Utc::now().timestamp() as f64;
    let events = format!(
        "event=attempt&call_id=console-call-1&ts={}&attempt=1&route_id=alpha&sip_code=200&reason=OK\n\
         event=answer&call_id=console-call-1&ts={}&attempt=1&route_id=alpha\n\
         event=end&call_id=console-call-1&ts={}&hangup=caller\n",
        t0, t0, t0 + 30.0
    );
    let (s, v) = st.warpd.events(&events).await;
    assert_eq!(s, 200, "{v}");
    b.goto(&format!("{base}/console/cdrs")).await;
    b.fill("ban", "1001").await;
    b.click("search").await;
    let search_url = b.client.current_url().await.unwrap().to_string();
    eventually("the CDR is found", DEADLINE, || {
        let (b, u) = (&b, &search_url);
        async move {
            b.goto(u).await;
            let t = b.text("cdrs").await;
            if t.contains("console-call-1") {
                Ok(())
            } else {
                Err(t)
            }
        }
    })
    .await;
    let t = b.text("cdrs").await;
    assert!(
        t.contains("+442071234567") || t.contains("442071234567"),
        "admin sees numbers: {t}"
    );
    b.screenshot("08-cdrs").await;

    // a resource edit: the API's message names the field; then a good value is saved
    b.goto(&format!("{base}/console/r/customers/1001")).await;
    b.fill("edit-max_cps", "lots").await;
    b.click("save").await;
    let main = b.main_text().await;
    assert!(main.contains("max_cps:"), "{main}");
    b.screenshot("09-customer-error").await;
    b.fill("edit-max_cps", "25").await;
    b.click("save").await;
    assert!(b.main_text().await.contains("Saved."));
    b.screenshot("10-customer").await;

    // a credit account (a generic page with a PUT form and a ledger table with its add form):
    // created by saving its terms, topped up, the ledger and the balance show it
    b.goto(&format!("{base}/console/r/accounts/1001")).await;
    assert!(b.main_text().await.contains("has no account"));
    b.fill("edit-tz", "America/New_York").await;
    b.click("save").await;
    assert!(b.main_text().await.contains("Saved."));
    b.fill("ledger-amount", "lots").await;
    b.click("add-ledger").await;
    let main = b.main_text().await;
    assert!(
        main.contains("amount:"),
        "the API's message names the field: {main}"
    );
    b.fill("ledger-amount", "25").await;
    b.fill("ledger-note", "console top-up").await;
    b.click("add-ledger").await;
    let main = b.main_text().await;
    assert!(
        main.contains("Saved.") && main.contains("console top-up") && main.contains("250000000"),
        "{main}"
    );
    b.goto(&format!("{base}/console/r/accounts/1001#child-ledger"))
        .await;
    b.screenshot("17-account").await;

    // a customer trunk: created, a destination added through its add form, shown in its
    // destinations table
    b.goto(&format!("{base}/console/r/trunks")).await;
    b.fill("new-name", "acme-1001").await;
    b.fill("new-customer", "1001").await;
    b.click("create").await;
    assert!(b.main_text().await.contains("Saved."));
    b.fill("destinations-host", "bad host").await;
    b.click("add-destinations").await;
    assert!(b.main_text().await.contains("host:"));
    b.fill("destinations-host", "192.0.2.55").await;
    b.fill("destinations-priority", "5").await;
    b.click("add-destinations").await;
    let main = b.main_text().await;
    assert!(
        main.contains("Saved.") && main.contains("192.0.2.55"),
        "{main}"
    );
    b.goto(&format!(
        "{base}/console/r/trunks/acme-1001#child-destinations"
    ))
    .await;
    b.screenshot("18-trunk").await;
    b.goto(&format!("{base}/console/r/numbers")).await;
    b.screenshot("19-numbers").await;
    b.goto(&format!("{base}/console/r/vendors")).await;
    b.screenshot("11-vendors").await;
    b.goto(&format!("{base}/console/r/routes")).await;
    b.screenshot("12-routes").await;
    b.goto(&format!("{base}/console/r/partitions")).await;
    b.screenshot("13-partitions").await;

    // the overview after the traffic above (its sparklines sample every 2 s)
    b.goto(&format!("{base}/console/")).await;
    assert!(b.text("outcomes").await.contains("route"));
    b.screenshot("02-overview").await;

    // the audit log names the console user for each change
    b.goto(&format!("{base}/console/audit")).await;
    let audit = b.text("audit").await;
    assert!(
        audit.contains("console:root") && audit.contains("customer.update"),
        "{audit}"
    );
    b.screenshot("14-audit").await;

    // sign out: the session is gone
    b.click("sign-out").await;
    assert!(b
        .client
        .current_url()
        .await
        .unwrap()
        .path()
        .ends_with("/console/login"));
    b.goto(&format!("{base}/console/cdrs")).await;
    assert!(b
        .client
        .current_url()
        .await
        .unwrap()
        .path()
        .ends_with("/console/login"));

    // a readonly user: no edit controls anywhere, masked numbers
    sign_in(&b, base, "viewer", VIEWER_PW).await;
    b.goto(&format!("{base}/console/r/customers/1001")).await;
    assert!(!b.has("#save").await, "no Save for readonly");
    b.screenshot("15-readonly-customer").await;
    b.goto(&format!("{base}/console/r/accounts/1001")).await;
    assert!(b.main_text().await.contains("console top-up"));
    assert!(
        !b.has("#save").await && !b.has("#add-ledger").await,
        "no account edits for readonly"
    );
    b.goto(&format!("{base}/console/decks/alpha")).await;
    assert!(!b.has("#upload").await && !b.has("[id^=activate-]").await);
    b.goto(&format!("{base}/console/r/vendors")).await;
    assert!(!b.has("form[method=post] button:not(#sign-out)").await);
    b.goto(&search_url).await;
    let t = b.text("cdrs").await;
    assert!(
        t.contains("console-call-1") && t.contains('*') && !t.contains("442071234567"),
        "{t}"
    );
    b.screenshot("16-readonly-cdrs").await;
    b.close().await;
    st.warpd.stop().await;
}
