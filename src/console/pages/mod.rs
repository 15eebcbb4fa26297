//! The console's pages and the one table mapping `/console/<path>` to them.
//!
//! Owns: page paths. Must not touch: sessions (checked before), validation (the admin API's).

mod audit;
mod cdrs;
mod deck_progress;
mod decks;
mod overview;
mod simulate;

use std::collections::HashMap;

use hyper::Method;

use super::{catalog, resource, Console, ConsoleError, Reply, Req};
use crate::admin::Upload;

/// Longest path segment (a name or key) a page accepts.
const MAX_SEGMENT: usize = 256;

/// A path segment, percent-decoded.
fn seg(s: &str) -> String {
    percent_encoding::percent_decode_str(s)
        .decode_utf8_lossy()
        .into_owned()
}

/// A GET of the admin API as the signed-in user, its JSON answer.
pub(super) async fn api_get(
    c: &Console,
    r: &Req,
    path: &str,
    query: &[(&str, &str)],
) -> Result<serde_json::Value, ConsoleError> {
    let q: HashMap<String, String> = query
        .iter()
        .filter(|(_, v)| !v.is_empty())
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let reply = crate::admin::call(
        &c.admin,
        r.session.who.clone(),
        "GET",
        path,
        q,
        bytes::Bytes::new(),
        None,
    )
    .await?;
    Ok(serde_json::from_slice(&reply.body).unwrap_or(serde_json::Value::Null))
}

pub(super) async fn dispatch(
    c: &Console,
    r: Req,
    upload: Option<Upload>,
) -> Result<Reply, ConsoleError> {
    let segs: Vec<String> = if r.path.is_empty() {
        vec![]
    } else {
        r.path.split('/').map(seg).collect()
    };
    // names and keys are short: a long segment is no page (and is not echoed whole)
    if let Some(long) = segs.iter().find(|x| x.chars().count() > MAX_SEGMENT) {
        return Err(ConsoleError::NotFound(warpd_core::excerpt::excerpt(long)));
    }
    let s: Vec<&str> = segs.iter().map(String::as_str).collect();
    let get = r.method == Method::GET;
    let post = r.method == Method::POST;
    match s.as_slice() {
        [] if get => overview::page(c, &r).await,
        ["simulate"] if get => simulate::page(c, &r),
        ["decks"] if get => decks::index(c, &r).await,
        ["decks", route] if get => decks::route_page(c, &r, route, None).await,
        ["decks", route, "upload"] if post => decks::upload(c, &r, route, upload).await,
        ["decks", route, "rollback"] if get || post => decks::rollback(c, &r, route).await,
        ["decks", route, version, "activate"] if get || post => {
            decks::activate(c, &r, route, version).await
        }
        ["r", slug, rest @ ..] => {
            let res = catalog::find(slug)
                .ok_or_else(|| ConsoleError::NotFound(warpd_core::excerpt::excerpt(&r.path)))?;
            match rest {
                [] if post => resource::submit(c, &r, res, None).await,
                [] => resource::list(c, &r, res, None).await,
                [key] if post => resource::submit(c, &r, res, Some(key)).await,
                [key] => resource::item(c, &r, res, key, None).await,
                [key, child] if post => resource::add(c, &r, res, key, child).await,
                [key, child, row, "delete"] if get || post => {
                    resource::remove(c, &r, res, key, child, row).await
                }
                _ => Err(ConsoleError::NotFound(warpd_core::excerpt::excerpt(
                    &r.path,
                ))),
            }
        }
        ["cdrs"] if get => cdrs::page(c, &r).await,
        ["cdrs", "export.csv"] if get => cdrs::export(c, &r).await,
        ["audit"] if get => audit::page(c, &r).await,
        _ => Err(ConsoleError::NotFound(format!(
            "/console/ {}",
            warpd_core::excerpt::excerpt(&r.path)
        ))),
    }
}
