//! The snapshot loader: reads every routing table inside one `REPEATABLE READ READ ONLY`
//! transaction (one consistent view) into a `routing::SnapshotBuilder`, then compiles it.
//!
//! Owns: the SELECT/COPY statements over the routing schema and the conversion of rows to
//! `routing::model` values (money to [`Rate`] units, timestamps to unix seconds with ±infinity as
//! `i64::MIN`/`i64::MAX`, times of day to minutes, ISO weekdays to a bitmask, tz names to `Tz`).
//! Must not touch: routing policy, the engine, writes of any kind.
//!
//! Big tables (vendor_rates: tens of millions of rows; customer_rates and the numbering tables)
//! are streamed with `COPY (SELECT ...) TO STDOUT` in text format and parsed by hand, row by row,
//! straight into the builder: nothing collects a table into a `Vec` of rows first.

use std::borrow::Cow;
use std::time::Instant;

use chrono_tz::Tz;
use futures_util::{pin_mut, StreamExt};
use rustc_hash::FxHashMap;
use tokio_postgres::types::FromSql;
use tokio_postgres::{Client, Row};

use super::DbError;
use crate::numbering::mask;
use crate::routing::{
    BillingModel, Customer, CustomerPartition, CustomerRate, DestClass, Exclusion, Gateway, Id,
    MarginRule, NpaNxxInfo, Override, Partition, Rate, RateKey, RateRow, Route, RoutingSettings,
    Snapshot, SnapshotBuilder, TimeWindow, Transport, Vendor,
};

/// Rows between voluntary yields to the runtime while streaming (a few ms of parsing).
const YIELD_EVERY: u64 = 32 * 1024;

/// Reads the routing tables and compiles a snapshot. The compile step (CPU-heavy for big decks)
/// runs on the blocking pool. `built_at` of the snapshot is the wall clock when loading began.
///
/// The client must not be used by anyone else while this runs (it holds a transaction open).
pub async fn load_snapshot(
    client: &Client,
    settings: RoutingSettings,
) -> Result<Snapshot, DbError> {
    let built_at = unix_now();
    let started = Instant::now();
    let builder = load_builder(client, settings).await?;
    let loaded = started.elapsed();
    let snapshot = tokio::task::spawn_blocking(move || builder.build(built_at))
        .await
        .map_err(|e| DbError::Task(e.to_string()))??;
    let stats = snapshot.stats();
    tracing::info!(
        load_ms = loaded.as_millis() as u64,
        build_ms = (started.elapsed() - loaded).as_millis() as u64,
        rate_entries = stats.rate_entries,
        rate_keys = stats.rate_keys,
        routes = stats.routes,
        customers = stats.customers,
        "routing snapshot loaded"
    );
    for w in &stats.warnings {
        tracing::warn!(warning = %w, "routing snapshot warning");
    }
    Ok(snapshot)
}

/// Reads every routing table into a builder inside one REPEATABLE READ READ ONLY transaction,
/// without compiling it (see [`load_snapshot`]).
pub async fn load_builder(
    client: &Client,
    settings: RoutingSettings,
) -> Result<SnapshotBuilder, DbError> {
    client
        .batch_execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
        .await
        .map_err(DbError::query("starting the snapshot transaction"))?;
    let mut b = SnapshotBuilder::new(settings);
    match read_all(client, &mut b).await {
        Ok(()) => {
            client
                .batch_execute("COMMIT")
                .await
                .map_err(DbError::query("ending the snapshot transaction"))?;
            Ok(b)
        }
        Err(e) => {
            // best effort: a broken connection has no transaction left to roll back
            let _ = client.batch_execute("ROLLBACK").await;
            Err(e)
        }
    }
}

fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// SQL for a timestamptz column as unix seconds, with -infinity/infinity as i64::MIN/i64::MAX.
/// `date_part` (float8) is much cheaper than numeric `extract` and exact to the second here.
fn epoch(col: &str) -> String {
    format!(
        "CASE WHEN {col} = '-infinity' THEN '-9223372036854775808'::bigint \
              WHEN {col} = 'infinity' THEN '9223372036854775807'::bigint \
              ELSE floor(date_part('epoch', {col}))::bigint END"
    )
}

/// SQL for a money column (numeric dollars) as integer units of 1e-7.
fn scaled(col: &str) -> String {
    format!("round({col} * 10000000)::bigint")
}

/// SQL for a `time` column as minutes after midnight (24:00 gives 1440).
fn minutes(col: &str) -> String {
    format!("(extract(hour FROM {col}) * 60 + extract(minute FROM {col}))::integer")
}

