//! What an admin handler is given and gives back: the request context ([`Ctx`]: caller, path
//! and query parameters, body) and the answer ([`AdminReply`]).
//!
//! Owns: parameter and body parsing of admin requests. Must not touch: routing, SQL.

use std::collections::HashMap;

use bytes::Bytes;
use chrono::{DateTime, Utc};
use hyper::StatusCode;
use serde::de::DeserializeOwned;
use serde::Serialize;

use super::{AdminError, Principal};
use crate::deck;

/// A successful admin answer: status, content type, body.
pub struct AdminReply {
    pub status: StatusCode,
    pub content_type: &'static str,
    pub body: Bytes,
}

/// `v` as a JSON answer.
pub fn json_reply(status: StatusCode, v: &impl Serialize) -> Result<AdminReply, AdminError> {
    Ok(AdminReply {
        status,
        content_type: "application/json",
        body: serde_json::to_vec(v)?.into(),
    })
}

/// One admin request, authenticated.
pub struct Ctx {
    pub(super) who: Principal,
    pub(super) params: HashMap<String, String>,
    pub(super) query: HashMap<String, String>,
    pub(super) body: Bytes,
    /// an upload route's body, in a temporary file (its form fields are in the query)
    pub(super) upload: Option<super::multipart::Upload>,
    /// how the caller came in, the audit log's actor prefix: `token` (the API) or `console`
    /// (a user of the ops console)
    pub(super) via: &'static str,
}

impl Ctx {
    /// A path parameter (`{vendor}`); "" when the route has none of that name.
    pub fn p(&self, k: &str) -> &str {
        self.params.get(k).map(String::as_str).unwrap_or("")
    }

    /// A path parameter that must be an integer id.
    pub fn id(&self, k: &str, what: &str) -> Result<i64, AdminError> {
        let v = self.p(k);
        v.parse().map_err(|_| {
            AdminError::invalid(
                k,
                format!("{} is not {what}", warpd_core::excerpt::excerpt(v)),
            )
        })
    }

    /// A non-empty query parameter.
    pub fn q(&self, k: &str) -> Option<&str> {
        self.query
            .get(k)
            .map(String::as_str)
            .filter(|s| !s.is_empty())
    }

    pub fn flag(&self, k: &str) -> Result<bool, AdminError> {
        match self.q(k) {
            None => Ok(false),
            Some("true" | "1" | "yes") => Ok(true),
            Some("false" | "0" | "no") => Ok(false),
            Some(v) => Err(AdminError::invalid(
                k,
                format!("{} is not true/false", warpd_core::excerpt::excerpt(v)),
            )),
        }
    }

    pub fn int(&self, k: &str) -> Result<Option<i64>, AdminError> {
        self.q(k)
            .map(|v| {
                v.parse::<i64>().map_err(|_| {
                    AdminError::invalid(
                        k,
                        format!("{} is not an integer", warpd_core::excerpt::excerpt(v)),
                    )
                })
            })
            .transpose()
    }

    pub fn when(&self, k: &str) -> Result<Option<DateTime<Utc>>, AdminError> {
        self.q(k)
            .map(|v| {
                deck::parse::parse_when(v)
                    .ok()
                    .and_then(DateTime::<Utc>::from_timestamp_micros)
                    .ok_or_else(|| AdminError::invalid(k, format!("{v:?} is not a date/time")))
            })
            .transpose()
    }

    /// The JSON body as `T`; a wrong type or unknown field is a 400 naming it.
    pub fn json<T: DeserializeOwned>(&self) -> Result<T, AdminError> {
        let de = &mut serde_json::Deserializer::from_slice(&self.body);
        serde_path_to_error::deserialize(de).map_err(|e| {
            let field = e.path().to_string();
            AdminError::invalid(
                if field == "." { "body".into() } else { field },
                e.inner().to_string(),
            )
        })
    }

    /// The audit log's actor: `token:<name>` for an API token, `console:<name>` for a console
    /// user.
    pub fn actor(&self) -> String {
        format!("{}:{}", self.via, self.who.name)
    }
}
