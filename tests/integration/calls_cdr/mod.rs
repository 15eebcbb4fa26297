//! Calls and CDRs against a throwaway PostgreSQL: full lifecycles with failover rated under
//! 6/6, 60/60 and 30/6; concurrent-call and CPS limits; bad and duplicate events; restart with live
//! calls; a PostgreSQL outage during a stream of calls (spool + replay, every CDR exactly once);
//! `kill -9` of the warpd binary mid-stream (every acknowledged CDR exactly once); a spool whose
//! last record is cut.

mod auth_failures;
mod credit;
mod durability;
mod event_age;
mod lifecycle;
mod nanp_zone;
mod policy;
mod spend_alarm;

use crate::support::{self, Warpd};

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value};

const Q: &str = "ban=10001&ani=%2B12125550100&dnis=%2B13125550100";

/// The demo network in a fresh cluster, without the demo's call limits and billing increments
/// of customer 10001 (tests stream calls faster than its 20 calls per second, and set the limits
/// and increments they test themselves).
async fn demo_db(pg: &support::TestPg) -> tokio_postgres::Client {
    let client = support::demo::demo_db(pg).await;
    client
        .execute(
            "UPDATE customers SET max_concurrent_calls = NULL, max_cps = NULL, \
             billing_min_seconds = NULL, billing_inc_seconds = NULL",
            &[],
        )
        .await
        .unwrap();
    client
}

/// What a test's warpd leaves behind: its database and CDR spool (kept while the test runs).
struct Scratch {
    pg: support::TestPg,
    spool: tempfile::TempDir,
}

impl Scratch {
    fn new() -> Scratch {
        Scratch {
            pg: support::TestPg::start(),
            spool: tempfile::tempdir().unwrap(),
        }
    }
}

/// Overrides of every warpd here, in-process or a child.
const ENV: [(&str, &str); 5] = [
    ("WARPD_CDR__DB_TIMEOUT_MS", "2000"),
    // the tests dip by BAN from 127.0.0.1 (the harness sets the same for in-process warpds)
    ("WARPD_SERVER__KAMAILIO_DIP_AS", "any"),
    ("WARPD_CALLS__LIMITS_REFRESH_MS", "100"),
    ("WARPD_CALLS__REAPER_INTERVAL_MS", "100"),
    ("WARPD_LOG__LEVEL", "warn"),
];

/// warpd on the demo database: fast limit refreshes and reaper, CDR writes that give up after
/// 2 s (so an outage spools quickly), the spool in `spool` (kept across restarts).
async fn start(pg: &support::TestPg, spool: &Path, extra: &[(&str, &str)]) -> Warpd {
    Warpd::builder(pg)
        .spool(spool)
        .envs(ENV)
        .envs(extra.iter().copied())
        .start()
        .await
}

/// The query of a dip for call `call_id` (customer 10001, NY -> IL).
fn call(call_id: &str) -> String {
    format!("{Q}&call_id={call_id}")
}

/// Rows of `cdrs` for a call.
async fn cdrs_of(client: &tokio_postgres::Client, call_id: &str) -> Vec<tokio_postgres::Row> {
    client
        .query(
            "SELECT route_id, vendor_billed_s, customer_billed_s, cost::text, price::text, \
             disposition, attempt_count, duration_ms, flags, hangup, vendor_min, vendor_inc, \
             partition FROM cdrs WHERE call_id = $1",
            &[&call_id],
        )
        .await
        .unwrap()
}

fn billed(ms: i64, min: i64, inc: i64) -> i64 {
    let s = (ms + 999) / 1000;
    if s <= 0 {
        0
    } else if s <= min {
        min
    } else {
        min + (s - min + inc - 1) / inc * inc
    }
}

fn e7(rate: f64) -> i64 {
    (rate * 1e7).round() as i64
}

fn money(billed: i64, rate_e7: i64) -> String {
    let v = (billed * rate_e7 + 30) / 60;
    format!("{}.{:07}", v / 10_000_000, v % 10_000_000)
}

/// The one number a `SELECT count(*) …` answers.
async fn count(client: &tokio_postgres::Client, sql: &str) -> i64 {
    client.query_one(sql, &[]).await.unwrap().get(0)
}
