//! `/v1/admin/trunks` and `/v1/admin/numbers` (issue 19): customer trunks and phone numbers,
//! checked by `rules::trunk` (the rules of `warpd apply`'s `[[trunks]]`/`[[numbers]]`). Lists
//! never show an HA1 (credentials appear as user@realm only); moving a number to another customer
//! is its own action (`POST /v1/admin/numbers/{number}/move`), never a side effect of a create.

use super::customers::{nullable, CUSTOMER};
use super::prelude::*;
use crate::rules::trunk as tr;
use warpd_core::excerpt::excerpt;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TrunkIn {
    pub name: String,
    /// the owning customer's BAN
    pub customer: String,
    pub enabled: Option<bool>,
    pub max_concurrent_calls: Option<i32>,
    pub max_cps: Option<i32>,
}

/// A trunk's settings. An absent field is left alone; `null` clears a limit. Its lists have
/// their own routes (`/source_ips`, `/credentials`, `/destinations`).
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TrunkPatch {
    pub enabled: Option<bool>,
    /// null = no limit (the customer's still applies)
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<i64>, nullable = true)]
    pub max_concurrent_calls: Option<Option<i64>>,
    /// null = no limit
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<i64>, nullable = true)]
    pub max_cps: Option<Option<i64>>,
}

