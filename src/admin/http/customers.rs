//! Customers and their limits over the admin API: every column of `customers` (ceiling, blocked
//! prefixes, allowed destination classes, default max results, margin default and fee,
//! allow-negative-margin, call limits, billing increments), the margin rules
//! (`customer_margin_rules`, replaced as a list) and blocked prefixes as a sub-resource.
//!
//! Validation mirrors `warpd apply` (`provision::values`): a bad value is a 422 naming the field;
//! a wrong JSON type or an unknown field is a 400. Writes reach the routing snapshot through the
//! tables' NOTIFY triggers (sql/0001_routing.sql); call limits and billing increments through the
//! calls service's periodic refresh (`calls.limits_refresh_ms`).
//!
//! Owns: the customer handlers' bodies, validation and SQL. Must not touch: routing, the schema.

use serde::Deserializer;
use tokio_postgres::GenericClient;

use super::*;
use crate::provision::values::{check_prefix, parse_rate, parse_scaled};
use crate::routing::DestClass;

/// A decimal given as a JSON string (`"0.05"`, preferred: exact) or a number (`0.05`).
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum Dec {
    Text(String),
    Num(serde_json::Number),
}

impl Dec {
    fn text(&self) -> String {
        match self {
            Dec::Text(s) => s.trim().to_string(),
            Dec::Num(n) => n.to_string(),
        }
    }
}

/// `Some(None)` for an explicit `null` (clear the value), `None` when the field is absent.
fn nullable<'de, D: Deserializer<'de>, T: Deserialize<'de>>(
    d: D,
) -> Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(d).map(Some)
}

/// One margin rule: sell = buy × (1 + margin_percent/100) + fixed_fee for dialed numbers
/// starting with `prefix` (longest prefix wins; "" = every destination).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MarginRuleIn {
    #[serde(default)]
    pub prefix: String,
    /// decimal percent, e.g. "20" (may be negative)
    #[schema(value_type = String)]
    pub margin_percent: Dec,
    /// decimal dollars per minute added after the percentage (default 0)
    #[schema(value_type = Option<String>)]
    pub fixed_fee: Option<Dec>,
}

/// The customer's limits. In a PATCH an absent field is left alone and `null` clears a nullable
/// one; lists (`blocked_prefixes`, `allowed_classes`, `margin_rules`) replace the stored list.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CustomerPatch {
    pub name: Option<String>,
    pub enabled: Option<bool>,
    /// ceiling: the most a route may cost per minute (decimal dollars); null = no ceiling
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>, nullable = true)]
    pub max_rate: Option<Option<Dec>>,
    /// E.164 digit prefixes refused with 403, e.g. ["1900", "1976"]
    pub blocked_prefixes: Option<Vec<String>>,
    /// any of domestic, international, tollfree (or toll-free), premium
    pub allowed_classes: Option<Vec<String>>,
    /// routes per answer when the dip does not say (1..=100)
    pub max_results: Option<i64>,
    pub allow_negative_margin: Option<bool>,
    /// default margin percent (sell = buy × (1 + margin/100) + fixed_fee); null = no default rule
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>, nullable = true)]
    pub margin_percent: Option<Option<Dec>>,
    /// decimal dollars per minute added by the default rule
    #[schema(value_type = Option<String>)]
    pub fixed_fee: Option<Dec>,
    /// margin rules more specific than the default (replaces them all)
    pub margin_rules: Option<Vec<MarginRuleIn>>,
    /// null = no limit
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<i64>, nullable = true)]
    pub max_concurrent_calls: Option<Option<i64>>,
    /// null = no limit
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<i64>, nullable = true)]
    pub max_cps: Option<Option<i64>>,
    /// seconds; null = the vendor's terms
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<i64>, nullable = true)]
    pub billing_min_seconds: Option<Option<i64>>,
    /// seconds (>= 1); null = the vendor's terms
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<i64>, nullable = true)]
    pub billing_inc_seconds: Option<Option<i64>>,
}

