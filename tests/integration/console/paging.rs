//! Pages that grow with the network come a page at a time (issue 22): the customers list shows
//! 100 customers by BAN with a link to the next 100, and a deck diff shows 100 changed rows in
//! the chosen order with a link to the next 100 (keyset cursors, computed by the admin API).

use super::http::sign_in;
use super::{start, ADMIN_PW};

/// The values of `attr="…"` in `html`, in order.
fn attrs<'a>(html: &'a str, attr: &str) -> Vec<&'a str> {
    html.split(&format!("{attr}=\""))
        .skip(1)
        .map(|s| &s[..s.find('"').unwrap()])
        .collect()
}

/// The href of the element with id `id`, if any (maud writes `href` before `rel` and `id`).
fn next_link(html: &str, id: &str) -> Option<String> {
    let at = html.find(&format!("id=\"{id}\""))?;
    let start = html[..at].rfind("href=\"")? + 6;
    Some(html[start..start + html[start..].find('"')?].replace("&amp;", "&"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn customers_and_deck_diffs_come_a_page_at_a_time() {
    let st = start(&[]).await;
    st.client
        .batch_execute(
            "INSERT INTO customers (ban, name) SELECT 'p' || lpad(g::text, 3, '0'), 'Paged ' || g \
             FROM generate_series(1, 150) g",
        )
        .await
        .unwrap();
    let base = st.warpd.admin_url("");
    let base = base.trim_end_matches('/').to_string();
    let (_, session, _) = sign_in(&base, "root", ADMIN_PW).await;
    let session = session.unwrap();
    let http = reqwest::Client::new();
    let get = |path: String| {
        let (http, session) = (http.clone(), session.clone());
        async move {
            let r = http
                .get(&path)
                .header("cookie", session)
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 200, "{path}");
            r.text().await.unwrap()
        }
    };

    // customers: 1001 and p001..p150 by BAN; 100 on the first page, the rest on the second
    let first = get(format!("{base}/console/r/customers")).await;
    let links = |html: &str| -> Vec<String> {
        attrs(html, "href")
            .into_iter()
            .filter(|h| h.contains("/console/r/customers/"))
            .map(|h| h.rsplit('/').next().unwrap().to_string())
            .collect()
    };
    let page1 = links(&first);
    assert_eq!(page1.len(), 100, "{page1:?}");
    assert_eq!((page1[0].as_str(), page1[99].as_str()), ("1001", "p099"));
    let next = next_link(&first, "next-page").expect("a next link");
    assert!(next.ends_with("after=p099"), "{next}");
    let second = get(format!("{base}{next}")).await;
    let page2 = links(&second);
    assert_eq!(page2.len(), 51, "{page2:?}");
    assert_eq!((page2[0].as_str(), page2[50].as_str()), ("p100", "p150"));
    assert!(next_link(&second, "next-page").is_none(), "last page");

    // a deck diff of 250 changed prefixes: pages of 100 by prefix, then by change size
    let token = warpd::admin::create_token(&st.client, "bulk", "admin", "test")
        .await
        .unwrap();
    let deck = |f: &dyn Fn(usize) -> String| {
        let mut s = "Code,Price\n".to_string();
        for i in 0..250 {
            s.push_str(&format!("44{:04},{}\n", 1000 + i, f(i)));
        }
        s
    };
    let (s, live) = st
        .warpd
        .upload(
            "/v1/admin/routes/alpha/decks?name=live.csv",
            &token,
            deck(&|_| "0.0300".into()),
        )
        .await;
    assert_eq!(s, 200, "{live}");
    let (s, staged) = st
        .warpd
        .upload(
            "/v1/admin/routes/alpha/decks?name=staged.csv&stage=true",
            &token,
            deck(&|i| format!("0.0{}5", 200 + i)),
        )
        .await;
    assert_eq!(s, 200, "{staged}");
    let staged = staged["version"].as_i64().unwrap();
    let rows = |html: &str| -> Vec<String> {
        let table = &html[html.find("id=\"diff\"").unwrap()..];
        let table = &table[..table.find("</table>").unwrap()];
        table
            .split("<tr><td>")
            .skip(1)
            .map(|r| r[..r.find('<').unwrap()].to_string())
            .collect()
    };
    let mut seen = vec![];
    let mut url = format!("{base}/console/decks/alpha?diff={staged}");
    let mut pages = 0;
    loop {
        let html = get(url.clone()).await;
        let r = rows(&html);
        assert!(r.len() <= 100);
        seen.extend(r);
        pages += 1;
        match next_link(&html, "diff-next") {
            Some(n) => url = format!("{base}{n}"),
            None => break,
        }
    }
    assert_eq!(pages, 3);
    let want: Vec<String> = (0..250).map(|i| format!("44{:04}", 1000 + i)).collect();
    assert_eq!(seen, want);
    // by the size of the change: the largest moves first: +49.8 % (0.04495) down to +33.4 %
    // (0.04005), then decreases and increases alternate (-33.3 % for 0.02005, +33.0 %, ...)
    let by_pct = get(format!("{base}/console/decks/alpha?diff={staged}&sort=pct")).await;
    let r = rows(&by_pct);
    assert_eq!(r.len(), 100);
    assert_eq!(
        (r[0].as_str(), r[49].as_str(), r[50].as_str()),
        ("441249", "441200", "441000"),
        "{r:?}"
    );
    let next = next_link(&by_pct, "diff-next").expect("more rows");
    assert!(next.contains("sort=pct"), "{next}");
    let r2 = rows(&get(format!("{base}{next}")).await);
    assert_eq!(r2[0], "441025", "{r2:?}");
    st.warpd.stop().await;
}