async fn read_all(client: &Client, b: &mut SnapshotBuilder) -> Result<(), DbError> {
    let t = Instant::now();
    load_vendors(client, b).await?;
    load_gateways(client, b).await?;
    load_routes(client, b).await?;
    load_partitions(client, b).await?;
    let bans = load_customers(client, b).await?;
    load_overrides(client, b, &bans).await?;
    load_exclusions(client, b).await?;
    let small = t.elapsed();
    let t = Instant::now();
    let customer_rates = load_customer_rates(client, b).await?;
    let numbering = load_numbering(client, b).await?;
    let vendor_rates = load_vendor_rates(client, b).await?;
    tracing::debug!(
        small_tables_ms = small.as_millis() as u64,
        streamed_ms = t.elapsed().as_millis() as u64,
        vendor_rates,
        customer_rates,
        numbering,
        "routing tables read"
    );
    Ok(())
}

// ---- row helpers -----------------------------------------------------------------------------

fn col<'a, T: FromSql<'a>>(row: &'a Row, i: usize, table: &'static str) -> Result<T, DbError> {
    row.try_get(i)
        .map_err(DbError::query(format!("reading {table}")))
}

async fn select(client: &Client, table: &'static str, sql: &str) -> Result<Vec<Row>, DbError> {
    client
        .query(sql, &[])
        .await
        .map_err(DbError::query(format!("reading {table}")))
}

fn rate_col(
    v: Option<i64>,
    table: &'static str,
    key: &dyn Fn() -> String,
    what: &str,
) -> Result<Option<Rate>, DbError> {
    match v {
        None => Ok(None),
        Some(x) => Rate::from_scaled(x).map(Some).ok_or_else(|| {
            DbError::bad_row(
                table,
                key(),
                format!(
                    "{what} {} out of range 0..={}",
                    x as f64 / Rate::SCALE,
                    Rate::MAX
                ),
            )
        }),
    }
}

fn int_col<T: TryFrom<i64>>(
    v: i64,
    table: &'static str,
    key: &dyn Fn() -> String,
    what: &str,
) -> Result<T, DbError> {
    T::try_from(v).map_err(|_| DbError::bad_row(table, key(), format!("{what} {v} out of range")))
}

/// ISO weekdays (1 = Monday .. 7 = Sunday) to the model's bitmask (bit 0 = Monday).
fn day_mask(days: &[i16]) -> Result<u8, String> {
    let mut m = 0u8;
    for &d in days {
        if !(1..=7).contains(&d) {
            return Err(format!("weekday {d} out of range 1..=7 (ISO, 1 = Monday)"));
        }
        m |= 1 << (d - 1);
    }
    Ok(m)
}

/// A time window from its columns. No times and no days: no window (always open). Days without
/// times: whole days.
fn window(
    days: &[i16],
    start: Option<i32>,
    end: Option<i32>,
    tz: &str,
) -> Result<Option<TimeWindow>, String> {
    let tz: Tz = tz
        .parse()
        .map_err(|_| format!("unknown time zone {tz:?} (IANA names like America/New_York)"))?;
    let days = day_mask(days)?;
    let to_min = |m: i32| u16::try_from(m).ok().filter(|m| *m <= 1440);
    match (start, end) {
        (None, None) if days == 0 => Ok(None),
        (None, None) => Ok(Some(TimeWindow {
            days,
            start_min: 0,
            end_min: 0,
            tz,
        })),
        (Some(s), Some(e)) => match (to_min(s), to_min(e)) {
            (Some(start_min), Some(end_min)) => Ok(Some(TimeWindow {
                days,
                start_min,
                end_min,
                tz,
            })),
            _ => Err(format!("time of day out of range ({s}, {e} minutes)")),
        },
        _ => Err("start_time and end_time must both be set or both be NULL".into()),
    }
}

/// A prefix column that must be digits only (may be empty where the schema allows '').
fn digits_only(p: &str) -> bool {
    p.bytes().all(|b| b.is_ascii_digit())
}

// ---- small tables ----------------------------------------------------------------------------

async fn load_vendors(client: &Client, b: &mut SnapshotBuilder) -> Result<(), DbError> {
    const T: &str = "vendors";
    for row in select(
        client,
        T,
        "SELECT id, name, billing_model::text, dialstring, enabled FROM vendors ORDER BY id",
    )
    .await?
    {
        let id: Id = col(&row, 0, T)?;
        let name: String = col(&row, 1, T)?;
        let billing: String = col(&row, 2, T)?;
        let billing = BillingModel::parse(&billing).ok_or_else(|| {
            DbError::bad_row(
                T,
                format!("vendor {name:?}"),
                format!("unknown billing model {billing:?}"),
            )
        })?;
        b.vendor(Vendor {
            id,
            name,
            billing,
            dialstring: col(&row, 3, T)?,
            enabled: col(&row, 4, T)?,
        });
    }
    Ok(())
}

