//! `/v1/admin/customers`: customers and their limits: every column of `customers` (ceiling,
//! blocked prefixes, allowed destination classes, default max results, margin default and fee,
//! allow-negative-margin, call limits, billing increments) and the margin rules
//! (`customer_margin_rules`, replaced as a list); also the customer's sell deck (read only).
//!
//! Values are checked by `crate::rules` (as `warpd apply` checks them): a bad value is a 422
//! naming the field; a wrong JSON type or an unknown field is a 400. Writes reach the routing
//! snapshot through the tables' NOTIFY triggers (sql/0001_routing.sql); call limits and billing
//! increments through the calls service's periodic refresh (`calls.limits_refresh_ms`).
//!
//! Owns: the customer handlers' bodies and SQL. Must not touch: routing, the schema.

use serde::Deserializer;
use serde_json::Value;
use tokio_postgres::types::ToSql;
use tokio_postgres::GenericClient;

use super::prelude::*;
use crate::rules::RuleError;

/// Used by the resources that name a customer.
pub const CUSTOMER: Lookup = Lookup {
    what: "customer",
    sql: "SELECT 1 FROM customers WHERE ban = $1",
    context: "looking up the customer",
};

/// A decimal given as a JSON string (`"0.05"`, preferred: exact) or a number (`0.05`).
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum Dec {
    Text(String),
    Num(serde_json::Number),
}

impl Dec {
    pub fn text(&self) -> String {
        match self {
            Dec::Text(s) => s.trim().to_string(),
            Dec::Num(n) => n.to_string(),
        }
    }
}

/// `Some(None)` for an explicit `null` (clear the value), `None` when the field is absent.
pub(super) fn nullable<'de, D: Deserializer<'de>, T: Deserialize<'de>>(
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
    /// any of domestic, international, tollfree (or toll-free), premium, canada, caribbean
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
    /// answered with the customer's emergency calls for P-Asserted-Identity (any number form,
    /// stored as E.164 digits); null = none
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>, nullable = true)]
    pub emergency_callback: Option<Option<String>>,
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
    pub emergency_callback: Option<String>,
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
            emergency_callback,
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
            emergency_callback: emergency_callback.map(Some),
        };
        (ban, patch)
    }
}

type Param = Box<dyn ToSql + Sync + Send>;

/// The validated writes of a create/patch: (column, SQL cast, value) and the margin rules.
#[derive(Default)]
pub(super) struct Writes {
    cols: Vec<(&'static str, &'static str, Param)>,
    /// (prefix, margin percent, fixed fee) as decimal text
    rules: Option<(Vec<String>, Vec<String>, Vec<String>)>,
}

fn money(field: &str, d: &Dec) -> Result<String, RuleError> {
    let t = d.text();
    rules::money(field, &t)?;
    Ok(t)
}

fn percent(field: &str, d: &Dec) -> Result<String, RuleError> {
    let t = d.text();
    rules::percent(field, &t)?;
    Ok(t)
}

