//! Rate decks: import of vendor decks (CSV, gzip'ed CSV, XLSX) with per-vendor column mappings
//! and validation, deck versions with effective times, diff, rollback/activate, export, the margin
//! report and shadow evaluation of a candidate version against recent real dips.
//!
//! Data model (sql/0002_decks.sql): every import is a row of `deck_versions` with its rows in
//! `deck_rates` (history, never rewritten). The rows that route stay in `vendor_rates`, each with
//! the effective window of its version on the route's timeline (a version runs from its
//! effective time to the next live version's), so the snapshot loader needs no change and a
//! future version activates at its time by itself (the dip honours effective dates).
//!
//! Owns: `deck_versions`, `deck_rates`, `deck_mappings`, `dip_samples` and the `vendor_rates` rows
//! of routes that have deck versions. Must not touch: the routing core (it builds candidate
//! snapshots only through `db::loader` and calls the pure `routing::dip`), other tables.

pub mod diplog;
pub use warpd_core::deck::parse;
pub mod report;
pub mod store;

use warpd_core::provision::Issue;

pub use parse::{Field, Format, Mapping};
pub use store::{
    DiffPage, DiffReport, DiffRow, DiffSort, ImportOptions, ImportReport, VersionInfo,
    MAX_REPORTED_ISSUES,
};

/// Errors of the deck layer. Each says what was refused and why; nothing was changed.
#[derive(Debug, thiserror::Error)]
pub enum DeckError {
    /// The file has bad rows (or a bad header): nothing was imported.
    #[error("{source_label}: {total} problem(s), nothing imported:\n{}", list(.issues))]
    Invalid {
        source_label: String,
        issues: Vec<Issue>,
        total: u64,
    },
    /// The file cannot be read at all.
    #[error("{0}")]
    Input(Issue),
    #[error("route {0:?} does not exist")]
    UnknownRoute(String),
    #[error("route {route:?} has no deck version {version}")]
    UnknownVersion { route: String, version: i64 },
    #[error("customer {0:?} does not exist")]
    UnknownCustomer(String),
    /// The request is valid but the current state refuses it.
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    BadRequest(String),
    #[error("database error while {context}: {message}")]
    Db {
        context: String,
        message: String,
        #[source]
        source: tokio_postgres::Error,
    },
    /// A version's rows could not be read for a diff (a malformed stream, a rate that is not
    /// a plain number).
    #[error("reading the rows of version {version}: {source}")]
    VersionRows {
        version: i64,
        #[source]
        source: store::VersionRowsError,
    },
    #[error("snapshot for shadow evaluation: {0}")]
    Snapshot(#[from] crate::db::DbError),
    #[error("internal error: {0}")]
    Internal(String),
}

fn list(issues: &[Issue]) -> String {
    issues
        .iter()
        .map(|i| format!("  - {i}"))
        .collect::<Vec<_>>()
        .join("\n")
}

impl DeckError {
    pub(crate) fn db(
        context: impl Into<String>,
    ) -> impl FnOnce(tokio_postgres::Error) -> DeckError {
        let context = context.into();
        move |source| {
            let message = match source.as_db_error() {
                Some(d) => match d.detail() {
                    Some(det) => format!("{} ({det})", d.message()),
                    None => d.message().to_string(),
                },
                None => source.to_string(),
            };
            DeckError::Db {
                context,
                message,
                source,
            }
        }
    }

    /// True when the caller is at fault (4xx over HTTP).
    pub fn is_client_error(&self) -> bool {
        !matches!(
            self,
            DeckError::Db { .. }
                | DeckError::VersionRows { .. }
                | DeckError::Snapshot(_)
                | DeckError::Internal(_)
        )
    }
}