async fn load_gateways(client: &Client, b: &mut SnapshotBuilder) -> Result<(), DbError> {
    const T: &str = "gateways";
    let sql = "SELECT id, vendor_id, name, host, port, transport::text, priority, weight, enabled FROM gateways ORDER BY id";
    for row in select(client, T, sql).await? {
        let id: Id = col(&row, 0, T)?;
        let key = || format!("gateway id {id}");
        let transport: String = col(&row, 5, T)?;
        let transport = Transport::parse(&transport).ok_or_else(|| {
            DbError::bad_row(T, key(), format!("unknown transport {transport:?}"))
        })?;
        b.gateway(Gateway {
            id,
            vendor_id: col(&row, 1, T)?,
            name: col(&row, 2, T)?,
            host: col(&row, 3, T)?,
            port: int_col(col::<i32>(&row, 4, T)?.into(), T, &key, "port")?,
            transport,
            priority: col(&row, 6, T)?,
            weight: int_col(col::<i32>(&row, 7, T)?.into(), T, &key, "weight")?,
            enabled: col(&row, 8, T)?,
        });
    }
    Ok(())
}

async fn load_routes(client: &Client, b: &mut SnapshotBuilder) -> Result<(), DbError> {
    const T: &str = "routes";
    let sql =
        "SELECT id, name, vendor_id, priority, weight, capacity, enabled FROM routes ORDER BY id";
    for row in select(client, T, sql).await? {
        let id: Id = col(&row, 0, T)?;
        let name: String = col(&row, 1, T)?;
        let key = || format!("route {name:?}");
        let capacity = match col::<Option<i32>>(&row, 5, T)? {
            None => None,
            Some(c) => Some(int_col(c.into(), T, &key, "capacity")?),
        };
        let weight = int_col(col::<i32>(&row, 4, T)?.into(), T, &key, "weight")?;
        b.route(Route {
            id,
            vendor_id: col(&row, 2, T)?,
            priority: col(&row, 3, T)?,
            weight,
            capacity,
            enabled: col(&row, 6, T)?,
            name,
        });
    }
    Ok(())
}

async fn load_partitions(client: &Client, b: &mut SnapshotBuilder) -> Result<(), DbError> {
    const T: &str = "partitions";
    let sql = "SELECT p.id, p.name, \
                      coalesce(array_agg(pr.route_id ORDER BY pr.route_id) FILTER (WHERE pr.route_id IS NOT NULL), '{}') \
               FROM partitions p LEFT JOIN partition_routes pr ON pr.partition_id = p.id \
               GROUP BY p.id, p.name ORDER BY p.id";
    for row in select(client, T, sql).await? {
        b.partition(Partition {
            id: col(&row, 0, T)?,
            name: col(&row, 1, T)?,
            route_ids: col(&row, 2, T)?,
        });
    }
    Ok(())
}