fn validate(b: CustomerPatch) -> Result<Writes, RuleError> {
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
        let v = rules::blocked_prefixes("blocked_prefixes", &ps)?;
        col("blocked_prefixes", "::text[]", Box::new(v));
    }
    if let Some(cs) = b.allowed_classes {
        let v: Vec<&str> = rules::allowed_classes("allowed_classes", &cs)?
            .iter()
            .map(|k| k.as_str())
            .collect();
        col("allowed_classes", "::text[]::dest_class[]", Box::new(v));
    }
    if let Some(n) = b.max_results {
        col(
            "max_results",
            "",
            Box::new(rules::MAX_RESULTS.value("", Some(n))?),
        );
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
    for (rule, v) in [
        (&rules::MAX_CONCURRENT_CALLS, b.max_concurrent_calls),
        (&rules::MAX_CPS, b.max_cps),
        (&rules::BILLING_MIN_SECONDS, b.billing_min_seconds),
        (&rules::BILLING_INC_SECONDS, b.billing_inc_seconds),
    ] {
        if let Some(v) = v {
            col(rule.field, "", Box::new(rule.optional("", v)?));
        }
    }
    if let Some(e) = b.emergency_callback {
        let v = e
            .as_deref()
            .map(|v| rules::emergency_callback("emergency_callback", v))
            .transpose()?;
        col("emergency_callback", "", Box::new(v));
    }
    if let Some(rs) = b.margin_rules {
        let (mut ps, mut pcts, mut fees) = (vec![], vec![], vec![]);
        for (j, r) in rs.iter().enumerate() {
            let f = format!("margin_rules[{j}]");
            let p = rules::margin_prefix(format!("{f}.prefix"), &r.prefix, &ps)?;
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

/// The writes of a new customer: its BAN and every limit, omitted ones at their defaults.
fn new_customer(b: CustomerIn) -> Result<(String, Writes), RuleError> {
    let (ban, mut patch) = b.split();
    rules::name("ban", &ban)?;
    patch.enabled.get_or_insert(rules::DEFAULT_ENABLED);
    patch.max_results.get_or_insert(rules::MAX_RESULTS.default);
    patch
        .allow_negative_margin
        .get_or_insert(rules::DEFAULT_ALLOW_NEGATIVE_MARGIN);
    patch.allowed_classes.get_or_insert_with(|| {
        rules::DEFAULT_CLASSES
            .iter()
            .map(|k| k.as_str().to_string())
            .collect()
    });
    Ok((ban, validate(patch)?))
}

/// Every customer field, its margin rules, sell deck size, source IPs and partitions, one row per
/// customer; append `WHERE c.ban = $1` for one.
const CUSTOMER_VIEW: &str = "SELECT c.ban, c.name, c.enabled, c.max_rate, c.blocked_prefixes, \
     c.allowed_classes::text[] AS allowed_classes, c.max_results, c.allow_negative_margin, \
     c.margin_percent, c.fixed_fee, c.max_concurrent_calls, c.max_cps, c.billing_min_seconds, \
     c.billing_inc_seconds, c.emergency_callback, \
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

pub(super) async fn view<C: GenericClient>(c: &C, ban: &str) -> Result<Option<Value>, AdminError> {
    let sql = format!("SELECT to_jsonb(t) FROM ({CUSTOMER_VIEW} WHERE c.ban = $1) t");
    Ok(c.query_opt(&sql, &[&ban])
        .await
        .map_err(AdminError::db("reading the customer"))?
        .map(|r| r.get(0)))
}

/// One customer change in a transaction: lock the row (404 when missing, unless `create`),
/// `check` the row before, run `steps`, write the audit row with the customer before and after.
#[allow(clippy::too_many_arguments)] // as `change`: one call per handler; a struct would only rename them
pub(super) async fn customer_tx(
    c: &mut Client,
    ctx: &Ctx,
    action: &str,
    ban: &str,
    target: String,
    create: bool,
    check: impl FnOnce(&Value) -> Result<(), AdminError>,
    steps: &[(String, Vec<&(dyn ToSql + Sync)>)],
) -> Result<AdminReply, AdminError> {
    let tx = c
        .transaction()
        .await
        .map_err(AdminError::db("starting a transaction"))?;
    let before = if create {
        None
    } else {
        tx.query_opt("SELECT 1 FROM customers WHERE ban = $1 FOR UPDATE", &[&ban])
            .await
            .map_err(AdminError::db(action))?
            .ok_or_else(|| AdminError::NotFound(format!("customer {ban:?} does not exist")))?;
        let b = view(&tx, ban).await?;
        if let Some(b) = &b {
            check(b)?;
        }
        b
    };
    for (sql, params) in steps {
        tx.execute(sql.as_str(), params)
            .await
            .map_err(AdminError::db(action))?;
    }
    let after = view(&tx, ban).await?;
    crud::audit_and_commit(tx, ctx, action, &target, before, after, create).await
}

/// The statements of `w` for customer `$1`: an UPDATE of its columns, the margin rules replaced.
pub(super) fn steps<'a>(
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
pub async fn customers_list(_: &AdminState, _: &mut Ctx, c: &mut Client) -> Reply {
    crud::list(c, &format!("{CUSTOMER_VIEW} ORDER BY c.ban"), &[]).await
}

#[utoipa::path(get, path = "/v1/admin/customers/{ban}", tag = "customers", security(("bearer" = [])),
    params(("ban" = String, Path, description = "customer BAN")),
    responses((status = 200, description = "the customer with its limits, margin rules, source IPs and partitions"),
        (status = 404, description = "no such customer")))]
pub async fn customer_get(_: &AdminState, ctx: &mut Ctx, c: &mut Client) -> Reply {
    let ban = ctx.p("ban");
    let v = view(c, ban)
        .await?
        .ok_or_else(|| AdminError::NotFound(format!("customer {ban:?} does not exist")))?;
    json_reply(StatusCode::OK, &v)
}

#[utoipa::path(post, path = "/v1/admin/customers", tag = "customers", security(("bearer" = [])),
    request_body = CustomerIn, responses((status = 201, description = "created"),
        (status = 409, description = "the BAN exists"), (status = 422, description = "a bad value, the field named")))]