/// A number's settings. An absent field is left alone; `null` clears a nullable one. Its
/// customer changes only by `POST /v1/admin/numbers/{number}/move`.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NumberPatch {
    /// a trunk of the number's customer; null = none (not routable)
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>, nullable = true)]
    pub trunk: Option<Option<String>>,
    /// active, reserved, disabled, porting-in
    pub status: Option<String>,
    pub voice: Option<bool>,
    pub fax: Option<bool>,
    /// a SIP URI template replacing the trunk's destinations; null = the trunk's
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>, nullable = true)]
    pub destination: Option<Option<String>>,
    /// per-minute sell rate of inbound calls, e.g. "0.0045"
    pub inbound_rate: Option<String>,
    /// null = none
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>, nullable = true)]
    pub monthly_fee: Option<Option<String>>,
    /// null = none
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>, nullable = true)]
    pub cnam: Option<Option<String>>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NumberIn {
    /// E.164 with '+'
    pub number: String,
    pub customer: String,
    pub trunk: Option<String>,
    /// active, reserved, disabled, porting-in
    pub status: Option<String>,
    pub voice: Option<bool>,
    pub fax: Option<bool>,
    pub destination: Option<String>,
    /// per-minute sell rate of inbound calls, e.g. "0.0045"
    pub inbound_rate: Option<String>,
    pub monthly_fee: Option<String>,
    pub cnam: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NumberMove {
    /// the new customer's BAN
    pub customer: String,
    /// a trunk of the new customer (none: the number has no trunk until one is set)
    pub trunk: Option<String>,
}

const TRUNKS: Table = Table {
    noun: "trunk",
    list: "SELECT t.name, c.ban AS customer, t.enabled, t.max_concurrent_calls, t.max_cps, \
             (SELECT coalesce(array_agg(s.cidr::text ORDER BY s.cidr), '{}') FROM trunk_sources s WHERE s.trunk_id = t.id) AS source_ips, \
             (SELECT coalesce(array_agg(k.username || '@' || k.realm ORDER BY k.id), '{}') FROM trunk_credentials k WHERE k.trunk_id = t.id) AS credentials, \
             (SELECT count(*) FROM trunk_destinations d WHERE d.trunk_id = t.id) AS destinations \
           FROM trunks t JOIN customers c ON c.id = t.customer_id ORDER BY t.name",
    get: "SELECT t.name, c.ban AS customer, t.enabled, t.max_concurrent_calls, t.max_cps, \
             (SELECT jsonb_strip_nulls(jsonb_build_object('record', p.record, 't38_mode', p.t38_mode, \
                 'codec_allow', p.codec_allow, 'codec_strip', p.codec_strip)) \
              FROM media_policies p WHERE p.trunk_name = t.name) AS media_policy, \
             (SELECT coalesce(array_agg(s.cidr::text ORDER BY s.cidr), '{}') FROM trunk_sources s WHERE s.trunk_id = t.id) AS source_ips, \
             (SELECT coalesce(jsonb_agg(jsonb_build_object('credential', k.username || '@' || k.realm, \
                 'username', k.username, 'realm', k.realm) ORDER BY k.id), '[]') \
              FROM trunk_credentials k WHERE k.trunk_id = t.id) AS credentials, \
             (SELECT coalesce(jsonb_agg(jsonb_build_object('id', d.id, 'uri', d.uri, 'host', d.host, 'port', d.port, \
                 'transport', d.transport, 'priority', d.priority, 'weight', d.weight, 'enabled', d.enabled) \
                 ORDER BY d.priority, d.id), '[]') \
              FROM trunk_destinations d WHERE d.trunk_id = t.id) AS destinations, \
             (SELECT count(*) FROM numbers n WHERE n.trunk_id = t.id) AS numbers \
           FROM trunks t JOIN customers c ON c.id = t.customer_id WHERE t.name = $1",
    // `updated_at` is left out of the before/after of a change: a no-op PATCH writes no audit row
    lock: "SELECT to_jsonb(t.*) - 'updated_at' FROM trunks t WHERE name = $1 FOR UPDATE",
    delete: "DELETE FROM trunks WHERE name = $1 RETURNING NULL::jsonb",
};

const NUMBERS: Table = Table {
    noun: "number",
    list: "SELECT n.number, c.ban AS customer, t.name AS trunk, n.status, n.voice, n.fax, \
             n.destination, n.inbound_rate::text, n.monthly_fee::text, n.cnam \
           FROM numbers n JOIN customers c ON c.id = n.customer_id LEFT JOIN trunks t ON t.id = n.trunk_id \
           WHERE ($1::text IS NULL OR n.number LIKE $1 || '%') AND ($2::text IS NULL OR c.ban = $2) \
             AND ($3::text IS NULL OR t.name = $3) AND ($4::text IS NULL OR n.number > $4) \
           ORDER BY n.number LIMIT $5",
    get: "SELECT n.number, c.ban AS customer, t.name AS trunk, n.status, n.voice, n.fax, \
             n.destination, n.inbound_rate::text, n.monthly_fee::text, n.cnam, n.updated_at \
           FROM numbers n JOIN customers c ON c.id = n.customer_id LEFT JOIN trunks t ON t.id = n.trunk_id \
           WHERE n.number = $1",
    lock: "SELECT to_jsonb(n.*) - 'updated_at' FROM numbers n WHERE number = $1 FOR UPDATE",
    delete: "DELETE FROM numbers WHERE number = $1 RETURNING NULL::jsonb",
};

/// A number from the path: `+1…` (an unencoded '+' arrives form-decoded as a space), `%2B1…`
/// or the digits alone.
fn path_number(raw: &str) -> Result<String, rules::RuleError> {
    let raw = raw.trim();
    let d = raw
        .strip_prefix("%2B")
        .or_else(|| raw.strip_prefix("%2b"))
        .or_else(|| raw.strip_prefix('+'))
        .unwrap_or(raw);
    tr::e164("number", &format!("+{d}"))
}

/// The trunk `name` of customer `ban`, or a 400 naming `trunk`.
async fn check_trunk(c: &Client, name: &str, ban: &str) -> Result<(), AdminError> {
    let owner: Option<String> = c
        .query_opt(
            "SELECT c.ban FROM trunks t JOIN customers c ON c.id = t.customer_id WHERE t.name = $1",
            &[&name],
        )
        .await
        .map_err(AdminError::db("looking up the trunk"))?
        .map(|r| r.get(0));
    match owner {
        None => Err(AdminError::NotFound(format!(
            "trunk {} does not exist",
            excerpt(name)
        ))),
        Some(o) if o == ban => Ok(()),
        Some(_) => Err(rules::RuleError::invalid(
            "trunk",
            format!(
                "trunk {} belongs to another customer than {}",
                excerpt(name),
                excerpt(ban)
            ),
        )
        .into()),
    }
}

#[utoipa::path(get, path = "/v1/admin/trunks", tag = "customers", security(("bearer" = [])),
    responses((status = 200, description = "every trunk (credentials as user@realm, never an HA1)")))]
