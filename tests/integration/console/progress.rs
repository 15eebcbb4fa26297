//! A big deck upload in the console (issue 22): the answer is one streamed page with a progress
//! bar, then the same outcome a small upload's redirect shows — the version and a refresh to its
//! diff — or the error naming the bad line with nothing imported.

use super::http::{sign_in, value_of};
use super::{start, ADMIN_PW};

/// 100,000 rows (~1.5 MB: over the progress page's 1 MiB), the bad line `bad_line` if any.
fn big_deck(bad_line: Option<usize>) -> Vec<u8> {
    let mut s = String::from("Code,Price\n");
    for i in 0..100_000usize {
        // line numbers count the header as line 1
        if Some(i + 2) == bad_line {
            s.push_str("44XYZ,0.03\n");
        } else {
            s.push_str(&format!("44{:06},0.031\n", 100_000 + i));
        }
    }
    s.into_bytes()
}

/// A multipart form with the session's CSRF token, `stage`, and the deck.
fn form(csrf: &str, deck: &[u8]) -> (String, Vec<u8>) {
    let b = "warpdprogressboundary";
    let mut body = Vec::new();
    for (k, v) in [("csrf", csrf), ("stage", "true")] {
        body.extend_from_slice(
            format!("--{b}\r\nContent-Disposition: form-data; name=\"{k}\"\r\n\r\n{v}\r\n")
                .as_bytes(),
        );
    }
    body.extend_from_slice(
        format!(
            "--{b}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"big.csv\"\r\n\
             Content-Type: text/csv\r\n\r\n"
        )
        .as_bytes(),
    );
    body.extend_from_slice(deck);
    body.extend_from_slice(format!("\r\n--{b}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={b}"), body)
}

async fn versions(c: &tokio_postgres::Client) -> i64 {
    c.query_one(
        "SELECT count(*) FROM deck_versions v JOIN routes r ON r.id = v.route_id \
         WHERE r.name = 'alpha'",
        &[],
    )
    .await
    .unwrap()
    .get(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_big_upload_streams_a_progress_bar_then_its_outcome() {
    let st = start(&[]).await;
    let base = st.warpd.admin_url("");
    let base = base.trim_end_matches('/');
    let (_, session, _) = sign_in(base, "root", ADMIN_PW).await;
    let session = session.unwrap();
    let http = reqwest::Client::new();
    let page = http
        .get(format!("{base}/console/decks/alpha"))
        .header("cookie", &session)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let csrf = value_of(&page, "csrf");
    let before = versions(&st.client).await;

    // a bad line: the bar, then the error naming the line; nothing imported
    let (ct, body) = form(csrf, &big_deck(Some(70_001)));
    let r = http
        .post(format!("{base}/console/decks/alpha/upload"))
        .header("cookie", &session)
        .header("content-type", ct)
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "the page streams");
    let html = r.text().await.unwrap();
    assert!(html.contains("<progress"), "{html}");
    assert!(html.contains("role=\"alert\""), "{html}");
    assert!(
        html.contains("line 70001"),
        "the error names the line: {html}"
    );
    assert!(html.trim_end().ends_with("</html>"), "the page is whole");
    assert_eq!(versions(&st.client).await, before, "nothing imported");

    // a good deck: bars, then the version and the refresh to its diff
    let (ct, body) = form(csrf, &big_deck(None));
    let r = http
        .post(format!("{base}/console/decks/alpha/upload"))
        .header("cookie", &session)
        .header("content-type", ct)
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let html = r.text().await.unwrap();
    assert!(html.contains("<progress"), "{html}");
    assert!(html.contains("Uploaded version"), "{html}");
    assert!(html.contains("100000 rows"), "{html}");
    assert!(html.contains("http-equiv=\"refresh\""), "{html}");
    assert!(html.contains("?uploaded="), "{html}");
    assert!(!html.contains("role=\"alert\""), "{html}");
    assert_eq!(versions(&st.client).await, before + 1);
    st.warpd.stop().await;
}
