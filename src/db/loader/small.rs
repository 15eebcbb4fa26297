//! The small routing tables, read with plain SELECTs: vendors, gateways, routes, partitions,
//! customers (with their CIDRs, partitions and margin rules), overrides and exclusions.
//!
//! Owns: those SELECT statements and the rows' conversion into the builder.
//! Must not touch: the streamed tables (see `rates`, `numbering`), the transaction (see the
//! parent module).

use rustc_hash::FxHashMap;
use tokio_postgres::Client;

use super::columns::{col, digits_only, epoch, int_col, minutes, rate_col, scaled, select, window};
use super::DbError;
use crate::routing::{
    BillingModel, Customer, CustomerPartition, DestClass, Exclusion, Gateway, Id, MarginRule,
    Override, Partition, Route, SnapshotBuilder, Transport, Vendor,
};

pub(super) async fn load_vendors(client: &Client, b: &mut SnapshotBuilder) -> Result<(), DbError> {
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

pub(super) async fn load_gateways(client: &Client, b: &mut SnapshotBuilder) -> Result<(), DbError> {
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
pub(super) async fn load_routes(
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

pub(super) async fn load_partitions(
    client: &Client,
    b: &mut SnapshotBuilder,
) -> Result<(), DbError> {
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
pub(super) async fn load_customers(
    client: &Client,
    b: &mut SnapshotBuilder,
) -> Result<FxHashMap<Id, String>, DbError> {
    const T: &str = "customers";
    let sql = format!(
        "SELECT id, ban, name, enabled, {}, blocked_prefixes, allowed_classes::text[], max_results, \
                allow_negative_margin, round(margin_percent * 10000)::bigint, {}, emergency_callback \
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
            emergency_callback: col(&row, 11, T)?,
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

pub(super) async fn load_overrides(
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

pub(super) async fn load_exclusions(
    client: &Client,
    b: &mut SnapshotBuilder,
) -> Result<(), DbError> {
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