pub async fn trunks_list(_: &AdminState, _: &mut Ctx, c: &mut Client) -> Reply {
    TRUNKS.list(c, &[]).await
}

#[utoipa::path(get, path = "/v1/admin/trunks/{trunk}", tag = "customers", security(("bearer" = [])),
    params(("trunk" = String, Path, description = "trunk name")),
    responses((status = 200, description = "the trunk with its source networks, credentials (user@realm, \
        never an HA1) and destinations"), (status = 404, description = "no such trunk")))]
pub async fn trunk_get(_: &AdminState, ctx: &mut Ctx, c: &mut Client) -> Reply {
    TRUNKS.get(c, ctx.p("trunk")).await
}

#[utoipa::path(patch, path = "/v1/admin/trunks/{trunk}", tag = "customers", security(("bearer" = [])),
    params(("trunk" = String, Path, description = "trunk name")),
    request_body = TrunkPatch, responses((status = 200, description = "updated (before and after)"),
    (status = 404, description = "no such trunk")))]
pub async fn trunk_update(_: &AdminState, ctx: &mut Ctx, c: &mut Client) -> Reply {
    let b: TrunkPatch = ctx.json()?;
    let name = ctx.p("trunk").to_string();
    let limit = |rule: &rules::IntRule,
                 v: Option<Option<i64>>|
     -> Result<(bool, Option<i32>), rules::RuleError> {
        match v {
            None => Ok((false, None)),
            Some(v) => Ok((true, rule.optional("", v)?)),
        }
    };
    let (set_calls, calls) = limit(&tr::TRUNK_MAX_CALLS, b.max_concurrent_calls)?;
    let (set_cps, cps) = limit(&tr::TRUNK_MAX_CPS, b.max_cps)?;
    TRUNKS
        .update(
            &name,
            vec![&name],
            "UPDATE trunks SET enabled = coalesce($2, enabled), \
               max_concurrent_calls = CASE WHEN $3 THEN $4 ELSE max_concurrent_calls END, \
               max_cps = CASE WHEN $5 THEN $6 ELSE max_cps END, updated_at = now() \
             WHERE name = $1 RETURNING to_jsonb(trunks.*) - 'updated_at'",
            vec![&name, &b.enabled, &set_calls, &calls, &set_cps, &cps],
        )
        .run(c, ctx)
        .await
}

#[utoipa::path(post, path = "/v1/admin/trunks", tag = "customers", security(("bearer" = [])),
    request_body = TrunkIn, responses((status = 201, description = "created"),
    (status = 404, description = "no such customer")))]
pub async fn trunk_create(_: &AdminState, ctx: &mut Ctx, c: &mut Client) -> Reply {
    let b: TrunkIn = ctx.json()?;
    let name = tr::trunk_name("", &b.name)?;
    let max_calls = tr::TRUNK_MAX_CALLS.optional("", b.max_concurrent_calls.map(i64::from))?;
    let max_cps = tr::TRUNK_MAX_CPS.optional("", b.max_cps.map(i64::from))?;
    let enabled = b.enabled.unwrap_or(true);
    CUSTOMER.exists(c, &b.customer).await?;
    TRUNKS
        .create(
            &name,
            "INSERT INTO trunks (name, customer_id, enabled, max_concurrent_calls, max_cps) \
             VALUES ($1, (SELECT id FROM customers WHERE ban = $2), $3, $4, $5) RETURNING to_jsonb(trunks.*)",
            vec![&name, &b.customer, &enabled, &max_calls, &max_cps],
        )
        .run(c, ctx)
        .await
}

