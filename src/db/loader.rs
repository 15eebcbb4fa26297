//! The snapshot loader: reads every routing table inside one `REPEATABLE READ READ ONLY`
//! transaction (one consistent view) into a `routing::SnapshotBuilder`, then compiles it.
//!
//! Owns: the SELECT/COPY statements over the routing schema and the conversion of rows to
//! `routing::model` values (money to [`Rate`] units, timestamps to unix seconds with ±infinity as
//! `i64::MIN`/`i64::MAX`, times of day to minutes, ISO weekdays to a bitmask, tz names to `Tz`).
//! Must not touch: routing policy, the engine, writes of any kind.
//!
//! Big tables (vendor_rates: tens of millions of rows; customer_rates and the numbering tables)
//! are streamed with `COPY (SELECT ...) TO STDOUT (FORMAT binary)` and parsed by hand, row by row,
//! straight into the builder: nothing collects a table into a `Vec` of rows first. Binary COPY
//! spares the server the text formatting of numerics and timestamps, which is where a single
//! backend spends most of its time on a big deck. vendor_rates can also be split by page ranges
//! over helper connections that share the main transaction's snapshot (`pg_export_snapshot`),
//! like `pg_dump -j`: on a big deck the server side, not the parsing here, is the bottleneck.

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Instant;

use chrono_tz::Tz;
use futures_util::Stream;
use rustc_hash::FxHashMap;
use tokio_postgres::types::FromSql;
use tokio_postgres::{Client, CopyOutStream, Row};

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
    load_snapshot_parallel(client, &[], settings).await
}