/// A new customer: its BAN and any of the limits of [`CustomerPatch`] (absent = the default).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CustomerIn {
    pub ban: String,
    pub name: Option<String>,
    pub enabled: Option<bool>,
    #[schema(value_type = Option<String>)]
    pub max_rate: Option<Dec>,
    pub blocked_prefixes: Option<Vec<String>>,
    pub allowed_classes: Option<Vec<String>>,
    pub max_results: Option<i64>,
    pub allow_negative_margin: Option<bool>,
    #[schema(value_type = Option<String>)]
    pub margin_percent: Option<Dec>,
    #[schema(value_type = Option<String>)]
    pub fixed_fee: Option<Dec>,
    pub margin_rules: Option<Vec<MarginRuleIn>>,
    pub max_concurrent_calls: Option<i64>,
    pub max_cps: Option<i64>,
    pub billing_min_seconds: Option<i64>,
    pub billing_inc_seconds: Option<i64>,
}

impl CustomerIn {
    fn split(self) -> (String, CustomerPatch) {
        let CustomerIn {
            ban,
            name,
            enabled,
            max_rate,
            blocked_prefixes,
            allowed_classes,
            max_results,
            allow_negative_margin,
            margin_percent,
            fixed_fee,
            margin_rules,
            max_concurrent_calls,
            max_cps,
            billing_min_seconds,
            billing_inc_seconds,
        } = self;
        let patch = CustomerPatch {
            name,
            enabled,
            max_rate: max_rate.map(Some),
            blocked_prefixes,
            allowed_classes,
            max_results,
            allow_negative_margin,
            margin_percent: margin_percent.map(Some),
            fixed_fee,
            margin_rules,
            max_concurrent_calls: max_concurrent_calls.map(Some),
            max_cps: max_cps.map(Some),
            billing_min_seconds: billing_min_seconds.map(Some),
            billing_inc_seconds: billing_inc_seconds.map(Some),
        };
        (ban, patch)
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BlockedPrefixIn {
    /// E.164 digits without '+', e.g. "1900" (NANP 900)
    pub prefix: String,
}

fn bad(field: impl std::fmt::Display, why: impl std::fmt::Display) -> ApiError {
    ApiError::Unprocessable(format!("{field}: {why}"))
}

type Param = Box<dyn ToSql + Sync + Send>;

/// The validated writes of a create/patch: (column, SQL cast, value) and the margin rules.
#[derive(Default)]
struct Writes {
    cols: Vec<(&'static str, &'static str, Param)>,
    /// (prefix, margin percent, fixed fee) as decimal text
    rules: Option<(Vec<String>, Vec<String>, Vec<String>)>,
}

fn money(field: &str, d: &Dec) -> Result<String, ApiError> {
    let t = d.text();
    parse_rate(&t).map_err(|m| bad(field, m))?;
    Ok(t)
}

fn percent(field: &str, d: &Dec) -> Result<String, ApiError> {
    let t = d.text();
    parse_scaled(&t, 4, 5).map_err(|m| bad(field, m))?;
    Ok(t)
}

fn opt_int(field: &str, v: Option<i64>, lo: i64) -> Result<Option<i32>, ApiError> {
    v.map(|v| {
        if v < lo || v > i64::from(i32::MAX) {
            Err(bad(field, format!("{v} is not in {lo}..={}", i32::MAX)))
        } else {
            Ok(v as i32)
        }
    })
    .transpose()
}

/// Checks blocked prefixes: digits only, at most 15, no repeats.
pub(super) fn blocked_prefixes(field: &str, ps: &[String]) -> Result<Vec<String>, ApiError> {
    let mut out: Vec<String> = vec![];
    for (j, p) in ps.iter().enumerate() {
        let p = p.trim();
        check_prefix(p, false).map_err(|m| bad(format!("{field}[{j}]"), m))?;
        if out.iter().any(|q| q == p) {
            return Err(bad(
                format!("{field}[{j}]"),
                format!("prefix {p} listed twice"),
            ));
        }
        out.push(p.to_string());
    }
    Ok(out)
}

fn classes(cs: &[String]) -> Result<Vec<String>, ApiError> {
    let mut got = vec![];
    for (j, s) in cs.iter().enumerate() {
        let t = s.trim().to_ascii_lowercase();
        let t = if t == "toll-free" || t == "toll_free" {
            "tollfree".to_string()
        } else {
            t
        };
        let k = DestClass::parse(&t).ok_or_else(|| {
            bad(
                format!("allowed_classes[{j}]"),
                format!("{s:?} is not one of domestic, international, tollfree, premium"),
            )
        })?;
        got.push(k);
    }
    Ok(DestClass::ALL
        .iter()
        .filter(|k| got.contains(k))
        .map(|k| k.as_str().to_string())
        .collect())
}

fn validate(b: CustomerPatch) -> Result<Writes, ApiError> {
    let mut w = Writes::default();
    let mut col = |c: &'static str, cast: &'static str, v: Param| w.cols.push((c, cast, v));
    if let Some(n) = b.name {
        col("name", "", Box::new(n));
    }
    if let Some(e) = b.enabled {
        col("enabled", "", Box::new(e));
    }
    if let Some(m) = b.max_rate {
        let v = m.as_ref().map(|d| money("max_rate", d)).transpose()?;
        col("max_rate", "::text::numeric", Box::new(v));
    }
    if let Some(ps) = b.blocked_prefixes {
        let v = blocked_prefixes("blocked_prefixes", &ps)?;
        col("blocked_prefixes", "::text[]", Box::new(v));
    }
    if let Some(cs) = b.allowed_classes {
        col(
            "allowed_classes",
            "::text[]::dest_class[]",
            Box::new(classes(&cs)?),
        );
    }
    if let Some(n) = b.max_results {
        if !(1..=100).contains(&n) {
            return Err(bad("max_results", format!("{n} is not in 1..=100")));
        }
        col("max_results", "", Box::new(n as i32));
    }
    if let Some(a) = b.allow_negative_margin {
        col("allow_negative_margin", "", Box::new(a));
    }
    if let Some(m) = b.margin_percent {
        let v = m
            .as_ref()
            .map(|d| percent("margin_percent", d))
            .transpose()?;
        col("margin_percent", "::text::numeric", Box::new(v));
    }
    if let Some(f) = b.fixed_fee {
        col(
            "fixed_fee",
            "::text::numeric",
            Box::new(money("fixed_fee", &f)?),
        );
    }
    for (f, v, lo) in [
        ("max_concurrent_calls", b.max_concurrent_calls, 0),
        ("max_cps", b.max_cps, 0),
        ("billing_min_seconds", b.billing_min_seconds, 0),
        ("billing_inc_seconds", b.billing_inc_seconds, 1),
    ] {
        if let Some(v) = v {
            col(f, "", Box::new(opt_int(f, v, lo)?));
        }
    }
    if let Some(rs) = b.margin_rules {
        let (mut ps, mut pcts, mut fees) = (vec![], vec![], vec![]);
        for (j, r) in rs.iter().enumerate() {
            let f = format!("margin_rules[{j}]");
            let p = r.prefix.trim().to_string();
            check_prefix(&p, true).map_err(|m| bad(format!("{f}.prefix"), m))?;
            if ps.contains(&p) {
                return Err(bad(
                    format!("{f}.prefix"),
                    format!("margin rule for prefix {p:?} listed twice"),
                ));
            }
            pcts.push(percent(&format!("{f}.margin_percent"), &r.margin_percent)?);
            fees.push(match &r.fixed_fee {
                None => "0".to_string(),
                Some(d) => money(&format!("{f}.fixed_fee"), d)?,
            });
            ps.push(p);
        }
        w.rules = Some((ps, pcts, fees));
    }
    Ok(w)
}

/// Every customer field, its margin rules, sell deck size, source IPs and partitions, one row per
/// customer; append `WHERE c.ban = $1` for one.
const CUSTOMER_VIEW: &str = "SELECT c.ban, c.name, c.enabled, c.max_rate, c.blocked_prefixes, \
     c.allowed_classes::text[] AS allowed_classes, c.max_results, c.allow_negative_margin, \
     c.margin_percent, c.fixed_fee, c.max_concurrent_calls, c.max_cps, c.billing_min_seconds, \
     c.billing_inc_seconds, \
     coalesce((SELECT jsonb_agg(jsonb_build_object('prefix', m.prefix, 'margin_percent', m.margin_percent, \
       'fixed_fee', m.fixed_fee) ORDER BY m.prefix) FROM customer_margin_rules m \
       WHERE m.customer_id = c.id), '[]') AS margin_rules, \
     (SELECT count(*) FROM customer_rates r WHERE r.customer_id = c.id) AS sell_rates, \
     coalesce((SELECT array_agg(s.cidr::text ORDER BY s.cidr) FROM customer_source_ips s \
       WHERE s.customer_id = c.id), '{}') AS source_ips, \
     coalesce((SELECT jsonb_agg(jsonb_build_object('partition', p.name, 'priority', cp.priority, \
       'days', cp.days, 'start_time', cp.start_time, 'end_time', cp.end_time, 'tz', cp.tz) \
       ORDER BY cp.priority) FROM customer_partitions cp JOIN partitions p ON p.id = cp.partition_id \
       WHERE cp.customer_id = c.id), '[]') AS partitions \
     FROM customers c";

async fn view<C: GenericClient>(c: &C, ban: &str) -> Result<Option<Value>, ApiError> {
    let sql = format!("SELECT to_jsonb(t) FROM ({CUSTOMER_VIEW} WHERE c.ban = $1) t");
    Ok(c.query_opt(&sql, &[&ban])
        .await
        .map_err(pg("reading the customer"))?
        .map(|r| r.get(0)))
}

/// One customer change in a transaction: lock the row (404 when missing, unless `create`),
/// `check` the row before, run `steps`, write the audit row with the customer before and after.
#[allow(clippy::too_many_arguments)] // as `change`: one call per handler; a struct would only rename them
async fn customer_tx(
    c: &mut tokio_postgres::Client,
    ctx: &Ctx,
    action: &str,
    ban: &str,
    target: String,
    create: bool,
    check: impl FnOnce(&Value) -> Result<(), ApiError>,
    steps: &[(String, Vec<&(dyn ToSql + Sync)>)],
) -> Result<AdminReply, ApiError> {
    let tx = c
        .transaction()
        .await
        .map_err(pg("starting a transaction"))?;
    let before = if create {
        None
    } else {
        tx.query_opt("SELECT 1 FROM customers WHERE ban = $1 FOR UPDATE", &[&ban])
            .await
            .map_err(pg(action))?
            .ok_or_else(|| ApiError::NotFound(format!("customer {ban:?} does not exist")))?;
        let b = view(&tx, ban).await?;
        if let Some(b) = &b {
            check(b)?;
        }
        b
    };
    for (sql, params) in steps {
        tx.execute(sql.as_str(), params).await.map_err(pg(action))?;
    }
    let after = view(&tx, ban).await?;
    audit_and_commit(tx, ctx, action, &target, before, after, create).await
}

/// The statements of `w` for customer `$1`: an UPDATE of its columns, the margin rules replaced.
fn steps<'a>(
    ban: &'a String,
    w: &'a Writes,
    insert: bool,
) -> Vec<(String, Vec<&'a (dyn ToSql + Sync)>)> {
    let mut out = vec![];
    let mut params: Vec<&(dyn ToSql + Sync)> = vec![ban];
    let mut names = vec![];
    let mut values = vec![];
    for (col, cast, v) in &w.cols {
        params.push(v.as_ref() as &(dyn ToSql + Sync));
        names.push(*col);
        values.push(format!("${}{cast}", params.len()));
    }
    if insert {
        out.push((
            format!(
                "INSERT INTO customers (ban{}) VALUES ($1{})",
                names.iter().map(|n| format!(", {n}")).collect::<String>(),
                values.iter().map(|v| format!(", {v}")).collect::<String>()
            ),
            params,
        ));
    } else if !names.is_empty() {
        let set: Vec<String> = names
            .iter()
            .zip(&values)
            .map(|(n, v)| format!("{n} = {v}"))
            .collect();
        out.push((
            format!("UPDATE customers SET {} WHERE ban = $1", set.join(", ")),
            params,
        ));
    }
    if let Some((ps, pcts, fees)) = &w.rules {
        out.push((
            "DELETE FROM customer_margin_rules WHERE customer_id = (SELECT id FROM customers WHERE ban = $1)"
                .to_string(),
            vec![ban],
        ));
        out.push((
            "INSERT INTO customer_margin_rules (customer_id, prefix, margin_percent, fixed_fee) \
             SELECT c.id, r.prefix, r.pct::numeric, r.fee::numeric FROM customers c, \
             unnest($2::text[], $3::text[], $4::text[]) AS r(prefix, pct, fee) WHERE c.ban = $1"
                .to_string(),
            vec![ban, ps, pcts, fees],
        ));
    }
    out
}

#[utoipa::path(get, path = "/v1/admin/customers", tag = "customers", security(("bearer" = [])),
    responses((status = 200, description = "every customer with its limits, margin rules, source IPs and partitions")))]
