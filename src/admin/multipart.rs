//! Uploads (`POST /v1/admin/routes/{route}/decks`, `/v1/admin/numbering/{table}`): the body —
//! raw bytes, or a `multipart/form-data` form (`curl -F file=@deck.csv -F effective=…`, parsed
//! by the `multer` crate) — is streamed as it arrives into an unlinked temporary file (in
//! `$TMPDIR`), never held in memory: the file part is written to disk chunk by chunk, the form's
//! other fields (small) are kept, and the handler reads the file (the deck import on its
//! blocking parse thread). The upload limit counts the whole body.
//!
//! Owns: upload framing, the temporary file. Must not touch: deck parsing or storage.

use std::collections::HashMap;
use std::io::{Seek, SeekFrom};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use futures_util::StreamExt;
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper::header::CONTENT_LENGTH;
use hyper::Request;
use tokio::io::AsyncWriteExt;

use super::AdminError;
use crate::http_body::BodyError;

/// Form fields an upload accepts besides the file (the same names as the query parameters).
pub(super) const FORM_FIELDS: &[&str] = &[
    "effective",
    "dry_run",
    "skip_invalid",
    "stage",
    "map",
    "save_mapping",
    "sheet",
    "name",
    "warn_pct",
];

/// Largest form field value other than the file.
const MAX_FIELD_BYTES: usize = 64 << 10;

/// An upload received: the file (rewound, unlinked: it goes away when dropped), and for a
/// multipart form its other fields and the file part's name.
#[derive(Debug)]
pub struct Upload {
    pub file: std::fs::File,
    /// form fields by name (none for a raw body)
    pub fields: HashMap<String, String>,
    /// the file part's file name, if the client sent one
    pub file_name: Option<String>,
    /// bytes of `file` the import has read so far, when someone watches (the console's
    /// progress page); `None` for API uploads
    pub progress: Option<Arc<AtomicU64>>,
}

impl Upload {
    /// The file as the import reads it: counting into `progress` when it is set.
    pub fn into_reader(self) -> Box<dyn std::io::Read + Send> {
        match self.progress {
            Some(read) => Box::new(Counting {
                inner: self.file,
                read,
            }),
            None => Box::new(self.file),
        }
    }
}

/// A reader that adds what it reads to a shared counter.
struct Counting<R> {
    inner: R,
    read: Arc<AtomicU64>,
}

impl<R: std::io::Read> std::io::Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.read.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}

/// The boundary when `content_type` is multipart/form-data; `None` for any other body.
pub(super) fn boundary(content_type: Option<&str>) -> Result<Option<String>, AdminError> {
    let Some(ct) = content_type else {
        return Ok(None);
    };
    if !ct
        .trim_start()
        .to_ascii_lowercase()
        .starts_with("multipart/")
    {
        return Ok(None);
    }
    multer::parse_boundary(ct).map(Some).map_err(|e| {
        AdminError::invalid(
            "content-type",
            format!("{}: {e}", warpd_core::excerpt::excerpt(ct)),
        )
    })
}

fn bad(e: multer::Error) -> AdminError {
    AdminError::invalid("body", format!("multipart/form-data: {e}"))
}

/// An unlinked temporary file written from async code.
struct Spool {
    file: tokio::fs::File,
    len: u64,
}

impl Spool {
    fn new() -> Result<Spool, AdminError> {
        let f = tempfile::tempfile().map_err(AdminError::Stage)?;
        Ok(Spool {
            file: tokio::fs::File::from_std(f),
            len: 0,
        })
    }

    async fn write(&mut self, chunk: &[u8]) -> Result<(), AdminError> {
        self.file
            .write_all(chunk)
            .await
            .map_err(AdminError::Stage)?;
        self.len += chunk.len() as u64;
        Ok(())
    }

    /// The file, flushed and rewound.
    async fn finish(mut self) -> Result<(std::fs::File, u64), AdminError> {
        self.file.flush().await.map_err(AdminError::Stage)?;
        let mut f = self.file.into_std().await;
        f.seek(SeekFrom::Start(0)).map_err(AdminError::Stage)?;
        Ok((f, self.len))
    }
}