/// Loads customers with their source CIDRs, partitions and margin rules; returns id → BAN for
/// naming customers in later errors.
async fn load_customers(
    client: &Client,
    b: &mut SnapshotBuilder,
) -> Result<FxHashMap<Id, String>, DbError> {
    const T: &str = "customers";
    let sql = format!(
        "SELECT id, ban, name, enabled, {}, blocked_prefixes, allowed_classes::text[], max_results, \
                allow_negative_margin, round(margin_percent * 10000)::bigint, {} \
         FROM customers ORDER BY id",
        scaled("max_rate"),
        scaled("fixed_fee")
    );
    let mut customers: Vec<Customer> = Vec::new();
    let mut ix: FxHashMap<Id, usize> = FxHashMap::default();
    for row in select(client, T, &sql).await? {
        let id: Id = col(&row, 0, T)?;
        let ban: String = col(&row, 1, T)?;
        let key = || format!("customer {ban:?}");
        let max_rate = rate_col(col(&row, 4, T)?, T, &key, "max_rate")?;
        let mut blocked: Vec<String> = col(&row, 5, T)?;
        for p in &mut blocked {
            let d = p.trim().trim_start_matches('+');
            if d.is_empty() || !digits_only(d) {
                return Err(DbError::bad_row(
                    T,
                    key(),
                    format!("blocked prefix {p:?} is not digits"),
                ));
            }
            *p = d.to_string();
        }
        let classes: Vec<String> = col(&row, 6, T)?;
        let allowed_classes = classes
            .iter()
            .map(|c| {
                DestClass::parse(c).ok_or_else(|| {
                    DbError::bad_row(T, key(), format!("unknown destination class {c:?}"))
                })
            })
            .collect::<Result<_, _>>()?;
        let max_results = int_col(col::<i32>(&row, 7, T)?.into(), T, &key, "max_results")?;
        let margin_ppm: Option<i64> = col(&row, 9, T)?;
        let fixed_fee =
            rate_col(Some(col(&row, 10, T)?), T, &key, "fixed_fee")?.unwrap_or_default();
        // No margin_percent and no fee: sell at cost. A fee alone is a 0% rule plus the fee.
        let margin = (margin_ppm.is_some() || fixed_fee.0 != 0).then(|| MarginRule {
            prefix: String::new(),
            margin_ppm: margin_ppm.unwrap_or(0),
            fixed_fee,
        });
        ix.insert(id, customers.len());
        customers.push(Customer {
            id,
            name: col(&row, 2, T)?,
            enabled: col(&row, 3, T)?,
            max_rate,
            blocked_prefixes: blocked,
            allowed_classes,
            max_results,
            allow_negative_margin: col(&row, 8, T)?,
            margin,
            margin_rules: vec![],
            partitions: vec![],
            source_cidrs: vec![],
            ban,
        });
    }

    const TS: &str = "customer_source_ips";
    for row in select(
        client,
        TS,
        "SELECT customer_id, cidr::text FROM customer_source_ips ORDER BY customer_id, cidr",
    )
    .await?
    {
        let cid: Id = col(&row, 0, TS)?;
        let cidr: String = col(&row, 1, TS)?;
        let c = customer_mut(&mut customers, &ix, cid, TS)?;
        let net = cidr
            .parse::<ipnet::IpNet>()
            .or_else(|_| cidr.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
            .map_err(|_| {
                DbError::bad_row(
                    TS,
                    format!("customer {:?}", c.ban),
                    format!("unparsable cidr {cidr:?}"),
                )
            })?;
        c.source_cidrs.push(net);
    }

    const TP: &str = "customer_partitions";
    let sql = format!(
        "SELECT customer_id, partition_id, priority, days, {}, {}, tz FROM customer_partitions \
         ORDER BY customer_id, priority, partition_id",
        minutes("start_time"),
        minutes("end_time")
    );
    for row in select(client, TP, &sql).await? {
        let cid: Id = col(&row, 0, TP)?;
        let partition_id: Id = col(&row, 1, TP)?;
        let days: Vec<i16> = col(&row, 3, TP)?;
        let tz: String = col(&row, 6, TP)?;
        let c = customer_mut(&mut customers, &ix, cid, TP)?;
        let w = window(&days, col(&row, 4, TP)?, col(&row, 5, TP)?, &tz).map_err(|why| {
            DbError::bad_row(
                TP,
                format!("customer {:?}, partition id {partition_id}", c.ban),
                why,
            )
        })?;
        c.partitions.push(CustomerPartition {
            partition_id,
            priority: col(&row, 2, TP)?,
            window: w,
        });
    }

    const TM: &str = "customer_margin_rules";
    let sql = format!(
        "SELECT customer_id, prefix, round(margin_percent * 10000)::bigint, {} FROM customer_margin_rules \
         ORDER BY customer_id, prefix",
        scaled("fixed_fee")
    );
    for row in select(client, TM, &sql).await? {
        let cid: Id = col(&row, 0, TM)?;
        let prefix: String = col(&row, 1, TM)?;
        let c = customer_mut(&mut customers, &ix, cid, TM)?;
        let key = || format!("customer {:?}, prefix {prefix:?}", c.ban);
        let fixed_fee =
            rate_col(Some(col(&row, 3, TM)?), TM, &key, "fixed_fee")?.unwrap_or_default();
        let rule = MarginRule {
            margin_ppm: col(&row, 2, TM)?,
            fixed_fee,
            prefix,
        };
        c.margin_rules.push(rule);
    }

    let bans = customers.iter().map(|c| (c.id, c.ban.clone())).collect();
    for c in customers {
        b.customer(c);
    }
    Ok(bans)
}

fn customer_mut<'a>(
    customers: &'a mut [Customer],
    ix: &FxHashMap<Id, usize>,
    id: Id,
    table: &'static str,
) -> Result<&'a mut Customer, DbError> {
    ix.get(&id)
        .and_then(|&i| customers.get_mut(i))
        .ok_or_else(|| DbError::bad_row(table, format!("customer id {id}"), "unknown customer"))
}

