//! `/v1/admin/customers/{ban}/partitions` and `/source_ips`: what links a customer to its
//! partitions (with a time window) and to the source addresses that identify it.

use super::customers::CUSTOMER;
use super::partitions::PARTITION;
use super::prelude::*;
use crate::rules::values::Day;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CustomerPartitionIn {
    pub partition: String,
    pub priority: Option<i32>,
    /// ISO weekdays 1 (Mon) ..= 7 (Sun); empty = every day
    pub days: Option<Vec<i16>>,
    /// "08:00"
    pub start_time: Option<String>,
    pub end_time: Option<String>,
    pub tz: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SourceIpIn {
    /// address or CIDR, e.g. "192.0.2.10" or "192.0.2.0/24"
    pub cidr: String,
}

/// The checked window of a customer partition: (priority, days, start, end, tz).
type Window = (i32, Vec<i16>, Option<String>, Option<String>, String);

fn window(b: &CustomerPartitionIn) -> Result<Window, AdminError> {
    let days: Vec<Day> = b
        .days
        .iter()
        .flatten()
        .map(|d| Day::Number(i64::from(*d)))
        .collect();
    // a weekday that is not one is a 400, as a value of the wrong type
    let days = rules::days("days", &days).map_err(AdminError::BadValue)?;
    let time =
        |f: &str, v: &Option<String>| v.as_deref().map(|v| rules::local_time(f, v)).transpose();
    let (start, end) = (
        time("start_time", &b.start_time)?,
        time("end_time", &b.end_time)?,
    );
    rules::start_and_end("start_time", start.is_some(), end.is_some())?;
    let priority = rules::CUSTOMER_PARTITION_PRIORITY.value("", b.priority.map(i64::from))?;
    let tz = rules::time_zone("tz", b.tz.as_deref())?;
    Ok((priority, days, start, end, tz))
}

#[utoipa::path(post, path = "/v1/admin/customers/{ban}/partitions", tag = "customers",
    security(("bearer" = [])), params(("ban" = String, Path, description = "customer BAN")),
    request_body = CustomerPartitionIn,
    responses((status = 201, description = "added"), (status = 404, description = "no such customer or partition")))]
pub async fn customer_partition_add(_: &AdminState, ctx: &mut Ctx, c: &mut Client) -> Reply {
    let b: CustomerPartitionIn = ctx.json()?;
    let ban = ctx.p("ban").to_string();
    CUSTOMER.exists(c, &ban).await?;
    PARTITION.exists(c, &b.partition).await?;
    let (priority, days, start, end, tz) = window(&b)?;
    Change {
        action: "customer.partition.add".into(),
        target: format!("customer {ban} partition {}", b.partition),
        before: None,
        write: "INSERT INTO customer_partitions (customer_id, partition_id, priority, days, start_time, end_time, tz) \
         SELECT c.id, p.id, $3, $4, $5::text::time, $6::text::time, $7 \
         FROM customers c, partitions p WHERE c.ban = $1 AND p.name = $2 \
         RETURNING to_jsonb(customer_partitions.*)",
        params: vec![&ban, &b.partition, &priority, &days, &start, &end, &tz],
        created: true,
    }
    .run(c, ctx)
    .await
}

#[utoipa::path(delete, path = "/v1/admin/customers/{ban}/partitions/{partition}", tag = "customers",
    security(("bearer" = [])),
    params(("ban" = String, Path, description = "customer BAN"), ("partition" = String, Path, description = "partition name")),
    responses((status = 200, description = "removed")))]
pub async fn customer_partition_remove(_: &AdminState, ctx: &mut Ctx, c: &mut Client) -> Reply {
    let (ban, p) = (ctx.p("ban").to_string(), ctx.p("partition").to_string());
    CUSTOMER.exists(c, &ban).await?;
    PARTITION.exists(c, &p).await?;
    Change {
        action: "customer.partition.remove".into(),
        target: format!("customer {ban} partition {p}"),
        before: Some((
            "SELECT to_jsonb(cp.*) FROM customer_partitions cp JOIN customers c ON c.id = cp.customer_id \
             JOIN partitions p ON p.id = cp.partition_id WHERE c.ban = $1 AND p.name = $2",
            vec![&ban, &p],
        )),
        write: "DELETE FROM customer_partitions cp USING customers c, partitions p WHERE c.id = cp.customer_id \
         AND p.id = cp.partition_id AND c.ban = $1 AND p.name = $2 RETURNING NULL::jsonb",
        params: vec![&ban, &p],
        created: false,
    }
    .run(c, ctx)
    .await
}

