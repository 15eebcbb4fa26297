//! Database side of provisioning: reads the current state of the routing tables (inside the apply
//! transaction), fingerprints existing deck rows, and executes the planned writes (row upserts and
//! deletes, deck replacement by DELETE + `COPY FROM STDIN`).
//!
//! Owns: every SQL statement of `warpd apply`. Must not touch: transaction boundaries (the caller
//! begins, commits or rolls back), validation rules, the schema (it only writes rows).

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::pin::pin;
use std::str::FromStr;

use bytes::Bytes;
use futures_util::{SinkExt, TryStreamExt};
use ipnet::IpNet;
use tokio_postgres::types::ToSql;
use tokio_postgres::{Row, Transaction};

use super::deck::{self, ColType, DeckKind, DeckSource};
use super::diff::Op;
use super::error::ProvisionError;
use super::validate::Desired;
use super::values::*;
use crate::routing::model::BillingModel;

pub(crate) struct VendorRow {
    pub id: i64,
    pub billing: BillingModel,
    pub fields: Fields,
}

pub(crate) struct IdRow {
    pub id: i64,
    pub fields: Fields,
}

pub(crate) struct RouteRow {
    pub id: i64,
    pub vendor_id: i64,
    pub fields: Fields,
}

/// The rows of the routing tables (except decks) as they are before the apply.
#[derive(Default)]
pub(crate) struct State {
    pub vendors: HashMap<String, VendorRow>,
    pub vendor_name: HashMap<i64, String>,
    /// vendor id -> gateway name -> row
    pub gateways: HashMap<i64, BTreeMap<String, IdRow>>,
    pub routes: HashMap<String, RouteRow>,
    pub route_name: HashMap<i64, String>,
    /// routes that have at least one vendor rate row
    pub routes_with_rates: HashSet<i64>,
    pub partitions: HashMap<String, IdRow>,
    pub partition_name: HashMap<i64, String>,
    pub partition_routes: HashMap<i64, BTreeSet<i64>>,
    pub customers: HashMap<String, IdRow>,
    pub customer_ban: HashMap<i64, String>,
    /// customer id -> canonical CIDRs
    pub source_ips: HashMap<i64, BTreeSet<String>>,
    pub cidr_owner: HashMap<String, i64>,
    /// customer id -> partition id -> fields
    pub cust_partitions: HashMap<i64, BTreeMap<i64, Fields>>,
    /// customer id -> prefix -> row
    pub margin_rules: HashMap<i64, BTreeMap<String, IdRow>>,
    /// (customer id, prefix, route id)
    pub overrides: HashMap<(Option<i64>, String, i64), IdRow>,
    /// (customer id, prefix, vendor id)
    pub exclusions: HashMap<(Option<i64>, String, Option<i64>), IdRow>,
    /// (customer BAN, route name)
    pub media_policies: HashMap<(Option<String>, Option<String>), IdRow>,
}

fn get<'a, T: tokio_postgres::types::FromSql<'a>>(
    row: &'a Row,
    i: usize,
    table: &str,
) -> Result<T, ProvisionError> {
    row.try_get(i)
        .map_err(|e| ProvisionError::db(format!("reading {table} column {i}"), e))
}

async fn rows(tx: &Transaction<'_>, table: &str, sql: &str) -> Result<Vec<Row>, ProvisionError> {
    tx.query(sql, &[])
        .await
        .map_err(|e| ProvisionError::db(format!("reading {table}"), e))
}

fn window_fields(days: Vec<i16>, start: Option<String>, end: Option<String>, tz: String) -> Fields {
    vec![
        ("days", f_list(&days)),
        ("start", f_opt(start)),
        ("end", f_opt(end)),
        ("tz", tz),
    ]
}