/// Receives the body of `req` into a temporary file, refusing more than `limit` bytes in all:
/// the raw body, or the one file part of a multipart form (see [`receive_form`]).
/// `extra`: form fields accepted besides [`FORM_FIELDS`] (the console's `csrf`).
pub(super) async fn receive(
    req: Request<Incoming>,
    limit: usize,
    content_type: Option<&str>,
    extra: &'static [&'static str],
) -> Result<Upload, AdminError> {
    let declared = req
        .headers()
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|s| s.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return Err(BodyError::TooLarge { limit }.into());
    }
    // the body's chunks, counted: past the limit the stream fails (and says so)
    let too_large = Arc::new(AtomicBool::new(false));
    let flag = too_large.clone();
    let mut seen = 0usize;
    let chunks = req.into_body().into_data_stream().map(move |r| match r {
        Ok(b) => {
            seen = seen.saturating_add(b.len());
            if seen > limit {
                flag.store(true, Ordering::Relaxed);
                return Err(std::io::Error::other("body larger than the upload limit"));
            }
            Ok(b)
        }
        Err(e) => Err(std::io::Error::other(e)),
    });
    let result = match boundary(content_type)? {
        Some(b) => receive_form(chunks, b, extra).await,
        None => receive_raw(chunks).await,
    };
    if too_large.load(Ordering::Relaxed) {
        return Err(BodyError::TooLarge { limit }.into());
    }
    result
}

async fn receive_raw(
    chunks: impl futures_util::Stream<Item = Result<Bytes, std::io::Error>>,
) -> Result<Upload, AdminError> {
    let mut spool = Spool::new()?;
    futures_util::pin_mut!(chunks);
    while let Some(c) = chunks.next().await {
        let c = c.map_err(|e| AdminError::Body(BodyError::Read(Box::new(e))))?;
        spool.write(&c).await?;
    }
    let (file, _) = spool.finish().await?;
    Ok(Upload {
        file,
        fields: HashMap::new(),
        file_name: None,
        progress: None,
    })
}

/// Reads every part: text fields (known names only, small) and exactly one file part — the part
/// with a file name, or else the one named `file` or `deck` — written to the temporary file.
async fn receive_form(
    chunks: impl futures_util::Stream<Item = Result<Bytes, std::io::Error>> + Send + 'static,
    boundary: String,
    extra: &'static [&'static str],
) -> Result<Upload, AdminError> {
    let mut mp = multer::Multipart::new(chunks, boundary);
    let mut fields = HashMap::new();
    let mut file: Option<(std::fs::File, u64, Option<String>)> = None;
    while let Some(mut f) = mp.next_field().await.map_err(bad)? {
        let name = f.name().unwrap_or("").to_string();
        let file_name = f.file_name().map(str::to_string);
        if file_name.is_some() || name == "file" || name == "deck" {
            if file.is_some() {
                return Err(AdminError::invalid(
                    name,
                    "a second file part; upload one deck per request",
                ));
            }
            let mut spool = Spool::new()?;
            while let Some(c) = f.chunk().await.map_err(bad)? {
                spool.write(&c).await?;
            }
            let (f, len) = spool.finish().await?;
            file = Some((f, len, file_name));
        } else {
            if !FORM_FIELDS.contains(&name.as_str()) && !extra.contains(&name.as_str()) {
                return Err(AdminError::invalid(
                    if name.is_empty() {
                        "form field".to_string()
                    } else {
                        warpd_core::excerpt::plain(&name)
                    },
                    format!(
                        "unknown form field (expected a file part and any of {})",
                        FORM_FIELDS.join(", ")
                    ),
                ));
            }
            let mut v = Vec::new();
            while let Some(c) = f.chunk().await.map_err(bad)? {
                v.extend_from_slice(&c);
                if v.len() > MAX_FIELD_BYTES {
                    return Err(AdminError::invalid(
                        name,
                        format!("longer than {MAX_FIELD_BYTES} bytes"),
                    ));
                }
            }
            let v = String::from_utf8(v)
                .map_err(|_| AdminError::invalid(name.clone(), "not UTF-8 text"))?;
            if fields.insert(name.clone(), v).is_some() {
                return Err(AdminError::invalid(name, "given twice"));
            }
        }
    }
    let (file, _, file_name) = file.ok_or_else(|| {
        AdminError::invalid(
            "file",
            "the multipart body has no file part (send the deck as e.g. -F file=@deck.csv)",
        )
    })?;
    Ok(Upload {
        file,
        fields,
        file_name,
        progress: None,
    })
}