async fn load_overrides(
    client: &Client,
    b: &mut SnapshotBuilder,
    bans: &FxHashMap<Id, String>,
) -> Result<(), DbError> {
    const T: &str = "overrides";
    let sql = format!(
        "SELECT id, customer_id, prefix, route_id, {}, {}, {}, days, {}, {}, tz FROM overrides \
         WHERE valid_until > now() ORDER BY id",
        scaled("rate"),
        epoch("valid_from"),
        epoch("valid_until"),
        minutes("start_time"),
        minutes("end_time")
    );
    for row in select(client, T, &sql).await? {
        let id: Id = col(&row, 0, T)?;
        let customer_id: Option<Id> = col(&row, 1, T)?;
        let key = || match customer_id {
            None => format!("override {id} (all customers)"),
            Some(c) => match bans.get(&c) {
                Some(ban) => format!("override {id} (customer {ban:?})"),
                None => format!("override {id} (customer id {c})"),
            },
        };
        let prefix: String = col(&row, 2, T)?;
        if !digits_only(&prefix) {
            return Err(DbError::bad_row(
                T,
                key(),
                format!("prefix {prefix:?} is not digits"),
            ));
        }
        let days: Vec<i16> = col(&row, 7, T)?;
        let tz: String = col(&row, 10, T)?;
        let w = window(&days, col(&row, 8, T)?, col(&row, 9, T)?, &tz)
            .map_err(|why| DbError::bad_row(T, key(), why))?;
        b.override_rule(Override {
            id,
            customer_id,
            prefix,
            route_id: col(&row, 3, T)?,
            rate: rate_col(col(&row, 4, T)?, T, &key, "rate")?,
            valid_from: col(&row, 5, T)?,
            valid_until: col(&row, 6, T)?,
            window: w,
        });
    }
    Ok(())
}

async fn load_exclusions(client: &Client, b: &mut SnapshotBuilder) -> Result<(), DbError> {
    const T: &str = "exclusions";
    for row in select(
        client,
        T,
        "SELECT id, customer_id, prefix, vendor_id FROM exclusions ORDER BY id",
    )
    .await?
    {
        let id: Id = col(&row, 0, T)?;
        let prefix: String = col(&row, 2, T)?;
        if !digits_only(&prefix) {
            return Err(DbError::bad_row(
                T,
                format!("exclusion {id}"),
                format!("prefix {prefix:?} is not digits"),
            ));
        }
        b.exclusion(Exclusion {
            id,
            customer_id: col(&row, 1, T)?,
            prefix,
            vendor_id: col(&row, 3, T)?,
        });
    }
    Ok(())
}

// ---- streamed tables (COPY text format) ------------------------------------------------------

/// Streams `COPY (query) TO STDOUT` (text format) and calls `f` with each row's bytes (without
/// the newline). Returns the number of rows.
async fn copy_rows(
    client: &Client,
    table: &'static str,
    query: &str,
    mut f: impl FnMut(&[u8]) -> Result<(), DbError>,
) -> Result<u64, DbError> {
    let ctx = || format!("reading {table}");
    let stream = client
        .copy_out(&format!("COPY ({query}) TO STDOUT"))
        .await
        .map_err(DbError::query(ctx()))?;
    pin_mut!(stream);
    let mut n = 0u64;
    let mut next_yield = YIELD_EVERY;
    // The server sends one CopyData message per row; `carry` keeps this correct if that changes.
    let mut carry: Vec<u8> = Vec::new();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(DbError::query(ctx()))?;
        let mut data: &[u8] = &chunk;
        if !carry.is_empty() {
            carry.extend_from_slice(data);
            let Some(end) = carry.iter().rposition(|&b| b == b'\n') else {
                continue;
            };
            let rest = carry.split_off(end + 1);
            for line in carry[..end].split(|&b| b == b'\n') {
                f(line)?;
                n += 1;
            }
            carry = rest;
            data = &[];
        }
        if !data.is_empty() {
            let end = match data.iter().rposition(|&b| b == b'\n') {
                Some(end) => end,
                None => {
                    carry.extend_from_slice(data);
                    continue;
                }
            };
            for line in data[..end].split(|&b| b == b'\n') {
                f(line)?;
                n += 1;
            }
            carry.extend_from_slice(&data[end + 1..]);
        }
        if n >= next_yield {
            next_yield = n + YIELD_EVERY;
            // Parsing is CPU work on a runtime worker: let other tasks (dips) run regularly.
            tokio::task::yield_now().await;
        }
    }
    if !carry.is_empty() {
        return Err(DbError::bad_row(
            table,
            format!("row {}", n + 1),
            "COPY output ended mid-row",
        ));
    }
    Ok(n)
}

/// Splits a COPY text row into exactly `N` raw fields.
fn fields<const N: usize>(line: &[u8]) -> Option<[&[u8]; N]> {
    let mut out: [&[u8]; N] = [&[]; N];
    let mut it = line.split(|&b| b == b'\t');
    for slot in out.iter_mut() {
        *slot = it.next()?;
    }
    match it.next() {
        Some(_) => None,
        None => Some(out),
    }
}

