//! Deck file readers: [`Format`] sniffing, the [`RowSource`] trait, the streaming [`CsvSource`]
//! (UTF-8 with a Latin-1 fallback per field, BOM, any line end, quoting), under [`Limits`]. The
//! XLSX reader is `xlsx`'s, the choice between them `open`'s.
//!
//! Owns: file formats and encodings, the header row as written, line/row numbers.
//! Must not touch: what the columns mean (see `layout`), row validation (see `validate`).

use std::io::Read;

use serde::Serialize;

use super::limits::{Guard, GuardState, Limits, Tripped};
use crate::excerpt::excerpt;
use crate::provision::csv_rows::Eol;
use crate::provision::Issue;

/// How a deck file is encoded on the wire.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    Csv,
    Gzip,
    Xlsx,
}

impl Format {
    /// From the first bytes: gzip magic, zip magic (XLSX), else CSV.
    pub fn sniff(head: &[u8]) -> Format {
        if head.starts_with(&[0x1f, 0x8b]) {
            Format::Gzip
        } else if head.starts_with(b"PK\x03\x04") {
            Format::Xlsx
        } else {
            Format::Csv
        }
    }
}

/// Rows of a deck as text fields with the line (CSV) or row number (XLSX, 1-based) they came from.
pub trait RowSource {
    fn headers(&self) -> &[String];
    /// Fills `out` with the next record's fields; `Ok(None)` at the end.
    fn next_row(&mut self, out: &mut Vec<String>) -> Result<Option<u64>, Issue>;
    /// Fields that were not UTF-8 and were read as Latin-1.
    fn latin1_fields(&self) -> u64 {
        0
    }
}

/// A streaming CSV reader over any bytes: header row, fields decoded as UTF-8 or, failing that,
/// Latin-1 (Windows exports), BOM stripped, any line-end style, quoted fields.
pub struct CsvSource<R: Read> {
    label: String,
    reader: csv::Reader<Eol<Guard<R>>>,
    guard: GuardState,
    limits: Limits,
    /// line of the last record read (a record cut by a bound is on a later one)
    last_line: u64,
    headers: Vec<String>,
    record: csv::ByteRecord,
    /// fields that were not UTF-8 and were read as Latin-1
    pub latin1_fields: u64,
}

fn decode_into(raw: &[u8], out: &mut String) -> bool {
    out.clear();
    match std::str::from_utf8(raw) {
        Ok(s) => {
            out.push_str(s.trim());
            false
        }
        Err(_) => {
            // Latin-1: every byte is the code point of the same value
            out.extend(raw.iter().map(|&b| b as char));
            let t = out.trim().len();
            if t != out.len() {
                let s = out.trim().to_string();
                *out = s;
            }
            true
        }
    }
}

impl<R: Read> CsvSource<R> {
    /// A reader under the default [`Limits`].
    pub fn new(r: R, label: &str) -> Result<Self, Issue> {
        Self::with_limits(r, label, Limits::default())
    }

    pub fn with_limits(r: R, label: &str, limits: Limits) -> Result<Self, Issue> {
        let (guarded, guard) = Guard::new(r, limits.content_bytes, limits.record_bytes);
        let reader = csv::ReaderBuilder::new()
            .has_headers(false)
            .flexible(true)
            .buffer_capacity(1 << 16)
            .from_reader(Eol::new(guarded));
        let mut s = CsvSource {
            label: label.to_string(),
            reader,
            guard,
            limits,
            last_line: 0,
            headers: vec![],
            record: csv::ByteRecord::new(),
            latin1_fields: 0,
        };
        let mut fields = vec![];
        // the header is the first non-blank record
        loop {
            match s.read(&mut fields)? {
                None => {
                    return Err(Issue::at_line(
                        label,
                        1,
                        "",
                        "empty file: expected a header row",
                    ))
                }
                Some(_) if fields.iter().all(String::is_empty) => continue,
                Some(line) => {
                    if let Some(first) = fields.first_mut() {
                        *first = first.trim_start_matches('\u{feff}').trim().to_string();
                    }
                    if fields.len() > s.limits.columns {
                        return Err(Issue::at_line(
                            label,
                            line,
                            "header",
                            format!(
                                "{} columns; a deck has at most {}",
                                fields.len(),
                                s.limits.columns
                            ),
                        ));
                    }
                    if let Some(i) = fields.iter().position(String::is_empty) {
                        return Err(Issue::at_line(
                            label,
                            line,
                            format!("column {}", i + 1),
                            "empty column name in header",
                        ));
                    }
                    s.headers = fields;
                    return Ok(s);
                }
            }
        }
    }

    fn read(&mut self, out: &mut Vec<String>) -> Result<Option<u64>, Issue> {
        self.guard.start_record(self.limits.record_bytes);
        match self.reader.read_byte_record(&mut self.record) {
            Ok(false) => return Ok(None),
            Ok(true) => {}
            Err(e) => {
                let next = self.last_line + 1;
                let (line, msg) = match self.guard.tripped() {
                    Some(Tripped::Content) => (
                        next,
                        format!(
                            "cannot read: the deck is larger than {} bytes (decompressed); split it",
                            self.limits.content_bytes
                        ),
                    ),
                    Some(Tripped::Record) => (
                        next,
                        format!(
                            "cannot read: a record longer than {} bytes (a missing closing quote?)",
                            self.limits.record_bytes
                        ),
                    ),
                    None => (
                        e.position().map(|p| p.line()).unwrap_or(next),
                        format!("cannot read: {e}"),
                    ),
                };
                return Err(Issue::at_line(&self.label, line, "", msg));
            }
        }
        let line = self.record.position().map(|p| p.line()).unwrap_or(0);
        self.last_line = line;
        if self.record.len() > self.limits.columns {
            out.clear();
            return Err(Issue::at_line(
                &self.label,
                line,
                "",
                format!(
                    "{} fields; a deck has at most {} columns",
                    self.record.len(),
                    self.limits.columns
                ),
            ));
        }
        if let Some(i) = self
            .record
            .iter()
            .position(|f| f.len() > self.limits.field_bytes)
        {
            out.clear();
            let field = String::from_utf8_lossy(&self.record[i]).into_owned();
            return Err(Issue::at_line(
                &self.label,
                line,
                self.headers
                    .get(i)
                    .map(|h| crate::excerpt::plain(h))
                    .unwrap_or_else(|| format!("column {}", i + 1)),
                format!(
                    "a field longer than {} bytes: {}",
                    self.limits.field_bytes,
                    excerpt(&field)
                ),
            ));
        }
        out.resize_with(self.record.len(), String::new);
        for (raw, dst) in self.record.iter().zip(out.iter_mut()) {
            if decode_into(raw, dst) {
                self.latin1_fields += 1;
            }
        }
        Ok(Some(line))
    }
}

impl<R: Read> RowSource for CsvSource<R> {
    fn headers(&self) -> &[String] {
        &self.headers
    }
    fn latin1_fields(&self) -> u64 {
        self.latin1_fields
    }
    fn next_row(&mut self, out: &mut Vec<String>) -> Result<Option<u64>, Issue> {
        loop {
            let Some(line) = self.read(out)? else {
                return Ok(None);
            };
            if out.iter().all(String::is_empty) {
                continue;
            }
            if out.len() != self.headers.len() {
                return Err(Issue::at_line(
                    &self.label,
                    line,
                    "",
                    format!(
                        "expected {} fields (as in the header), found {} (a comma inside a value must be quoted)",
                        self.headers.len(),
                        out.len()
                    ),
                ));
            }
            return Ok(Some(line));
        }
    }
}