#[utoipa::path(delete, path = "/v1/admin/trunks/{trunk}", tag = "customers", security(("bearer" = [])),
    params(("trunk" = String, Path, description = "trunk name")),
    responses((status = 200, description = "deleted (its sources, credentials, destinations with it)")))]
pub async fn trunk_delete(_: &AdminState, ctx: &mut Ctx, c: &mut Client) -> Reply {
    let name = ctx.p("trunk").to_string();
    TRUNKS.delete(&name, vec![&name]).run(c, ctx).await
}

#[utoipa::path(get, path = "/v1/admin/numbers", tag = "customers", security(("bearer" = [])),
    params(("prefix" = Option<String>, Query, description = "numbers starting with these digits ('+' optional)"),
        ("customer" = Option<String>, Query, description = "numbers of this customer (BAN)"),
        ("trunk" = Option<String>, Query, description = "numbers on this trunk"),
        ("after" = Option<String>, Query, description = "numbers after this one (the last of the previous page)"),
        ("limit" = Option<i64>, Query, description = "rows (default and at most 10,000)")),
    responses((status = 200, description = "numbers by number (a page: pass the last one as `after` for the next)")))]
pub async fn numbers_list(_: &AdminState, ctx: &mut Ctx, c: &mut Client) -> Reply {
    let prefix = match ctx.q("prefix") {
        None => None,
        Some(p) => {
            let d = p.trim().trim_start_matches('+');
            if d.len() > 15 || !d.bytes().all(|b| b.is_ascii_digit()) {
                return Err(rules::RuleError::invalid(
                    "prefix",
                    format!("{} is not up to 15 digits", excerpt(p)),
                )
                .into());
            }
            Some(format!("+{d}"))
        }
    };
    let after = ctx.q("after").map(path_number).transpose()?;
    let customer = ctx.q("customer").map(str::to_string);
    let trunk = ctx.q("trunk").map(str::to_string);
    let limit = ctx.int("limit")?.unwrap_or(10_000).clamp(1, 10_000);
    NUMBERS
        .list(c, &[&prefix, &customer, &trunk, &after, &limit])
        .await
}

#[utoipa::path(get, path = "/v1/admin/numbers/{number}", tag = "customers", security(("bearer" = [])),
    params(("number" = String, Path, description = "the number (+ and digits, or digits)")),
    responses((status = 200, description = "the number"), (status = 404, description = "no such number")))]
pub async fn number_get(_: &AdminState, ctx: &mut Ctx, c: &mut Client) -> Reply {
    let number = path_number(ctx.p("number"))?;
    NUMBERS.get(c, &number).await
}

#[utoipa::path(patch, path = "/v1/admin/numbers/{number}", tag = "customers", security(("bearer" = [])),
    params(("number" = String, Path, description = "the number (+ and digits, or digits)")),
    request_body = NumberPatch, responses((status = 200, description = "updated (before and after)"),
    (status = 404, description = "no such number or trunk")))]
