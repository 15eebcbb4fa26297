//! The console over plain HTTP: what a browser never sends on its own. A forged form (no CSRF
//! token, or a wrong one) is refused; a readonly user's POST with a valid token is refused by the
//! admin route's role; wrong passwords lock the account; a reverse proxy's prefix reaches every
//! link, redirect and cookie path.

use reqwest::redirect::Policy;
use reqwest::StatusCode;

use super::{start, ADMIN_PW, VIEWER_PW};

/// An HTTP client that does not follow redirects (the tests read them).
fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(Policy::none())
        .build()
        .unwrap()
}

/// `name=value` of a `Set-Cookie` header named `name`.
fn cookie(resp: &reqwest::Response, name: &str) -> Option<String> {
    resp.headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with(&format!("{name}=")))
        .map(str::to_string)
}

pub(super) fn value_of<'a>(html: &'a str, name: &str) -> &'a str {
    let at = html
        .find(&format!("name=\"{name}\" value=\""))
        .unwrap_or_else(|| panic!("no {name} field in {html}"));
    let rest = &html[at + name.len() + 15..];
    &rest[..rest.find('"').unwrap()]
}

/// Signs in over HTTP: (status, session cookie `warpd_console=…` if one was set, body).
pub(super) async fn sign_in(
    base: &str,
    user: &str,
    pw: &str,
) -> (StatusCode, Option<String>, String) {
    let http = client();
    let page = http
        .get(format!("{base}/console/login"))
        .send()
        .await
        .unwrap();
    let login_cookie = cookie(&page, "warpd_console_login").unwrap();
    let token = login_cookie
        .split(';')
        .next()
        .unwrap()
        .split_once('=')
        .unwrap()
        .1
        .to_string();
    let html = page.text().await.unwrap();
    assert_eq!(value_of(&html, "login_token"), token);
    let r = http
        .post(format!("{base}/console/login"))
        .header("cookie", format!("warpd_console_login={token}"))
        .form(&[
            ("login_token", token.as_str()),
            ("username", user),
            ("password", pw),
        ])
        .send()
        .await
        .unwrap();
    let status = r.status();
    let session = cookie(&r, "warpd_console").map(|c| c.split(';').next().unwrap().to_string());
    (status, session, r.text().await.unwrap())
}

