//! Errors of the provisioning layer: one [`ProvisionError`] enum. Each validation finding is an
//! [`Issue`] (pure, `warpd_core::provision::Issue`) naming its file, CSV line and field.
//!
//! Owns: error types and their messages. Must not touch: I/O, the database.

use std::path::PathBuf;

pub use warpd_core::provision::Issue;

fn list(issues: &[Issue]) -> String {
    issues
        .iter()
        .map(|i| format!("  - {i}"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Why `warpd apply` failed. In every case nothing was written (the transaction was rolled back).
#[derive(Debug, thiserror::Error)]
pub enum ProvisionError {
    #[error("{}: cannot read: {source}", file.display())]
    Read {
        file: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{file}: {message}")]
    Parse { file: String, message: String },
    #[error("{file}: {} problem(s), nothing applied:\n{}", issues.len(), list(issues))]
    Invalid { file: String, issues: Vec<Issue> },
    #[error("database error while {context}: {message}; nothing applied")]
    Db {
        context: String,
        message: String,
        #[source]
        source: tokio_postgres::Error,
    },
    /// A CSV file that validated changed while it was being loaded.
    #[error("{issue}; nothing applied")]
    Load { issue: Issue },
    /// Creating a route's deck version (the code path of `warpd deck import`) failed.
    #[error("{0}; nothing applied")]
    Deck(#[from] crate::deck::DeckError),
    /// A bug or an environment failure (e.g. a loader task panicked); nothing was applied.
    #[error("internal error: {0}; nothing applied")]
    Internal(String),
}

impl ProvisionError {
    /// Wraps a database error with what was being done, keeping PostgreSQL's detail text.
    pub fn db(context: impl Into<String>, source: tokio_postgres::Error) -> ProvisionError {
        let message = match source.as_db_error() {
            Some(d) => {
                let mut m = d.message().to_string();
                if let Some(detail) = d.detail() {
                    m.push_str(&format!(" ({detail})"));
                }
                if let Some(c) = d.constraint() {
                    m.push_str(&format!(" [constraint {c}]"));
                }
                m
            }
            None => source.to_string(),
        };
        ProvisionError::Db {
            context: context.into(),
            message,
            source,
        }
    }

    /// The validation findings, if this is a validation failure.
    pub fn issues(&self) -> &[Issue] {
        match self {
            ProvisionError::Invalid { issues, .. } => issues,
            ProvisionError::Load { issue } => std::slice::from_ref(issue),
            _ => &[],
        }
    }
}