/// Reads the current state. Runs inside the apply transaction.
pub(crate) async fn load_state(tx: &Transaction<'_>) -> Result<State, ProvisionError> {
    let mut st = State::default();
    for r in rows(
        tx,
        "vendors",
        "SELECT id, name, billing_model::text, dialstring, enabled FROM vendors",
    )
    .await?
    {
        let (id, name): (i64, String) = (get(&r, 0, "vendors")?, get(&r, 1, "vendors")?);
        let billing: String = get(&r, 2, "vendors")?;
        let dialstring: String = get(&r, 3, "vendors")?;
        let enabled: bool = get(&r, 4, "vendors")?;
        let b = BillingModel::parse(&billing).unwrap_or(BillingModel::Lrn);
        st.vendor_name.insert(id, name.clone());
        st.vendors.insert(
            name,
            VendorRow {
                id,
                billing: b,
                fields: vec![
                    ("billing_model", billing),
                    ("dialstring", dialstring),
                    ("enabled", enabled.to_string()),
                ],
            },
        );
    }
    let sql = "SELECT id, vendor_id, name, host, port, transport::text, priority, weight, enabled FROM gateways";
    for r in rows(tx, "gateways", sql).await? {
        let t = "gateways";
        let id: i64 = get(&r, 0, t)?;
        let vendor_id: i64 = get(&r, 1, t)?;
        let name: String = get(&r, 2, t)?;
        let fields = vec![
            ("host", get::<String>(&r, 3, t)?),
            ("port", get::<i32>(&r, 4, t)?.to_string()),
            ("transport", get::<String>(&r, 5, t)?),
            ("priority", get::<i32>(&r, 6, t)?.to_string()),
            ("weight", get::<i32>(&r, 7, t)?.to_string()),
            ("enabled", get::<bool>(&r, 8, t)?.to_string()),
        ];
        st.gateways
            .entry(vendor_id)
            .or_default()
            .insert(name, IdRow { id, fields });
    }
    let sql = "SELECT id, name, vendor_id, priority, weight, capacity, enabled, \
               EXISTS (SELECT 1 FROM vendor_rates v WHERE v.route_id = routes.id) FROM routes";
    for r in rows(tx, "routes", sql).await? {
        let t = "routes";
        let id: i64 = get(&r, 0, t)?;
        let name: String = get(&r, 1, t)?;
        let vendor_id: i64 = get(&r, 2, t)?;
        let vendor = st
            .vendor_name
            .get(&vendor_id)
            .cloned()
            .unwrap_or_else(|| format!("#{vendor_id}"));
        let fields = vec![
            ("vendor", vendor),
            ("priority", get::<i32>(&r, 3, t)?.to_string()),
            ("weight", get::<i32>(&r, 4, t)?.to_string()),
            ("capacity", f_opt(get::<Option<i32>>(&r, 5, t)?)),
            ("enabled", get::<bool>(&r, 6, t)?.to_string()),
        ];
        if get::<bool>(&r, 7, t)? {
            st.routes_with_rates.insert(id);
        }
        st.route_name.insert(id, name.clone());
        st.routes.insert(
            name,
            RouteRow {
                id,
                vendor_id,
                fields,
            },
        );
    }
    for r in rows(
        tx,
        "partitions",
        "SELECT id, name, description FROM partitions",
    )
    .await?
    {
        let id: i64 = get(&r, 0, "partitions")?;
        let name: String = get(&r, 1, "partitions")?;
        let fields = vec![("description", get::<String>(&r, 2, "partitions")?)];
        st.partition_name.insert(id, name.clone());
        st.partitions.insert(name, IdRow { id, fields });
    }
    for r in rows(
        tx,
        "partition_routes",
        "SELECT partition_id, route_id FROM partition_routes",
    )
    .await?
    {
        let p: i64 = get(&r, 0, "partition_routes")?;
        let route: i64 = get(&r, 1, "partition_routes")?;
        st.partition_routes.entry(p).or_default().insert(route);
    }
    let sql = "SELECT id, ban, name, enabled, round(max_rate * 10000000)::bigint, blocked_prefixes, \
               allowed_classes::text[], max_results, allow_negative_margin, \
               round(margin_percent * 10000)::bigint, round(fixed_fee * 10000000)::bigint, \
               max_concurrent_calls, max_cps, billing_min_seconds, billing_inc_seconds FROM customers";
    for r in rows(tx, "customers", sql).await? {
        let t = "customers";
        let id: i64 = get(&r, 0, t)?;
        let ban: String = get(&r, 1, t)?;
        let fields = vec![
            ("name", get::<String>(&r, 2, t)?),
            ("enabled", get::<bool>(&r, 3, t)?.to_string()),
            ("max_rate", f_money(get(&r, 4, t)?)),
            ("blocked_prefixes", f_list(&get::<Vec<String>>(&r, 5, t)?)),
            ("allowed_classes", f_list(&get::<Vec<String>>(&r, 6, t)?)),
            ("max_results", get::<i32>(&r, 7, t)?.to_string()),
            ("allow_negative_margin", get::<bool>(&r, 8, t)?.to_string()),
            ("margin_percent", f_pct(get(&r, 9, t)?)),
            ("fixed_fee", f_money(get(&r, 10, t)?)),
            (
                "max_concurrent_calls",
                f_opt(get::<Option<i32>>(&r, 11, t)?),
            ),
            ("max_cps", f_opt(get::<Option<i32>>(&r, 12, t)?)),
            ("billing_min_seconds", f_opt(get::<Option<i32>>(&r, 13, t)?)),
            ("billing_inc_seconds", f_opt(get::<Option<i32>>(&r, 14, t)?)),
        ];
        st.customer_ban.insert(id, ban.clone());
        st.customers.insert(ban, IdRow { id, fields });
    }
    for r in rows(
        tx,
        "customer_source_ips",
        "SELECT customer_id, cidr::text FROM customer_source_ips",
    )
    .await?
    {
        let c: i64 = get(&r, 0, "customer_source_ips")?;
        let text: String = get(&r, 1, "customer_source_ips")?;
        let cidr = IpNet::from_str(&text)
            .map(|n| n.to_string())
            .unwrap_or(text);
        st.cidr_owner.insert(cidr.clone(), c);
        st.source_ips.entry(c).or_default().insert(cidr);
    }
    let sql =
        "SELECT customer_id, partition_id, priority, days, start_time::text, end_time::text, tz \
               FROM customer_partitions";
    for r in rows(tx, "customer_partitions", sql).await? {
        let t = "customer_partitions";
        let c: i64 = get(&r, 0, t)?;
        let p: i64 = get(&r, 1, t)?;
        let mut fields = vec![("priority", get::<i32>(&r, 2, t)?.to_string())];
        fields.extend(window_fields(
            get(&r, 3, t)?,
            get(&r, 4, t)?,
            get(&r, 5, t)?,
            get(&r, 6, t)?,
        ));
        st.cust_partitions.entry(c).or_default().insert(p, fields);
    }
    let sql = "SELECT id, customer_id, prefix, round(margin_percent * 10000)::bigint, \
               round(fixed_fee * 10000000)::bigint FROM customer_margin_rules";
    for r in rows(tx, "customer_margin_rules", sql).await? {
        let t = "customer_margin_rules";
        let id: i64 = get(&r, 0, t)?;
        let c: i64 = get(&r, 1, t)?;
        let prefix: String = get(&r, 2, t)?;
        let fields = vec![
            ("margin_percent", f_pct(get(&r, 3, t)?)),
            ("fixed_fee", f_money(get(&r, 4, t)?)),
        ];
        st.margin_rules
            .entry(c)
            .or_default()
            .insert(prefix, IdRow { id, fields });
    }
    let sql = format!(
        "SELECT id, customer_id, prefix, route_id, round(rate * 10000000)::bigint, {}, {}, days, \
         start_time::text, end_time::text, tz, note FROM overrides",
        sql_micros("valid_from"),
        sql_micros("valid_until")
    );
    for r in rows(tx, "overrides", &sql).await? {
        let t = "overrides";
        let id: i64 = get(&r, 0, t)?;
        let key = (get(&r, 1, t)?, get(&r, 2, t)?, get(&r, 3, t)?);
        let mut fields = vec![
            ("rate", f_money(get(&r, 4, t)?)),
            ("valid_from", fmt_ts(get(&r, 5, t)?)),
            ("valid_until", fmt_ts(get(&r, 6, t)?)),
        ];
        fields.extend(window_fields(
            get(&r, 7, t)?,
            get(&r, 8, t)?,
            get(&r, 9, t)?,
            get(&r, 10, t)?,
        ));
        fields.push(("note", get(&r, 11, t)?));
        st.overrides.insert(key, IdRow { id, fields });
    }
    for r in rows(
        tx,
        "exclusions",
        "SELECT id, customer_id, prefix, vendor_id, note FROM exclusions",
    )
    .await?
    {
        let t = "exclusions";
        let id: i64 = get(&r, 0, t)?;
        let key = (get(&r, 1, t)?, get(&r, 2, t)?, get(&r, 3, t)?);
        let fields = vec![("note", get::<String>(&r, 4, t)?)];
        st.exclusions.insert(key, IdRow { id, fields });
    }
    let sql = "SELECT id, customer_ban, route_name, record, t38_mode, codec_allow, codec_strip \
               FROM media_policies";
    for r in rows(tx, "media_policies", sql).await? {
        let t = "media_policies";
        let id: i64 = get(&r, 0, t)?;
        let key = (get(&r, 1, t)?, get(&r, 2, t)?);
        let fields = vec![
            ("record", f_opt(get::<Option<bool>>(&r, 3, t)?)),
            ("t38_mode", f_opt(get::<Option<String>>(&r, 4, t)?)),
            (
                "codec_allow",
                f_opt_list(get::<Option<Vec<String>>>(&r, 5, t)?.as_deref()),
            ),
            (
                "codec_strip",
                f_opt_list(get::<Option<Vec<String>>>(&r, 6, t)?.as_deref()),
            ),
        ];
        st.media_policies.insert(key, IdRow { id, fields });
    }
    Ok(st)
}