#[cfg(test)]
mod tests {
    use std::io::Read;

    use super::*;

    fn form(parts: &[(&str, Option<&str>, &str)]) -> Bytes {
        let mut s = String::new();
        for (name, file, v) in parts {
            s.push_str("--XyZ\r\nContent-Disposition: form-data; name=\"");
            s.push_str(name);
            s.push('"');
            if let Some(f) = file {
                s.push_str(&format!("; filename=\"{f}\"\r\nContent-Type: text/csv"));
            }
            s.push_str("\r\n\r\n");
            s.push_str(v);
            s.push_str("\r\n");
        }
        s.push_str("--XyZ--\r\n");
        Bytes::from(s)
    }

    /// The body in chunks of 1000 bytes, as a connection delivers it.
    fn chunks(
        body: Bytes,
    ) -> impl futures_util::Stream<Item = Result<Bytes, std::io::Error>> + Send + 'static {
        let n = body.len().div_ceil(1000);
        futures_util::stream::iter(
            (0..n).map(move |i| Ok(body.slice(i * 1000..((i + 1) * 1000).min(body.len())))),
        )
    }

    #[test]
    fn boundary_only_for_multipart() {
        assert_eq!(boundary(None).unwrap(), None);
        assert_eq!(boundary(Some("text/csv")).unwrap(), None);
        assert_eq!(
            boundary(Some("multipart/form-data; boundary=XyZ")).unwrap(),
            Some("XyZ".to_string())
        );
        assert!(boundary(Some("multipart/form-data")).is_err());
    }

    #[tokio::test]
    async fn the_file_part_goes_to_a_temporary_file() {
        // options after the file part, a deck of many chunks
        let deck = format!(
            "Code,Price\n{}",
            (0..20_000)
                .map(|i| format!("44{i},0.01\n"))
                .collect::<String>()
        );
        let body = form(&[
            ("name", None, "x.csv"),
            ("file", Some("lumen.csv"), &deck),
            ("effective", None, "2026-12-01T00:00Z"),
        ]);
        let mut u = receive_form(chunks(body), "XyZ".into(), &[]).await.unwrap();
        assert_eq!(u.file_name.as_deref(), Some("lumen.csv"));
        assert_eq!(u.fields["effective"], "2026-12-01T00:00Z");
        assert_eq!(u.fields["name"], "x.csv");
        let mut got = String::new();
        u.file.read_to_string(&mut got).unwrap();
        assert_eq!(got, deck);

        let mut raw = receive_raw(chunks(Bytes::from(deck.clone())))
            .await
            .unwrap();
        let mut got = String::new();
        raw.file.read_to_string(&mut got).unwrap();
        assert_eq!(got, deck);
    }

    #[tokio::test]
    async fn bad_forms_are_named() {
        let scan = |b: Bytes| receive_form(chunks(b), "XyZ".into(), &[]);
        let no_file = form(&[("effective", None, "2026-12-01")]);
        let e = scan(no_file).await.unwrap_err();
        assert!(e.to_string().starts_with("file: "), "{e}");
        let two = form(&[("file", Some("a.csv"), "x"), ("deck", None, "y")]);
        let e = scan(two).await.unwrap_err();
        assert!(e.to_string().starts_with("deck: "), "{e}");
        let odd = form(&[("colour", None, "red"), ("file", Some("a.csv"), "x")]);
        let e = scan(odd).await.unwrap_err();
        assert!(e.to_string().starts_with("colour: "), "{e}");
        let cut = Bytes::from_static(
            b"--XyZ\r\nContent-Disposition: form-data; name=\"file\"\r\n\r\nabc",
        );
        let e = scan(cut).await.unwrap_err();
        assert!(e.to_string().starts_with("body: multipart"), "{e}");
    }
}