/// `\N` is NULL in COPY text format.
fn nullable(f: &[u8]) -> Option<&[u8]> {
    if f == b"\\N" {
        None
    } else {
        Some(f)
    }
}

/// A decimal integer field (bigint/integer columns are never escaped).
fn int(f: &[u8]) -> Option<i64> {
    let (neg, d) = match f.split_first() {
        Some((b'-', rest)) => (true, rest),
        _ => (false, f),
    };
    if d.is_empty() || d.len() > 19 {
        return None;
    }
    let mut v: i64 = 0;
    for &c in d {
        let x = c.wrapping_sub(b'0');
        if x > 9 {
            return None;
        }
        v = v.checked_mul(10)?.checked_sub(x as i64)?;
    }
    // accumulated negatively so i64::MIN parses
    if neg {
        Some(v)
    } else {
        v.checked_neg()
    }
}

/// A text field, with COPY's backslash escapes decoded.
fn text(f: &[u8]) -> Option<Cow<'_, str>> {
    if !f.contains(&b'\\') {
        return std::str::from_utf8(f).ok().map(Cow::Borrowed);
    }
    let mut out = Vec::with_capacity(f.len());
    let mut i = 0;
    while i < f.len() {
        let c = f[i];
        i += 1;
        if c != b'\\' {
            out.push(c);
            continue;
        }
        let e = *f.get(i)?;
        i += 1;
        match e {
            b'b' => out.push(8),
            b'f' => out.push(12),
            b'n' => out.push(b'\n'),
            b'r' => out.push(b'\r'),
            b't' => out.push(b'\t'),
            b'v' => out.push(11),
            b'0'..=b'7' => {
                let mut v = (e - b'0') as u32;
                for _ in 0..2 {
                    match f.get(i) {
                        Some(&d @ b'0'..=b'7') => {
                            v = v * 8 + (d - b'0') as u32;
                            i += 1;
                        }
                        _ => break,
                    }
                }
                out.push(v as u8);
            }
            b'x' => {
                let mut v = 0u32;
                let mut seen = 0;
                while seen < 2 {
                    match f.get(i).and_then(|d| (*d as char).to_digit(16)) {
                        Some(d) => {
                            v = v * 16 + d;
                            i += 1;
                            seen += 1;
                        }
                        None => break,
                    }
                }
                if seen == 0 {
                    out.push(b'x');
                } else {
                    out.push(v as u8);
                }
            }
            other => out.push(other),
        }
    }
    String::from_utf8(out).ok().map(Cow::Owned)
}

fn req_text<'a>(
    f: &'a [u8],
    table: &'static str,
    key: &dyn Fn() -> String,
    what: &str,
) -> Result<Cow<'a, str>, DbError> {
    nullable(f)
        .and_then(text)
        .ok_or_else(|| DbError::bad_row(table, key(), format!("unreadable {what}")))
}

fn req_int(
    f: &[u8],
    table: &'static str,
    key: &dyn Fn() -> String,
    what: &str,
) -> Result<i64, DbError> {
    nullable(f)
        .and_then(int)
        .ok_or_else(|| DbError::bad_row(table, key(), format!("unreadable {what}")))
}

fn opt_rate(
    f: &[u8],
    table: &'static str,
    key: &dyn Fn() -> String,
    what: &str,
) -> Result<Option<Rate>, DbError> {
    match nullable(f) {
        None => Ok(None),
        Some(v) => {
            let v = int(v)
                .ok_or_else(|| DbError::bad_row(table, key(), format!("unreadable {what}")))?;
            rate_col(Some(v), table, key, what)
        }
    }
}

