//! Deck uploads as `multipart/form-data` (`curl -F file=@deck.csv -F effective=…`), parsed by the
//! `multer` crate. The body has been read into memory under the upload limit (as a raw upload
//! is); it is scanned twice without copying it: once for the form fields (options may come after
//! the file part) and the shape (exactly one file part), then again to stream the file part's
//! bytes into the import, which reads them on its blocking parse thread.
//!
//! Owns: multipart framing of deck uploads. Must not touch: deck parsing or storage.

use std::collections::HashMap;
use std::io::Read;

use bytes::{Buf, Bytes};
use futures_util::stream;

use super::AdminError;

/// Form fields a deck upload accepts besides the file (the same names as the query parameters).
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
/// The body is fed to multer in slices of this size (zero-copy `Bytes::slice`).
const SLICE: usize = 64 << 10;

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
    multer::parse_boundary(ct)
        .map(Some)
        .map_err(|e| AdminError::invalid("content-type", format!("{ct:?}: {e}")))
}

fn slices(body: Bytes) -> impl futures_util::Stream<Item = Result<Bytes, std::io::Error>> {
    let n = body.len().div_ceil(SLICE);
    stream::iter((0..n).map(move |i| {
        let end = ((i + 1) * SLICE).min(body.len());
        Ok(body.slice(i * SLICE..end))
    }))
}

fn bad(e: multer::Error) -> AdminError {
    AdminError::invalid("body", format!("multipart/form-data: {e}"))
}

/// What the first scan found.
#[derive(Debug, PartialEq)]
pub(super) struct Form {
    /// text fields by name
    pub fields: HashMap<String, String>,
    /// index of the file part among all parts
    pub file_index: usize,
    /// its file name, if the client sent one
    pub file_name: Option<String>,
}

/// Reads every part: text fields (known names only, small) and exactly one file part — the part
/// with a file name, or else the one named `file` or `deck`.
pub(super) async fn scan(body: Bytes, boundary: &str) -> Result<Form, AdminError> {
    let mut mp = multer::Multipart::new(slices(body), boundary.to_string());
    let mut fields = HashMap::new();
    let mut file: Option<(usize, Option<String>)> = None;
    let mut i = 0;
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
            // drain it (validates the framing to its end)
            while f.chunk().await.map_err(bad)?.is_some() {}
            file = Some((i, file_name));
        } else {
            if !FORM_FIELDS.contains(&name.as_str()) {
                return Err(AdminError::invalid(
                    if name.is_empty() { "form field" } else { &name },
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
        i += 1;
    }
    let (file_index, file_name) = file.ok_or_else(|| {
        AdminError::invalid(
            "file",
            "the multipart body has no file part (send the deck as e.g. -F file=@deck.csv)",
        )
    })?;
    Ok(Form {
        fields,
        file_index,
        file_name,
    })
}

/// A blocking reader of part `index` of a body [`scan`] accepted. A task parses the body again
/// and hands the part's chunks over a bounded channel; call `read` only off the async runtime
/// (the import reads on its blocking parse thread).
pub(super) fn part_reader(body: Bytes, boundary: String, index: usize) -> PartReader {
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Bytes, String>>(8);
    tokio::spawn(async move {
        let mut mp = multer::Multipart::new(slices(body), boundary);
        let mut i = 0;
        loop {
            let mut f = match mp.next_field().await {
                Ok(Some(f)) => f,
                Ok(None) => return,
                Err(e) => {
                    let _ = tx.send(Err(e.to_string())).await;
                    return;
                }
            };
            if i == index {
                loop {
                    match f.chunk().await {
                        Ok(Some(b)) => {
                            if tx.send(Ok(b)).await.is_err() {
                                return; // the import stopped reading
                            }
                        }
                        Ok(None) => return,
                        Err(e) => {
                            let _ = tx.send(Err(e.to_string())).await;
                            return;
                        }
                    }
                }
            }
            i += 1;
        }
    });
    PartReader {
        rx,
        cur: Bytes::new(),
    }
}

pub(super) struct PartReader {
    rx: tokio::sync::mpsc::Receiver<Result<Bytes, String>>,
    cur: Bytes,
}

impl Read for PartReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        while self.cur.is_empty() {
            match self.rx.blocking_recv() {
                Some(Ok(b)) => self.cur = b,
                Some(Err(e)) => return Err(std::io::Error::other(format!("multipart: {e}"))),
                None => return Ok(0),
            }
        }
        let n = buf.len().min(self.cur.len());
        buf[..n].copy_from_slice(&self.cur[..n]);
        self.cur.advance(n);
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
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

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn scan_then_stream_the_file_part() {
        // options after the file part, a deck bigger than one slice
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
        let f = scan(body.clone(), "XyZ").await.unwrap();
        assert_eq!(f.file_index, 1);
        assert_eq!(f.file_name.as_deref(), Some("lumen.csv"));
        assert_eq!(f.fields["effective"], "2026-12-01T00:00Z");
        assert_eq!(f.fields["name"], "x.csv");
        let mut r = part_reader(body, "XyZ".into(), f.file_index);
        let got = tokio::task::spawn_blocking(move || {
            let mut s = String::new();
            r.read_to_string(&mut s).map(|_| s)
        })
        .await
        .unwrap()
        .unwrap();
        assert_eq!(got, deck);
    }

    #[tokio::test]
    async fn bad_forms_are_named() {
        let no_file = form(&[("effective", None, "2026-12-01")]);
        let e = scan(no_file, "XyZ").await.unwrap_err();
        assert!(e.to_string().starts_with("file: "), "{e}");
        let two = form(&[("file", Some("a.csv"), "x"), ("deck", None, "y")]);
        assert!(scan(two, "XyZ")
            .await
            .unwrap_err()
            .to_string()
            .starts_with("deck: "));
        let odd = form(&[("colour", None, "red"), ("file", Some("a.csv"), "x")]);
        assert!(scan(odd, "XyZ")
            .await
            .unwrap_err()
            .to_string()
            .starts_with("colour: "));
        let cut = Bytes::from_static(
            b"--XyZ\r\nContent-Disposition: form-data; name=\"file\"\r\n\r\nabc",
        );
        let e = scan(cut, "XyZ").await.unwrap_err();
        assert!(e.to_string().starts_with("body: multipart"), "{e}");
    }
}
