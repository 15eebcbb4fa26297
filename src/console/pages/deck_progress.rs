//! The progress page of a big deck upload (issue 22): no JavaScript, one streamed HTML page. The
//! file has arrived when the handler runs; the import reads it (parse, validate, COPY), and every
//! [`EVERY`] the page gets a new `<progress>` bar with the share of the file read so far (CSS
//! shows the last one only), then the outcome: the same notice and diff as a small upload's
//! redirect (a meta refresh to that page, and a link), or the import's error naming the line.
//!
//! Uploads under [`MIN_BYTES`] are imported before a bar would move, and keep the plain
//! redirect.
//!
//! Owns: the page's stream. Must not touch: the import (the admin API's deck handler, called as
//! for any upload; it counts what it reads into `Upload::progress`).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use hyper::header::{HeaderValue, CONTENT_TYPE};
use hyper::StatusCode;
use maud::{html, PreEscaped};
use serde_json::Value;

use super::super::html::{self, enc, layout, text};
use super::super::{Console, Reply, ReplyBody, Req};
use crate::admin::Upload;

/// Uploads at least this big get the progress page.
pub const MIN_BYTES: u64 = 1 << 20;

/// How often the page adds a bar.
const EVERY: Duration = Duration::from_millis(250);

/// Where the bars go in the page (split there: the page before it is sent first).
const SLOT: &str = "<!--warpd-progress-->";

/// The streamed page importing `upload` (`size` bytes) into `route` with the form's `query`.
pub fn page(
    c: &Console,
    r: &Req,
    route: &str,
    path: String,
    query: HashMap<String, String>,
    mut upload: Upload,
    size: u64,
) -> Reply {
    let read = Arc::new(AtomicU64::new(0));
    upload.progress = Some(read.clone());
    let (admin, who) = (c.admin.clone(), r.session.who.clone());
    let mut import = tokio::spawn(async move {
        crate::admin::call(
            &admin,
            who,
            "POST",
            &path,
            query,
            bytes::Bytes::new(),
            Some(upload),
        )
        .await
    });
    let title = format!("Importing a deck into {route}");
    let body = html! {
        p { "Reading " (mib(size)) " and storing it as a new version of route " (route) "." }
        div.progress-log { (PreEscaped(SLOT)) }
    };
    let full = layout(&r.base, Some(&r.session), "decks", &title, None, body).into_string();
    let (head, tail) = full.split_once(SLOT).unwrap_or((full.as_str(), ""));
    let (head, tail) = (head.to_string(), tail.to_string());
    let route_url = r.base.url(&format!("decks/{}", enc(route)));
    let (tx, rx) = tokio::sync::mpsc::channel::<Vec<u8>>(4);
    tokio::spawn(async move {
        if tx.send(head.into_bytes()).await.is_err() {
            return;
        }
        let outcome = loop {
            let n = read.load(Ordering::Relaxed).min(size);
            if tx.send(bar(n, size).into_bytes()).await.is_err() {
                // the browser left; the import goes on and its outcome is in the deck's versions
                return;
            }
            tokio::select! {
                res = &mut import => break res,
                _ = tokio::time::sleep(EVERY) => {}
            }
        };
        let end = match outcome {
            Ok(Ok(reply)) => {
                let rep: Value = serde_json::from_slice(&reply.body).unwrap_or(Value::Null);
                let v = text(&rep["version"]);
                let next = format!(
                    "{route_url}?{}",
                    html::query(&[
                        ("uploaded", &v),
                        ("rows", &text(&rep["rows"])),
                        ("state", &text(&rep["state"])),
                        ("diff", &v)
                    ])
                );
                html! {
                    (bar(size, size))
                    (html::notice(&format!("Uploaded version {v} ({} rows, {}).", text(&rep["rows"]), text(&rep["state"]))))
                    meta http-equiv="refresh" content=(format!("0; url={next}"));
                    p { a id="continue" href=(next) { "Continue to the version and its diff" } }
                }
            }
            Ok(Err(e)) => html! {
                (html::error_box(&e.to_string()))
                p { a id="back" href=(route_url) { "Back to the route's decks" } }
            },
            Err(e) => {
                tracing::warn!(error = %e, "console deck import task failed");
                html! {
                    (html::error_box("the import stopped unexpectedly; nothing was imported"))
                    p { a id="back" href=(route_url) { "Back to the route's decks" } }
                }
            }
        };
        let _ = tx.send(end.into_string().into_bytes()).await;
        let _ = tx.send(tail.into_bytes()).await;
    });
    Reply {
        status: StatusCode::OK,
        headers: vec![
            (
                CONTENT_TYPE,
                HeaderValue::from_static("text/html; charset=utf-8"),
            ),
            // proxies must pass the bars on as they come
            (
                hyper::header::HeaderName::from_static("x-accel-buffering"),
                HeaderValue::from_static("no"),
            ),
        ],
        body: ReplyBody::Stream(rx),
    }
}

/// One bar: `n` of `size` bytes read.
fn bar(n: u64, size: u64) -> String {
    let pct = (n.saturating_mul(100)).checked_div(size).unwrap_or(100);
    let label = if n >= size {
        "All read; storing the version".to_string()
    } else {
        format!("{} of {} read ({pct} %)", mib(n), mib(size))
    };
    html! {
        div.bar {
            progress value=(n) max=(size.max(1)) aria-label="Deck import" { (pct) " %" }
            " " span { (label) }
        }
    }
    .into_string()
}

fn mib(b: u64) -> String {
    format!("{:.1} MiB", b as f64 / (1024.0 * 1024.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bar_says_how_much_is_read() {
        let b = bar(512 * 1024, 2 * 1024 * 1024);
        assert!(b.contains("value=\"524288\""), "{b}");
        assert!(b.contains("max=\"2097152\""), "{b}");
        assert!(b.contains("0.5 MiB of 2.0 MiB read (25 %)"), "{b}");
        assert!(bar(10, 10).contains("All read"));
        // an empty file is never divided by
        assert!(bar(0, 0).contains("All read"));
    }
}