/// Like [`load_snapshot`], with `helpers` (other idle connections to the same database) each
/// streaming a share of vendor_rates inside the same database snapshot.
pub async fn load_snapshot_parallel(
    client: &Client,
    helpers: &[Client],
    settings: RoutingSettings,
) -> Result<Snapshot, DbError> {
    let built_at = unix_now();
    let started = Instant::now();
    let builder = load_builder(client, helpers, settings).await?;
    let loaded = started.elapsed();
    let snapshot = tokio::task::spawn_blocking(move || builder.build(built_at))
        .await
        .map_err(|e| DbError::Task(e.to_string()))??;
    let stats = snapshot.stats();
    tracing::info!(
        load_ms = loaded.as_millis() as u64,
        build_ms = (started.elapsed() - loaded).as_millis() as u64,
        streams = 1 + helpers.len(),
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

/// Reads every routing table into a builder inside one REPEATABLE READ READ ONLY transaction
/// (shared with `helpers` through an exported snapshot), without compiling it.
pub async fn load_builder(
    client: &Client,
    helpers: &[Client],
    settings: RoutingSettings,
) -> Result<SnapshotBuilder, DbError> {
    client
        .batch_execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
        .await
        .map_err(DbError::query("starting the snapshot transaction"))?;
    let mut b = SnapshotBuilder::new(settings);
    let mut joined = 0;
    let res = async {
        if !helpers.is_empty() {
            let id: String = client
                .query_one("SELECT pg_export_snapshot()", &[])
                .await
                .and_then(|r| r.try_get(0))
                .map_err(DbError::query("exporting the snapshot"))?;
            let sql = format!(
                "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY; SET TRANSACTION SNAPSHOT '{}'",
                id.replace('\'', "''")
            );
            for h in helpers {
                joined += 1;
                h.batch_execute(&sql).await.map_err(DbError::query(
                    "importing the snapshot on a helper connection",
                ))?;
            }
        }
        read_all(client, helpers, &mut b).await
    }
    .await;
    match res {
        Ok(()) => {
            for h in helpers {
                h.batch_execute("COMMIT")
                    .await
                    .map_err(DbError::query("ending a helper transaction"))?;
            }
            client
                .batch_execute("COMMIT")
                .await
                .map_err(DbError::query("ending the snapshot transaction"))?;
            Ok(b)
        }
        Err(e) => {
            // best effort: a broken connection has no transaction left to roll back
            for h in helpers.iter().take(joined) {
                let _ = h.batch_execute("ROLLBACK").await;
            }
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

async fn read_all(
    client: &Client,
    helpers: &[Client],
    b: &mut SnapshotBuilder,
) -> Result<(), DbError> {
    let t = Instant::now();
    load_vendors(client, b).await?;
    load_gateways(client, b).await?;
    let routes = load_routes(client, b).await?;
    load_partitions(client, b).await?;
    let bans = load_customers(client, b).await?;
    load_overrides(client, b, &bans).await?;
    load_exclusions(client, b).await?;
    let small = t.elapsed();
    let t = Instant::now();
    let customer_rates = load_customer_rates(client, b, &bans).await?;
    let numbering = load_numbering(client, b).await?;
    let vendor_rates = load_vendor_rates(client, helpers, b, &routes).await?;
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

/// Loads routes; returns id → name for naming routes in later errors.
async fn load_routes(
    client: &Client,
    b: &mut SnapshotBuilder,
) -> Result<FxHashMap<Id, String>, DbError> {
    const T: &str = "routes";
    let mut names = FxHashMap::default();
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
        names.insert(id, name.clone());
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
    Ok(names)
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

// ---- streamed tables (binary COPY) ----------------------------------------------------------

const PGCOPY_SIGNATURE: &[u8] = b"PGCOPY\n\xff\r\n\0";

/// Incremental parser of `COPY ... TO STDOUT (FORMAT binary)` output: a header, then tuples of
/// `N` fields (i16 field count; per field an i32 length, -1 for NULL, then the bytes), then a
/// trailer (field count -1).
struct BinaryCopy<const N: usize> {
    table: &'static str,
    header_done: bool,
    trailer_seen: bool,
    rows: u64,
}

impl<const N: usize> BinaryCopy<N> {
    fn new(table: &'static str) -> Self {
        BinaryCopy {
            table,
            header_done: false,
            trailer_seen: false,
            rows: 0,
        }
    }

    fn format_error(&self, why: &str) -> DbError {
        DbError::bad_row(
            self.table,
            format!("row {} of the stream", self.rows + 1),
            format!("binary COPY: {why}"),
        )
    }

    /// Parses every complete tuple at the start of `buf`, calling `f` for each; returns the
    /// number of bytes consumed (the rest is an incomplete tuple).
    fn parse(
        &mut self,
        buf: &[u8],
        f: &mut impl FnMut(&[Option<&[u8]>; N]) -> Result<(), DbError>,
    ) -> Result<usize, DbError> {
        let mut at = 0usize;
        if !self.header_done {
            let fixed = PGCOPY_SIGNATURE.len() + 8;
            let Some(h) = buf.get(..fixed) else {
                return Ok(0);
            };
            if !h.starts_with(PGCOPY_SIGNATURE) {
                return Err(self.format_error("bad signature"));
            }
            let ext = be_u32(&h[fixed - 4..]) as usize;
            if buf.len() < fixed + ext {
                return Ok(0);
            }
            at = fixed + ext;
            self.header_done = true;
        }
        let mut fields: [Option<&[u8]>; N] = [None; N];
        while !self.trailer_seen {
            let Some(count) = buf.get(at..at + 2) else {
                break;
            };
            let count = i16::from_be_bytes([count[0], count[1]]);
            if count == -1 {
                self.trailer_seen = true;
                at += 2;
                break;
            }
            if count as usize != N {
                return Err(self.format_error(&format!("{count} fields, expected {N}")));
            }
            let mut p = at + 2;
            let mut complete = true;
            for slot in fields.iter_mut() {
                let Some(len) = buf.get(p..p + 4) else {
                    complete = false;
                    break;
                };
                let len = i32::from_be_bytes([len[0], len[1], len[2], len[3]]);
                p += 4;
                if len < 0 {
                    *slot = None;
                    continue;
                }
                let Some(v) = buf.get(p..p + len as usize) else {
                    complete = false;
                    break;
                };
                *slot = Some(v);
                p += len as usize;
            }
            if !complete {
                break;
            }
            f(&fields)?;
            self.rows += 1;
            at = p;
        }
        Ok(at)
    }
}

fn be_u32(b: &[u8]) -> u32 {
    b.iter().take(4).fold(0u32, |a, &x| (a << 8) | x as u32)
}

fn be_i64(b: &[u8]) -> Option<i64> {
    Some(i64::from_be_bytes(b.try_into().ok()?))
}

/// Unix seconds (floored) from a binary timestamptz: microseconds since 2000-01-01 UTC, with
/// -infinity / infinity stored as i64::MIN / i64::MAX, which is also what the model uses.
fn pg_timestamptz(b: &[u8]) -> Option<i64> {
    const PG_EPOCH_UNIX: i64 = 946_684_800;
    let us = be_i64(b)?;
    Some(match us {
        i64::MIN | i64::MAX => us,
        _ => us.div_euclid(1_000_000) + PG_EPOCH_UNIX,
    })
}

/// A binary `numeric` in units of 1e-7, rounded half away from zero like SQL `round(x * 1e7)`.
/// None for NaN, ±Infinity, malformed input or values beyond i64.
///
/// Layout: ndigits u16, weight i16, sign u16, dscale u16, then ndigits base-10000 digits;
/// value = Σ digit[i] × 10000^(weight − i).
fn pg_numeric_scaled(b: &[u8]) -> Option<i64> {
    /// 10^k for k = 0..=19 (the largest power of ten in a u64)
    const POW10: [u64; 20] = {
        let mut t = [1u64; 20];
        let mut k = 1;
        while k < 20 {
            t[k] = t[k - 1] * 10;
            k += 1;
        }
        t
    };
    let h = |i: usize| b.get(i..i + 2).map(|x| u16::from_be_bytes([x[0], x[1]]));
    let ndigits = h(0)? as usize;
    let weight = h(2)? as i16 as i32;
    let negative = match h(4)? {
        0x0000 => false,
        0x4000 => true,
        _ => return None, // NaN, +Infinity, -Infinity
    };
    if b.len() != 8 + 2 * ndigits {
        return None;
    }
    // Accumulate value × 10^8 exactly (the 10^-8 digit decides the rounding; anything smaller
    // cannot change a half-up rounding at 10^-7), then round to 10^-7. u64 holds up to ~1.8e11
    // dollars here, far beyond numeric(12,7).
    let mut acc: u64 = 0;
    for i in 0..ndigits {
        let d = h(8 + 2 * i)? as u64;
        if d > 9999 {
            return None;
        }
        let exp = 4 * (weight - i as i32) + 8;
        if exp >= 0 {
            let m = *POW10.get(exp as usize)?;
            acc = acc.checked_add(d.checked_mul(m)?)?;
        } else if exp > -4 {
            acc += d / POW10[exp.unsigned_abs() as usize];
        }
    }
    let v = i64::try_from(acc / 10 + u64::from(acc % 10 >= 5)).ok()?;
    Some(if negative { -v } else { v })
}

/// Round-robin merge of COPY streams, tagging chunks with their stream's index. (Cheaper per
/// chunk than `select_all`, which re-queues a boxed task for every item.)
struct Merge {
    streams: Vec<Pin<Box<CopyOutStream>>>,
    done: Vec<bool>,
    next: usize,
}

impl Merge {
    fn new(streams: Vec<CopyOutStream>) -> Self {
        let done = vec![false; streams.len()];
        Merge {
            streams: streams.into_iter().map(Box::pin).collect(),
            done,
            next: 0,
        }
    }

    fn poll_next(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<Option<(usize, Result<bytes::Bytes, tokio_postgres::Error>)>> {
        let n = self.streams.len();
        let mut live = false;
        for k in 0..n {
            let i = (self.next + k) % n;
            if self.done[i] {
                continue;
            }
            match self.streams[i].as_mut().poll_next(cx) {
                Poll::Ready(Some(item)) => {
                    self.next = (i + 1) % n;
                    return Poll::Ready(Some((i, item)));
                }
                Poll::Ready(None) => self.done[i] = true,
                Poll::Pending => live = true,
            }
        }
        if live {
            Poll::Pending
        } else {
            Poll::Ready(None)
        }
    }

    async fn next(&mut self) -> Option<(usize, Result<bytes::Bytes, tokio_postgres::Error>)> {
        std::future::poll_fn(|cx| self.poll_next(cx)).await
    }
}

/// `COPY (query) TO STDOUT (FORMAT binary)` on each (client, query), streamed concurrently;
/// `f` gets every row's `N` fields as they arrive (rows of different sources interleave).
async fn copy_binary<const N: usize>(
    sources: &[(&Client, String)],
    table: &'static str,
    mut f: impl FnMut(&[Option<&[u8]>; N]) -> Result<(), DbError>,
) -> Result<u64, DbError> {
    let ctx = || format!("reading {table}");
    let streams = futures_util::future::try_join_all(sources.iter().map(|(c, q)| {
        let sql = format!("COPY ({q}) TO STDOUT (FORMAT binary)");
        async move { c.copy_out(sql.as_str()).await }
    }))
    .await
    .map_err(DbError::query(ctx()))?;
    let mut merged = Merge::new(streams);
    let mut parsers: Vec<(BinaryCopy<N>, Vec<u8>)> = sources
        .iter()
        .map(|_| (BinaryCopy::new(table), Vec::new()))
        .collect();
    let mut rows = 0u64;
    let mut next_yield = YIELD_EVERY;
    while let Some((i, chunk)) = merged.next().await {
        let chunk = chunk.map_err(|e| DbError::query(ctx())(e))?;
        let Some((parser, carry)) = parsers.get_mut(i) else {
            continue;
        };
        let before = parser.rows;
        if carry.is_empty() {
            // the usual case: a CopyData message holds whole tuples
            let used = parser.parse(&chunk, &mut f)?;
            carry.extend_from_slice(&chunk[used..]);
        } else {
            carry.extend_from_slice(&chunk);
            let used = parser.parse(carry, &mut f)?;
            carry.drain(..used);
        }
        rows += parser.rows - before;
        if rows >= next_yield {
            next_yield = rows + YIELD_EVERY;
            // parsing is CPU work on a runtime worker: let other tasks (dips) run regularly
            tokio::task::yield_now().await;
        }
    }
    for (parser, carry) in &parsers {
        if !parser.trailer_seen || !carry.is_empty() {
            return Err(parser.format_error("output ended mid-row"));
        }
    }
    Ok(rows)
}

fn field_i64(f: Option<&[u8]>) -> Option<i64> {
    f.and_then(be_i64)
}

fn field_str(f: Option<&[u8]>) -> Option<&str> {
    f.and_then(|v| std::str::from_utf8(v).ok())
}

/// A required field, or a bad-row error naming `what`.
fn need<T>(
    v: Option<T>,
    table: &'static str,
    key: &dyn Fn() -> String,
    what: &str,
) -> Result<T, DbError> {
    v.ok_or_else(|| DbError::bad_row(table, key(), format!("missing or unreadable {what}")))
}

fn field_rate(
    f: Option<&[u8]>,
    table: &'static str,
    key: &dyn Fn() -> String,
    what: &str,
) -> Result<Option<Rate>, DbError> {
    match f {
        None => Ok(None),
        Some(v) => {
            let scaled = need(pg_numeric_scaled(v), table, key, what)?;
            rate_col(Some(scaled), table, key, what)
        }
    }
}

fn show_time(t: i64) -> String {
    match t {
        i64::MIN => "-infinity".into(),
        i64::MAX => "infinity".into(),
        _ => chrono::DateTime::from_timestamp(t, 0)
            .map(|d| d.to_rfc3339())
            .unwrap_or_else(|| t.to_string()),
    }
}

async fn load_vendor_rates(
    client: &Client,
    helpers: &[Client],
    b: &mut SnapshotBuilder,
    routes: &FxHashMap<Id, String>,
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
    b.reserve_rates(tuples.clamp(0, 200_000_000) as usize);

    // Each non-NULL output value costs the server about as much as the scan itself (a send
    // function and a buffer per value; a NULL is a 4-byte length): min/inc travel packed in one
    // bigint, `id` is not sent (rows are named by route, key and start), and the three columns
    // that usually hold their defaults travel as NULL when they do (these columns are NOT NULL,
    // so NULL means "the default"). Measured on 20M rows: 9.0 s of server CPU instead of 12.0 s.
    let base = "SELECT route_id, prefix, ocn, lata, rate_inter, rate_intra, rate_local, \
                NULLIF((min_seconds::bigint << 32) | inc_seconds::bigint, (6::bigint << 32) | 6), \
                NULLIF(effective_from, '-infinity'), NULLIF(effective_until, 'infinity') \
                FROM vendor_rates WHERE effective_until > now()";
    let mut sources: Vec<(&Client, String)> = vec![(client, base.to_string())];
    if !helpers.is_empty() {
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
    copy_binary::<10>(&sources, T, |f| {
        let [route_id, prefix, ocn, lata, inter, intra, local, terms, from, until] = *f;
        let route_id = field_i64(route_id);
        let prefix_s = field_str(prefix);
        // NULL = the column's default (see the query)
        let from = match from {
            None => Some(i64::MIN),
            Some(b) => pg_timestamptz(b),
        };
        let key = || {
            let route = route_id
                .and_then(|r| routes.get(&r).map(|n| format!("route {n:?}")))
                .unwrap_or_else(|| format!("route id {route_id:?}"));
            let k = match prefix_s {
                Some(p) => format!("prefix {p}"),
                None => format!(
                    "ocn {:?} lata {:?}",
                    field_str(ocn).unwrap_or("?"),
                    field_str(lata).unwrap_or("?")
                ),
            };
            let start = from.map(show_time).unwrap_or_default();
            format!("{route}, {k}, effective_from {start}")
        };
        let route_id = need(route_id, T, &key, "route_id")?;
        let terms = match terms {
            None => (6 << 32) | 6,
            Some(_) => need(field_i64(terms), T, &key, "min_seconds/inc_seconds")?,
        };
        let row = RateRow {
            inter: field_rate(inter, T, &key, "rate_inter")?,
            intra: field_rate(intra, T, &key, "rate_intra")?,
            local: field_rate(local, T, &key, "rate_local")?,
            min_seconds: int_col(terms >> 32, T, &key, "min_seconds")?,
            inc_seconds: int_col(terms & 0xffff_ffff, T, &key, "inc_seconds")?,
            effective_from: need(from, T, &key, "effective_from")?,
            effective_until: match until {
                None => i64::MAX,
                Some(b) => need(pg_timestamptz(b), T, &key, "effective_until")?,
            },
        };
        let rate_key = match (prefix, prefix_s) {
            (Some(_), Some(p)) => RateKey::Prefix(p),
            (Some(_), None) => return Err(DbError::bad_row(T, key(), "prefix is not UTF-8")),
            (None, _) => RateKey::OcnLata {
                ocn: need(field_str(ocn), T, &key, "ocn")?,
                lata: need(field_str(lata), T, &key, "lata")?,
            },
        };
        b.vendor_rate(route_id, rate_key, row)
            .map_err(|e| DbError::bad_row(T, key(), e.to_string()))
    })
    .await
}

async fn load_customer_rates(
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

/// npanxx, local_calling, lnp, dno. Returns the total rows.
async fn load_numbering(client: &Client, b: &mut SnapshotBuilder) -> Result<u64, DbError> {
    let one = |sql: &str| [(client, sql.to_string())];
    let mut total = 0;
    const TN: &str = "npanxx";
    total += copy_binary::<5>(
        &one("SELECT npanxx, state, lata, ocn, rate_center FROM npanxx"),
        TN,
        |f| {
            let [npanxx, state, lata, ocn, rc] = f.map(field_str);
            let key = || npanxx.unwrap_or("?").to_string();
            let info = NpaNxxInfo {
                state: need(state, TN, &key, "state")?.to_string(),
                lata: need(lata, TN, &key, "lata")?.to_string(),
                ocn: need(ocn, TN, &key, "ocn")?.to_string(),
                rate_center: need(rc, TN, &key, "rate_center")?.to_string(),
            };
            b.npanxx(need(npanxx, TN, &key, "npanxx")?, info)
                .map_err(|e| DbError::bad_row(TN, key(), e.to_string()))
        },
    )
    .await?;
    const TL: &str = "local_calling";
    total += copy_binary::<2>(
        &one("SELECT a_npanxx, b_npanxx FROM local_calling"),
        TL,
        |f| {
            let [a, bb] = f.map(field_str);
            let key = || format!("{} / {}", a.unwrap_or("?"), bb.unwrap_or("?"));
            b.local_calling(
                need(a, TL, &key, "a_npanxx")?,
                need(bb, TL, &key, "b_npanxx")?,
            )
            .map_err(|e| DbError::bad_row(TL, key(), e.to_string()))
        },
    )
    .await?;
    const TP: &str = "lnp";
    total += copy_binary::<2>(&one("SELECT tn, lrn FROM lnp"), TP, |f| {
        let [tn, lrn] = f.map(field_str);
        // phone numbers: only ever masked in errors
        let key = || format!("tn {}", mask(tn.unwrap_or("?")));
        let lrn = need(lrn, TP, &key, "lrn")?;
        b.lnp(need(tn, TP, &key, "tn")?, lrn).map_err(|_| {
            DbError::bad_row(
                TP,
                key(),
                format!("invalid 10-digit TN or LRN (lrn {})", mask(lrn)),
            )
        })
    })
    .await?;
    const TD: &str = "dno";
    total += copy_binary::<1>(&one("SELECT number FROM dno"), TD, |f| {
        let [number] = f.map(field_str);
        let key = || format!("number {}", mask(number.unwrap_or("?")));
        // The column holds E.164 digits without '+': say so, or international numbers (12+
        // digits, or 11 not starting with 1) would not normalize.
        b.dno(&format!("+{}", need(number, TD, &key, "number")?))
            .map_err(|_| DbError::bad_row(TD, key(), "not a valid E.164 number (7 to 15 digits)"))
    })
    .await?;
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn be_i32(b: &[u8]) -> Option<i32> {
        Some(i32::from_be_bytes(b.try_into().ok()?))
    }

    /// Binary numeric from (weight, sign, base-10000 digits).
    fn numeric(weight: i16, sign: u16, digits: &[u16]) -> Vec<u8> {
        let mut v = Vec::new();
        v.extend((digits.len() as u16).to_be_bytes());
        v.extend(weight.to_be_bytes());
        v.extend(sign.to_be_bytes());
        v.extend(7u16.to_be_bytes());
        for d in digits {
            v.extend(d.to_be_bytes());
        }
        v
    }

    #[test]
    fn binary_numerics_scale_exactly() {
        // 0.0045 = 45 x 10000^-1
        assert_eq!(pg_numeric_scaled(&numeric(-1, 0, &[45])), Some(45_000));
        // 0 has no digits
        assert_eq!(pg_numeric_scaled(&numeric(0, 0, &[])), Some(0));
        // 0.0000001 = 0.0000|0010 = 10 x 10000^-2; 0.00001 = 1000 x 10000^-2
        assert_eq!(pg_numeric_scaled(&numeric(-2, 0, &[10])), Some(1));
        assert_eq!(pg_numeric_scaled(&numeric(-2, 0, &[1000])), Some(100));
        // 12345.6789012 = 1|2345|.6789|0120
        assert_eq!(
            pg_numeric_scaled(&numeric(1, 0, &[1, 2345, 6789, 120])),
            Some(123_456_789_012)
        );
        // 429.4967294 (Rate::MAX)
        assert_eq!(
            pg_numeric_scaled(&numeric(0, 0, &[429, 4967, 2940])),
            Some(Rate::MAX.0 as i64)
        );
        // half-up at 1e-7 like round(): 0.00000005 -> 1, 0.00000004 -> 0; negative symmetric
        assert_eq!(pg_numeric_scaled(&numeric(-2, 0, &[5])), Some(1));
        assert_eq!(pg_numeric_scaled(&numeric(-2, 0, &[4])), Some(0));
        // digits below 1e-8 are ignored: 0.000000049999 -> 0
        assert_eq!(pg_numeric_scaled(&numeric(-2, 0, &[4, 9999])), Some(0));
        assert_eq!(
            pg_numeric_scaled(&numeric(-1, 0x4000, &[45])),
            Some(-45_000)
        );
        // 1e4 = 1 x 10000^1
        assert_eq!(
            pg_numeric_scaled(&numeric(1, 0, &[1])),
            Some(100_000_000_000)
        );
        // NaN, infinities, garbage, overflow
        assert_eq!(pg_numeric_scaled(&numeric(0, 0xC000, &[])), None);
        assert_eq!(pg_numeric_scaled(&numeric(0, 0xD000, &[])), None);
        assert_eq!(pg_numeric_scaled(&numeric(0, 0, &[10000])), None);
        assert_eq!(pg_numeric_scaled(&numeric(9, 0, &[1])), None);
        assert_eq!(pg_numeric_scaled(&[0, 1, 0, 0]), None);
    }

    #[test]
    fn binary_timestamps_map_to_unix_seconds() {
        let ts = |us: i64| pg_timestamptz(&us.to_be_bytes());
        assert_eq!(ts(0), Some(946_684_800));
        assert_eq!(ts(1_500_000), Some(946_684_801));
        assert_eq!(ts(-1), Some(946_684_799), "floored");
        assert_eq!(ts(i64::MIN), Some(i64::MIN));
        assert_eq!(ts(i64::MAX), Some(i64::MAX));
        assert_eq!(pg_timestamptz(&[0; 4]), None);
    }

    /// Binary COPY stream bytes for rows of i32 / NULL fields.
    fn copy_stream(rows: &[&[Option<i32>]]) -> Vec<u8> {
        let mut v = PGCOPY_SIGNATURE.to_vec();
        v.extend(0u32.to_be_bytes());
        v.extend(0u32.to_be_bytes());
        for r in rows {
            v.extend((r.len() as i16).to_be_bytes());
            for f in *r {
                match f {
                    None => v.extend((-1i32).to_be_bytes()),
                    Some(x) => {
                        v.extend(4i32.to_be_bytes());
                        v.extend(x.to_be_bytes());
                    }
                }
            }
        }
        v.extend((-1i16).to_be_bytes());
        v
    }

    #[test]
    fn binary_copy_parses_across_arbitrary_chunk_boundaries() {
        let bytes = copy_stream(&[&[Some(1), None], &[Some(2), Some(3)], &[None, Some(4)]]);
        for split in 1..bytes.len() {
            let mut p = BinaryCopy::<2>::new("t");
            let mut got = Vec::new();
            let mut f = |r: &[Option<&[u8]>; 2]| {
                got.push(r.map(|x| x.and_then(be_i32)));
                Ok(())
            };
            let mut carry = Vec::new();
            for chunk in [&bytes[..split], &bytes[split..]] {
                carry.extend_from_slice(chunk);
                let used = p.parse(&carry, &mut f).unwrap();
                carry.drain(..used);
            }
            assert!(p.trailer_seen && carry.is_empty(), "split {split}");
            assert_eq!(
                got,
                vec![[Some(1), None], [Some(2), Some(3)], [None, Some(4)]],
                "split {split}"
            );
        }
        let mut p = BinaryCopy::<3>::new("t");
        let err = p.parse(&bytes, &mut |_| Ok(())).unwrap_err();
        assert!(err.to_string().contains("2 fields, expected 3"), "{err}");
        let mut p = BinaryCopy::<2>::new("t");
        assert!(p
            .parse(b"NOTCOPY\n\xff\r\n\0\0\0\0\0\0\0\0\0", &mut |_| Ok(()))
            .is_err());
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
