//! The streamed rate tables: vendor_rates (tens of millions of rows, optionally split by page
//! ranges over helper connections) and customer_rates.
//!
//! Owns: those COPY queries and the rows' conversion into the builder.
//! Must not touch: the transaction and the snapshot export (see the parent module).

use rustc_hash::FxHashMap;
use tokio_postgres::Client;
use warpd_core::pgcopy::{field_i64, field_str, pg_packed_rate_row, pg_timestamptz};

use super::columns::{col, int_col};
use super::copy::{copy_binary, field_rate, need, packed_rate};
use super::DbError;
use crate::routing::{CustomerRate, Id, RateKey, RateRow, SnapshotBuilder};

/// Streams vendor_rates into the builder: every row, or with `only` the rows of those route
/// ids (an incremental build re-reading a few routes, through the route_id index).
pub(super) async fn load_vendor_rates(
    client: &Client,
    helpers: &[Client],
    b: &mut SnapshotBuilder,
    routes: &FxHashMap<Id, String>,
    only: Option<&[Id]>,
) -> Result<u64, DbError> {
    const T: &str = "vendor_rates";
    // Size hint from planner statistics, and the heap size in pages (both cheap).
    let sizes = client
        .query_one(
            "SELECT reltuples::bigint, \
                    (pg_relation_size(oid) / current_setting('block_size')::bigint)::bigint \
             FROM pg_class WHERE oid = 'vendor_rates'::regclass",
            &[],
        )
        .await
        .map_err(DbError::query("sizing vendor_rates"))?;
    let (tuples, pages): (i64, i64) = (col(&sizes, 0, T)?, col(&sizes, 1, T)?);
    if only.is_none() {
        b.reserve_rates(tuples.clamp(0, 200_000_000) as usize);
    }

    // Each value a binary COPY sends costs the server about as much as reading the row, so
    // everything but the key travels as one value, `load_row`, which PostgreSQL packs when the
    // row is written (sql/0024). Expired rows are skipped here, not in the query (a filter costs
    // the server more than the client's comparison). Measured on 5M rows: 2.35 s of server CPU
    // for the eight columns (route, terms and window with defaults sent as NULL), 1.4 s now.
    let base = "SELECT prefix, ocn, lata, load_row FROM vendor_rates WHERE true";
    let now = super::unix_now();
    let base = match only {
        // integers: nothing to quote
        Some(ids) => format!(
            "{base} AND route_id = ANY('{{{}}}'::bigint[])",
            ids.iter()
                .map(|i| i.to_string())
                .collect::<Vec<_>>()
                .join(",")
        ),
        None => base.to_string(),
    };
    let base = base.as_str();
    if only.is_some() {
        // A few routes' rows: through the route_id index. The planner would scan the whole
        // heap (a route is ~1/routes of the rows, and right after a deck change its statistics
        // are stale), though a route's rows lie together as its deck import left them. Local
        // to the incremental build's read-only transaction.
        client
            .batch_execute("SET LOCAL enable_seqscan = off")
            .await
            .map_err(DbError::query("planning the routes' vendor_rates read"))?;
    }
    let mut sources: Vec<(&Client, String)> = vec![(client, base.to_string())];
    if !helpers.is_empty() && only.is_none() {
        // Split the heap into page ranges (TID range scans). Every row our snapshot sees lies
        // below the size read now; the last range is open-ended anyway.
        let n = 1 + helpers.len() as i64;
        let bound = |k: i64| pages * k / n;
        sources = std::iter::once(client)
            .chain(helpers.iter())
            .enumerate()
            .map(|(k, c)| {
                let k = k as i64;
                let lo = format!(" AND ctid >= '({},0)'::tid", bound(k));
                let hi = if k + 1 < n {
                    format!(" AND ctid < '({},0)'::tid", bound(k + 1))
                } else {
                    String::new()
                };
                (c, format!("{base}{lo}{hi}"))
            })
            .collect();
    }
    copy_binary::<4>(&sources, T, |f| {
        let [prefix, ocn, lata, packed] = *f;
        let prefix_s = field_str(prefix);
        let row = packed.and_then(pg_packed_rate_row);
        let key = || {
            let route = row
                .and_then(|r| routes.get(&r.route_id).map(|n| format!("route {n:?}")))
                .or_else(|| row.map(|r| format!("route id {}", r.route_id)))
                .unwrap_or_else(|| "route ?".to_string());
            let k = match prefix_s {
                Some(p) => format!("prefix {p}"),
                None => format!(
                    "ocn {:?} lata {:?}",
                    field_str(ocn).unwrap_or("?"),
                    field_str(lata).unwrap_or("?")
                ),
            };
            let start = row.map(|r| show_time(r.effective_from)).unwrap_or_default();
            format!("{route}, {k}, effective_from {start}")
        };
        let p = need(row, T, &key, "load_row")?;
        if p.effective_until <= now {
            return Ok(());
        }
        let row = RateRow {
            inter: packed_rate(p.rates[0], T, &key, "rate_inter")?,
            intra: packed_rate(p.rates[1], T, &key, "rate_intra")?,
            local: packed_rate(p.rates[2], T, &key, "rate_local")?,
            min_seconds: int_col(p.min_seconds.into(), T, &key, "min_seconds")?,
            inc_seconds: int_col(p.inc_seconds.into(), T, &key, "inc_seconds")?,
            effective_from: p.effective_from,
            effective_until: p.effective_until,
        };
        let rate_key = match (prefix, prefix_s) {
            (Some(_), Some(p)) => RateKey::Prefix(p),
            (Some(_), None) => return Err(DbError::bad_row(T, key(), "prefix is not UTF-8")),
            (None, _) => RateKey::OcnLata {
                ocn: need(field_str(ocn), T, &key, "ocn")?,
                lata: need(field_str(lata), T, &key, "lata")?,
            },
        };
        b.vendor_rate(p.route_id, rate_key, row)
            .map_err(|e| DbError::bad_row(T, key(), e.to_string()))
    })
    .await
}