pub async fn customer_create(_: &AdminState, ctx: &mut Ctx, c: &mut Client) -> Reply {
    let (ban, w) = new_customer(ctx.json()?)?;
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
pub async fn customer_update(_: &AdminState, ctx: &mut Ctx, c: &mut Client) -> Reply {
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

#[utoipa::path(delete, path = "/v1/admin/customers/{ban}", tag = "customers", security(("bearer" = [])),
    params(("ban" = String, Path, description = "customer BAN")),
    responses((status = 200, description = "deleted")))]
pub async fn customer_delete(_: &AdminState, ctx: &mut Ctx, c: &mut Client) -> Reply {
    let ban = ctx.p("ban").to_string();
    Change {
        action: "customer.delete".into(),
        target: format!("customer {ban}"),
        before: Some((
            "SELECT to_jsonb(c.*) FROM customers c WHERE ban = $1 FOR UPDATE",
            vec![&ban],
        )),
        write: "DELETE FROM customers WHERE ban = $1 RETURNING NULL::jsonb",
        params: vec![&ban],
        created: false,
    }
    .run(c, ctx)
    .await
}

#[utoipa::path(get, path = "/v1/admin/customers/{ban}/sell_rates", tag = "customers",
    security(("bearer" = [])),
    params(("ban" = String, Path, description = "customer BAN"),
        ("prefix" = Option<String>, Query, description = "sell prefixes starting with this"),
        ("limit" = Option<i64>, Query, description = "rows (default 1000, at most 100000)")),
    responses((status = 200, description = "the customer's sell deck (loaded by `warpd apply`), by prefix"),
        (status = 404, description = "no such customer")))]
pub async fn sell_rates_list(_: &AdminState, ctx: &mut Ctx, c: &mut Client) -> Reply {
    let ban = ctx.p("ban").to_string();
    CUSTOMER.exists(c, &ban).await?;
    let limit = ctx.int("limit")?.unwrap_or(1000).clamp(1, 100_000);
    let prefix = ctx.q("prefix").map(str::to_string);
    crud::list(
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::routing::DestClass;

    fn patch(v: Value) -> Result<Writes, RuleError> {
        validate(serde_json::from_value(v).unwrap())
    }

    fn err(v: Value) -> String {
        match patch(v).map_err(AdminError::from) {
            Err(e) if e.http_status() == StatusCode::UNPROCESSABLE_ENTITY => e.to_string(),
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
            rules::allowed_classes("allowed_classes", &["premium".into(), "toll-free".into()])
                .unwrap(),
            [DestClass::Tollfree, DestClass::Premium]
        );
        assert_eq!(
            w.rules,
            Some((vec!["44".into()], vec!["-2".into()], vec!["0".into()]))
        );
        // absent fields are left alone
        assert!(patch(json!({})).unwrap().cols.is_empty());
    }

    #[test]
    fn new_customers_get_the_rule_defaults() {
        let new = |v| new_customer(serde_json::from_value(v).unwrap());
        let (ban, w) = new(json!({"ban": "1001"})).unwrap();
        let cols: Vec<&str> = w.cols.iter().map(|c| c.0).collect();
        assert_eq!(
            (ban.as_str(), cols),
            (
                "1001",
                vec![
                    "enabled",
                    "allowed_classes",
                    "max_results",
                    "allow_negative_margin"
                ]
            )
        );
        // drift fixed: a BAN with spaces around it was stored by the admin API, refused by apply
        assert!(new(json!({"ban": " 1001"}))
            .err()
            .is_some_and(|e| e.to_string().starts_with("ban: ")));
        assert!(new(json!({"ban": ""})).is_err());
    }
}
