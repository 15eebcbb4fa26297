//! The generic CRUD layer of table-shaped admin resources: list and get as JSON straight from
//! SQL, and every change ([`Change`]) in one transaction with its audit row (who, what, the row
//! before and after). A [`Table`] describes a resource by its SQL; its `create`/`update`/`delete`
//! build the standard changes (`<noun>.create` on target `<noun> <key>`, ...).
//!
//! Owns: audit semantics of admin changes (a change that leaves the row as it was writes no audit
//! row), 404s of missing rows. Must not touch: validation (see `crate::rules`), HTTP.

use hyper::StatusCode;
use serde_json::{json, Value};
use tokio_postgres::types::ToSql;
use tokio_postgres::Client;

use warpd_core::excerpt::{excerpt, plain};

use super::ctx::{json_reply, AdminReply, Ctx};
use super::AdminError;

/// Parameters of one statement.
pub type Params<'a> = Vec<&'a (dyn ToSql + Sync)>;

/// Every row of `sql` (a SELECT) as a JSON array.
pub async fn list(
    c: &Client,
    sql: &str,
    params: &[&(dyn ToSql + Sync)],
) -> Result<AdminReply, AdminError> {
    let q = format!("SELECT coalesce(jsonb_agg(to_jsonb(t)), '[]'::jsonb) FROM ({sql}) t");
    let v: Value = c
        .query_one(&q, params)
        .await
        .map_err(AdminError::db("listing"))?
        .get(0);
    json_reply(StatusCode::OK, &v)
}

/// The row of `lookup` for `key`, or a 404 naming the object.
pub struct Lookup {
    /// "vendor": the 404 says `vendor "x" does not exist`
    pub what: &'static str,
    /// `SELECT 1 FROM vendors WHERE name = $1`
    pub sql: &'static str,
    /// "looking up the vendor"
    pub context: &'static str,
}

impl Lookup {
    /// Ok when `key` exists.
    pub async fn exists(&self, c: &Client, key: &str) -> Result<(), AdminError> {
        c.query_opt(self.sql, &[&key])
            .await
            .map_err(AdminError::db(self.context))?
            .map(|_| ())
            .ok_or_else(|| self.missing(key))
    }

    /// The 404 of a missing `key` (quoted by `excerpt`: a path segment can be long).
    pub fn missing(&self, key: &str) -> AdminError {
        AdminError::NotFound(format!("{} {} does not exist", self.what, excerpt(key)))
    }
}

/// A table-shaped resource, by its SQL. Keys are `$1` (and `$2` for a child of a parent).
pub struct Table {
    /// singular noun: actions are `<noun>.create|update|delete`, targets `<noun> <key>`
    pub noun: &'static str,
    /// SELECT of every row (the list answer)
    pub list: &'static str,
    /// SELECT of one row by key `$1` (the get answer; "" for a resource without one)
    pub get: &'static str,
    /// `SELECT to_jsonb(x.*) ... FOR UPDATE` by key: the row before a change
    pub lock: &'static str,
    /// `DELETE ... RETURNING NULL::jsonb` by key
    pub delete: &'static str,
}

impl Table {
    pub async fn list(
        &self,
        c: &Client,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<AdminReply, AdminError> {
        list(c, self.list, params).await
    }

    /// One row by key, or a 404 `<noun> "<key>" does not exist`.
    pub async fn get(&self, c: &Client, key: &str) -> Result<AdminReply, AdminError> {
        let q = format!("SELECT to_jsonb(t) FROM ({}) t", self.get);
        match c
            .query_opt(&q, &[&key])
            .await
            .map_err(AdminError::db("reading"))?
        {
            Some(r) => json_reply(StatusCode::OK, &r.get::<_, Value>(0)),
            None => Err(AdminError::NotFound(format!(
                "{} {} does not exist",
                self.noun,
                excerpt(key)
            ))),
        }
    }

    /// An INSERT `write` (`RETURNING to_jsonb(...)`) of the row `key`.
    pub fn create<'a>(&self, key: &str, write: &'a str, params: Params<'a>) -> Change<'a> {
        Change {
            action: self.action("create"),
            target: format!("{} {key}", self.noun),
            before: None,
            write,
            params,
            created: true,
        }
    }

    /// An UPDATE `write` (`RETURNING to_jsonb(...)`) of the row `key` (`key_params` for the lock).
    pub fn update<'a>(
        &'a self,
        key: &str,
        key_params: Params<'a>,
        write: &'a str,
        params: Params<'a>,
    ) -> Change<'a> {
        Change {
            action: self.action("update"),
            target: format!("{} {key}", self.noun),
            before: Some((self.lock, key_params)),
            write,
            params,
            created: false,
        }
    }

    /// The delete of the row `key`.
    pub fn delete<'a>(&'a self, key: &str, key_params: Params<'a>) -> Change<'a> {
        Change {
            action: self.action("delete"),
            target: format!("{} {key}", self.noun),
            before: Some((self.lock, key_params.clone())),
            write: self.delete,
            params: key_params,
            created: false,
        }
    }

    fn action(&self, verb: &str) -> String {
        format!("{}.{verb}", self.noun)
    }
}

/// One audited change: the row before (`before`, locked; none for a create), the write
/// (returning the row after as JSON, or NULL for a delete), and the audit row.
pub struct Change<'a> {
    pub action: String,
    pub target: String,
    pub before: Option<(&'a str, Params<'a>)>,
    pub write: &'a str,
    pub params: Params<'a>,
    pub created: bool,
}

impl Change<'_> {
    /// Runs the change and its audit row in one transaction. A change that finds no row is a
    /// 404 naming the target.
    pub async fn run(self, c: &mut Client, ctx: &Ctx) -> Result<AdminReply, AdminError> {
        let tx = c
            .transaction()
            .await
            .map_err(AdminError::db("starting a transaction"))?;
        let missing = || AdminError::NotFound(format!("{} does not exist", plain(&self.target)));
        let before: Option<Value> = match &self.before {
            Some((sql, params)) => Some(
                tx.query_opt(*sql, params)
                    .await
                    .map_err(AdminError::db(&self.action))?
                    .ok_or_else(missing)?
                    .get(0),
            ),
            None => None,
        };
        let after: Option<Value> = tx
            .query_opt(self.write, &self.params)
            .await
            .map_err(AdminError::db(&self.action))?
            .and_then(|r| r.get(0));
        if before.is_none() && after.is_none() {
            return Err(missing());
        }
        audit_and_commit(
            tx,
            ctx,
            &self.action,
            &self.target,
            before,
            after,
            self.created,
        )
        .await
    }
}

/// Ends an admin change: its audit row (who, what, before/after) in the same transaction, the
/// commit, and the reply (201 for a create, else 200) showing before and after. A change that
/// left the row as it was (an empty PATCH, the same values again) changed nothing: it is
/// answered the same way but writes no audit row, so the log holds only real changes.
pub async fn audit_and_commit(
    tx: tokio_postgres::Transaction<'_>,
    ctx: &Ctx,
    action: &str,
    target: &str,
    before: Option<Value>,
    after: Option<Value>,
    created: bool,
) -> Result<AdminReply, AdminError> {
    if created || before != after {
        tx.execute(
            "INSERT INTO audit_log (actor, action, target, before, after) VALUES ($1, $2, $3, $4, $5)",
            &[&ctx.actor(), &action, &target, &before, &after],
        )
        .await
        .map_err(AdminError::db("writing the audit log"))?;
    }
    tx.commit().await.map_err(AdminError::db("committing"))?;
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    json_reply(
        status,
        &json!({"before": before, "after": after, "target": target}),
    )
}
