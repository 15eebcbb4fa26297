//! A trunk's lists (issue 19), each edited by its own routes under `/v1/admin/trunks/{trunk}/`:
//! source networks (`source_ips`), SIP digest credentials (`credentials`) and destinations
//! (`destinations`). Values are checked by `rules::trunk`, the rules of `warpd apply`'s
//! `[[trunks]]` (the same CIDR, user, realm, HA1/password, URI, host, port, transport, priority
//! and weight rules), and every change is one audited transaction.
//!
//! Credentials take an HA1 or a password. A password is hashed by PostgreSQL into the HA1
//! (`md5(user:realm:password)`, as `warpd apply` does) inside the INSERT and is never stored,
//! returned, audited or logged; an HA1 is never returned or audited either (audit rows and
//! answers show `user@realm`). Rotating a secret is a DELETE and a POST.

use super::prelude::*;
use crate::rules::trunk as tr;
use warpd_core::excerpt::excerpt;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TrunkSourceIn {
    /// a network (`10.1.0.0/24`) or one address
    pub cidr: String,
}

/// Digest credentials: exactly one of `ha1` and `password`.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CredentialIn {
    pub username: String,
    pub realm: String,
    /// MD5(username:realm:password), 32 hex digits
    pub ha1: Option<String>,
    /// hashed into the HA1 by the database; never stored
    pub password: Option<String>,
}

/// Never prints a secret.
impl std::fmt::Debug for CredentialIn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CredentialIn")
            .field("username", &self.username)
            .field("realm", &self.realm)
            .finish_non_exhaustive()
    }
}

/// A destination (POST: `uri` or `host` required; PATCH: absent fields keep their values).
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DestinationBody {
    /// a SIP URI template (`${number}` = the E.164 digits); else host/port/transport
    pub uri: Option<String>,
    pub host: Option<String>,
    /// default 5060
    pub port: Option<i64>,
    /// udp (default), tcp, tls
    pub transport: Option<String>,
    /// ascending: lower is tried first (default 10)
    pub priority: Option<i64>,
    /// within one priority, a weighted order seeded by the call (default 1; 0 = last)
    pub weight: Option<i64>,
    pub enabled: Option<bool>,
}

const TRUNK: Lookup = Lookup {
    what: "trunk",
    sql: "SELECT 1 FROM trunks WHERE name = $1",
    context: "looking up the trunk",
};

fn destination(at: &str, b: &DestinationBody) -> Result<tr::Destination, rules::RuleError> {
    tr::destination(
        at,
        tr::DestinationIn {
            uri: b.uri.as_deref(),
            host: b.host.as_deref(),
            port: b.port,
            transport: b.transport.as_deref(),
            priority: b.priority,
            weight: b.weight,
            enabled: b.enabled,
        },
    )
}

/// The audit/answer form of a destination row (`d`).
const DEST_JSON: &str =
    "jsonb_build_object('trunk', (SELECT name FROM trunks WHERE id = d.trunk_id), \
    'id', d.id, 'uri', d.uri, 'host', d.host, 'port', d.port, 'transport', d.transport, \
    'priority', d.priority, 'weight', d.weight, 'enabled', d.enabled)";

#[utoipa::path(post, path = "/v1/admin/trunks/{trunk}/source_ips", tag = "customers",
    security(("bearer" = [])), params(("trunk" = String, Path, description = "trunk name")),
    request_body = TrunkSourceIn, responses((status = 201, description = "added"),
    (status = 404, description = "no such trunk"),
    (status = 409, description = "the network overlaps another trunk's")))]
