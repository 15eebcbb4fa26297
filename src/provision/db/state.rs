//! The current state of the routing tables (except decks) as `warpd apply` sees it before
//! writing: [`load_state`] reads every row inside the apply transaction into [`State`], with
//! values rendered as the provisioning spec writes them.
//!
//! Owns: the SELECT statements of `warpd apply`. Must not touch: any write.

use std::str::FromStr;

use ipnet::IpNet;
use tokio_postgres::{Row, Transaction};

use crate::provision::error::ProvisionError;
use crate::provision::values::*;
use crate::routing::model::BillingModel;

pub use warpd_core::provision::state::*;

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
               max_concurrent_calls, max_cps, billing_min_seconds, billing_inc_seconds, emergency_callback \
               FROM customers";
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
            (
                "emergency_callback",
                f_opt(get::<Option<String>>(&r, 15, t)?.as_ref()),
            ),
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
    let sql = "SELECT id, customer_ban, route_name, record, t38_mode, codec_allow, codec_strip, \
               trunk_name FROM media_policies";
    for r in rows(tx, "media_policies", sql).await? {
        let t = "media_policies";
        let id: i64 = get(&r, 0, t)?;
        let key = (get(&r, 1, t)?, get(&r, 2, t)?, get(&r, 7, t)?);
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
