//! The PostgreSQL layer: connections and pools ([`connect`], [`pool`]), schema migrations
//! ([`migrate`]), the routing snapshot loader ([`loader`]) and the NOTIFY-driven reloader
//! ([`reload`]).
//!
//! Owns: every SQL statement warpd runs against the routing schema, and [`DbError`].
//! Must not touch: routing policy (it only feeds rows to `routing::SnapshotBuilder`), the network
//! beyond PostgreSQL, files other than the migrations embedded at compile time. Never logs phone
//! numbers unmasked, nor connection strings (they may carry passwords).

pub mod loader;
pub mod migrate;
pub mod reload;
pub mod tls;

pub use loader::load_snapshot;
pub use migrate::migrate;
pub use reload::DbReloader;
pub use tls::{target, PgConnection, PgTarget, SslMode};

/// Errors of the database layer. Each names what it was doing or the offending row.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    /// The connection string does not parse (the string itself is not repeated: it may hold a
    /// password).
    #[error("invalid database connection string: {0}")]
    Config(String),
    #[error("cannot connect to the database: {}", pg_detail(.0))]
    Connect(#[source] tokio_postgres::Error),
    /// `sslrootcert` of `database.url` does not load.
    #[error("database TLS: {0}")]
    Tls(#[source] crate::tls::TlsError),
    #[error("{context}: {}", pg_detail(.source))]
    Query {
        context: String,
        #[source]
        source: tokio_postgres::Error,
    },
    #[error(
        "migration {name} was changed after it was applied (checksum in database {applied}, \
         embedded file {embedded}); applied migrations must never be edited, add a new one"
    )]
    ChecksumMismatch {
        name: String,
        applied: String,
        embedded: String,
    },
    /// A row the loader cannot turn into routing data (the snapshot is not built).
    #[error("bad row in {table} ({key}): {reason}")]
    BadRow {
        table: &'static str,
        key: String,
        reason: String,
    },
    #[error("snapshot build failed: {0}")]
    Build(#[from] crate::routing::BuildError),
    #[error("database connection closed during {0}")]
    Closed(&'static str),
    #[error("database pool: {0}")]
    Pool(#[source] deadpool_postgres::PoolError),
    #[error("database pool: {0}")]
    PoolBuild(#[source] deadpool_postgres::BuildError),
    /// A blocking helper task (snapshot compile) panicked or was cancelled.
    #[error("background task failed: {0}")]
    Task(String),
}

impl DbError {
    /// Wraps a driver error with what was being done.
    pub fn query(context: impl Into<String>) -> impl FnOnce(tokio_postgres::Error) -> DbError {
        let context = context.into();
        move |source| DbError::Query { context, source }
    }

    pub(crate) fn bad_row(
        table: &'static str,
        key: impl Into<String>,
        reason: impl Into<String>,
    ) -> DbError {
        DbError::BadRow {
            table,
            key: key.into(),
            reason: reason.into(),
        }
    }
}

/// The useful part of a driver error: tokio-postgres' own `Display` is just "db error" for server
/// errors, so show the server message (and detail/hint) instead.
pub fn pg_detail(e: &tokio_postgres::Error) -> String {
    if let Some(db) = e.as_db_error() {
        let mut s = format!("{}: {}", db.severity(), db.message());
        if let Some(d) = db.detail() {
            s.push_str(" (");
            s.push_str(d);
            s.push(')');
        }
        return s;
    }
    match std::error::Error::source(e) {
        Some(cause) => format!("{e}: {cause}"),
        None => e.to_string(),
    }
}

/// Opens one connection (TLS as `sslmode` says, see [`tls`]) and spawns the task that drives
/// it; the task ends when the returned client is dropped or the server goes away.
pub async fn connect(url: &str) -> Result<tokio_postgres::Client, DbError> {
    let (client, connection) = target(url)?.connect().await?;
    tokio::spawn(async move {
        if let Err(e) = connection.await {
            tracing::warn!(error = %pg_detail(&e), "database connection ended with an error");
        }
    });
    Ok(client)
}

/// A connection pool of at most `max_size` connections (TLS as `sslmode` says). Connections
/// are opened lazily, so this fails only on a malformed connection string or an unreadable
/// `sslrootcert`.
pub fn pool(url: &str, max_size: usize) -> Result<deadpool_postgres::Pool, DbError> {
    let target = target(url)?;
    let manager = deadpool_postgres::Manager::from_config(
        target.config,
        target.tls,
        deadpool_postgres::ManagerConfig {
            recycling_method: deadpool_postgres::RecyclingMethod::Fast,
        },
    );
    deadpool_postgres::Pool::builder(manager)
        .max_size(max_size.max(1))
        .runtime(deadpool_postgres::Runtime::Tokio1)
        .build()
        .map_err(DbError::PoolBuild)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_connection_string_is_a_config_error_without_echoing_it() {
        let e = pool("postgres://u:s3cret@host:notaport/db", 2).unwrap_err();
        assert!(matches!(e, DbError::Config(_)), "{e:?}");
        assert!(!e.to_string().contains("s3cret"), "{e}");
    }

    #[test]
    fn pool_is_lazy() {
        let p = pool("postgres://warpd@127.0.0.1:1/none", 3).unwrap();
        assert_eq!(p.status().max_size, 3);
        assert_eq!(p.status().size, 0);
    }
}
