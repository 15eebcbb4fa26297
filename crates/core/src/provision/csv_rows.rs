//! CSV row reader for provisioning files: a header row, then records with 1-based line numbers,
//! trimmed UTF-8 fields, quoted fields (commas, quotes, newlines inside quotes), CRLF or LF line ends,
//! a leading UTF-8 BOM tolerated. Every problem is an [`Issue`] naming file, line and column.
//!
//! Owns: CSV syntax. Must not touch: the meaning of columns (see `deck`), the database.
//! Never panics on any input (there is a proptest for that).

use std::fs::File;
use std::io::{BufReader, Read};
use std::path::Path;

use super::Issue;

/// One data record: its line number (where the record starts) and its trimmed fields.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CsvRow {
    pub line: u64,
    pub fields: Vec<String>,
}

impl CsvRow {
    /// Field `i`, or "" if the row is shorter.
    pub fn get(&self, i: usize) -> &str {
        self.fields.get(i).map(String::as_str).unwrap_or("")
    }
}

/// Turns CRLF and lone CR line ends into LF, so the CSV reader's line numbers are exact for every
/// line-end style (it counts LF only). A CRLF inside a quoted field becomes LF too.
pub struct Eol<R> {
    inner: R,
    after_cr: bool,
}

impl<R> Eol<R> {
    pub fn new(inner: R) -> Eol<R> {
        Eol {
            inner,
            after_cr: false,
        }
    }
}

impl<R: Read> Read for Eol<R> {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        loop {
            let n = self.inner.read(out)?;
            if n == 0 {
                return Ok(0);
            }
            let mut w = 0;
            for r in 0..n {
                let b = out[r];
                if std::mem::take(&mut self.after_cr) && b == b'\n' {
                    continue;
                }
                if b == b'\r' {
                    self.after_cr = true;
                    out[w] = b'\n';
                } else {
                    out[w] = b;
                }
                w += 1;
            }
            if w > 0 {
                return Ok(w);
            }
        }
    }
}

/// A CSV file with a header row. Column names are trimmed and lower-cased.
pub struct CsvTable<R: Read> {
    file: String,
    reader: ::csv::Reader<Eol<R>>,
    headers: Vec<String>,
    header_line: u64,
    record: ::csv::ByteRecord,
    done: bool,
}

impl CsvTable<BufReader<File>> {
    /// Opens `path`; `label` is the name used in messages (e.g. the path as written in the file).
    pub fn open(path: &Path, label: &str) -> Result<Self, Issue> {
        let f = File::open(path).map_err(|e| Issue::new(label, "", format!("cannot open: {e}")))?;
        CsvTable::from_reader(BufReader::with_capacity(1 << 16, f), label)
    }
}

fn field_text(file: &str, line: u64, col: &str, raw: &[u8]) -> Result<String, Issue> {
    match std::str::from_utf8(raw) {
        Ok(s) => Ok(s.trim().to_string()),
        Err(_) => Err(Issue::at_line(file, line, col, "not valid UTF-8")),
    }
}

impl<R: Read> CsvTable<R> {
    /// Reads the header row. An empty file (or one with only blank lines) is an error.
    pub fn from_reader(r: R, file: impl Into<String>) -> Result<Self, Issue> {
        let file = file.into();
        let reader = ::csv::ReaderBuilder::new()
            .has_headers(false)
            .flexible(true)
            .from_reader(Eol {
                inner: r,
                after_cr: false,
            });
        let mut t = CsvTable {
            file,
            reader,
            headers: vec![],
            header_line: 1,
            record: ::csv::ByteRecord::new(),
            done: false,
        };
        match t.reader.read_byte_record(&mut t.record) {
            Ok(true) => {}
            Ok(false) => {
                return Err(Issue::at_line(
                    &t.file,
                    1,
                    "",
                    "empty file: expected a header row",
                ))
            }
            Err(e) => {
                return Err(Issue::at_line(
                    &t.file,
                    1,
                    "",
                    format!("cannot read header: {e}"),
                ))
            }
        }
        let line = t.record.position().map(|p| p.line()).unwrap_or(1);
        let mut headers = Vec::with_capacity(t.record.len());
        for (i, raw) in t.record.iter().enumerate() {
            let h = field_text(&t.file, line, &format!("column {}", i + 1), raw)?;
            let h = h.trim_start_matches('\u{feff}').trim().to_ascii_lowercase();
            if h.is_empty() {
                return Err(Issue::at_line(
                    &t.file,
                    line,
                    format!("column {}", i + 1),
                    "empty column name in header",
                ));
            }
            if headers.contains(&h) {
                return Err(Issue::at_line(
                    &t.file,
                    line,
                    h,
                    "column named twice in header",
                ));
            }
            headers.push(h);
        }
        t.headers = headers;
        t.header_line = line;
        Ok(t)
    }

    pub fn file(&self) -> &str {
        &self.file
    }

    /// Line number of the header row (1 unless blank lines precede it).
    pub fn header_line(&self) -> u64 {
        self.header_line
    }

    pub fn headers(&self) -> &[String] {
        &self.headers
    }

    /// Index of a column by (lower-case) name.
    pub fn column(&self, name: &str) -> Option<usize> {
        self.headers.iter().position(|h| h == name)
    }

    /// The next data record. Blank lines (and records whose fields are all empty) are skipped. A
    /// record with a different number of fields than the header is an error for that line; reading
    /// can continue after it. An I/O error ends the table.
    pub fn next_row(&mut self) -> Option<Result<CsvRow, Issue>> {
        loop {
            if self.done {
                return None;
            }
            match self.reader.read_byte_record(&mut self.record) {
                Ok(false) => {
                    self.done = true;
                    return None;
                }
                Err(e) => {
                    self.done = true;
                    let line = e.position().map(|p| p.line()).unwrap_or(0);
                    return Some(Err(Issue::at_line(
                        &self.file,
                        line,
                        "",
                        format!("cannot read: {e}"),
                    )));
                }
                Ok(true) => {}
            }
            let line = self.record.position().map(|p| p.line()).unwrap_or(0);
            let mut fields = Vec::with_capacity(self.record.len());
            for (i, raw) in self.record.iter().enumerate() {
                let col = self
                    .headers
                    .get(i)
                    .cloned()
                    .unwrap_or_else(|| format!("column {}", i + 1));
                match field_text(&self.file, line, &col, raw) {
                    Ok(s) => fields.push(s),
                    Err(e) => return Some(Err(e)),
                }
            }
            if fields.iter().all(String::is_empty) {
                continue;
            }
            if fields.len() != self.headers.len() {
                return Some(Err(Issue::at_line(
                    &self.file,
                    line,
                    "",
                    format!(
                        "expected {} fields (as in the header), found {}",
                        self.headers.len(),
                        fields.len()
                    ),
                )));
            }
            return Some(Ok(CsvRow { line, fields }));
        }
    }
}

impl<R: Read> Iterator for CsvTable<R> {
    type Item = Result<CsvRow, Issue>;
    fn next(&mut self) -> Option<Self::Item> {
        self.next_row()
    }
}