pub async fn customers_list(c: &tokio_postgres::Client) -> Result<AdminReply, ApiError> {
    list(c, &format!("{CUSTOMER_VIEW} ORDER BY c.ban")).await
}

#[utoipa::path(get, path = "/v1/admin/customers/{ban}", tag = "customers", security(("bearer" = [])),
    params(("ban" = String, Path, description = "customer BAN")),
    responses((status = 200, description = "the customer with its limits, margin rules, source IPs and partitions"),
        (status = 404, description = "no such customer")))]
pub async fn customer_get(c: &tokio_postgres::Client, ctx: &Ctx) -> Result<AdminReply, ApiError> {
    let ban = ctx.p("ban");
    let v = view(c, ban)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("customer {ban:?} does not exist")))?;
    json_reply(StatusCode::OK, &v)
}

#[utoipa::path(post, path = "/v1/admin/customers", tag = "customers", security(("bearer" = [])),
    request_body = CustomerIn, responses((status = 201, description = "created"),
        (status = 409, description = "the BAN exists"), (status = 422, description = "a bad value, the field named")))]
pub async fn customer_create(
    c: &mut tokio_postgres::Client,
    ctx: &Ctx,
) -> Result<AdminReply, ApiError> {
    let b: CustomerIn = ctx.json()?;
    let (ban, patch) = b.split();
    if ban.trim().is_empty() {
        return Err(bad("ban", "empty"));
    }
    let w = validate(patch)?;
    let st = steps(&ban, &w, true);
    let target = format!("customer {ban}");
    customer_tx(
        c,
        ctx,
        "customer.create",
        &ban,
        target,
        true,
        |_| Ok(()),
        &st,
    )
    .await
}

