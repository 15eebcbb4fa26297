//! [`ApiError`]: every way an API request (or the listener itself) can fail, and the ONE place
//! where an error becomes an HTTP status ([`ApiError::http_status`]), a JSON-RPC error code
//! ([`ApiError::rpc_code`]) and a metrics label ([`ApiError::kind`]).
//!
//! Owns: the API error taxonomy and its mappings. Must not touch: routing, the engine, I/O.
//! Messages name the offending field first (`"dnis: missing field"`) and never contain secrets.

use hyper::StatusCode;
use jsonrpsee::types::error::{
    CALL_EXECUTION_FAILED_CODE, INTERNAL_ERROR_CODE, INVALID_PARAMS_CODE, INVALID_REQUEST_CODE,
    METHOD_NOT_FOUND_CODE, OVERSIZED_REQUEST_CODE, PARSE_ERROR_CODE,
};
use jsonrpsee::types::ErrorObjectOwned;

use crate::reload::ReloadError;

/// Errors of the API layer. The first group is the caller's mistake (4xx, never 500).
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// A parameter is missing, has the wrong type or an invalid value.
    #[error("{field}: {why}")]
    InvalidParam { field: String, why: String },
    /// A parameter the API does not know.
    #[error("{0}: unknown parameter")]
    UnknownParam(String),
    /// Neither `ban` nor `src_ip` was given.
    #[error("ban, src_ip, trunk: one of them is required to identify the customer")]
    NoCustomerKey,
    /// The body (or JSON-RPC params) is not JSON at all.
    #[error("{what}: malformed JSON: {why}")]
    MalformedJson { what: &'static str, why: String },
    #[error("body: larger than the limit of {limit} bytes")]
    BodyTooLarge { limit: usize },
    #[error("body: could not be read: {0}")]
    BodyRead(#[source] Box<dyn std::error::Error + Send + Sync>),
    #[error("content-type: expected {expected}, got {got:?}")]
    UnsupportedMediaType { expected: &'static str, got: String },
    #[error("{0}: no such resource")]
    NotFound(String),
    #[error("{path}: method {method} not allowed (allowed: {allow})")]
    MethodNotAllowed {
        path: String,
        method: String,
        allow: &'static str,
    },
    /// `/v1/cdrs*`, the Kamailio surface: no bearer token, or a wrong one.
    #[error("authorization: {0}")]
    Unauthorized(String),
    /// The Kamailio surface: the source address is not in `server.kamailio_allow`.
    #[error("source: not allowed on this listener")]
    SourceNotAllowed,
    /// A method served on the admin surface only (`server.admin_listen`).
    #[error("{0}: served on the admin listener only")]
    AdminOnly(&'static str),
    /// The body did not arrive within `server.body_read_timeout_ms`.
    #[error("body: not received within {0} ms")]
    BodyTimeout(u128),

    // Server side.
    /// No routing snapshot has been loaded yet: dips cannot be answered meaningfully.
    #[error("not ready: no routing snapshot loaded yet")]
    NotReady,
    #[error("reload failed: {0}")]
    Reload(#[from] ReloadError),
    #[error("JSON-RPC method registration failed: {0}")]
    Register(#[from] jsonrpsee::server::RegisterMethodError),
    #[error("internal error: {0}")]
    Internal(String),
    /// The call-event layer failed on the server side (the caller's bad events are
    /// [`ApiError::InvalidParam`]).
    #[error("internal error: {0}")]
    Calls(#[source] crate::calls::CallsError),
    #[error("internal error: database: {0}")]
    Db(#[from] crate::db::DbError),
    /// A `media.*` method failed (see [`crate::media::MediaError`]).
    #[error("media: {0}")]
    Media(#[from] crate::media::MediaError),
    #[error("call.hangup: {0}")]
    Hangup(#[from] crate::calls::HangupFailed),
    /// An admin API request failed: its status, body and metrics label are the admin error's own
    /// ([`crate::admin::AdminError`] maps them in one place).
    #[error(transparent)]
    Admin(#[from] crate::admin::AdminError),
}

impl From<crate::http_body::BodyError> for ApiError {
    fn from(e: crate::http_body::BodyError) -> Self {
        use crate::http_body::BodyError as B;
        match e {
            B::TooLarge { limit } => ApiError::BodyTooLarge { limit },
            B::Read(source) => ApiError::BodyRead(source),
            B::Timeout(d) => ApiError::BodyTimeout(d.as_millis()),
        }
    }
}

impl ApiError {
    /// Shorthand for [`ApiError::InvalidParam`].
    pub fn invalid(field: impl Into<String>, why: impl Into<String>) -> ApiError {
        ApiError::InvalidParam {
            field: field.into(),
            why: why.into(),
        }
    }

    /// True when the caller is at fault (counted in `bad_requests`).
    pub fn is_client_error(&self) -> bool {
        self.http_status().is_client_error()
    }

    /// The HTTP status of this error. The only place statuses are chosen.
    pub fn http_status(&self) -> StatusCode {
        match self {
            ApiError::InvalidParam { .. }
            | ApiError::UnknownParam(_)
            | ApiError::NoCustomerKey
            | ApiError::MalformedJson { .. }
            | ApiError::BodyRead(_) => StatusCode::BAD_REQUEST,
            ApiError::BodyTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::UnsupportedMediaType { .. } => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::MethodNotAllowed { .. } => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            ApiError::SourceNotAllowed | ApiError::AdminOnly(_) => StatusCode::FORBIDDEN,
            ApiError::BodyTimeout(_) => StatusCode::REQUEST_TIMEOUT,
            ApiError::NotReady | ApiError::Reload(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Register(_)
            | ApiError::Internal(_)
            | ApiError::Calls(_)
            | ApiError::Db(_) => StatusCode::INTERNAL_SERVER_ERROR,
            ApiError::Media(m) => media_status(m),
            ApiError::Hangup(h) => Self::hangup_status(h),
            ApiError::Admin(a) => a.http_status(),
        }
    }

    /// The HTTP status of a failed `call.hangup`: no such live call 404, not answered yet 409, no
    /// Kamailio RPC configured
    /// 503, Kamailio failing 502, the end not recorded 500.
    fn hangup_status(h: &crate::calls::HangupFailed) -> StatusCode {
        use crate::calls::hangup::HangupError as K;
        use crate::calls::HangupFailed as F;
        match h {
            F::NotLive | F::Kamailio(K::NoDialog) => StatusCode::NOT_FOUND,
            F::Kamailio(K::NotAnswered { .. }) => StatusCode::CONFLICT,
            F::Kamailio(K::NotConfigured) => StatusCode::SERVICE_UNAVAILABLE,
            F::Kamailio(_) => StatusCode::BAD_GATEWAY,
            F::Record(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The JSON-RPC 2.0 error code of this error. The only place codes are chosen.
    pub fn rpc_code(&self) -> i32 {
        match self {
            ApiError::InvalidParam { .. } | ApiError::UnknownParam(_) | ApiError::NoCustomerKey => {
                INVALID_PARAMS_CODE
            }
            ApiError::MalformedJson { .. } | ApiError::BodyRead(_) => PARSE_ERROR_CODE,
            ApiError::BodyTooLarge { .. } => OVERSIZED_REQUEST_CODE,
            ApiError::UnsupportedMediaType { .. }
            | ApiError::MethodNotAllowed { .. }
            | ApiError::Unauthorized(_)
            | ApiError::SourceNotAllowed
            | ApiError::AdminOnly(_) => INVALID_REQUEST_CODE,
            ApiError::BodyTimeout(_) => PARSE_ERROR_CODE,
            ApiError::NotFound(_) => METHOD_NOT_FOUND_CODE,
            ApiError::NotReady | ApiError::Reload(_) => CALL_EXECUTION_FAILED_CODE,
            ApiError::Register(_)
            | ApiError::Internal(_)
            | ApiError::Calls(_)
            | ApiError::Db(_) => INTERNAL_ERROR_CODE,
            ApiError::Media(m) => media_rpc_code(m),
            ApiError::Hangup(h) if Self::hangup_status(h).is_client_error() => INVALID_PARAMS_CODE,
            ApiError::Hangup(_) => CALL_EXECUTION_FAILED_CODE,
            ApiError::Admin(a) if a.http_status().is_client_error() => INVALID_REQUEST_CODE,
            ApiError::Admin(_) => INTERNAL_ERROR_CODE,
        }
    }

    /// The RESP error reply of this error (`-<PREFIX> <message>`): the Redis prefixes clients
    /// know (`LOADING` while no snapshot is installed, `NOAUTH`/`NOPERM` for the guard), `ERR`
    /// otherwise. The only place RESP error prefixes are chosen.
    pub fn resp_error(&self) -> String {
        let prefix = match self {
            ApiError::NotReady => "LOADING",
            ApiError::Unauthorized(_) => "NOAUTH",
            ApiError::SourceNotAllowed => "NOPERM",
            _ => "ERR",
        };
        format!("{prefix} {self}")
    }

    /// Label for the `kind` of `warpd_bad_requests_total`.
    pub fn kind(&self) -> &'static str {
        match self {
            ApiError::InvalidParam { .. } => "invalid_param",
            ApiError::UnknownParam(_) => "unknown_param",
            ApiError::NoCustomerKey => "no_customer_key",
            ApiError::MalformedJson { .. } => "malformed_json",
            ApiError::BodyTooLarge { .. } => "too_large",
            ApiError::BodyRead(_) => "body_read",
            ApiError::UnsupportedMediaType { .. } => "unsupported_media_type",
            ApiError::NotFound(_) => "not_found",
            ApiError::MethodNotAllowed { .. } => "method_not_allowed",
            ApiError::Unauthorized(_) => "unauthorized",
            ApiError::SourceNotAllowed => "source_not_allowed",
            ApiError::AdminOnly(_) => "admin_only",
            ApiError::BodyTimeout(_) => "body_timeout",
            ApiError::NotReady => "not_ready",
            ApiError::Reload(_) => "reload",
            ApiError::Register(_) => "register",
            ApiError::Internal(_) | ApiError::Calls(_) | ApiError::Db(_) => "internal",
            ApiError::Media(_) => "media",
            ApiError::Hangup(_) => "hangup",
            ApiError::Admin(a) => a.kind(),
        }
    }

    /// The JSON-RPC error object (code from [`rpc_code`](Self::rpc_code), message = Display).
    pub fn to_rpc(&self) -> ErrorObjectOwned {
        ErrorObjectOwned::owned(
            self.rpc_code(),
            warpd_core::excerpt::bounded_message(self.to_string()),
            None::<()>,
        )
    }

    /// The HTTP error body: `{"error":"<message>"}`.
    pub fn to_json_body(&self) -> Vec<u8> {
        #[derive(serde::Serialize)]
        struct Body {
            error: String,
        }
        serde_json::to_vec(&Body {
            error: warpd_core::excerpt::bounded_message(self.to_string()),
        })
        // serializing a struct of one String cannot fail; keep a total fallback anyway
        .unwrap_or_else(|_| br#"{"error":"unserializable error"}"#.to_vec())
    }
}

/// JSON-RPC code of a media error: an unknown call is the caller's mistake (-32602 like other bad
/// params); media not configured is -32601 (as if the method did not exist); a node that is
/// down, silent, or answers an error is a server-side failure (-32000, call execution failed).
fn media_rpc_code(e: &crate::media::MediaError) -> i32 {
    use crate::media::MediaError as M;
    match e {
        M::UnknownCall(_) => INVALID_PARAMS_CODE,
        M::NotConfigured => METHOD_NOT_FOUND_CODE,
        M::Config { .. } | M::Policy(_) | M::Consul(_) | M::Io(_) | M::TooLarge(_) => {
            INTERNAL_ERROR_CODE
        }
        M::NoHealthyNode
        | M::NodeDown { .. }
        | M::NodeGone { .. }
        | M::Timeout { .. }
        | M::Node { .. }
        | M::Garbage { .. } => CALL_EXECUTION_FAILED_CODE,
    }
}

fn media_status(e: &crate::media::MediaError) -> StatusCode {
    use crate::media::MediaError as M;
    match e {
        M::UnknownCall(_) | M::NotConfigured => StatusCode::NOT_FOUND,
        M::NoHealthyNode | M::NodeDown { .. } | M::NodeGone { .. } => {
            StatusCode::SERVICE_UNAVAILABLE
        }
        M::Timeout { .. } => StatusCode::GATEWAY_TIMEOUT,
        M::Node { .. } | M::Garbage { .. } => StatusCode::BAD_GATEWAY,
        M::Config { .. } | M::Policy(_) | M::Consul(_) | M::Io(_) | M::TooLarge(_) => {
            StatusCode::INTERNAL_SERVER_ERROR
        }
    }
}

impl From<crate::calls::CallsError> for ApiError {
    fn from(e: crate::calls::CallsError) -> Self {
        match e {
            crate::calls::CallsError::Invalid(crate::calls::events::EventError { field, why }) => {
                ApiError::invalid(field, why)
            }
            other => ApiError::Calls(other),
        }
    }
}

impl From<warpd_core::routing::params::ParamError> for ApiError {
    fn from(e: warpd_core::routing::params::ParamError) -> Self {
        use warpd_core::routing::params::ParamError as P;
        match e {
            P::Invalid { field, why } => ApiError::InvalidParam { field, why },
            P::Unknown(p) => ApiError::UnknownParam(p),
            P::NoCustomerKey => ApiError::NoCustomerKey,
            P::MalformedJson { what, why } => ApiError::MalformedJson { what, why },
        }
    }
}

impl From<ApiError> for ErrorObjectOwned {
    fn from(e: ApiError) -> Self {
        e.to_rpc()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caller_mistakes_are_4xx_and_rpc_client_codes() {
        let cases = [
            ApiError::invalid("dnis", "missing field"),
            ApiError::UnknownParam("foo".into()),
            ApiError::NoCustomerKey,
            ApiError::MalformedJson {
                what: "body",
                why: "x".into(),
            },
            ApiError::BodyTooLarge { limit: 10 },
            ApiError::UnsupportedMediaType {
                expected: "application/json",
                got: "text/plain".into(),
            },
            ApiError::NotFound("/x".into()),
            ApiError::MethodNotAllowed {
                path: "/rpc".into(),
                method: "GET".into(),
                allow: "POST",
            },
        ];
        for e in cases {
            assert!(e.is_client_error(), "{e} must be a client error");
            assert!(e.rpc_code() != INTERNAL_ERROR_CODE, "{e}");
        }
        assert_eq!(
            ApiError::NotReady.http_status(),
            StatusCode::SERVICE_UNAVAILABLE
        );
        assert!(!ApiError::NotReady.is_client_error());
    }

    #[test]
    fn messages_name_the_field_first() {
        let e = ApiError::invalid("max_results", "invalid type");
        assert_eq!(e.to_string(), "max_results: invalid type");
        assert_eq!(e.rpc_code(), INVALID_PARAMS_CODE);
        let body: serde_json::Value = serde_json::from_slice(&e.to_json_body()).unwrap_or_default();
        assert_eq!(body["error"], "max_results: invalid type");
        assert!(ApiError::NoCustomerKey
            .to_string()
            .starts_with("ban, src_ip, trunk:"));
    }
}
