//! Reading an HTTP request body up to a size limit: the one helper both the API listener
//! (`crate::api`) and the admin API (`crate::admin`) use, kept below both so neither imports
//! the other for it.
//!
//! Owns: body size limits and their errors. Must not touch: statuses (each caller maps
//! [`BodyError`] in its own error type).

use bytes::Bytes;
use http_body_util::{BodyExt, LengthLimitError, Limited};
use hyper::body::Incoming;
use hyper::header::CONTENT_LENGTH;
use hyper::Request;

/// Why a body could not be read.
#[derive(Debug, thiserror::Error)]
pub enum BodyError {
    #[error("body: larger than the limit of {limit} bytes")]
    TooLarge { limit: usize },
    #[error("body: could not be read: {0}")]
    Read(#[source] Box<dyn std::error::Error + Send + Sync>),
}

/// The whole body of `req`, refusing one declared or found larger than `limit` bytes.
pub async fn read_body(req: Request<Incoming>, limit: usize) -> Result<Bytes, BodyError> {
    let declared = req
        .headers()
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|s| s.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return Err(BodyError::TooLarge { limit });
    }
    match Limited::new(req.into_body(), limit).collect().await {
        Ok(c) => Ok(c.to_bytes()),
        Err(e) if e.downcast_ref::<LengthLimitError>().is_some() => {
            Err(BodyError::TooLarge { limit })
        }
        Err(e) => Err(BodyError::Read(e)),
    }
}