#[utoipa::path(patch, path = "/v1/admin/customers/{ban}", tag = "customers", security(("bearer" = [])),
    params(("ban" = String, Path, description = "customer BAN")), request_body = CustomerPatch,
    responses((status = 200, description = "updated: the customer before and after"),
        (status = 404, description = "no such customer"), (status = 422, description = "a bad value, the field named")))]
pub async fn customer_update(
    c: &mut tokio_postgres::Client,
    ctx: &Ctx,
) -> Result<AdminReply, ApiError> {
    let b: CustomerPatch = ctx.json()?;
    let ban = ctx.p("ban").to_string();
    let w = validate(b)?;
    let st = steps(&ban, &w, false);
    let target = format!("customer {ban}");
    customer_tx(
        c,
        ctx,
        "customer.update",
        &ban,
        target,
        false,
        |_| Ok(()),
        &st,
    )
    .await
}

#[utoipa::path(get, path = "/v1/admin/customers/{ban}/blocked_prefixes", tag = "customers",
    security(("bearer" = [])), params(("ban" = String, Path, description = "customer BAN")),
    responses((status = 200, description = "the blocked prefixes", body = [String]),
        (status = 404, description = "no such customer")))]
pub async fn blocked_prefixes_list(
    c: &tokio_postgres::Client,
    ctx: &Ctx,
) -> Result<AdminReply, ApiError> {
    let ban = ctx.p("ban");
    let v: Value = c
        .query_opt(
            "SELECT to_jsonb(blocked_prefixes) FROM customers WHERE ban = $1",
            &[&ban],
        )
        .await
        .map_err(pg("reading the customer"))?
        .ok_or_else(|| ApiError::NotFound(format!("customer {ban:?} does not exist")))?
        .get(0);
    json_reply(StatusCode::OK, &v)
}