/// Row count and fingerprint of a deck's target rows (one route / customer, or a whole table).
/// The fingerprint is only computed when the count equals `expected_rows`.
pub(crate) async fn deck_digest(
    tx: &Transaction<'_>,
    kind: DeckKind,
    owner: Option<i64>,
    expected_rows: u64,
) -> Result<(u64, Option<Digest>), ProvisionError> {
    let table = kind.table();
    let filter = match (kind.owner_column(), owner) {
        (Some(c), Some(_)) => format!(" WHERE {c} = $1"),
        _ => String::new(),
    };
    let params: Vec<&(dyn ToSql + Sync)> = match (kind.owner_column(), &owner) {
        (Some(_), Some(id)) => vec![id],
        _ => vec![],
    };
    let ctx = || format!("reading {table}");
    let count: i64 = tx
        .query_one(&format!("SELECT count(*) FROM {table}{filter}"), &params)
        .await
        .and_then(|r| r.try_get(0))
        .map_err(|e| ProvisionError::db(ctx(), e))?;
    let count = u64::try_from(count).unwrap_or(0);
    if count != expected_rows {
        return Ok((count, None));
    }
    let cols = kind.columns();
    let exprs: Vec<String> = cols
        .iter()
        .map(|(c, t)| match t {
            ColType::Text => c.to_string(),
            ColType::Int => format!("{c}::bigint"),
            ColType::Money => format!("round({c} * 10000000)::bigint"),
            ColType::Ts => sql_micros(c),
        })
        .collect();
    let sql = format!("SELECT {} FROM {table}{filter}", exprs.join(", "));
    let stream = tx
        .query_raw(&sql, params.iter().copied())
        .await
        .map_err(|e| ProvisionError::db(ctx(), e))?;
    let mut stream = pin!(stream);
    let mut digest = Digest::default();
    while let Some(row) = stream
        .try_next()
        .await
        .map_err(|e| ProvisionError::db(ctx(), e))?
    {
        let mut cells: Vec<Cell<'_>> = Vec::with_capacity(cols.len());
        for (i, (_, t)) in cols.iter().enumerate() {
            let c = match t {
                ColType::Text => match row.try_get::<_, Option<&str>>(i) {
                    Ok(Some(s)) => Cell::Text(s),
                    Ok(None) => Cell::Null,
                    Err(e) => return Err(ProvisionError::db(ctx(), e)),
                },
                _ => match row.try_get::<_, Option<i64>>(i) {
                    Ok(Some(v)) => Cell::Int(v),
                    Ok(None) => Cell::Null,
                    Err(e) => return Err(ProvisionError::db(ctx(), e)),
                },
            };
            cells.push(c);
        }
        digest.add(&cells);
    }
    Ok((count, Some(digest)))
}