pub async fn trunk_source_add(_: &AdminState, ctx: &mut Ctx, c: &mut Client) -> Reply {
    let b: TrunkSourceIn = ctx.json()?;
    let name = ctx.p("trunk").to_string();
    let net = tr::source_cidr("cidr", &b.cidr)?;
    TRUNK.exists(c, &name).await?;
    let text = net.to_string();
    // a network belongs to one trunk (the schema's exclusion constraint): say which one
    let owner = c
        .query_opt(
            "SELECT t.name, s.cidr::text FROM trunk_sources s JOIN trunks t ON t.id = s.trunk_id \
             WHERE s.cidr && $1::text::cidr LIMIT 1",
            &[&text],
        )
        .await
        .map_err(AdminError::db("looking up trunk sources"))?;
    if let Some(r) = owner {
        let (other, cidr): (String, String) = (r.get(0), r.get(1));
        return Err(AdminError::Conflict(format!(
            "cidr: {text} overlaps {cidr} of trunk {other:?}: a network belongs to one trunk"
        )));
    }
    Change {
        action: "trunk.source_ip.add".into(),
        target: format!("trunk {name} source {text}"),
        before: None,
        write: "INSERT INTO trunk_sources (trunk_id, cidr) SELECT id, $2::text::cidr \
         FROM trunks WHERE name = $1 \
         RETURNING jsonb_build_object('trunk', $1::text, 'cidr', cidr::text)",
        params: vec![&name, &text],
        created: true,
    }
    .run(c, ctx)
    .await
}

#[utoipa::path(delete, path = "/v1/admin/trunks/{trunk}/source_ips/{cidr}", tag = "customers",
    security(("bearer" = [])),
    params(("trunk" = String, Path, description = "trunk name"),
        ("cidr" = String, Path, description = "CIDR, with the slash written %2F")),
    responses((status = 200, description = "removed"), (status = 404, description = "no such trunk or network")))]
pub async fn trunk_source_remove(_: &AdminState, ctx: &mut Ctx, c: &mut Client) -> Reply {
    let name = ctx.p("trunk").to_string();
    let net = tr::source_cidr("cidr", ctx.p("cidr"))?;
    TRUNK.exists(c, &name).await?;
    let text = net.to_string();
    Change {
        action: "trunk.source_ip.remove".into(),
        target: format!("trunk {name} source {text}"),
        before: Some((
            "SELECT jsonb_build_object('trunk', $1::text, 'cidr', s.cidr::text) \
             FROM trunk_sources s JOIN trunks t ON t.id = s.trunk_id \
             WHERE t.name = $1 AND s.cidr = $2::text::cidr FOR UPDATE OF s",
            vec![&name, &text],
        )),
        write: "DELETE FROM trunk_sources s USING trunks t WHERE t.id = s.trunk_id \
         AND t.name = $1 AND s.cidr = $2::text::cidr RETURNING NULL::jsonb",
        params: vec![&name, &text],
        created: false,
    }
    .run(c, ctx)
    .await
}

#[utoipa::path(post, path = "/v1/admin/trunks/{trunk}/credentials", tag = "customers",
    security(("bearer" = [])), params(("trunk" = String, Path, description = "trunk name")),
    request_body = CredentialIn, responses((status = 201, description = "added (answered as user@realm, never the HA1)"),
    (status = 404, description = "no such trunk"),
    (status = 409, description = "these credentials exist already")))]
pub async fn trunk_credential_add(_: &AdminState, ctx: &mut Ctx, c: &mut Client) -> Reply {
    let b: CredentialIn = ctx.json()?;
    let name = ctx.p("trunk").to_string();
    let user = tr::digest_user("username", &b.username)?;
    let realm = tr::digest_realm("realm", &b.realm)?;
    let secret = tr::secret("", b.ha1.as_deref(), b.password.as_deref())?;
    TRUNK.exists(c, &name).await?;
    let owner = c
        .query_opt(
            "SELECT t.name FROM trunk_credentials k JOIN trunks t ON t.id = k.trunk_id \
             WHERE k.username = $1 AND k.realm = $2",
            &[&user, &realm],
        )
        .await
        .map_err(AdminError::db("looking up credentials"))?;
    if let Some(r) = owner {
        let other: String = r.get(0);
        return Err(AdminError::Conflict(format!(
            "username: credentials {user:?}@{realm:?} belong to trunk {other:?} already \
             (delete them first to change the secret)"
        )));
    }
    // the password goes to the database only as a parameter of the hash; nothing returns it
    let (ha1, password) = match secret {
        tr::Secret::Ha1(h) => (Some(h), None),
        tr::Secret::Password(p) => (None, Some(p)),
    };
    Change {
        action: "trunk.credential.add".into(),
        target: format!("trunk {name} credential {user}@{realm}"),
        before: None,
        write: "INSERT INTO trunk_credentials (trunk_id, username, realm, ha1) \
         SELECT id, $2, $3, coalesce($4, md5($2 || ':' || $3 || ':' || $5)) FROM trunks WHERE name = $1 \
         RETURNING jsonb_build_object('trunk', $1::text, 'credential', username || '@' || realm)",
        params: vec![&name, &user, &realm, &ha1, &password],
        created: true,
    }
    .run(c, ctx)
    .await
}

