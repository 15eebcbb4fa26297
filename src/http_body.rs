//! Reading an HTTP request body up to a size limit and within a time limit: the one helper both
//! the API listener (`crate::api`) and the admin API (`crate::admin`) use, kept below both so
//! neither imports the other for it.
//!
//! Every frame is copied into ONE buffer as it arrives. Collecting the frames themselves kept
//! each one alive, and a 1-byte frame from hyper pins its whole read buffer: a client sending a
//! body one byte at a time cost ~4 KB of memory per byte received (20 such connections sending
//! 60 KB each took the daemon to 2 GB).
//!
//! Owns: body size and time limits and their errors. Must not touch: statuses (each caller maps
//! [`BodyError`] in its own error type).

use std::time::Duration;

use bytes::{Bytes, BytesMut};
use http_body_util::BodyExt;
use hyper::body::Body;
use hyper::header::CONTENT_LENGTH;
use hyper::Request;

/// Why a body could not be read.
#[derive(Debug, thiserror::Error)]
pub enum BodyError {
    #[error("body: larger than the limit of {limit} bytes")]
    TooLarge { limit: usize },
    #[error("body: not received within {} ms", .0.as_millis())]
    Timeout(Duration),
    #[error("body: could not be read: {0}")]
    Read(#[source] Box<dyn std::error::Error + Send + Sync>),
}

/// The whole body of `req`, refusing one declared or found larger than `limit` bytes, or not
/// complete within `timeout`.
pub async fn read_body<B>(
    req: Request<B>,
    limit: usize,
    timeout: Duration,
) -> Result<Bytes, BodyError>
where
    B: Body + Unpin,
    B::Data: bytes::Buf,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let declared = req
        .headers()
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|s| s.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return Err(BodyError::TooLarge { limit });
    }
    // a declared length sizes the buffer once; otherwise it grows (never beyond the limit)
    let initial = declared.map_or(0, |n| n as usize).min(limit);
    let body = req.into_body();
    match tokio::time::timeout(timeout, copy_frames(body, limit, initial)).await {
        Ok(r) => r,
        Err(_) => Err(BodyError::Timeout(timeout)),
    }
}

async fn copy_frames<B>(mut body: B, limit: usize, initial: usize) -> Result<Bytes, BodyError>
where
    B: Body + Unpin,
    B::Data: bytes::Buf,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    use bytes::Buf;
    let mut buf = BytesMut::with_capacity(initial);
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| BodyError::Read(e.into()))?;
        let Ok(mut data) = frame.into_data() else {
            continue; // trailers
        };
        if buf.len() + data.remaining() > limit {
            return Err(BodyError::TooLarge { limit });
        }
        while data.has_remaining() {
            let chunk = data.chunk();
            let n = chunk.len();
            buf.extend_from_slice(chunk);
            data.advance(n);
        }
        // `data` (and the read buffer it may pin) is dropped here
    }
    Ok(buf.freeze())
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    use http_body_util::StreamBody;
    use hyper::body::Frame;

    use super::*;

    /// A 4 KB buffer that counts how many of its kind are alive (like hyper's read buffer that a
    /// 1-byte frame of a slow client pins).
    struct Pinned {
        buf: Vec<u8>,
        live: Arc<AtomicUsize>,
        peak: Arc<AtomicUsize>,
    }
    impl Pinned {
        fn new(live: &Arc<AtomicUsize>, peak: &Arc<AtomicUsize>) -> Pinned {
            let n = live.fetch_add(1, Ordering::SeqCst) + 1;
            peak.fetch_max(n, Ordering::SeqCst);
            Pinned {
                buf: vec![b'x'; 4096],
                live: live.clone(),
                peak: peak.clone(),
            }
        }
    }
    impl AsRef<[u8]> for Pinned {
        fn as_ref(&self) -> &[u8] {
            &self.buf
        }
    }
    impl Drop for Pinned {
        fn drop(&mut self) {
            self.live.fetch_sub(1, Ordering::SeqCst);
            let _ = &self.peak;
        }
    }

    fn one_byte_frames(
        n: usize,
        live: Arc<AtomicUsize>,
        peak: Arc<AtomicUsize>,
    ) -> Request<
        StreamBody<impl futures_util::Stream<Item = Result<Frame<Bytes>, std::io::Error>> + Unpin>,
    > {
        let frames = futures_util::stream::iter(0..n).map(move |_| {
            // one byte of a 4 KB buffer, as hyper hands a slow client's body
            let b = Bytes::from_owner(Pinned::new(&live, &peak)).slice(0..1);
            Ok::<_, std::io::Error>(Frame::data(b))
        });
        Request::new(StreamBody::new(frames))
    }

    use futures_util::StreamExt;

    #[tokio::test]
    async fn slow_tiny_frames_do_not_pin_their_buffers() {
        let (live, peak) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
        let req = one_byte_frames(1000, live.clone(), peak.clone());
        let body = read_body(req, 64 * 1024, Duration::from_secs(5))
            .await
            .unwrap();
        assert_eq!(body.len(), 1000);
        assert!(body.iter().all(|&b| b == b'x'));
        // collecting the frames kept all 1000 buffers (4 MB for a 1 KB body) alive at once
        assert!(
            peak.load(Ordering::SeqCst) <= 2,
            "{} 4 KB buffers alive at once for a 1 KB body",
            peak.load(Ordering::SeqCst)
        );
        assert_eq!(live.load(Ordering::SeqCst), 0);
    }

    #[tokio::test]
    async fn limits_size_declared_and_found() {
        let (live, peak) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
        let req = one_byte_frames(2000, live, peak);
        assert!(matches!(
            read_body(req, 1024, Duration::from_secs(5)).await,
            Err(BodyError::TooLarge { limit: 1024 })
        ));
        let mut req = Request::new(http_body_util::Full::new(Bytes::from_static(b"{}")));
        req.headers_mut().insert(
            CONTENT_LENGTH,
            hyper::header::HeaderValue::from_static("999999"),
        );
        assert!(matches!(
            read_body(req, 1024, Duration::from_secs(5)).await,
            Err(BodyError::TooLarge { .. })
        ));
    }

    #[tokio::test(start_paused = true)]
    async fn a_body_that_never_finishes_times_out() {
        let frames = futures_util::stream::iter([Ok::<_, std::io::Error>(Frame::data(
            Bytes::from_static(b"{"),
        ))])
        .chain(futures_util::stream::pending());
        let req = Request::new(StreamBody::new(frames));
        assert!(matches!(
            read_body(req, 1024, Duration::from_millis(500)).await,
            Err(BodyError::Timeout(_))
        ));
    }
}