#[utoipa::path(get, path = "/v1/admin/customers/{ban}/sell_rates", tag = "customers",
    security(("bearer" = [])),
    params(("ban" = String, Path, description = "customer BAN"),
        ("prefix" = Option<String>, Query, description = "sell prefixes starting with this"),
        ("limit" = Option<i64>, Query, description = "rows (default 1000, at most 100000)")),
    responses((status = 200, description = "the customer's sell deck (loaded by `warpd apply`), by prefix"),
        (status = 404, description = "no such customer")))]
pub async fn sell_rates_list(
    c: &tokio_postgres::Client,
    ctx: &Ctx,
) -> Result<AdminReply, ApiError> {
    let ban = ctx.p("ban").to_string();
    customer_exists(c, &ban).await?;
    let limit = ctx.int("limit")?.unwrap_or(1000).clamp(1, 100_000);
    let prefix = ctx.q("prefix").map(str::to_string);
    list_with(
        c,
        "SELECT r.prefix, trim_scale(r.rate_inter)::text AS interstate, \
         trim_scale(r.rate_intra)::text AS intrastate, trim_scale(r.rate_local)::text AS local, \
         r.effective_from, r.effective_until FROM customer_rates r JOIN customers c ON c.id = r.customer_id \
         WHERE c.ban = $1 AND ($2::text IS NULL OR r.prefix LIKE $2 || '%') \
         ORDER BY r.prefix, r.effective_from LIMIT $3",
        &[&ban, &prefix, &limit],
    )
    .await
}

