//! Deck file readers: [`Format`] sniffing, the [`RowSource`] trait, the streaming [`CsvSource`]
//! (UTF-8 with a Latin-1 fallback per field, BOM, any line end, quoting), the in-memory
//! [`XlsxSource`] (one sheet) and [`open_source`], which picks one for a byte stream.
//!
//! Owns: file formats and encodings, the header row as written, line/row numbers.
//! Must not touch: what the columns mean (see `layout`), row validation (see `validate`).

use std::io::{BufRead, BufReader, Cursor, Read, Seek};

use serde::Serialize;

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
    reader: csv::Reader<Eol<R>>,
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
    pub fn new(r: R, label: &str) -> Result<Self, Issue> {
        let reader = csv::ReaderBuilder::new()
            .has_headers(false)
            .flexible(true)
            .buffer_capacity(1 << 16)
            .from_reader(Eol::new(r));
        let mut s = CsvSource {
            label: label.to_string(),
            reader,
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
        match self.reader.read_byte_record(&mut self.record) {
            Ok(false) => return Ok(None),
            Ok(true) => {}
            Err(e) => {
                let line = e.position().map(|p| p.line()).unwrap_or(0);
                return Err(Issue::at_line(
                    &self.label,
                    line,
                    "",
                    format!("cannot read: {e}"),
                ));
            }
        }
        let line = self.record.position().map(|p| p.line()).unwrap_or(0);
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

/// One XLSX sheet held in memory.
pub struct XlsxSource {
    headers: Vec<String>,
    rows: std::vec::IntoIter<(u64, Vec<String>)>,
}

fn cell_text(c: &calamine::Data) -> String {
    use calamine::Data;
    match c {
        Data::Empty => String::new(),
        Data::String(s) => s.trim().to_string(),
        Data::Float(f) => {
            // prefixes stored as numbers come back as 1212.0; rates as 0.0123
            if f.fract() == 0.0 && f.abs() < 1e15 {
                format!("{}", *f as i64)
            } else {
                format!("{f}")
            }
        }
        Data::Int(i) => i.to_string(),
        Data::Bool(b) => b.to_string(),
        Data::DateTime(d) => {
            let (y, mo, da, h, mi, s, _) = d.to_ymd_hms_milli();
            format!("{y:04}-{mo:02}-{da:02}T{h:02}:{mi:02}:{s:02}Z")
        }
        Data::DateTimeIso(s) | Data::DurationIso(s) => s.clone(),
        Data::Error(e) => format!("#ERROR {e:?}"),
    }
}

impl XlsxSource {
    /// Opens a workbook. A workbook with several sheets needs `sheet` (the error lists them).
    pub fn open<RS: Read + Seek>(r: RS, label: &str, sheet: Option<&str>) -> Result<Self, Issue> {
        use calamine::Reader;
        let mut wb: calamine::Xlsx<RS> = calamine::Xlsx::new(r)
            .map_err(|e| Issue::new(label, "", format!("not a readable XLSX workbook: {e}")))?;
        let names = wb.sheet_names().to_vec();
        let name = match (sheet, names.as_slice()) {
            (Some(s), _) if names.iter().any(|n| n == s) => s.to_string(),
            (Some(s), _) => {
                return Err(Issue::new(
                    label,
                    "sheet",
                    format!("no sheet {s:?}; the workbook has: {}", names.join(", ")),
                ))
            }
            (None, [only]) => only.clone(),
            (None, []) => return Err(Issue::new(label, "sheet", "the workbook has no sheets")),
            (None, _) => {
                return Err(Issue::new(
                    label,
                    "sheet",
                    format!(
                        "the workbook has {} sheets ({}); name the one to import (--sheet)",
                        names.len(),
                        names.join(", ")
                    ),
                ))
            }
        };
        let range = wb
            .worksheet_range(&name)
            .map_err(|e| Issue::new(label, "sheet", format!("cannot read sheet {name:?}: {e}")))?;
        let start_row = range.start().map(|(r, _)| u64::from(r)).unwrap_or(0);
        let mut rows = range
            .rows()
            .enumerate()
            .map(|(i, r)| {
                (
                    start_row + i as u64 + 1,
                    r.iter().map(cell_text).collect::<Vec<_>>(),
                )
            })
            .filter(|(_, r)| r.iter().any(|c| !c.is_empty()));
        let Some((line, headers)) = rows.next() else {
            return Err(Issue::at_line(
                label,
                1,
                "",
                "empty sheet: expected a header row",
            ));
        };
        // trailing empty header cells are just the sheet's width
        let mut headers = headers;
        while headers.last().is_some_and(String::is_empty) {
            headers.pop();
        }
        if let Some(i) = headers.iter().position(String::is_empty) {
            return Err(Issue::at_line(
                label,
                line,
                format!("column {}", i + 1),
                "empty column name in header",
            ));
        }
        let width = headers.len();
        let rows: Vec<(u64, Vec<String>)> = rows
            .map(|(n, mut r)| {
                r.resize(width.max(r.len()), String::new());
                while r.len() > width && r.last().is_some_and(String::is_empty) {
                    r.pop();
                }
                (n, r)
            })
            .collect();
        Ok(XlsxSource {
            headers,
            rows: rows.into_iter(),
        })
    }
}

impl RowSource for XlsxSource {
    fn headers(&self) -> &[String] {
        &self.headers
    }
    fn next_row(&mut self, out: &mut Vec<String>) -> Result<Option<u64>, Issue> {
        match self.rows.next() {
            None => Ok(None),
            Some((line, r)) => {
                *out = r;
                Ok(Some(line))
            }
        }
    }
}

/// Opens a deck from any byte stream, sniffing gzip/XLSX/CSV. XLSX is read into memory (up to
/// `max_xlsx` bytes).
pub fn open_source(
    r: Box<dyn Read + Send>,
    label: &str,
    sheet: Option<&str>,
    max_xlsx: u64,
) -> Result<(Format, Box<dyn RowSource + Send>), Issue> {
    let mut br = BufReader::with_capacity(1 << 16, r);
    let head = br
        .fill_buf()
        .map_err(|e| Issue::new(label, "", format!("cannot read: {e}")))?;
    let format = Format::sniff(head);
    Ok(match format {
        Format::Csv => (format, Box::new(CsvSource::new(br, label)?)),
        Format::Gzip => {
            let gz = flate2::bufread::MultiGzDecoder::new(br);
            // a gzip'ed XLSX is not a thing; the content must be CSV
            (format, Box::new(CsvSource::new(gz, label)?))
        }
        Format::Xlsx => {
            let mut buf = vec![];
            br.take(max_xlsx + 1)
                .read_to_end(&mut buf)
                .map_err(|e| Issue::new(label, "", format!("cannot read: {e}")))?;
            if buf.len() as u64 > max_xlsx {
                return Err(Issue::new(
                    label,
                    "",
                    format!("XLSX larger than {max_xlsx} bytes; export the sheet as CSV"),
                ));
            }
            (
                format,
                Box::new(XlsxSource::open(Cursor::new(buf), label, sheet)?),
            )
        }
    })
}