async fn load_vendor_rates(client: &Client, b: &mut SnapshotBuilder) -> Result<u64, DbError> {
    const T: &str = "vendor_rates";
    // Size hint from the planner statistics (cheap; -1 when never analyzed).
    if let Ok(row) = client
        .query_one(
            "SELECT reltuples::bigint FROM pg_class WHERE oid = 'vendor_rates'::regclass",
            &[],
        )
        .await
    {
        if let Ok(n) = row.try_get::<_, i64>(0) {
            b.reserve_rates(n.clamp(0, 200_000_000) as usize);
        }
    }
    // Money is converted to integer units in SQL (`scaled`): measured faster than parsing
    // numeric text here, and exact.
    let sc = scaled;
    let sql = format!(
        "SELECT id, route_id, prefix, ocn, lata, {}, {}, {}, min_seconds, inc_seconds, {}, {} \
         FROM vendor_rates WHERE effective_until > now()",
        sc("rate_inter"),
        sc("rate_intra"),
        sc("rate_local"),
        epoch("effective_from"),
        epoch("effective_until")
    );
    copy_rows(client, T, &sql, |line| {
        let Some([id, route_id, prefix, ocn, lata, inter, intra, local, min, inc, from, until]) =
            fields::<12>(line)
        else {
            return Err(DbError::bad_row(T, "?", "unexpected COPY row shape"));
        };
        let key = || format!("id {}", String::from_utf8_lossy(id));
        let route_id = req_int(route_id, T, &key, "route_id")?;
        let row = RateRow {
            inter: opt_rate(inter, T, &key, "rate_inter")?,
            intra: opt_rate(intra, T, &key, "rate_intra")?,
            local: opt_rate(local, T, &key, "rate_local")?,
            min_seconds: int_col(
                req_int(min, T, &key, "min_seconds")?,
                T,
                &key,
                "min_seconds",
            )?,
            inc_seconds: int_col(
                req_int(inc, T, &key, "inc_seconds")?,
                T,
                &key,
                "inc_seconds",
            )?,
            effective_from: req_int(from, T, &key, "effective_from")?,
            effective_until: req_int(until, T, &key, "effective_until")?,
        };
        let res = match nullable(prefix) {
            // prefixes are digits by CHECK: never escaped
            Some(p) => {
                let p = std::str::from_utf8(p)
                    .map_err(|_| DbError::bad_row(T, key(), "prefix is not text"))?;
                b.vendor_rate(route_id, RateKey::Prefix(p), row)
            }
            None => {
                let ocn = req_text(ocn, T, &key, "ocn")?;
                let lata = req_text(lata, T, &key, "lata")?;
                b.vendor_rate(
                    route_id,
                    RateKey::OcnLata {
                        ocn: &ocn,
                        lata: &lata,
                    },
                    row,
                )
            }
        };
        res.map_err(|e| DbError::bad_row(T, key(), e.to_string()))
    })
    .await
}

async fn load_customer_rates(client: &Client, b: &mut SnapshotBuilder) -> Result<u64, DbError> {
    const T: &str = "customer_rates";
    let sql = format!(
        "SELECT customer_id, prefix, {}, {}, {}, {}, {} FROM customer_rates WHERE effective_until > now()",
        scaled("rate_inter"),
        scaled("rate_intra"),
        scaled("rate_local"),
        epoch("effective_from"),
        epoch("effective_until")
    );
    copy_rows(client, T, &sql, |line| {
        let Some([cid, prefix, inter, intra, local, from, until]) = fields::<7>(line) else {
            return Err(DbError::bad_row(T, "?", "unexpected COPY row shape"));
        };
        let key = || {
            format!(
                "customer id {}, prefix {:?}",
                String::from_utf8_lossy(cid),
                String::from_utf8_lossy(prefix)
            )
        };
        let customer_id = req_int(cid, T, &key, "customer_id")?;
        let rate = CustomerRate {
            prefix: req_text(prefix, T, &key, "prefix")?.into_owned(),
            inter: opt_rate(inter, T, &key, "rate_inter")?,
            intra: opt_rate(intra, T, &key, "rate_intra")?,
            local: opt_rate(local, T, &key, "rate_local")?,
            effective_from: req_int(from, T, &key, "effective_from")?,
            effective_until: req_int(until, T, &key, "effective_until")?,
        };
        b.customer_rate(customer_id, rate);
        Ok(())
    })
    .await
}

