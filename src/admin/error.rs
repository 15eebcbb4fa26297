//! [`AdminError`]: every way an admin request can fail, and the ONE place where such an error
//! becomes an HTTP status ([`AdminError::http_status`]), a JSON body
//! ([`AdminError::to_json_body`]), an `Allow` header ([`AdminError::allow`]) and a metrics label
//! ([`AdminError::kind`]). The API listener carries it as `ApiError::Admin` and asks it for all four.
//!
//! Owns: the admin error taxonomy and its mapping. Must not touch: request handling.
//! Messages name the offending field first (`"max_cps: -1 is out of range …"`).

use hyper::StatusCode;

use super::TokenError;
use crate::deck::DeckError;
use crate::http_body::BodyError;
use crate::provision::ProvisionError;
use crate::rules::RuleError;

/// Errors of the admin API. `Display` is the message of the JSON body `{"error": …}`.
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    /// A path/query parameter or body field has the wrong type or an unparsable value (400).
    #[error("{field}: {why}")]
    Invalid { field: String, why: String },
    /// A body field breaks a rule of `crate::rules` (422).
    #[error(transparent)]
    Rule(#[from] RuleError),
    /// A body field breaks a rule of `crate::rules`, answered like a type error (400).
    #[error(transparent)]
    BadValue(RuleError),
    #[error("{0}: no such resource")]
    NotFound(String),
    #[error("{path}: method {method} not allowed (allowed: {allow})")]
    MethodNotAllowed {
        path: String,
        method: String,
        allow: &'static str,
    },
    #[error("authorization: {0}")]
    Unauthorized(String),
    #[error("authorization: {0}")]
    Forbidden(String),
    /// The request conflicts with the current state (exists already, blocked already, ...).
    #[error("{0}")]
    Conflict(String),
    #[error(transparent)]
    Body(#[from] BodyError),
    /// A statement of the change failed; constraint violations are the caller's mistake.
    #[error("{}", db_message(context, source))]
    Db {
        context: String,
        #[source]
        source: tokio_postgres::Error,
    },
    #[error("internal error: database pool: {0}")]
    Pool(#[from] deadpool_postgres::PoolError),
    #[error("internal error: {0}")]
    Connect(#[from] crate::db::DbError),
    #[error("{}", deck_message(.0))]
    Deck(#[from] DeckError),
    #[error("{}", token_message(.0))]
    Token(#[from] TokenError),
    /// A numbering upload refused by `warpd apply`'s checks (the staging directory is not shown).
    #[error("{}", numbering_message(source, staged))]
    Numbering {
        #[source]
        source: Box<ProvisionError>,
        staged: String,
    },
    /// A bulk numbers import refused (bad lines: 422, nothing applied).
    #[error(transparent)]
    NumbersImport(#[from] crate::provision::numbers_import::NumbersImportError),
    #[error("internal error: staging the upload: {0}")]
    Stage(#[source] std::io::Error),
    #[error("internal error: encoding: {0}")]
    Encode(#[from] serde_json::Error),
}

/// What kind of failure an error is: decides status and metrics label together.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Class {
    BadRequest,
    TooLarge,
    NotFound,
    MethodNotAllowed,
    Unauthorized,
    Forbidden,
    Conflict,
    Unprocessable,
    Internal,
}

impl AdminError {
    /// Shorthand for [`AdminError::Invalid`].
    pub fn invalid(field: impl Into<String>, why: impl Into<String>) -> AdminError {
        AdminError::Invalid {
            field: field.into(),
            why: why.into(),
        }
    }

    /// A database error of `context` (see [`AdminError::Db`]).
    pub fn db(context: impl Into<String>) -> impl FnOnce(tokio_postgres::Error) -> AdminError {
        let context = context.into();
        move |source| AdminError::Db { context, source }
    }

    fn class(&self) -> Class {
        use crate::deck::DeckError as D;
        match self {
            AdminError::Invalid { .. } | AdminError::BadValue(_) => Class::BadRequest,
            AdminError::Rule(_) => Class::Unprocessable,
            AdminError::NotFound(_) => Class::NotFound,
            AdminError::MethodNotAllowed { .. } => Class::MethodNotAllowed,
            AdminError::Unauthorized(_) => Class::Unauthorized,
            AdminError::Forbidden(_) => Class::Forbidden,
            AdminError::Conflict(_) => Class::Conflict,
            AdminError::Body(BodyError::TooLarge { .. }) => Class::TooLarge,
            AdminError::Body(BodyError::Read(_) | BodyError::Timeout(_)) => Class::BadRequest,
            AdminError::Db { source, .. } => db_class(source),
            AdminError::Deck(e) => match e {
                D::Invalid { .. } | D::Input(_) => Class::Unprocessable,
                D::UnknownRoute(_) | D::UnknownVersion { .. } | D::UnknownCustomer(_) => {
                    Class::NotFound
                }
                D::Conflict(_) => Class::Conflict,
                D::BadRequest(_) => Class::BadRequest,
                D::Db { .. } | D::VersionRows { .. } | D::Snapshot(_) | D::Internal(_) => {
                    Class::Internal
                }
            },
            AdminError::Token(TokenError::BadRole(_)) => Class::BadRequest,
            AdminError::Token(TokenError::Exists(_)) => Class::Conflict,
            AdminError::Numbering { source, .. } => match source.as_ref() {
                ProvisionError::Invalid { .. }
                | ProvisionError::Load { .. }
                | ProvisionError::Parse { .. } => Class::Unprocessable,
                _ => Class::Internal,
            },
            AdminError::NumbersImport(e) => {
                use crate::provision::numbers_import::NumbersImportError as N;
                match e {
                    N::Lines { .. } => Class::Unprocessable,
                    N::Read(_) => Class::BadRequest,
                    N::Db { .. } => Class::Internal,
                }
            }
            AdminError::Token(_)
            | AdminError::Pool(_)
            | AdminError::Connect(_)
            | AdminError::Stage(_)
            | AdminError::Encode(_) => Class::Internal,
        }
    }

    /// The HTTP status of this error. The only place admin statuses are chosen.
    pub fn http_status(&self) -> StatusCode {
        match self.class() {
            Class::BadRequest => StatusCode::BAD_REQUEST,
            Class::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Class::NotFound => StatusCode::NOT_FOUND,
            Class::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Class::Unauthorized => StatusCode::UNAUTHORIZED,
            Class::Forbidden => StatusCode::FORBIDDEN,
            Class::Conflict => StatusCode::CONFLICT,
            Class::Unprocessable => StatusCode::UNPROCESSABLE_ENTITY,
            Class::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// Label for the `kind` of `warpd_bad_requests_total` (the same labels as `ApiError`'s).
    pub fn kind(&self) -> &'static str {
        match (self, self.class()) {
            (AdminError::Body(_), Class::BadRequest) => "body_read",
            (_, Class::BadRequest) => "invalid_param",
            (_, Class::TooLarge) => "too_large",
            (_, Class::NotFound) => "not_found",
            (_, Class::MethodNotAllowed) => "method_not_allowed",
            (_, Class::Unauthorized) => "unauthorized",
            (_, Class::Forbidden) => "forbidden",
            (_, Class::Conflict) => "conflict",
            (_, Class::Unprocessable) => "unprocessable",
            (_, Class::Internal) => "internal",
        }
    }

    /// The `Allow` header of a 405.
    pub fn allow(&self) -> Option<&'static str> {
        match self {
            AdminError::MethodNotAllowed { allow, .. } => Some(allow),
            _ => None,
        }
    }

    /// The HTTP error body: `{"error":"<message>"}`.
    pub fn to_json_body(&self) -> Vec<u8> {
        serde_json::to_vec(&serde_json::json!({
            "error": warpd_core::excerpt::bounded_message(self.to_string())
        }))
        .unwrap_or_else(|_| br#"{"error":"unserializable error"}"#.to_vec())
    }
}

fn db_class(e: &tokio_postgres::Error) -> Class {
    match e.as_db_error().map(|d| d.code().code()) {
        Some("23505" | "23503" | "23P01") => Class::Conflict,
        Some(c) if c.starts_with("22") || c.starts_with("23") => Class::Unprocessable,
        _ => Class::Internal,
    }
}

/// `context: message (detail)`, prefixed `internal error: ` unless the caller is at fault.
fn db_message(context: &str, e: &tokio_postgres::Error) -> String {
    let msg = match e.as_db_error() {
        None => format!("{context}: {e}"),
        Some(db) => match db.detail() {
            Some(d) => format!("{context}: {} ({d})", db.message()),
            None => format!("{context}: {}", db.message()),
        },
    };
    match db_class(e) {
        Class::Internal => format!("internal error: {msg}"),
        _ => msg,
    }
}

fn deck_message(e: &DeckError) -> String {
    match e {
        DeckError::UnknownRoute(_)
        | DeckError::UnknownVersion { .. }
        | DeckError::UnknownCustomer(_) => format!("{e}: no such resource"),
        DeckError::BadRequest(m) => format!("request: {m}"),
        DeckError::Db { .. }
        | DeckError::VersionRows { .. }
        | DeckError::Snapshot(_)
        | DeckError::Internal(_) => {
            format!("internal error: {e}")
        }
        DeckError::Invalid { .. } | DeckError::Input(_) | DeckError::Conflict(_) => e.to_string(),
    }
}

fn token_message(e: &TokenError) -> String {
    match e {
        TokenError::BadRole(r) => format!("role: {r:?} is not one of admin, ops, readonly"),
        TokenError::Exists(_) => e.to_string(),
        _ => format!("internal error: {e}"),
    }
}

fn numbering_message(e: &ProvisionError, staged: &str) -> String {
    match e {
        ProvisionError::Invalid { .. }
        | ProvisionError::Load { .. }
        | ProvisionError::Parse { .. } => e.to_string().replace(staged, ""),
        _ => format!("internal error: {e}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_huge_key_is_not_echoed_whole() {
        let key = "9".repeat(60_000);
        let body = AdminError::NotFound(format!("customer {key:?} does not exist")).to_json_body();
        assert!(body.len() < 2_200, "{} bytes", body.len());
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert!(v["error"].as_str().unwrap().starts_with("customer \"999"));
    }

    #[test]
    fn statuses_and_labels_come_from_one_class() {
        let cases = [
            (AdminError::invalid("id", "x"), 400, "invalid_param"),
            (
                AdminError::NotFound("vendor \"x\"".into()),
                404,
                "not_found",
            ),
            (AdminError::Conflict("exists".into()), 409, "conflict"),
            (AdminError::Unauthorized("no".into()), 401, "unauthorized"),
            (AdminError::Forbidden("no".into()), 403, "forbidden"),
            (
                AdminError::Body(BodyError::TooLarge { limit: 1 }),
                413,
                "too_large",
            ),
            (
                AdminError::Token(TokenError::BadRole("root".into())),
                400,
                "invalid_param",
            ),
            (
                AdminError::Deck(DeckError::UnknownRoute("r".into())),
                404,
                "not_found",
            ),
        ];
        for (e, status, kind) in cases {
            assert_eq!((e.http_status().as_u16(), e.kind()), (status, kind), "{e}");
        }
        assert_eq!(
            AdminError::Deck(DeckError::UnknownRoute("r".into())).to_string(),
            "route \"r\" does not exist: no such resource"
        );
        assert_eq!(
            AdminError::Token(TokenError::BadRole("root".into())).to_string(),
            "role: \"root\" is not one of admin, ops, readonly"
        );
        let body: serde_json::Value =
            serde_json::from_slice(&AdminError::invalid("id", "bad").to_json_body()).unwrap();
        assert_eq!(body["error"], "id: bad");
    }
}