fn is_blocked(customer: &Value, prefix: &str) -> bool {
    customer["blocked_prefixes"]
        .as_array()
        .is_some_and(|a| a.iter().any(|p| p == prefix))
}

#[utoipa::path(post, path = "/v1/admin/customers/{ban}/blocked_prefixes", tag = "customers",
    security(("bearer" = [])), params(("ban" = String, Path, description = "customer BAN")),
    request_body = BlockedPrefixIn,
    responses((status = 201, description = "blocked: the customer before and after"),
        (status = 404, description = "no such customer"), (status = 409, description = "blocked already"),
        (status = 422, description = "not E.164 digits")))]
pub async fn blocked_prefix_add(
    c: &mut tokio_postgres::Client,
    ctx: &Ctx,
) -> Result<AdminReply, ApiError> {
    let b: BlockedPrefixIn = ctx.json()?;
    let p = b.prefix.trim().to_string();
    check_prefix(&p, false).map_err(|m| bad("prefix", m))?;
    blocked_prefix_change(c, ctx, ctx.p("ban").to_string(), p, true).await
}

#[utoipa::path(delete, path = "/v1/admin/customers/{ban}/blocked_prefixes/{prefix}", tag = "customers",
    security(("bearer" = [])),
    params(("ban" = String, Path, description = "customer BAN"), ("prefix" = String, Path, description = "blocked prefix")),
    responses((status = 200, description = "unblocked: the customer before and after"),
        (status = 404, description = "no such customer, or the prefix is not blocked")))]
pub async fn blocked_prefix_remove(
    c: &mut tokio_postgres::Client,
    ctx: &Ctx,
) -> Result<AdminReply, ApiError> {
    let (ban, p) = (ctx.p("ban").to_string(), ctx.p("prefix").to_string());
    blocked_prefix_change(c, ctx, ban, p, false).await
}