const COPY_CHUNK: usize = 256 * 1024;

/// Replaces the target rows of a deck: DELETE, then stream the CSV through `COPY FROM STDIN`.
/// The CSV is parsed on a blocking thread and handed over in chunks; nothing big is kept in memory.
pub(crate) async fn load_deck(
    tx: &Transaction<'_>,
    src: &DeckSource,
    owner: Option<i64>,
) -> Result<u64, ProvisionError> {
    let kind = src.kind;
    let table = kind.table();
    let ctx = || format!("loading {} into {table}", src.label);
    match (kind.owner_column(), owner) {
        (Some(c), Some(id)) => {
            tx.execute(&format!("DELETE FROM {table} WHERE {c} = $1"), &[&id])
                .await
        }
        (None, _) => tx.execute(&format!("DELETE FROM {table}"), &[]).await,
        (Some(_), None) => {
            return Err(ProvisionError::Internal(format!(
                "{table} deck without an owner id"
            )))
        }
    }
    .map_err(|e| ProvisionError::db(ctx(), e))?;
    let mut cols: Vec<&str> = kind.owner_column().into_iter().collect();
    cols.extend(kind.columns().iter().map(|(c, _)| *c));
    let sink = tx
        .copy_in::<_, Bytes>(&format!("COPY {table} ({}) FROM STDIN", cols.join(", ")))
        .await
        .map_err(|e| ProvisionError::db(ctx(), e))?;
    let mut sink = pin!(sink);
    let (chunks, mut rx) = tokio::sync::mpsc::channel::<Bytes>(4);
    let src2 = src.clone();
    let reader = tokio::task::spawn_blocking(move || {
        let lead: Vec<Cell<'static>> = owner.map(Cell::Int).into_iter().collect();
        let mut buf = Vec::with_capacity(COPY_CHUNK + 4096);
        let mut open = true;
        let scan = deck::scan(&src2, &mut |cells| {
            write_copy_line(&lead, cells, &mut buf);
            if buf.len() >= COPY_CHUNK {
                let full = std::mem::replace(&mut buf, Vec::with_capacity(COPY_CHUNK + 4096));
                open = chunks.blocking_send(Bytes::from(full)).is_ok();
            }
            open
        });
        if open && !buf.is_empty() {
            let _ = chunks.blocking_send(Bytes::from(buf));
        }
        scan
    });
    while let Some(chunk) = rx.recv().await {
        sink.send(chunk)
            .await
            .map_err(|e| ProvisionError::db(ctx(), e))?;
    }
    let scan = reader
        .await
        .map_err(|e| ProvisionError::Internal(format!("CSV reader for {}: {e}", src.label)))?;
    if let Some(issue) = scan.issues.into_iter().next() {
        // dropping the sink unfinished aborts the COPY; the caller rolls back
        return Err(ProvisionError::Load { issue });
    }
    let n = sink
        .as_mut()
        .finish()
        .await
        .map_err(|e| ProvisionError::db(ctx(), e))?;
    if n != scan.digest.rows {
        return Err(ProvisionError::Internal(format!(
            "{}: COPY stored {n} rows, the CSV has {}",
            src.label, scan.digest.rows
        )));
    }
    tracing::info!(file = %src.label, table, rows = n, "deck loaded");
    Ok(n)
}