pub async fn number_update(_: &AdminState, ctx: &mut Ctx, c: &mut Client) -> Reply {
    let number = path_number(ctx.p("number"))?;
    let b: NumberPatch = ctx.json()?;
    let status = b
        .status
        .as_deref()
        .map(|s| tr::number_status("status", Some(s)).map(|v| v.as_str()))
        .transpose()?;
    let destination = match &b.destination {
        Some(Some(u)) => Some(Some(tr::sip_uri("destination", u)?)),
        Some(None) => Some(None),
        None => None,
    };
    let rate = b
        .inbound_rate
        .as_deref()
        .map(|s| money("inbound_rate", s))
        .transpose()?;
    let fee = match &b.monthly_fee {
        Some(Some(s)) => Some(Some(money("monthly_fee", s)?)),
        Some(None) => Some(None),
        None => None,
    };
    let cnam = match &b.cnam {
        Some(Some(v)) => Some(Some(tr::cnam("cnam", v)?)),
        Some(None) => Some(None),
        None => None,
    };
    if let Some(Some(t)) = &b.trunk {
        let ban: Option<String> = c
            .query_opt(
                "SELECT c.ban FROM numbers n JOIN customers c ON c.id = n.customer_id WHERE n.number = $1",
                &[&number],
            )
            .await
            .map_err(AdminError::db("looking up the number"))?
            .map(|r| r.get(0));
        let Some(ban) = ban else {
            return Err(AdminError::NotFound(format!(
                "number {number} does not exist"
            )));
        };
        check_trunk(c, t, &ban).await?;
    }
    let (set_trunk, trunk) = (b.trunk.is_some(), b.trunk.clone().flatten());
    let (set_dest, dest) = (destination.is_some(), destination.flatten());
    let (set_fee, fee) = (fee.is_some(), fee.flatten());
    let (set_cnam, cnam) = (cnam.is_some(), cnam.flatten());
    NUMBERS
        .update(
            &number,
            vec![&number],
            "UPDATE numbers SET \
               trunk_id = CASE WHEN $2 THEN (SELECT id FROM trunks WHERE name = $3) ELSE trunk_id END, \
               status = coalesce($4::text::number_status, status), \
               voice = coalesce($5, voice), fax = coalesce($6, fax), \
               destination = CASE WHEN $7 THEN $8 ELSE destination END, \
               inbound_rate = coalesce($9::bigint / 10000000.0, inbound_rate), \
               monthly_fee = CASE WHEN $10 THEN $11::bigint / 10000000.0 ELSE monthly_fee END, \
               cnam = CASE WHEN $12 THEN $13 ELSE cnam END, updated_at = now() \
             WHERE number = $1 RETURNING to_jsonb(numbers.*) - 'updated_at'",
            vec![
                &number, &set_trunk, &trunk, &status, &b.voice, &b.fax, &set_dest, &dest, &rate,
                &set_fee, &fee, &set_cnam, &cnam,
            ],
        )
        .run(c, ctx)
        .await
}

/// A money value (`"0.0045"`) in 1e-7 units, or a rule error naming `field`.
fn money(field: &str, s: &str) -> Result<i64, rules::RuleError> {
    rules::values::parse_rate(s)
        .map(i64::from)
        .map_err(|why| rules::RuleError::invalid(field, why))
}

#[utoipa::path(post, path = "/v1/admin/numbers", tag = "customers", security(("bearer" = [])),
    request_body = NumberIn, responses((status = 201, description = "created"),
    (status = 404, description = "no such customer or trunk")))]
pub async fn number_create(_: &AdminState, ctx: &mut Ctx, c: &mut Client) -> Reply {
    let b: NumberIn = ctx.json()?;
    let number = tr::e164("number", &b.number)?;
    let status = tr::number_status("status", b.status.as_deref())?.as_str();
    let destination = b
        .destination
        .as_deref()
        .map(|u| tr::sip_uri("destination", u))
        .transpose()?;
    let rate = b
        .inbound_rate
        .as_deref()
        .map(|s| money("inbound_rate", s))
        .transpose()?
        .unwrap_or(0);
    let fee = b
        .monthly_fee
        .as_deref()
        .map(|s| money("monthly_fee", s))
        .transpose()?;
    let cnam = b.cnam.as_deref().map(|v| tr::cnam("cnam", v)).transpose()?;
    let (voice, fax) = (b.voice.unwrap_or(true), b.fax.unwrap_or(false));
    CUSTOMER.exists(c, &b.customer).await?;
    if let Some(t) = &b.trunk {
        check_trunk(c, t, &b.customer).await?;
    }
    NUMBERS
        .create(
            &number,
            "INSERT INTO numbers (number, customer_id, trunk_id, status, voice, fax, destination, \
               inbound_rate, monthly_fee, cnam) \
             VALUES ($1, (SELECT id FROM customers WHERE ban = $2), (SELECT id FROM trunks WHERE name = $3), \
               $4::text::number_status, $5, $6, $7, $8::bigint / 10000000.0, $9::bigint / 10000000.0, $10) \
             RETURNING to_jsonb(numbers.*)",
            vec![&number, &b.customer, &b.trunk, &status, &voice, &fax, &destination, &rate, &fee, &cnam],
        )
        .run(c, ctx)
        .await
}