#[utoipa::path(post, path = "/v1/admin/customers/{ban}/source_ips", tag = "customers",
    security(("bearer" = [])), params(("ban" = String, Path, description = "customer BAN")),
    request_body = SourceIpIn, responses((status = 201, description = "added"),
    (status = 409, description = "the address belongs to a customer already")))]
pub async fn customer_source_ip_add(_: &AdminState, ctx: &mut Ctx, c: &mut Client) -> Reply {
    let b: SourceIpIn = ctx.json()?;
    let ban = ctx.p("ban").to_string();
    CUSTOMER.exists(c, &ban).await?;
    // the admin API stores the network of an address with host bits (`192.0.2.7/24`)
    let net = rules::source_net("cidr", &b.cidr).map_err(AdminError::BadValue)?;
    let text = net.trunc().to_string();
    Change {
        action: "customer.source_ip.add".into(),
        target: format!("customer {ban} source {text}"),
        before: None,
        write: "INSERT INTO customer_source_ips (customer_id, cidr) SELECT id, $2::text::cidr \
         FROM customers WHERE ban = $1 \
         RETURNING jsonb_build_object('customer', $1::text, 'cidr', cidr::text)",
        params: vec![&ban, &text],
        created: true,
    }
    .run(c, ctx)
    .await
}

#[utoipa::path(delete, path = "/v1/admin/customers/{ban}/source_ips/{cidr}", tag = "customers",
    security(("bearer" = [])),
    params(("ban" = String, Path, description = "customer BAN"),
        ("cidr" = String, Path, description = "CIDR, with the slash written %2F")),
    responses((status = 200, description = "removed")))]
pub async fn customer_source_ip_remove(_: &AdminState, ctx: &mut Ctx, c: &mut Client) -> Reply {
    let (ban, cidr) = (ctx.p("ban").to_string(), ctx.p("cidr").to_string());
    CUSTOMER.exists(c, &ban).await?;
    Change {
        action: "customer.source_ip.remove".into(),
        target: format!("customer {ban} source {cidr}"),
        before: Some((
            "SELECT jsonb_build_object('customer', $1::text, 'cidr', s.cidr::text) \
             FROM customer_source_ips s JOIN customers c ON c.id = s.customer_id \
             WHERE c.ban = $1 AND s.cidr::text = $2",
            vec![&ban, &cidr],
        )),
        write: "DELETE FROM customer_source_ips s USING customers c WHERE c.id = s.customer_id \
         AND c.ban = $1 AND s.cidr::text = $2 RETURNING NULL::jsonb",
        params: vec![&ban, &cidr],
        created: false,
    }
    .run(c, ctx)
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn win(v: serde_json::Value) -> Result<Window, AdminError> {
        window(&serde_json::from_value(v).unwrap())
    }

    #[test]
    fn windows_follow_the_rules() {
        let w = win(
            json!({"partition": "p", "days": [5, 1], "start_time": "08:00", "end_time": "18:00"}),
        )
        .unwrap();
        assert_eq!(w.0, 10);
        assert_eq!(w.1, [1, 5]);
        assert_eq!(
            (w.2.as_deref(), w.3.as_deref()),
            (Some("08:00:00"), Some("18:00:00"))
        );
        assert_eq!(w.4, "UTC");
        let e = win(json!({"partition": "p", "days": [8]})).err().unwrap();
        assert_eq!(e.http_status(), StatusCode::BAD_REQUEST, "{e}");
        assert!(e.to_string().starts_with("days: "));
        // drift fixed: a start without an end was stored by the admin API, refused by apply
        let e = win(json!({"partition": "p", "start_time": "08:00"}))
            .err()
            .unwrap();
        assert_eq!(e.http_status(), StatusCode::UNPROCESSABLE_ENTITY, "{e}");
        assert!(e.to_string().starts_with("start_time: "));
    }
}