/// Name → id of the objects writes refer to; seeded from [`State`], extended by inserts.
pub(crate) struct Ids {
    pub vendor: HashMap<String, i64>,
    pub route: HashMap<String, i64>,
    pub partition: HashMap<String, i64>,
    pub customer: HashMap<String, i64>,
}

impl Ids {
    pub fn new(st: &State) -> Ids {
        Ids {
            vendor: st.vendors.iter().map(|(n, v)| (n.clone(), v.id)).collect(),
            route: st.routes.iter().map(|(n, r)| (n.clone(), r.id)).collect(),
            partition: st
                .partitions
                .iter()
                .map(|(n, p)| (n.clone(), p.id))
                .collect(),
            customer: st
                .customers
                .iter()
                .map(|(n, c)| (n.clone(), c.id))
                .collect(),
        }
    }
}

fn lookup(map: &HashMap<String, i64>, what: &str, name: &str) -> Result<i64, ProvisionError> {
    map.get(name).copied().ok_or_else(|| {
        ProvisionError::Internal(format!("{what} {name:?} has no id after validation"))
    })
}

async fn exec(
    tx: &Transaction<'_>,
    what: &str,
    sql: &str,
    params: &[&(dyn ToSql + Sync)],
) -> Result<u64, ProvisionError> {
    tx.execute(sql, params)
        .await
        .map_err(|e| ProvisionError::db(format!("writing {what}"), e))
}

async fn insert_id(
    tx: &Transaction<'_>,
    what: &str,
    sql: &str,
    params: &[&(dyn ToSql + Sync)],
) -> Result<i64, ProvisionError> {
    tx.query_one(sql, params)
        .await
        .and_then(|r| r.try_get(0))
        .map_err(|e| ProvisionError::db(format!("writing {what}"), e))
}

fn money(v: Option<i64>) -> Option<String> {
    v.map(|v| fmt_scaled(v, 7))
}