#[utoipa::path(delete, path = "/v1/admin/trunks/{trunk}/credentials/{credential}", tag = "customers",
    security(("bearer" = [])),
    params(("trunk" = String, Path, description = "trunk name"),
        ("credential" = String, Path, description = "username@realm")),
    responses((status = 200, description = "removed"), (status = 404, description = "no such trunk or credentials")))]
pub async fn trunk_credential_remove(_: &AdminState, ctx: &mut Ctx, c: &mut Client) -> Reply {
    let name = ctx.p("trunk").to_string();
    let raw = ctx.p("credential");
    let Some((u, r)) = raw.rsplit_once('@') else {
        return Err(rules::RuleError::invalid(
            "credential",
            format!("{} is not username@realm", excerpt(raw)),
        )
        .into());
    };
    let (user, realm) = (
        tr::digest_user("credential", u)?,
        tr::digest_realm("credential", r)?,
    );
    TRUNK.exists(c, &name).await?;
    Change {
        action: "trunk.credential.remove".into(),
        target: format!("trunk {name} credential {user}@{realm}"),
        before: Some((
            "SELECT jsonb_build_object('trunk', $1::text, 'credential', k.username || '@' || k.realm) \
             FROM trunk_credentials k JOIN trunks t ON t.id = k.trunk_id \
             WHERE t.name = $1 AND k.username = $2 AND k.realm = $3 FOR UPDATE OF k",
            vec![&name, &user, &realm],
        )),
        write: "DELETE FROM trunk_credentials k USING trunks t WHERE t.id = k.trunk_id \
         AND t.name = $1 AND k.username = $2 AND k.realm = $3 RETURNING NULL::jsonb",
        params: vec![&name, &user, &realm],
        created: false,
    }
    .run(c, ctx)
    .await
}

#[utoipa::path(post, path = "/v1/admin/trunks/{trunk}/destinations", tag = "customers",
    security(("bearer" = [])), params(("trunk" = String, Path, description = "trunk name")),
    request_body = DestinationBody, responses((status = 201, description = "added (its id in after.id)"),
    (status = 404, description = "no such trunk")))]
pub async fn trunk_destination_add(_: &AdminState, ctx: &mut Ctx, c: &mut Client) -> Reply {
    let b: DestinationBody = ctx.json()?;
    let name = ctx.p("trunk").to_string();
    let d = destination("", &b)?;
    TRUNK.exists(c, &name).await?;
    let transport = d.transport.as_str();
    let write = format!(
        "WITH d AS (INSERT INTO trunk_destinations (trunk_id, uri, host, port, transport, priority, weight, enabled) \
         SELECT id, $2, $3, $4, $5::text::sip_transport, $6, $7, $8 FROM trunks WHERE name = $1 RETURNING *) \
         SELECT {DEST_JSON} FROM d"
    );
    let write: &str = &write;
    Change {
        action: "trunk.destination.add".into(),
        target: format!("trunk {name} destination"),
        before: None,
        write,
        params: vec![
            &name,
            &d.uri,
            &d.host,
            &d.port,
            &transport,
            &d.priority,
            &d.weight,
            &d.enabled,
        ],
        created: true,
    }
    .run(c, ctx)
    .await
}

#[utoipa::path(patch, path = "/v1/admin/trunks/{trunk}/destinations/{id}", tag = "customers",
    security(("bearer" = [])),
    params(("trunk" = String, Path, description = "trunk name"),
        ("id" = i64, Path, description = "destination id")),
    request_body = DestinationBody, responses((status = 200, description = "updated (before and after)"),
    (status = 404, description = "no such trunk or destination")))]