pub(super) async fn load_customer_rates(
    client: &Client,
    b: &mut SnapshotBuilder,
    bans: &FxHashMap<Id, String>,
) -> Result<u64, DbError> {
    const T: &str = "customer_rates";
    let sql = "SELECT customer_id, prefix, rate_inter, rate_intra, rate_local, effective_from, \
               effective_until FROM customer_rates WHERE effective_until > now()";
    copy_binary::<7>(&[(client, sql.to_string())], T, |f| {
        let [cid, prefix, inter, intra, local, from, until] = *f;
        let cid = field_i64(cid);
        let prefix = field_str(prefix);
        let key = || {
            let c = cid
                .and_then(|c| bans.get(&c).map(|b| format!("customer {b:?}")))
                .unwrap_or_else(|| format!("customer id {cid:?}"));
            format!("{c}, prefix {}", prefix.unwrap_or("?"))
        };
        let rate = CustomerRate {
            prefix: need(prefix, T, &key, "prefix")?.to_string(),
            inter: field_rate(inter, T, &key, "rate_inter")?,
            intra: field_rate(intra, T, &key, "rate_intra")?,
            local: field_rate(local, T, &key, "rate_local")?,
            effective_from: need(from.and_then(pg_timestamptz), T, &key, "effective_from")?,
            effective_until: need(until.and_then(pg_timestamptz), T, &key, "effective_until")?,
        };
        b.customer_rate(need(cid, T, &key, "customer_id")?, rate);
        Ok(())
    })
    .await
}

/// A timestamp for an error message (`-infinity`/`infinity` for the open ends).
fn show_time(t: i64) -> String {
    match t {
        i64::MIN => "-infinity".into(),
        i64::MAX => "infinity".into(),
        _ => chrono::DateTime::from_timestamp(t, 0)
            .map(|d| d.to_rfc3339())
            .unwrap_or_else(|| t.to_string()),
    }
}