/// Adds (`add`) or removes one blocked prefix of customer `ban`: 409 when adding one blocked
/// already, 404 when removing one that is not, 201 for an add.
async fn blocked_prefix_change(
    c: &mut tokio_postgres::Client,
    ctx: &Ctx,
    ban: String,
    p: String,
    add: bool,
) -> Result<AdminReply, ApiError> {
    let (fun, action) = if add {
        ("array_append", "customer.blocked_prefix.add")
    } else {
        ("array_remove", "customer.blocked_prefix.remove")
    };
    let sql = format!(
        "UPDATE customers SET blocked_prefixes = {fun}(blocked_prefixes, $2) WHERE ban = $1"
    );
    let st = vec![(sql, vec![&ban as &(dyn ToSql + Sync), &p])];
    let (ban2, p2) = (ban.clone(), p.clone());
    let reply = customer_tx(
        c,
        ctx,
        action,
        &ban,
        format!("customer {ban} blocked prefix {p}"),
        false,
        move |before| match (add, is_blocked(before, &p2)) {
            (true, true) => Err(ApiError::Conflict(format!(
                "customer {ban2} blocks prefix {p2} already"
            ))),
            (false, false) => Err(ApiError::NotFound(format!(
                "customer {ban2} blocked prefix {p2:?} does not exist"
            ))),
            _ => Ok(()),
        },
        &st,
    )
    .await?;
    Ok(if add {
        AdminReply {
            status: StatusCode::CREATED,
            ..reply
        }
    } else {
        reply
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn patch(v: Value) -> Result<Writes, ApiError> {
        validate(serde_json::from_value(v).unwrap())
    }

    fn err(v: Value) -> String {
        match patch(v) {
            Err(ApiError::Unprocessable(m)) => m,
            Err(e) => panic!("expected 422, got {e:?}"),
            Ok(_) => panic!("expected 422, got Ok"),
        }
    }

    #[test]
    fn bad_values_name_their_field() {
        assert!(
            err(json!({"blocked_prefixes": ["1900", "19x6"]})).starts_with("blocked_prefixes[1]: ")
        );
        assert!(err(json!({"blocked_prefixes": ["1900", "1900"]})).contains("listed twice"));
        assert!(err(json!({"allowed_classes": ["domestic", "moon"]}))
            .starts_with("allowed_classes[1]: \"moon\" is not one of"));
        assert!(err(json!({"max_rate": "-0.01"})).starts_with("max_rate: "));
        assert!(err(json!({"max_rate": 1000})).starts_with("max_rate: "));
        assert!(err(json!({"fixed_fee": "abc"})).starts_with("fixed_fee: "));
        assert!(err(json!({"max_results": 0})).starts_with("max_results: "));
        assert!(err(json!({"max_cps": -1})).starts_with("max_cps: "));
        assert!(err(json!({"billing_inc_seconds": 0})).starts_with("billing_inc_seconds: "));
        assert!(
            err(json!({"margin_rules": [{"prefix": "44a", "margin_percent": "5"}]}))
                .starts_with("margin_rules[0].prefix: ")
        );
        assert!(err(json!({"margin_rules": [{"margin_percent": "5"}, {"prefix": "", "margin_percent": "6"}]}))
            .starts_with("margin_rules[1].prefix: "));
        assert!(err(json!({"margin_rules": [{"margin_percent": "x"}]}))
            .starts_with("margin_rules[0].margin_percent: "));
    }

    #[test]
    fn good_values_become_columns() {
        let w = patch(json!({
            "max_rate": null, "blocked_prefixes": ["1900", " 1976"], "allowed_classes": ["premium", "toll-free"],
            "max_results": 3, "margin_percent": 12.5, "fixed_fee": "0.001", "max_concurrent_calls": null,
            "max_cps": 10, "margin_rules": [{"prefix": "44", "margin_percent": "-2"}]
        }))
        .unwrap();
        let cols: Vec<&str> = w.cols.iter().map(|c| c.0).collect();
        assert_eq!(
            cols,
            [
                "max_rate",
                "blocked_prefixes",
                "allowed_classes",
                "max_results",
                "margin_percent",
                "fixed_fee",
                "max_concurrent_calls",
                "max_cps"
            ]
        );
        assert_eq!(
            classes(&["premium".into(), "toll-free".into()]).unwrap(),
            ["tollfree", "premium"]
        );
        assert_eq!(
            w.rules,
            Some((vec!["44".into()], vec!["-2".into()], vec!["0".into()]))
        );
        // absent fields are left alone
        assert!(patch(json!({})).unwrap().cols.is_empty());
    }
}