#[utoipa::path(post, path = "/v1/admin/numbers/{number}/move", tag = "customers", security(("bearer" = [])),
    params(("number" = String, Path, description = "the number (+ and digits, or digits)")),
    request_body = NumberMove, responses((status = 200, description = "moved"),
    (status = 404, description = "no such number, customer or trunk")))]
pub async fn number_move(_: &AdminState, ctx: &mut Ctx, c: &mut Client) -> Reply {
    let number = path_number(ctx.p("number"))?;
    let b: NumberMove = ctx.json()?;
    CUSTOMER.exists(c, &b.customer).await?;
    if let Some(t) = &b.trunk {
        check_trunk(c, t, &b.customer).await?;
    }
    NUMBERS
        .update(
            &number,
            vec![&number],
            "UPDATE numbers SET customer_id = (SELECT id FROM customers WHERE ban = $2), \
               trunk_id = (SELECT id FROM trunks WHERE name = $3), updated_at = now() \
             WHERE number = $1 RETURNING to_jsonb(numbers.*) - 'updated_at'",
            vec![&number, &b.customer, &b.trunk],
        )
        .run(c, ctx)
        .await
}

#[utoipa::path(delete, path = "/v1/admin/numbers/{number}", tag = "customers", security(("bearer" = [])),
    params(("number" = String, Path, description = "the number (+ and digits, or digits)")),
    responses((status = 200, description = "deleted")))]
pub async fn number_delete(_: &AdminState, ctx: &mut Ctx, c: &mut Client) -> Reply {
    let number = path_number(ctx.p("number"))?;
    NUMBERS.delete(&number, vec![&number]).run(c, ctx).await
}

#[utoipa::path(post, path = "/v1/admin/numbers/import", tag = "customers", security(("bearer" = [])),
    params(("dry_run" = Option<bool>, Query, description = "check and count; change nothing"),
        ("name" = Option<String>, Query, description = "file name to record in the audit row (default: the multipart file name)")),
    request_body(content = String, description = "numbers as CSV with a header: number, customer (BAN) required; \
        trunk, status, voice, fax, destination, inbound_rate, monthly_fee, cnam, move optional \
        (docs/PROVISIONING.md). Raw body or a multipart/form-data file part.", content_type = "text/csv"),
    responses((status = 200, description = "import report: rows, inserted, updated, moved"),
        (status = 422, description = "bad lines (each named by line and field); nothing imported"),
        (status = 413, description = "larger than the upload limit")))]
pub async fn numbers_import(_: &AdminState, ctx: &mut Ctx, c: &mut Client) -> Reply {
    let upload = ctx
        .upload
        .take()
        .ok_or_else(|| AdminError::invalid("body", "no CSV uploaded"))?;
    let dry_run = ctx.flag("dry_run")?;
    let name = ctx
        .q("name")
        .map(str::to_string)
        .or_else(|| upload.file_name.clone())
        .unwrap_or_else(|| "upload".into());
    let name = warpd_core::excerpt::excerpt(&name);
    let report =
        crate::provision::numbers_import::import(c, upload.file, &name, &ctx.actor(), dry_run)
            .await?;
    json_reply(StatusCode::OK, &report)
}
