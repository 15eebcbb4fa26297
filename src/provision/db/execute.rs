//! Execution of the planned row operations ([`execute`]): inserts, updates and deletes in plan
//! order, with the ids of objects created on the way kept in [`Ids`].
//!
//! Owns: the INSERT/UPDATE/DELETE statements of `warpd apply` (decks excepted). Must not touch:
//! transaction boundaries, the order of the operations (the plan's).

use std::collections::HashMap;

use tokio_postgres::types::ToSql;
use tokio_postgres::Transaction;

use super::state::State;
use crate::provision::diff::Op;
use crate::provision::error::ProvisionError;
use crate::provision::validate::Desired;
use crate::provision::values::*;

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

pub(super) fn lookup(
    map: &HashMap<String, i64>,
    what: &str,
    name: &str,
) -> Result<i64, ProvisionError> {
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
                    &c.emergency_callback,
                ];
                if id.is_some() {
                    let sql = "UPDATE customers SET name = $2, enabled = $3, max_rate = $4::text::numeric, \
                               blocked_prefixes = $5::text[], allowed_classes = $6::text[]::dest_class[], \
                               max_results = $7, allow_negative_margin = $8, margin_percent = $9::text::numeric, \
                               fixed_fee = $10::text::numeric, max_concurrent_calls = $11, max_cps = $12, \
                               billing_min_seconds = $13, billing_inc_seconds = $14, emergency_callback = $15 WHERE id = $1";
                    exec(tx, &what, sql, params).await?;
                } else {
                    let sql = "INSERT INTO customers (ban, name, enabled, max_rate, blocked_prefixes, \
                               allowed_classes, max_results, allow_negative_margin, margin_percent, fixed_fee, \
                               max_concurrent_calls, max_cps, billing_min_seconds, billing_inc_seconds, emergency_callback) \
                               VALUES ($1, $2, $3, $4::text::numeric, $5::text[], $6::text[]::dest_class[], $7, $8, \
                               $9::text::numeric, $10::text::numeric, $11, $12, $13, $14, $15) RETURNING id";
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
                                   codec_strip, customer_ban, route_name, trunk_name) \
                                   VALUES ($1, $2, $3, $4, $5, $6, $7)";
                        let mut params = settings.to_vec();
                        params.extend([&m.customer as &(dyn ToSql + Sync), &m.route, &m.trunk]);
                        exec(tx, &what, sql, &params).await?;
                    }
                }
            }
        }
    }
    Ok(())
}
