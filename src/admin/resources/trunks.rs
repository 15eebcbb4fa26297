//! `/v1/admin/trunks` and `/v1/admin/numbers` (issue 19): customer trunks and phone numbers,
//! checked by `rules::trunk` (the rules of `warpd apply`'s `[[trunks]]`/`[[numbers]]`). Lists
//! never show an HA1 (credentials appear as user@realm only); moving a number to another customer
//! is its own action (`POST /v1/admin/numbers/{number}/move`), never a side effect of a create.

use super::customers::CUSTOMER;
use super::prelude::*;
use crate::rules::trunk as tr;

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
    get: "",
    lock: "SELECT to_jsonb(t.*) FROM trunks t WHERE name = $1 FOR UPDATE",
    delete: "DELETE FROM trunks WHERE name = $1 RETURNING NULL::jsonb",
};

const NUMBERS: Table = Table {
    noun: "number",
    list: "SELECT n.number, c.ban AS customer, t.name AS trunk, n.status, n.voice, n.fax, \
             n.destination, n.inbound_rate::text, n.monthly_fee::text, n.cnam \
           FROM numbers n JOIN customers c ON c.id = n.customer_id LEFT JOIN trunks t ON t.id = n.trunk_id \
           ORDER BY n.number LIMIT 10000",
    get: "",
    lock: "SELECT to_jsonb(n.*) FROM numbers n WHERE number = $1 FOR UPDATE",
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
            "trunk {name:?} does not exist"
        ))),
        Some(o) if o == ban => Ok(()),
        Some(_) => Err(rules::RuleError::invalid(
            "trunk",
            format!("trunk {name:?} belongs to another customer than {ban:?}"),
        )
        .into()),
    }
}

#[utoipa::path(get, path = "/v1/admin/trunks", tag = "customers", security(("bearer" = [])),
    responses((status = 200, description = "every trunk (credentials as user@realm, never an HA1)")))]
pub async fn trunks_list(_: &AdminState, _: &mut Ctx, c: &mut Client) -> Reply {
    TRUNKS.list(c, &[]).await
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
    responses((status = 200, description = "numbers (at most 10,000, by number)")))]
pub async fn numbers_list(_: &AdminState, _: &mut Ctx, c: &mut Client) -> Reply {
    NUMBERS.list(c, &[]).await
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
    let money = |f: &str, v: &Option<String>| -> Result<Option<i64>, rules::RuleError> {
        v.as_deref()
            .map(|s| {
                rules::values::parse_rate(s)
                    .map(i64::from)
                    .map_err(|why| rules::RuleError::invalid(f, why))
            })
            .transpose()
    };
    let rate = money("inbound_rate", &b.inbound_rate)?.unwrap_or(0);
    let fee = money("monthly_fee", &b.monthly_fee)?;
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
             WHERE number = $1 RETURNING to_jsonb(numbers.*)",
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