/// The page at `url` as the session `cookie` sees it.
async fn page_of(http: &reqwest::Client, url: String, cookie: &str) -> String {
    http.get(url)
        .header("cookie", cookie)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

async fn max_cps(c: &tokio_postgres::Client) -> Option<i32> {
    c.query_one("SELECT max_cps FROM customers WHERE ban = '1001'", &[])
        .await
        .unwrap()
        .get(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_forms_and_readonly_posts_are_refused() {
    let st = start(&[]).await;
    let base = st.warpd.admin_url("");
    let http = client();
    let before = max_cps(&st.client).await;

    // the admin's session, then a form posted without the CSRF token, and with a wrong one
    let (s, admin, _) = sign_in(&base, "root", ADMIN_PW).await;
    assert_eq!(s, StatusCode::SEE_OTHER);
    let admin = admin.expect("session cookie");
    for (path, form) in [
        ("r/customers/1001", vec![("max_cps", "7")]),
        ("r/customers/1001", vec![("max_cps", "7"), ("csrf", "0000")]),
        ("r/trunks/t1/destinations", vec![("host", "192.0.2.1")]),
        (
            "r/customers/1001/partitions/intl/delete",
            vec![("csrf", "0000")],
        ),
    ] {
        let r = http
            .post(format!("{base}/console/{path}"))
            .header("cookie", &admin)
            .form(&form)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::FORBIDDEN, "{path} {form:?}");
        assert!(r.text().await.unwrap().contains("CSRF token"));
    }
    assert_eq!(
        max_cps(&st.client).await,
        before,
        "a forged form changed nothing"
    );

    // the same form with the session's token goes through the admin handler and is audited
    let page = page_of(&http, format!("{base}/console/r/customers/1001"), &admin).await;
    let csrf = value_of(&page, "csrf").to_string();
    let r = http
        .post(format!("{base}/console/r/customers/1001"))
        .header("cookie", &admin)
        .form(&[("csrf", csrf.as_str()), ("max_cps", "7")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(max_cps(&st.client).await, Some(7));
    assert_eq!(
        crate::support::actors(&st.client, "customer.update").await,
        ["console:root"]
    );

    // a readonly user: no edit form on the page, and its POST (valid token) is refused
    let (_, viewer, _) = sign_in(&base, "viewer", VIEWER_PW).await;
    let viewer = viewer.unwrap();
    let page = page_of(&http, format!("{base}/console/r/customers/1001"), &viewer).await;
    assert!(!page.contains("id=\"save\""), "readonly sees no Save");
    let csrf = value_of(&page, "csrf").to_string(); // the sign-out form's
    for (path, form) in [
        (
            "/console/r/customers/1001",
            vec![("csrf", csrf.as_str()), ("max_cps", "9")],
        ),
        (
            "/console/r/vendors",
            vec![
                ("csrf", csrf.as_str()),
                ("name", "evil"),
                ("billing_model", "LRN"),
            ],
        ),
        (
            "/console/decks/alpha/rollback",
            vec![("csrf", csrf.as_str())],
        ),
        // an item's child add form (a top-up) and a trunk's create form
        (
            "/console/r/accounts/1001/ledger",
            vec![("csrf", csrf.as_str()), ("kind", "topup"), ("amount", "5")],
        ),
        (
            "/console/r/trunks",
            vec![
                ("csrf", csrf.as_str()),
                ("name", "evil"),
                ("customer", "1001"),
            ],
        ),
    ] {
        let r = http
            .post(format!("{base}{path}"))
            .header("cookie", &viewer)
            .form(&form)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::FORBIDDEN, "{path}");
        assert!(
            r.text().await.unwrap().contains("has role readonly"),
            "{path}"
        );
    }
    assert_eq!(max_cps(&st.client).await, Some(7));
    let n: i64 = st
        .client
        .query_one("SELECT count(*) FROM vendors WHERE name = 'evil'", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(n, 0);
    let n: i64 = st
        .client
        .query_one("SELECT count(*) FROM trunks", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(n, 0, "no trunk created by a readonly POST");

    // an ops user: the controls its role allows (partitions: ops), not the others (source
    // IPs: admin)
    let (_, ops, _) = sign_in(&base, "deckops", ADMIN_PW).await;
    let page = page_of(
        &http,
        format!("{base}/console/r/customers/1001"),
        &ops.unwrap(),
    )
    .await;
    for (id, shown) in [
        ("add-partitions", true),
        ("delete-partitions-0", true),
        ("add-blocked_prefixes", true),
        ("add-source_ips", false),
        ("save", true),
    ] {
        assert_eq!(page.contains(&format!("id=\"{id}\"")), shown, "{id}");
    }

    // no session: pages redirect to the sign-in page, POSTs too
    let r = http
        .get(format!("{base}/console/cdrs"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(r.headers()["location"], "/console/login");
    st.warpd.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn repeated_failures_lock_the_account_and_cookies_are_strict() {
    let st = start(&[("WARPD_CONSOLE__LOCKOUT_FAILURES", "3")]).await;
    let base = st.warpd.admin_url("");
    // unknown user and wrong password: the same answer
    let (s, none, body) = sign_in(&base, "nobody", "whatever-password").await;
    assert_eq!((s, none), (StatusCode::UNAUTHORIZED, None));
    assert!(body.contains("Wrong user name or password"));
    for _ in 0..2 {
        let (s, _, _) = sign_in(&base, "deckops", "wrong-password!").await;
        assert_eq!(s, StatusCode::UNAUTHORIZED);
    }
    let (s, _, body) = sign_in(&base, "deckops", "wrong-password!").await;
    assert_eq!(s, StatusCode::TOO_MANY_REQUESTS, "{body}");
    // locked: the right password is refused too, until `warpd user passwd` or the time is up
    let (s, none, body) = sign_in(&base, "deckops", ADMIN_PW).await;
    assert_eq!((s, none), (StatusCode::TOO_MANY_REQUESTS, None));
    assert!(body.contains("locked"), "{body}");
    let locks: i64 = st
        .client
        .query_one(
            "SELECT count(*) FROM audit_log WHERE action = 'console_user.lock' AND target = 'console_user deckops'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(locks, 1);
    warpd::console::auth::set_password(&st.client, "deckops", "a-new-long-password", "test")
        .await
        .unwrap();
    let (s, session, _) = sign_in(&base, "deckops", "a-new-long-password").await;
    assert_eq!(s, StatusCode::SEE_OTHER);
    // the session cookie: HttpOnly, SameSite=Strict, Secure, the console's path; the database
    // holds only the id's hash
    let http = client();
    let page = http
        .get(format!("{base}/console/login"))
        .send()
        .await
        .unwrap();
    let c = cookie(&page, "warpd_console_login").unwrap();
    for attr in ["HttpOnly", "SameSite=Strict", "Secure", "Path=/console/"] {
        assert!(c.contains(attr), "{c}");
    }
    let id = session.unwrap().split_once('=').unwrap().1.to_string();
    let stored: i64 = st
        .client
        .query_one(
            "SELECT count(*) FROM console_sessions WHERE id_sha256 = $1 OR id_sha256 = $2",
            &[&id, &warpd::admin::hash_token(&id)],
        )
        .await
        .unwrap()
        .get(0);
    let raw: i64 = st
        .client
        .query_one(
            "SELECT count(*) FROM console_sessions WHERE id_sha256 = $1",
            &[&id],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!((stored, raw), (1, 0), "stored hashed");
    st.warpd.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn behind_a_proxy_prefix_links_redirects_and_cookies_carry_it() {
    let st = start(&[("WARPD_CONSOLE__EXTERNAL_PREFIX", "/ops")]).await;
    let base = st.warpd.admin_url("");
    let http = client();
    // the proxy strips /ops: warpd still serves /console/, and emits /ops/console/… everywhere
    let r = http.get(format!("{base}/console/")).send().await.unwrap();
    assert_eq!(r.headers()["location"], "/ops/console/login");
    let r = http
        .get(format!("{base}/console/login"))
        .send()
        .await
        .unwrap();
    assert!(cookie(&r, "warpd_console_login")
        .unwrap()
        .contains("Path=/ops/console/"));
    let html = r.text().await.unwrap();
    assert!(
        html.contains("href=\"/ops/console/static/console.css\""),
        "{html}"
    );
    assert!(html.contains("action=\"/ops/console/login\""), "{html}");
    let (s, session, _) = sign_in(&base, "root", ADMIN_PW).await;
    assert_eq!(s, StatusCode::SEE_OTHER);
    let page = page_of(
        &http,
        format!("{base}/console/r/vendors"),
        &session.unwrap(),
    )
    .await;
    assert!(page.contains("href=\"/ops/console/r/vendors/"), "{page}");
    assert!(
        !page.contains("href=\"/console/"),
        "every link carries the prefix"
    );
    st.warpd.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_gets_a_page_naming_the_field_never_a_500() {
    let st = start(&[]).await;
    let base = st.warpd.admin_url("");
    let base = base.trim_end_matches('/');
    let (_, session, _) = sign_in(base, "root", ADMIN_PW).await;
    let session = session.unwrap();
    let long = "9".repeat(5000);
    let http = client();
    let cases: Vec<(String, u16, &str)> = vec![
        (
            "simulate?ban=1001&ani=%2B12125550100&dnis=%2B442071234567&src_ip=nope".into(),
            400,
            "src_ip",
        ),
        (
            "simulate?ban=1001&ani=%2B12125550100&dnis=%2B442071234567&at=yesterday".into(),
            400,
            "at:",
        ),
        ("cdrs?search=1&from=soon".into(), 400, "from:"),
        (
            "cdrs?search=1&from=2026-12-02T00:00:00Z&to=2026-12-01T00:00:00Z".into(),
            400,
            "to: must be after from",
        ),
        ("cdrs?search=1&cursor=zz".into(), 400, "cursor"),
        ("cdrs/export.csv?from=soon".into(), 400, "from:"),
        ("r/nope".into(), 404, "no such page"),
        (format!("r/customers/{long}"), 404, "no such page"),
        (
            "r/customers/nobody".into(),
            404,
            "customer &quot;nobody&quot; does not exist",
        ),
        ("decks/nope".into(), 404, "nope"),
        ("decks/alpha/x/activate".into(), 200, "Activate version x"),
        (
            "r/customers/1001/partitions/intl/delete".into(),
            200,
            "Delete partition intl of customer 1001?",
        ),
        ("r/customers/1001/nope/x/delete".into(), 404, "no such page"),
        (
            format!("r/customers/1001/source_ips/{long}/delete"),
            404,
            "no such page",
        ),
        ("r/customers/1001/source_ips".into(), 404, "no such page"),
        (format!("nope/{long}"), 404, "no such page"),
    ];
    for (path, status, want) in &cases {
        let r = http
            .get(format!("{base}/console/{path}"))
            .header("cookie", &session)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), *status, "{path:.80}");
        let body = r.text().await.unwrap();
        assert!(body.contains(want), "{path:.80}: {body:.2000}");
        assert!(
            !body.contains(&long),
            "{path:.80}: the long value is not echoed"
        );
    }
    // a POST activating a version that is not a number: the API's message, 400
    let page = page_of(&http, format!("{base}/console/decks/alpha"), &session).await;
    let csrf = value_of(&page, "csrf").to_string();
    let r = http
        .post(format!("{base}/console/decks/alpha/x/activate"))
        .header("cookie", &session)
        .form(&[("csrf", csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert!(r
        .text()
        .await
        .unwrap()
        .contains("version: &quot;x&quot; is not a version id"));
    st.warpd.stop().await;
}