/// npanxx, local_calling, lnp, dno. Returns the total rows.
async fn load_numbering(client: &Client, b: &mut SnapshotBuilder) -> Result<u64, DbError> {
    let mut total = 0;
    total += copy_rows(
        client,
        "npanxx",
        "SELECT npanxx, state, lata, ocn, rate_center FROM npanxx",
        |line| {
            const T: &str = "npanxx";
            let Some([npanxx, state, lata, ocn, rc]) = fields::<5>(line) else {
                return Err(DbError::bad_row(T, "?", "unexpected COPY row shape"));
            };
            let key = || String::from_utf8_lossy(npanxx).into_owned();
            let npanxx = req_text(npanxx, T, &key, "npanxx")?;
            let info = NpaNxxInfo {
                state: req_text(state, T, &key, "state")?.into_owned(),
                lata: req_text(lata, T, &key, "lata")?.into_owned(),
                ocn: req_text(ocn, T, &key, "ocn")?.into_owned(),
                rate_center: req_text(rc, T, &key, "rate_center")?.into_owned(),
            };
            b.npanxx(&npanxx, info)
                .map_err(|e| DbError::bad_row(T, key(), e.to_string()))
        },
    )
    .await?;
    total += copy_rows(
        client,
        "local_calling",
        "SELECT a_npanxx, b_npanxx FROM local_calling",
        |line| {
            const T: &str = "local_calling";
            let Some([a, bb]) = fields::<2>(line) else {
                return Err(DbError::bad_row(T, "?", "unexpected COPY row shape"));
            };
            let key = || {
                format!(
                    "{} / {}",
                    String::from_utf8_lossy(a),
                    String::from_utf8_lossy(bb)
                )
            };
            let a = req_text(a, T, &key, "a_npanxx")?;
            let bb = req_text(bb, T, &key, "b_npanxx")?;
            b.local_calling(&a, &bb)
                .map_err(|e| DbError::bad_row(T, key(), e.to_string()))
        },
    )
    .await?;
    total += copy_rows(client, "lnp", "SELECT tn, lrn FROM lnp", |line| {
        const T: &str = "lnp";
        let Some([tn, lrn]) = fields::<2>(line) else {
            return Err(DbError::bad_row(T, "?", "unexpected COPY row shape"));
        };
        // phone numbers: only masked in errors
        let key = || format!("tn {}", mask(&String::from_utf8_lossy(tn)));
        let tn = req_text(tn, T, &key, "tn")?;
        let lrn = req_text(lrn, T, &key, "lrn")?;
        b.lnp(&tn, &lrn).map_err(|_| {
            DbError::bad_row(
                T,
                key(),
                format!("invalid 10-digit TN or LRN (lrn {})", mask(&lrn)),
            )
        })
    })
    .await?;
    total += copy_rows(client, "dno", "SELECT number FROM dno", |line| {
        const T: &str = "dno";
        let Some([number]) = fields::<1>(line) else {
            return Err(DbError::bad_row(T, "?", "unexpected COPY row shape"));
        };
        let key = || format!("number {}", mask(&String::from_utf8_lossy(number)));
        let number = req_text(number, T, &key, "number")?;
        // the column holds E.164 digits without '+': say so, or 12+ digit international
        // numbers would not normalize
        b.dno(&format!("+{number}"))
            .map_err(|_| DbError::bad_row(T, key(), "not a valid E.164 number (7 to 15 digits)"))
    })
    .await?;
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ints_parse_including_extremes() {
        assert_eq!(int(b"0"), Some(0));
        assert_eq!(int(b"45000"), Some(45_000));
        assert_eq!(int(b"-12"), Some(-12));
        assert_eq!(int(b"-9223372036854775808"), Some(i64::MIN));
        assert_eq!(int(b"9223372036854775807"), Some(i64::MAX));
        assert_eq!(int(b"9223372036854775808"), None);
        assert_eq!(int(b""), None);
        assert_eq!(int(b"-"), None);
        assert_eq!(int(b"1.5"), None);
    }

    #[test]
    fn copy_text_escapes_decode() {
        assert_eq!(text(b"plain").as_deref(), Some("plain"));
        assert_eq!(text(b"a\\tb\\\\c\\nd").as_deref(), Some("a\tb\\c\nd"));
        assert_eq!(text(b"\\101\\x42").as_deref(), Some("AB"));
        assert_eq!(text(b"caf\xc3\xa9").as_deref(), Some("café"));
        assert_eq!(text(b"bad\\"), None);
    }

    #[test]
    fn fields_split_exactly() {
        assert_eq!(fields::<3>(b"1\t\\N\tx"), Some([&b"1"[..], b"\\N", b"x"]));
        assert_eq!(fields::<2>(b"1\t2\t3"), None);
        assert_eq!(fields::<3>(b"1\t2"), None);
        assert_eq!(nullable(b"\\N"), None);
        assert_eq!(nullable(b"N"), Some(&b"N"[..]));
    }

    #[test]
    fn windows_from_columns() {
        assert_eq!(window(&[], None, None, "UTC"), Ok(None));
        let w = window(&[1, 5, 7], Some(9 * 60), Some(17 * 60), "America/New_York")
            .unwrap()
            .unwrap();
        assert_eq!(w.days, 0b101_0001);
        assert_eq!((w.start_min, w.end_min), (540, 1020));
        assert_eq!(w.tz, chrono_tz::America::New_York);
        let whole = window(&[6, 7], None, None, "UTC").unwrap().unwrap();
        assert_eq!(
            (whole.days, whole.start_min, whole.end_min),
            (0b110_0000, 0, 0)
        );
        assert!(window(&[], Some(0), Some(60), "Mars/Olympus")
            .unwrap_err()
            .contains("Mars/Olympus"));
        assert!(window(&[0], None, None, "UTC")
            .unwrap_err()
            .contains("weekday 0"));
        assert!(window(&[], Some(0), None, "UTC").is_err());
    }
}