pub async fn trunk_destination_update(_: &AdminState, ctx: &mut Ctx, c: &mut Client) -> Reply {
    let b: DestinationBody = ctx.json()?;
    let name = ctx.p("trunk").to_string();
    let id = ctx.id("id", "a destination id")?;
    TRUNK.exists(c, &name).await?;
    let missing = || AdminError::NotFound(format!("trunk {name} destination {id} does not exist"));
    let row = c
        .query_opt(
            "SELECT d.uri, d.host, d.port, d.transport::text, d.priority, d.weight, d.enabled \
             FROM trunk_destinations d JOIN trunks t ON t.id = d.trunk_id WHERE t.name = $1 AND d.id = $2",
            &[&name, &id],
        )
        .await
        .map_err(AdminError::db("reading the destination"))?
        .ok_or_else(missing)?;
    // the stored destination with the body's fields over it, checked whole by the shared rule
    // (`uri: ""`/`host: ""` are refused by it; a destination keeps a uri or a host)
    let merged = DestinationBody {
        uri: b.uri.or_else(|| row.get(0)),
        host: b.host.or_else(|| row.get(1)),
        port: b.port.or(Some(i64::from(row.get::<_, i32>(2)))),
        transport: b.transport.or_else(|| Some(row.get(3))),
        priority: b.priority.or(Some(i64::from(row.get::<_, i32>(4)))),
        weight: b.weight.or(Some(i64::from(row.get::<_, i32>(5)))),
        enabled: b.enabled.or(Some(row.get(6))),
    };
    let d = destination("", &merged)?;
    let transport = d.transport.as_str();
    let lock = format!(
        "SELECT {DEST_JSON} FROM trunk_destinations d JOIN trunks t ON t.id = d.trunk_id \
         WHERE t.name = $1 AND d.id = $2 FOR UPDATE OF d"
    );
    let write = format!(
        "WITH d AS (UPDATE trunk_destinations x SET uri = $3, host = $4, port = $5, \
         transport = $6::text::sip_transport, priority = $7, weight = $8, enabled = $9 \
         FROM trunks t WHERE t.id = x.trunk_id AND t.name = $1 AND x.id = $2 RETURNING x.*) \
         SELECT {DEST_JSON} FROM d"
    );
    Change {
        action: "trunk.destination.update".into(),
        target: format!("trunk {name} destination {id}"),
        before: Some((lock.as_str(), vec![&name, &id])),
        write: &write,
        params: vec![
            &name,
            &id,
            &d.uri,
            &d.host,
            &d.port,
            &transport,
            &d.priority,
            &d.weight,
            &d.enabled,
        ],
        created: false,
    }
    .run(c, ctx)
    .await
}

#[utoipa::path(delete, path = "/v1/admin/trunks/{trunk}/destinations/{id}", tag = "customers",
    security(("bearer" = [])),
    params(("trunk" = String, Path, description = "trunk name"),
        ("id" = i64, Path, description = "destination id")),
    responses((status = 200, description = "removed"), (status = 404, description = "no such trunk or destination")))]
pub async fn trunk_destination_remove(_: &AdminState, ctx: &mut Ctx, c: &mut Client) -> Reply {
    let name = ctx.p("trunk").to_string();
    let id = ctx.id("id", "a destination id")?;
    TRUNK.exists(c, &name).await?;
    let lock = format!(
        "SELECT {DEST_JSON} FROM trunk_destinations d JOIN trunks t ON t.id = d.trunk_id \
         WHERE t.name = $1 AND d.id = $2 FOR UPDATE OF d"
    );
    Change {
        action: "trunk.destination.remove".into(),
        target: format!("trunk {name} destination {id}"),
        before: Some((lock.as_str(), vec![&name, &id])),
        write: "DELETE FROM trunk_destinations d USING trunks t WHERE t.id = d.trunk_id \
         AND t.name = $1 AND d.id = $2 RETURNING NULL::jsonb",
        params: vec![&name, &id],
        created: false,
    }
    .run(c, ctx)
    .await
}