/// Executes the row operations in order.
pub(crate) async fn execute(
    tx: &Transaction<'_>,
    d: &Desired,
    ops: &[Op],
    ids: &mut Ids,
) -> Result<(), ProvisionError> {
    for op in ops {
        match op {
            Op::Vendor { ix, id } => {
                let v = &d.vendors[*ix];
                let what = format!("vendor {:?}", v.name);
                let b = v.billing.as_str();
                match id {
                    Some(id) => {
                        let sql = "UPDATE vendors SET billing_model = $2::text::billing_model, dialstring = $3, \
                                   enabled = $4, updated_at = now() WHERE id = $1";
                        exec(tx, &what, sql, &[id, &b, &v.dialstring, &v.enabled]).await?;
                    }
                    None => {
                        let sql = "INSERT INTO vendors (name, billing_model, dialstring, enabled) \
                                   VALUES ($1, $2::text::billing_model, $3, $4) RETURNING id";
                        let new =
                            insert_id(tx, &what, sql, &[&v.name, &b, &v.dialstring, &v.enabled])
                                .await?;
                        ids.vendor.insert(v.name.clone(), new);
                    }
                }
            }
            Op::Gateway { vendor, ix, id } => {
                let v = &d.vendors[*vendor];
                let Some(g) = v.gateways.as_ref().and_then(|g| g.get(*ix)) else {
                    return Err(ProvisionError::Internal(format!(
                        "gateway #{ix} of {:?} missing",
                        v.name
                    )));
                };
                let what = format!("gateway {}/{}", v.name, g.name);
                let t = g.transport.as_str();
                match id {
                    Some(id) => {
                        let sql = "UPDATE gateways SET host = $2, port = $3, transport = $4::text::sip_transport, \
                                   priority = $5, weight = $6, enabled = $7 WHERE id = $1";
                        exec(
                            tx,
                            &what,
                            sql,
                            &[id, &g.host, &g.port, &t, &g.priority, &g.weight, &g.enabled],
                        )
                        .await?;
                    }
                    None => {
                        let vid = lookup(&ids.vendor, "vendor", &v.name)?;
                        let sql = "INSERT INTO gateways (vendor_id, name, host, port, transport, priority, weight, enabled) \
                                   VALUES ($1, $2, $3, $4, $5::text::sip_transport, $6, $7, $8)";
                        exec(
                            tx,
                            &what,
                            sql,
                            &[
                                &vid,
                                &g.name,
                                &g.host,
                                &g.port,
                                &t,
                                &g.priority,
                                &g.weight,
                                &g.enabled,
                            ],
                        )
                        .await?;
                    }
                }
            }
            Op::DeleteGateway { id, name } => {
                exec(
                    tx,
                    &format!("gateway {name}"),
                    "DELETE FROM gateways WHERE id = $1",
                    &[id],
                )
                .await?;
            }
            Op::Route { ix, id } => {
                let r = &d.routes[*ix];
                let what = format!("route {:?}", r.name);
                let vid = lookup(&ids.vendor, "vendor", &r.vendor)?;
                match id {
                    Some(id) => {
                        let sql = "UPDATE routes SET vendor_id = $2, priority = $3, weight = $4, capacity = $5, \
                                   enabled = $6 WHERE id = $1";
                        exec(
                            tx,
                            &what,
                            sql,
                            &[id, &vid, &r.priority, &r.weight, &r.capacity, &r.enabled],
                        )
                        .await?;
                    }
                    None => {
                        let sql = "INSERT INTO routes (name, vendor_id, priority, weight, capacity, enabled) \
                                   VALUES ($1, $2, $3, $4, $5, $6) RETURNING id";
                        let new = insert_id(
                            tx,
                            &what,
                            sql,
                            &[
                                &r.name,
                                &vid,
                                &r.priority,
                                &r.weight,
                                &r.capacity,
                                &r.enabled,
                            ],
                        )
                        .await?;
                        ids.route.insert(r.name.clone(), new);
                    }
                }
            }
            Op::Partition { ix, id } => {
                let p = &d.partitions[*ix];
                let what = format!("partition {:?}", p.name);
                match id {
                    Some(id) => {
                        let sql = "UPDATE partitions SET description = $2 WHERE id = $1";
                        exec(tx, &what, sql, &[id, &p.description]).await?;
                    }
                    None => {
                        let sql = "INSERT INTO partitions (name, description) VALUES ($1, $2) RETURNING id";
                        let new = insert_id(tx, &what, sql, &[&p.name, &p.description]).await?;
                        ids.partition.insert(p.name.clone(), new);
                    }
                }
            }
            Op::AddPartitionRoute { partition, route } => {
                let pid = lookup(&ids.partition, "partition", partition)?;
                let rid = lookup(&ids.route, "route", route)?;
                let sql = "INSERT INTO partition_routes (partition_id, route_id) VALUES ($1, $2)";
                exec(
                    tx,
                    &format!("partition {partition} route {route}"),
                    sql,
                    &[&pid, &rid],
                )
                .await?;
            }
            Op::DeletePartitionRoute {
                partition_id,
                route_id,
            } => {
                let sql = "DELETE FROM partition_routes WHERE partition_id = $1 AND route_id = $2";
                exec(tx, "partition route", sql, &[partition_id, route_id]).await?;
            }
            Op::Customer { ix, id } => {
                let c = &d.customers[*ix];
                let what = format!("customer {}", c.ban);
                let (max_rate, pct, fee) = (
                    money(c.max_rate),
                    c.margin_percent.map(|v| fmt_scaled(v, 4)),
                    fmt_scaled(c.fixed_fee, 7),
                );
                let classes: Vec<String> =
                    c.allowed_classes.iter().map(|s| s.to_string()).collect();
                // $1 is the row's id (UPDATE) or its BAN (INSERT); $2.. are the same for both
                let key: &(dyn ToSql + Sync) = match id {
                    Some(id) => id,
                    None => &c.ban,
                };
                let params: &[&(dyn ToSql + Sync)] = &[
                    key,
                    &c.name,
                    &c.enabled,
                    &max_rate,
                    &c.blocked_prefixes,
                    &classes,
                    &c.max_results,
                    &c.allow_negative_margin,
                    &pct,
                    &fee,
                    &c.max_concurrent_calls,
                    &c.max_cps,
                    &c.billing_min_seconds,
                    &c.billing_inc_seconds,
                ];
                if id.is_some() {
                    let sql = "UPDATE customers SET name = $2, enabled = $3, max_rate = $4::text::numeric, \
                               blocked_prefixes = $5::text[], allowed_classes = $6::text[]::dest_class[], \
                               max_results = $7, allow_negative_margin = $8, margin_percent = $9::text::numeric, \
                               fixed_fee = $10::text::numeric, max_concurrent_calls = $11, max_cps = $12, \
                               billing_min_seconds = $13, billing_inc_seconds = $14 WHERE id = $1";
                    exec(tx, &what, sql, params).await?;
                } else {
                    let sql = "INSERT INTO customers (ban, name, enabled, max_rate, blocked_prefixes, \
                               allowed_classes, max_results, allow_negative_margin, margin_percent, fixed_fee, \
                               max_concurrent_calls, max_cps, billing_min_seconds, billing_inc_seconds) \
                               VALUES ($1, $2, $3, $4::text::numeric, $5::text[], $6::text[]::dest_class[], $7, $8, \
                               $9::text::numeric, $10::text::numeric, $11, $12, $13, $14) RETURNING id";
                    let new = insert_id(tx, &what, sql, params).await?;
                    ids.customer.insert(c.ban.clone(), new);
                }
            }
            Op::DeleteSourceIp { customer_id, cidr } => {
                let sql = "DELETE FROM customer_source_ips WHERE customer_id = $1 AND cidr = $2::text::cidr";
                exec(tx, &format!("source ip {cidr}"), sql, &[customer_id, cidr]).await?;
            }
            Op::AddSourceIp { customer, cidr } => {
                let cid = lookup(&ids.customer, "customer", customer)?;
                let sql = "INSERT INTO customer_source_ips (customer_id, cidr) VALUES ($1, $2::text::cidr)";
                exec(
                    tx,
                    &format!("customer {customer} source ip {cidr}"),
                    sql,
                    &[&cid, cidr],
                )
                .await?;
            }
            Op::CustPartition { customer, ix } => {
                let c = &d.customers[*customer];
                let Some(p) = c.partitions.as_ref().and_then(|p| p.get(*ix)) else {
                    return Err(ProvisionError::Internal(format!(
                        "partition #{ix} of {} missing",
                        c.ban
                    )));
                };
                let cid = lookup(&ids.customer, "customer", &c.ban)?;
                let pid = lookup(&ids.partition, "partition", &p.partition)?;
                let w = &p.window;
                let sql = "INSERT INTO customer_partitions (customer_id, partition_id, priority, days, start_time, \
                           end_time, tz) VALUES ($1, $2, $3, $4, $5::text::time, $6::text::time, $7) \
                           ON CONFLICT (customer_id, partition_id) DO UPDATE SET priority = excluded.priority, \
                           days = excluded.days, start_time = excluded.start_time, end_time = excluded.end_time, \
                           tz = excluded.tz";
                exec(
                    tx,
                    &format!("customer {} partition {}", c.ban, p.partition),
                    sql,
                    &[&cid, &pid, &p.priority, &w.days, &w.start, &w.end, &w.tz],
                )
                .await?;
            }
            Op::DeleteCustPartition {
                customer_id,
                partition_id,
            } => {
                let sql =
                    "DELETE FROM customer_partitions WHERE customer_id = $1 AND partition_id = $2";
                exec(tx, "customer partition", sql, &[customer_id, partition_id]).await?;
            }
            Op::Margin { customer, ix, id } => {
                let c = &d.customers[*customer];
                let Some(m) = c.margin_rules.as_ref().and_then(|m| m.get(*ix)) else {
                    return Err(ProvisionError::Internal(format!(
                        "margin rule #{ix} of {} missing",
                        c.ban
                    )));
                };
                let what = format!("customer {} margin rule {:?}", c.ban, m.prefix);
                let (pct, fee) = (fmt_scaled(m.margin_percent, 4), fmt_scaled(m.fixed_fee, 7));
                match id {
                    Some(id) => {
                        let sql =
                            "UPDATE customer_margin_rules SET margin_percent = $2::text::numeric, \
                                   fixed_fee = $3::text::numeric WHERE id = $1";
                        exec(tx, &what, sql, &[id, &pct, &fee]).await?;
                    }
                    None => {
                        let cid = lookup(&ids.customer, "customer", &c.ban)?;
                        let sql = "INSERT INTO customer_margin_rules (customer_id, prefix, margin_percent, fixed_fee) \
                                   VALUES ($1, $2, $3::text::numeric, $4::text::numeric)";
                        exec(tx, &what, sql, &[&cid, &m.prefix, &pct, &fee]).await?;
                    }
                }
            }
            Op::DeleteMargin { id } => {
                exec(
                    tx,
                    "margin rule",
                    "DELETE FROM customer_margin_rules WHERE id = $1",
                    &[id],
                )
                .await?;
            }
            Op::Override { ix, id } => {
                let o = &d.overrides[*ix];
                let what = format!("override {}", o.label());
                let cid = match &o.customer {
                    Some(b) => Some(lookup(&ids.customer, "customer", b)?),
                    None => None,
                };
                let rid = lookup(&ids.route, "route", &o.route)?;
                let (rate, from, until) =
                    (money(o.rate), fmt_ts(o.valid_from), fmt_ts(o.valid_until));
                let w = &o.window;
                match id {
                    Some(id) => {
                        let sql = "UPDATE overrides SET rate = $2::text::numeric, valid_from = $3::text::timestamptz, \
                                   valid_until = $4::text::timestamptz, days = $5, start_time = $6::text::time, \
                                   end_time = $7::text::time, tz = $8, note = $9 WHERE id = $1";
                        exec(
                            tx,
                            &what,
                            sql,
                            &[
                                id, &rate, &from, &until, &w.days, &w.start, &w.end, &w.tz, &o.note,
                            ],
                        )
                        .await?;
                    }
                    None => {
                        let sql = "INSERT INTO overrides (customer_id, prefix, route_id, rate, valid_from, valid_until, \
                                   days, start_time, end_time, tz, note) VALUES ($1, $2, $3, $4::text::numeric, \
                                   $5::text::timestamptz, $6::text::timestamptz, $7, $8::text::time, $9::text::time, \
                                   $10, $11)";
                        exec(
                            tx,
                            &what,
                            sql,
                            &[
                                &cid, &o.prefix, &rid, &rate, &from, &until, &w.days, &w.start,
                                &w.end, &w.tz, &o.note,
                            ],
                        )
                        .await?;
                    }
                }
            }
            Op::Exclusion { ix, id } => {
                let e = &d.exclusions[*ix];
                let what = format!("exclusion {}", e.label());
                match id {
                    Some(id) => {
                        exec(
                            tx,
                            &what,
                            "UPDATE exclusions SET note = $2 WHERE id = $1",
                            &[id, &e.note],
                        )
                        .await?;
                    }
                    None => {
                        let cid = match &e.customer {
                            Some(b) => Some(lookup(&ids.customer, "customer", b)?),
                            None => None,
                        };
                        let vid = match &e.vendor {
                            Some(v) => Some(lookup(&ids.vendor, "vendor", v)?),
                            None => None,
                        };
                        let sql = "INSERT INTO exclusions (customer_id, prefix, vendor_id, note) VALUES ($1, $2, $3, $4)";
                        exec(tx, &what, sql, &[&cid, &e.prefix, &vid, &e.note]).await?;
                    }
                }
            }
            Op::MediaPolicy { ix, id } => {
                let m = &d.media_policies[*ix];
                let what = format!("media policy {}", m.label());
                let settings: [&(dyn ToSql + Sync); 4] =
                    [&m.record, &m.t38_mode, &m.codec_allow, &m.codec_strip];
                match id {
                    Some(id) => {
                        let sql = "UPDATE media_policies SET record = $2, t38_mode = $3, \
                                   codec_allow = $4, codec_strip = $5 WHERE id = $1";
                        let mut params: Vec<&(dyn ToSql + Sync)> = vec![id];
                        params.extend(settings);
                        exec(tx, &what, sql, &params).await?;
                    }
                    None => {
                        let sql = "INSERT INTO media_policies (record, t38_mode, codec_allow, \
                                   codec_strip, customer_ban, route_name) VALUES ($1, $2, $3, $4, $5, $6)";
                        let mut params = settings.to_vec();
                        params.extend([&m.customer as &(dyn ToSql + Sync), &m.route]);
                        exec(tx, &what, sql, &params).await?;
                    }
                }
            }
        }
    }
    Ok(())
}

/// Owner id of a deck at write time (after the row operations created any new route / customer).
pub(crate) fn deck_owner(
    ids: &Ids,
    kind: DeckKind,
    target: &str,
) -> Result<Option<i64>, ProvisionError> {
    match kind {
        DeckKind::VendorRates => lookup(&ids.route, "route", target).map(Some),
        DeckKind::CustomerRates => lookup(&ids.customer, "customer", target).map(Some),
        _ => Ok(None),
    }
}
