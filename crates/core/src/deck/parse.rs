//! Pure deck parsing: bytes (CSV, gzip'ed CSV, XLSX) → header mapping → validated canonical rows.
//! CSV is streamed (memory is the duplicate-key map, not the file); XLSX is read one sheet at a
//! time by calamine (the sheet is held in memory: XLSX is a zip, it cannot be streamed).
//!
//! Owns: file formats, encodings (UTF-8, Latin-1 fallback per field, BOM, CRLF/CR line ends),
//! header auto-detection and saved mappings, per-row validation with line numbers.
//! Must not touch: the database, the clock, the network.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Cursor, Read, Seek};

use rustc_hash::FxHashMap;
use serde::{Deserialize, Serialize};

use crate::provision::csv_rows::Eol;
use crate::provision::values::{check_prefix, parse_rate, Cell, NEG_INF, POS_INF};
use crate::provision::Issue;

/// What a deck column means.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Field {
    Prefix,
    /// NANP NPA-NXX(-X) block, stored as prefix `1NPANXX`
    Npanxx,
    Ocn,
    Lata,
    Description,
    Interstate,
    Intrastate,
    Local,
    /// one rate for every zone
    Rate,
    MinSeconds,
    IncSeconds,
    EffectiveFrom,
    EffectiveUntil,
    /// rate zone of a "long" deck (one row per prefix and zone): interstate, intrastate, local,
    /// or flat (every zone); such rows are pivoted into one row per prefix
    Zone,
    /// column read and dropped
    Ignore,
}

impl Field {
    pub const ALL: [Field; 15] = [
        Field::Prefix,
        Field::Npanxx,
        Field::Ocn,
        Field::Lata,
        Field::Description,
        Field::Interstate,
        Field::Intrastate,
        Field::Local,
        Field::Rate,
        Field::MinSeconds,
        Field::IncSeconds,
        Field::EffectiveFrom,
        Field::EffectiveUntil,
        Field::Zone,
        Field::Ignore,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Field::Prefix => "prefix",
            Field::Npanxx => "npanxx",
            Field::Ocn => "ocn",
            Field::Lata => "lata",
            Field::Description => "description",
            Field::Interstate => "interstate",
            Field::Intrastate => "intrastate",
            Field::Local => "local",
            Field::Rate => "rate",
            Field::MinSeconds => "min_seconds",
            Field::IncSeconds => "inc_seconds",
            Field::EffectiveFrom => "effective_from",
            Field::EffectiveUntil => "effective_until",
            Field::Zone => "zone",
            Field::Ignore => "ignore",
        }
    }

    pub fn from_name(s: &str) -> Option<Field> {
        Field::ALL.into_iter().find(|f| f.name() == s)
    }

    /// Common header spellings (normalized: lower-case letters and digits only).
    fn aliases(self) -> &'static [&'static str] {
        match self {
            Field::Prefix => &[
                "prefix",
                "code",
                "dialcode",
                "dialcodes",
                "dialingcode",
                "destcode",
                "destinationcode",
                "digits",
            ],
            Field::Npanxx => &["npanxx", "npanxxx", "npaxxx"],
            Field::Ocn => &["ocn"],
            Field::Lata => &["lata"],
            Field::Description => &["description", "destination", "desc", "dest", "name"],
            Field::Interstate => &["interstate", "inter", "interrate", "interstaterate"],
            Field::Intrastate => &["intrastate", "intra", "intrarate", "intrastaterate"],
            Field::Local => &["local", "localrate"],
            Field::Rate => &["rate", "price", "cost", "ratepermin", "rateperminute"],
            Field::MinSeconds => &[
                "min",
                "minimum",
                "initial",
                "mindur",
                "minduration",
                "initialincrement",
                "mins",
                "minseconds",
            ],
            Field::IncSeconds => &[
                "increment",
                "interval",
                "inc",
                "billingincrement",
                "incseconds",
            ],
            Field::EffectiveFrom => &[
                "effectivedate",
                "effective",
                "effectivefrom",
                "startdate",
                "effdate",
            ],
            Field::EffectiveUntil => &[
                "enddate",
                "end",
                "expires",
                "expirydate",
                "expirationdate",
                "effectiveuntil",
            ],
            Field::Zone => &[
                "zone",
                "ratezone",
                "zonetype",
                "jurisdiction",
                "jurisdictiontype",
                "juris",
                "jur",
            ],
            Field::Ignore => &[],
        }
    }
}

/// Header normalization for matching: lower-case ASCII letters and digits only.
pub fn normalize_header(h: &str) -> String {
    h.chars()
        .filter(char::is_ascii_alphanumeric)
        .map(|c| c.to_ascii_lowercase())
        .collect()
}

/// A vendor's saved column mapping: normalized header → field. Overrides auto-detection.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Mapping(pub BTreeMap<String, Field>);

impl Mapping {
    /// Parses `Header=field,Other Header=field` (the CLI's `--map`).
    pub fn parse(s: &str) -> Result<Mapping, String> {
        let mut m = BTreeMap::new();
        for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (h, f) = part
                .split_once('=')
                .ok_or_else(|| format!("{part:?}: expected HEADER=FIELD"))?;
            let field = Field::from_name(f.trim()).ok_or_else(|| {
                let names: Vec<&str> = Field::ALL.iter().map(|f| f.name()).collect();
                format!("{f:?} is not a field (one of {})", names.join(", "))
            })?;
            let key = normalize_header(h);
            if key.is_empty() {
                return Err(format!("{part:?}: empty header name"));
            }
            m.insert(key, field);
        }
        Ok(Mapping(m))
    }

    /// Entries of `other` win.
    pub fn merged(&self, other: &Mapping) -> Mapping {
        let mut m = self.0.clone();
        m.extend(other.0.iter().map(|(k, v)| (k.clone(), *v)));
        Mapping(m)
    }
}

/// Which columns hold which field.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Layout {
    /// the header as written in the file (BOM and surrounding spaces removed)
    pub headers: Vec<String>,
    pub fields: Vec<Field>,
    /// headers that matched nothing (ignored, reported as a warning)
    pub unrecognized: Vec<String>,
}

impl Layout {
    fn col(&self, f: Field) -> Option<usize> {
        self.fields.iter().position(|x| *x == f)
    }
    fn has(&self, f: Field) -> bool {
        self.col(f).is_some()
    }
}

/// Maps a header to fields: the saved/explicit mapping first, then the common names. Errors name
/// the problem and list what was found.
pub fn detect_layout(
    label: &str,
    headers: &[String],
    mapping: &Mapping,
    ocn_lata: bool,
) -> Result<Layout, Vec<Issue>> {
    let mut fields = Vec::with_capacity(headers.len());
    let mut unrecognized = vec![];
    let mut issues = vec![];
    for h in headers {
        let n = normalize_header(h);
        let f = mapping.0.get(&n).copied().or_else(|| {
            Field::ALL
                .into_iter()
                .find(|f| f.aliases().contains(&n.as_str()))
        });
        match f {
            Some(f) => {
                if f != Field::Ignore && fields.contains(&f) {
                    issues.push(Issue::at_line(
                        label,
                        1,
                        h.clone(),
                        format!("a second column is read as {}", f.name()),
                    ));
                }
                fields.push(f);
            }
            None => {
                unrecognized.push(h.clone());
                fields.push(Field::Ignore);
            }
        }
    }
    // a deck with interstate/intrastate/local columns is wide: a column merely *named* like a
    // zone column (not mapped to it) is some other information, ignored
    let wide = [Field::Interstate, Field::Intrastate, Field::Local]
        .iter()
        .any(|z| fields.contains(z));
    if wide {
        for (h, f) in headers.iter().zip(fields.iter_mut()) {
            if *f == Field::Zone && mapping.0.get(&normalize_header(h)) != Some(&Field::Zone) {
                *f = Field::Ignore;
                unrecognized.push(h.clone());
            }
        }
    }
    let l = Layout {
        headers: headers.to_vec(),
        fields,
        unrecognized,
    };
    let found = || {
        let mut s = format!("found columns: {}", headers.join(", "));
        if !l.unrecognized.is_empty() {
            s.push_str(&format!(
                "; not recognized: {} (map them with --map \"Header=field\")",
                l.unrecognized.join(", ")
            ));
        }
        s
    };
    let by_prefix = l.has(Field::Prefix) || l.has(Field::Npanxx);
    if l.has(Field::Prefix) && l.has(Field::Npanxx) {
        issues.push(Issue::at_line(
            label,
            1,
            "header",
            "both a prefix and an npanxx column",
        ));
    }
    if ocn_lata {
        if !(l.has(Field::Ocn) && l.has(Field::Lata)) {
            issues.push(Issue::at_line(
                label,
                1,
                "header",
                format!(
                    "the route's vendor bills by OCN/LATA: the deck needs ocn and lata columns; {}",
                    found()
                ),
            ));
        }
    } else if !by_prefix {
        issues.push(Issue::at_line(
            label,
            1,
            "header",
            format!(
                "no prefix column (expected one of prefix, code, dial code, npanxx); {}",
                found()
            ),
        ));
    }
    let zones = [Field::Interstate, Field::Intrastate, Field::Local]
        .iter()
        .any(|z| l.has(*z));
    if l.has(Field::Zone) && (zones || !l.has(Field::Rate)) {
        issues.push(Issue::at_line(
            label,
            1,
            "header",
            format!(
                "a zone column (one row per prefix and zone) needs one rate column (rate, price, cost) \
                 and no interstate/intrastate/local columns; {}",
                found()
            ),
        ));
    } else if l.has(Field::Rate) == zones {
        issues.push(Issue::at_line(
            label,
            1,
            "header",
            format!(
                "the deck needs either one rate column (rate, price, cost) or interstate/intrastate/local columns; {}",
                found()
            ),
        ));
    }
    if issues.is_empty() {
        Ok(l)
    } else {
        Err(issues)
    }
}

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

/// A validated deck row, ready for COPY.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeckRow<'a> {
    pub line: u64,
    /// prefix (digits), or None for an OCN/LATA row
    pub prefix: Option<&'a str>,
    pub ocn: Option<&'a str>,
    pub lata: Option<&'a str>,
    pub description: Option<&'a str>,
    /// 1e-7 units per minute, by zone (inter, intra, local)
    pub rates: [Option<u32>; 3],
    pub min_seconds: u16,
    pub inc_seconds: u16,
    /// unix µs; NEG_INF/POS_INF when the file has no date
    pub from: i64,
    pub until: i64,
}

/// Deck-wide parameters of validation.
#[derive(Clone, Debug)]
pub struct Rules {
    pub ocn_lata: bool,
    pub default_min: u16,
    pub default_inc: u16,
}

impl Default for Rules {
    fn default() -> Self {
        Rules {
            ocn_lata: false,
            default_min: 6,
            default_inc: 6,
        }
    }
}

/// Parses a date or timestamp as written in decks: RFC 3339, `YYYY-MM-DD[ HH:MM[:SS]]` (UTC),
/// `MM/DD/YYYY`. Returns unix µs.
pub fn parse_when(s: &str) -> Result<i64, String> {
    use chrono::{NaiveDate, NaiveDateTime};
    let t = s.trim();
    if let Ok(d) = chrono::DateTime::parse_from_rfc3339(t) {
        return Ok(d.timestamp_micros());
    }
    if let Ok(d) = chrono::DateTime::parse_from_str(t, "%Y-%m-%dT%H:%M%#z") {
        return Ok(d.timestamp_micros());
    }
    for f in ["%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M", "%Y-%m-%dT%H:%M:%S"] {
        if let Ok(d) = NaiveDateTime::parse_from_str(t, f) {
            return Ok(d.and_utc().timestamp_micros());
        }
    }
    for f in ["%Y-%m-%d", "%m/%d/%Y", "%Y%m%d"] {
        if let Ok(d) = NaiveDate::parse_from_str(t, f) {
            return Ok(d
                .and_hms_opt(0, 0, 0)
                .map(|x| x.and_utc().timestamp_micros())
                .unwrap_or(0));
        }
    }
    Err(format!(
        "{s:?} is not a date (2026-12-01, 2026-12-01T00:00Z, 12/01/2026)"
    ))
}

fn rate_value(s: &str) -> Result<u32, String> {
    let t = s.strip_prefix('$').unwrap_or(s).trim();
    if t.starts_with('-') {
        return Err(format!("{s:?}: negative rate"));
    }
    parse_rate(t).map_err(|m| {
        if t.parse::<f64>().is_err() {
            format!("{s:?} is not a number")
        } else {
            m
        }
    })
}

/// Appends a rate in 1e-7 units as a minimal decimal (`45000` → `0.0045`) without allocating.
fn push_rate(v: u32, out: &mut Vec<u8>) {
    use std::io::Write;
    let (int, mut frac) = (v / 10_000_000, v % 10_000_000);
    let _ = write!(out, "{int}");
    if frac == 0 {
        return;
    }
    let mut digits = [b'0'; 7];
    for d in digits.iter_mut().rev() {
        *d = b'0' + (frac % 10) as u8;
        frac /= 10;
    }
    let end = digits.iter().rposition(|&d| d != b'0').map_or(0, |i| i + 1);
    out.push(b'.');
    out.extend_from_slice(&digits[..end]);
}

/// Packs up to 15 digits plus the length into a u64 ("01" ≠ "1").
fn pack_digits(s: &str) -> u64 {
    let mut v: u64 = 0;
    for b in s.bytes().take(15) {
        v = v * 10 + u64::from(b.wrapping_sub(b'0') % 10);
    }
    (v << 4) | (s.len().min(15) as u64)
}

/// The zones a zone-column value stands for: [interstate, intrastate, local].
pub fn zone_mask(s: &str) -> Option<[bool; 3]> {
    match normalize_header(s).as_str() {
        "interstate" | "inter" => Some([true, false, false]),
        "intrastate" | "intra" => Some([false, true, false]),
        "local" => Some([false, false, true]),
        "flat" | "international" | "intl" | "default" | "all" | "any" => Some([true; 3]),
        _ => None,
    }
}

/// Key of a pivoted ("long" layout) row.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
enum PivotKey {
    /// [`pack_digits`] of the prefix
    Prefix(u64),
    OcnLata(Box<str>, Box<str>),
}

/// One prefix (or OCN/LATA) of a long deck being assembled from its zone rows.
struct Pending {
    key: PivotKey,
    /// first line of the prefix
    line: u64,
    rates: [Option<u32>; 3],
    /// the line each zone's rate came from
    zone_lines: [u64; 3],
    min_seconds: u16,
    inc_seconds: u16,
    from: i64,
    until: i64,
    /// description: (start, len) in the validator's arena
    desc: (u32, u32),
}

/// Unpacks [`pack_digits`].
fn unpack_digits(v: u64, out: &mut String) {
    use std::fmt::Write;
    out.clear();
    let len = (v & 15) as usize;
    let _ = write!(out, "{:0>len$}", v >> 4);
}

/// Validates rows one by one, remembering keys for duplicate detection.
///
/// A deck with a zone column ("long" layout: prefix, zone, rate) is pivoted: [`Validator::check`]
/// validates each row and folds it into one pending row per prefix (`Ok(None)`), and
/// [`Validator::finish`] hands out the assembled rows in first-line order. Memory is one small
/// entry per distinct prefix (~100 bytes plus its description) — the same order as the duplicate
/// map of the wide layout; the rows can only be written once the file has been read.
pub struct Validator {
    label: String,
    layout: Layout,
    rules: Rules,
    cols: FxHashMap<Field, usize>,
    /// key → (first line, fingerprint of the rates/terms)
    seen: FxHashMap<u64, (u64, u64)>,
    seen_text: FxHashMap<(Box<str>, Box<str>), (u64, u64)>,
    prefix_buf: String,
    /// long layout: key → index into `pending`
    pivot: FxHashMap<PivotKey, u32>,
    pending: Vec<Pending>,
    descriptions: String,
    /// identical duplicate rows dropped
    pub duplicates_dropped: u64,
}

impl Validator {
    pub fn new(label: &str, layout: Layout, rules: Rules) -> Validator {
        let cols = layout
            .fields
            .iter()
            .enumerate()
            .filter(|(_, f)| **f != Field::Ignore)
            .map(|(i, f)| (*f, i))
            .collect();
        Validator {
            label: label.to_string(),
            layout,
            rules,
            cols,
            seen: FxHashMap::default(),
            seen_text: FxHashMap::default(),
            prefix_buf: String::new(),
            pivot: FxHashMap::default(),
            pending: Vec::new(),
            descriptions: String::new(),
            duplicates_dropped: 0,
        }
    }

    /// Long layout: hands out the pivoted rows (first-line order) and forgets them. Nothing for
    /// a wide deck.
    pub fn finish(&mut self, mut emit: impl FnMut(DeckRow<'_>)) {
        let pending = std::mem::take(&mut self.pending);
        self.pivot = FxHashMap::default();
        let mut prefix = String::new();
        for p in &pending {
            let (pfx, ocn, lata) = match &p.key {
                PivotKey::Prefix(v) => {
                    unpack_digits(*v, &mut prefix);
                    (Some(prefix.as_str()), None, None)
                }
                PivotKey::OcnLata(o, l) => (None, Some(&**o), Some(&**l)),
            };
            let (start, len) = (p.desc.0 as usize, p.desc.1 as usize);
            let description = self
                .descriptions
                .get(start..start + len)
                .filter(|d| !d.is_empty());
            emit(DeckRow {
                line: p.line,
                prefix: pfx,
                ocn,
                lata,
                description,
                rates: p.rates,
                min_seconds: p.min_seconds,
                inc_seconds: p.inc_seconds,
                from: p.from,
                until: p.until,
            });
        }
        self.descriptions = String::new();
    }

    /// Folds one validated zone row into its prefix's pending row. Errors: the zone given again
    /// with another rate (the duplicate error), other billing terms or dates than the prefix's
    /// earlier rows (one deck row holds one set).
    #[allow(clippy::too_many_arguments)] // the parts of one validated row
    fn fold(
        &mut self,
        line: u64,
        key: PivotKey,
        what: String,
        key_col: String,
        mask: [bool; 3],
        rate: Option<u32>,
        terms: (u16, u16, i64, i64),
        description: Option<&str>,
    ) -> Result<(), Vec<Issue>> {
        let label = self.label.as_str();
        if let Some(&i) = self.pivot.get(&key) {
            let p = &mut self.pending[i as usize];
            if (p.min_seconds, p.inc_seconds, p.from, p.until) != terms {
                return Err(vec![Issue::at_line(
                    label,
                    line,
                    key_col,
                    format!(
                        "{what}: billing terms or dates differ from its row at line {} (a prefix has one set for all zones)",
                        p.line
                    ),
                )]);
            }
            let mut new = false;
            for z in (0..3).filter(|z| mask[*z]) {
                match p.rates[z] {
                    Some(old) if old != rate.unwrap_or(u32::MAX) => {
                        return Err(vec![Issue::at_line(
                            label,
                            line,
                            key_col,
                            format!(
                                "duplicate {what} with different rates (first at line {})",
                                p.zone_lines[z]
                            ),
                        )]);
                    }
                    Some(_) => {}
                    None => new = true,
                }
            }
            if !new {
                self.duplicates_dropped += 1;
                return Ok(());
            }
            for z in (0..3).filter(|z| mask[*z]) {
                if p.rates[z].is_none() {
                    p.rates[z] = rate;
                    p.zone_lines[z] = line;
                }
            }
            return Ok(());
        }
        let d = description.unwrap_or("");
        let desc = match u32::try_from(self.descriptions.len()) {
            Ok(start) if d.len() < u32::MAX as usize - start as usize => {
                self.descriptions.push_str(d);
                (start, d.len() as u32)
            }
            _ => (0, 0),
        };
        let Ok(idx) = u32::try_from(self.pending.len()) else {
            return Err(vec![Issue::at_line(
                label,
                line,
                key_col,
                "more than 4 billion prefixes",
            )]);
        };
        self.pending.push(Pending {
            key: key.clone(),
            line,
            rates: [0, 1, 2].map(|z| if mask[z] { rate } else { None }),
            zone_lines: [line; 3],
            min_seconds: terms.0,
            inc_seconds: terms.1,
            from: terms.2,
            until: terms.3,
            desc,
        });
        self.pivot.insert(key, idx);
        Ok(())
    }

    pub fn layout(&self) -> &Layout {
        &self.layout
    }

    /// Checks one record. `Ok(None)` is an exact duplicate of an earlier row (dropped).
    /// Every problem of the row is returned, each naming line and column.
    pub fn check<'a>(
        &'a mut self,
        line: u64,
        fields: &'a [String],
    ) -> Result<Option<DeckRow<'a>>, Vec<Issue>> {
        let mut issues = vec![];
        let label = self.label.as_str();
        let get = |f: Field| -> Option<&'a str> {
            self.cols
                .get(&f)
                .map(|&i| fields.get(i).map(String::as_str).unwrap_or(""))
        };
        let name = |f: Field| -> String {
            self.cols
                .get(&f)
                .and_then(|&i| self.layout.headers.get(i))
                .cloned()
                .unwrap_or_else(|| f.name().to_string())
        };
        let mut issue = |f: Field, m: String| issues.push(Issue::at_line(label, line, name(f), m));

        // key
        let mut prefix: Option<&str> = None;
        let (mut ocn, mut lata) = (None, None);
        if self.rules.ocn_lata {
            let o = get(Field::Ocn).unwrap_or("");
            let l = get(Field::Lata).unwrap_or("");
            if o.is_empty() || !o.bytes().all(|b| b.is_ascii_alphanumeric()) {
                issue(
                    Field::Ocn,
                    format!("{o:?} is not an OCN (letters and digits)"),
                );
            }
            if l.is_empty() || !l.bytes().all(|b| b.is_ascii_digit()) {
                issue(Field::Lata, format!("{l:?} is not a LATA code (digits)"));
            }
            ocn = Some(o);
            lata = Some(l);
        } else if let Some(p) = get(Field::Prefix) {
            let p = p.strip_prefix('+').unwrap_or(p);
            match check_prefix(p, false) {
                Ok(()) => prefix = Some(p),
                Err(m) => issue(Field::Prefix, m),
            }
        } else if let Some(n) = get(Field::Npanxx) {
            let digits: String = n.chars().filter(|c| *c != '-' && *c != ' ').collect();
            let b = digits.as_bytes();
            if (b.len() == 6 || b.len() == 7)
                && b.iter().all(u8::is_ascii_digit)
                && b[0] >= b'2'
                && b[3] >= b'2'
            {
                self.prefix_buf.clear();
                self.prefix_buf.push('1');
                self.prefix_buf.push_str(&digits);
                prefix = Some("");
            } else {
                issue(
                    Field::Npanxx,
                    format!("{n:?} is not an NPA-NXX (6 digits) or NPA-NXX-X (7 digits)"),
                );
            }
        }

        // rates
        let rate_of = |f: Field, issue: &mut dyn FnMut(Field, String)| -> Option<u32> {
            let v = get(f).unwrap_or("");
            if v.is_empty() {
                return None;
            }
            match rate_value(v) {
                Ok(r) => Some(r),
                Err(m) => {
                    issue(f, m);
                    None
                }
            }
        };
        let zone = match get(Field::Zone) {
            None => None,
            Some(z) => match zone_mask(z) {
                Some(m) => Some(m),
                None => {
                    let col = name(Field::Zone);
                    issue(
                        Field::Zone,
                        format!(
                            "unknown zone {z:?} (interstate, intrastate, local or flat; if column {col:?} \
                             is not the rate zone, map it: --map \"{col}=description\")"
                        ),
                    );
                    None
                }
            },
        };
        let rates = if self.cols.contains_key(&Field::Rate) {
            if get(Field::Rate).unwrap_or("").is_empty() {
                issue(Field::Rate, "empty rate".into());
            }
            let r = rate_of(Field::Rate, &mut issue);
            [r, r, r]
        } else {
            let r = [
                rate_of(Field::Interstate, &mut issue),
                rate_of(Field::Intrastate, &mut issue),
                rate_of(Field::Local, &mut issue),
            ];
            let empty = [Field::Interstate, Field::Intrastate, Field::Local]
                .iter()
                .all(|z| get(*z).unwrap_or("").is_empty());
            if empty {
                issue(Field::Interstate, "no rate in any zone".into());
            }
            r
        };
        let secs = |f: Field, default: u16, min: u16, issue: &mut dyn FnMut(Field, String)| {
            let v = get(f).unwrap_or("");
            if v.is_empty() {
                return default;
            }
            match v.parse::<u16>() {
                Ok(n) if n >= min => n,
                _ => {
                    issue(
                        f,
                        format!("{v:?} is not a whole number of seconds in {min}..=65535"),
                    );
                    default
                }
            }
        };
        let min_seconds = secs(Field::MinSeconds, self.rules.default_min, 0, &mut issue);
        let inc_seconds = secs(Field::IncSeconds, self.rules.default_inc, 1, &mut issue);
        let when = |f: Field, default: i64, issue: &mut dyn FnMut(Field, String)| {
            let v = get(f).unwrap_or("");
            if v.is_empty() {
                return default;
            }
            parse_when(v).unwrap_or_else(|m| {
                issue(f, m);
                default
            })
        };
        let from = when(Field::EffectiveFrom, NEG_INF, &mut issue);
        let until = when(Field::EffectiveUntil, POS_INF, &mut issue);
        if until <= from {
            issue(
                Field::EffectiveUntil,
                "end date is not after the effective date".into(),
            );
        }
        if !issues.is_empty() {
            return Err(issues);
        }

        // duplicates: the same rates again is dropped, different rates is an error
        let mut fp: u64 = 0xcbf2_9ce4_8422_2325;
        for v in rates
            .iter()
            .map(|r| r.map(u64::from).unwrap_or(u64::MAX))
            .chain([u64::from(min_seconds), u64::from(inc_seconds)])
            .chain([from as u64, until as u64])
        {
            fp = (fp ^ v).wrapping_mul(0x0000_0100_0000_01b3);
        }
        if let Some(mask) = zone {
            let (key, what, col) = match (prefix, ocn, lata) {
                (Some(p), _, _) => {
                    let p = if p.is_empty() {
                        self.prefix_buf.as_str()
                    } else {
                        p
                    };
                    (
                        PivotKey::Prefix(pack_digits(p)),
                        format!("prefix {p}"),
                        name(if self.cols.contains_key(&Field::Npanxx) {
                            Field::Npanxx
                        } else {
                            Field::Prefix
                        }),
                    )
                }
                (None, Some(o), Some(l)) => (
                    PivotKey::OcnLata(Box::from(o), Box::from(l)),
                    format!("ocn/lata {o}/{l}"),
                    name(Field::Ocn),
                ),
                _ => {
                    return Err(vec![Issue::at_line(
                        label,
                        line,
                        "",
                        "row has no prefix or ocn/lata",
                    )])
                }
            };
            let description = get(Field::Description).filter(|d| !d.is_empty());
            self.fold(
                line,
                key,
                what,
                col,
                mask,
                rates[0],
                (min_seconds, inc_seconds, from, until),
                description,
            )?;
            return Ok(None);
        }
        let prefix: Option<&str> = match prefix {
            Some("") => Some(self.prefix_buf.as_str()),
            p => p,
        };
        let first = match (prefix, ocn, lata) {
            (Some(p), _, _) => *self.seen.entry(pack_digits(p)).or_insert((line, fp)),
            (None, Some(o), Some(l)) => *self
                .seen_text
                .entry((Box::from(o), Box::from(l)))
                .or_insert((line, fp)),
            _ => {
                return Err(vec![Issue::at_line(
                    label,
                    line,
                    "",
                    "row has no prefix or ocn/lata",
                )])
            }
        };
        if first.0 != line {
            if first.1 == fp {
                self.duplicates_dropped += 1;
                return Ok(None);
            }
            return Err(vec![Issue::at_line(
                label,
                line,
                name(if prefix.is_some() {
                    Field::Prefix
                } else {
                    Field::Ocn
                }),
                format!(
                    "duplicate {} with different rates (first at line {})",
                    match prefix {
                        Some(p) => format!("prefix {p}"),
                        None => format!(
                            "ocn/lata {}/{}",
                            ocn.unwrap_or_default(),
                            lata.unwrap_or_default()
                        ),
                    },
                    first.0
                ),
            )]);
        }
        Ok(Some(DeckRow {
            line,
            prefix,
            ocn,
            lata,
            description: get(Field::Description).filter(|d| !d.is_empty()),
            rates,
            min_seconds,
            inc_seconds,
            from,
            until,
        }))
    }
}

/// The COPY text columns written by [`DeckRow::write_copy`], after `version_id`.
pub const COPY_COLUMNS: &str = "version_id, prefix, ocn, lata, description, rate_inter, \
    rate_intra, rate_local, min_seconds, inc_seconds, effective_from, effective_until";

impl DeckRow<'_> {
    /// Appends one `deck_rates` row in COPY text format.
    pub fn write_copy(&self, version_id: i64, out: &mut Vec<u8>) {
        use std::io::Write;
        let _ = write!(out, "{version_id}\t");
        let opt = |v: Option<&str>, out: &mut Vec<u8>| match v {
            Some(s) => Cell::Text(s).write_copy(out),
            None => out.extend_from_slice(b"\\N"),
        };
        opt(self.prefix, out);
        out.push(b'\t');
        opt(self.ocn, out);
        out.push(b'\t');
        opt(self.lata, out);
        out.push(b'\t');
        opt(self.description, out);
        for r in self.rates {
            out.push(b'\t');
            match r {
                Some(v) => push_rate(v, out),
                None => out.extend_from_slice(b"\\N"),
            }
        }
        let _ = write!(out, "\t{}\t{}\t", self.min_seconds, self.inc_seconds);
        Cell::Ts(self.from).write_copy(out);
        out.push(b'\t');
        Cell::Ts(self.until).write_copy(out);
        out.push(b'\n');
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::provision::values::fmt_scaled;

    fn rows(csv: &[u8], mapping: &Mapping) -> (Vec<String>, Vec<Result<String, String>>) {
        let mut src = CsvSource::new(csv, "t.csv")
            .map_err(|e| e.to_string())
            .unwrap();
        let layout = detect_layout("t.csv", src.headers(), mapping, false).unwrap();
        let mut v = Validator::new("t.csv", layout, Rules::default());
        let mut out = vec![];
        let mut f = vec![];
        loop {
            match src.next_row(&mut f) {
                Ok(None) => break,
                Ok(Some(line)) => match v.check(line, &f) {
                    Ok(Some(r)) => {
                        let mut b = vec![];
                        r.write_copy(1, &mut b);
                        out.push(Ok(String::from_utf8(b).unwrap()))
                    }
                    Ok(None) => {}
                    Err(is) => out.push(Err(is
                        .iter()
                        .map(ToString::to_string)
                        .collect::<Vec<_>>()
                        .join("; "))),
                },
                Err(e) => out.push(Err(e.to_string())),
            }
        }
        v.finish(|r| {
            let mut b = vec![];
            r.write_copy(1, &mut b);
            out.push(Ok(String::from_utf8(b).unwrap()))
        });
        (src.headers().to_vec(), out)
    }

    #[test]
    fn long_layout_is_pivoted_per_prefix() {
        let csv = b"Prefix,Jurisdiction,Rate,Description\n\
                    1212,Interstate,0.01,NY\n\
                    44,flat,0.03,UK\n\
                    1212,INTRA,0.02,NY\n\
                    1213,inter,0.011,\n\
                    1212,local,0.005,NY\n\
                    1212,intrastate,0.02,NY\n";
        let (_, r) = rows(csv, &Mapping::default());
        let r: Vec<&str> = r.iter().map(|x| x.as_deref().unwrap()).collect();
        assert_eq!(
            r,
            [
                "1\t1212\t\\N\t\\N\tNY\t0.01\t0.02\t0.005\t6\t6\t-infinity\tinfinity\n",
                "1\t44\t\\N\t\\N\tUK\t0.03\t0.03\t0.03\t6\t6\t-infinity\tinfinity\n",
                "1\t1213\t\\N\t\\N\t\\N\t0.011\t\\N\t\\N\t6\t6\t-infinity\tinfinity\n",
            ]
        );
        // NPA-NXX keys and leading zeros survive the packing
        let (_, r) = rows(
            b"npanxx,zone,rate\n212555,local,0.001\n",
            &Mapping::default(),
        );
        assert!(
            r[0].as_deref().unwrap().starts_with("1\t1212555\t"),
            "{r:?}"
        );
        let mut s = String::new();
        unpack_digits(pack_digits("0044"), &mut s);
        assert_eq!(s, "0044");
    }

    #[test]
    fn long_layout_errors_name_the_line() {
        let csv = b"prefix,zone,rate,increment\n\
                    1212,interstate,0.01,6\n\
                    1212,moon,0.02,6\n\
                    1212,inter,0.03,6\n\
                    1212,local,0.01,60\n\
                    44,flat,0.01,6\n\
                    44,local,0.02,6\n\
                    45,,0.02,6\n";
        let (_, r) = rows(csv, &Mapping::default());
        let errs: Vec<&String> = r.iter().filter_map(|x| x.as_ref().err()).collect();
        assert_eq!(errs.len(), 5, "{r:?}");
        assert!(
            errs[0].contains("line 3") && errs[0].contains("unknown zone \"moon\""),
            "{}",
            errs[0]
        );
        assert!(
            errs[1].contains("line 4")
                && errs[1].contains("duplicate prefix 1212 with different rates (first at line 2)"),
            "{}",
            errs[1]
        );
        assert!(
            errs[2].contains("line 5") && errs[2].contains("billing terms"),
            "{}",
            errs[2]
        );
        assert!(
            errs[3].contains("line 7") && errs[3].contains("first at line 6"),
            "{}",
            errs[3]
        );
        assert!(
            errs[4].contains("line 8") && errs[4].contains("unknown zone \"\""),
            "{}",
            errs[4]
        );
        // a zone column without a rate column, or mapped as one beside zone rate columns, is
        // refused; merely named so beside zone rate columns, it is some other column (ignored)
        let headers = |h: &str| {
            CsvSource::new(h.as_bytes(), "t.csv")
                .unwrap()
                .headers()
                .to_vec()
        };
        let m = Mapping::default();
        let e = detect_layout("t.csv", &headers("prefix,zone"), &m, false).unwrap_err();
        assert!(e[0].to_string().contains("a zone column"), "{}", e[0]);
        let zm = Mapping::parse("Zone=zone").unwrap();
        let e = detect_layout("t.csv", &headers("prefix,Zone,inter"), &zm, false).unwrap_err();
        assert!(e[0].to_string().contains("a zone column"), "{}", e[0]);
        let l = detect_layout("t.csv", &headers("prefix,Zone,inter"), &m, false).unwrap();
        assert_eq!(l.fields, [Field::Prefix, Field::Ignore, Field::Interstate]);
        assert_eq!(l.unrecognized, ["Zone"]);
    }

    #[test]
    fn auto_detects_common_names_bom_crlf_quotes_latin1() {
        let csv = b"\xef\xbb\xbfDial Code,Destination,Rate,Initial,Interval,Effective Date\r\n\
                    1212,\"New York, NY\",0.0045,6,6,2026-12-01\r\n\
                    44,Caf\xe9 UK,\"0.0100\",30,6,\r\n";
        let (h, r) = rows(csv, &Mapping::default());
        assert_eq!(h[0], "Dial Code");
        assert_eq!(
            r[0].as_deref().unwrap(),
            "1\t1212\t\\N\t\\N\tNew York, NY\t0.0045\t0.0045\t0.0045\t6\t6\t2026-12-01T00:00:00Z\tinfinity\n"
        );
        assert_eq!(
            r[1].as_deref().unwrap(),
            "1\t44\t\\N\t\\N\tCafé UK\t0.01\t0.01\t0.01\t30\t6\t-infinity\tinfinity\n"
        );
    }

    #[test]
    fn zones_and_npanxx() {
        let csv = b"NPANXX,Inter,Intra,Local\n212555,0.001,0.002,\n";
        let (_, r) = rows(csv, &Mapping::default());
        assert_eq!(
            r[0].as_deref().unwrap(),
            "1\t1212555\t\\N\t\\N\t\\N\t0.001\t0.002\t\\N\t6\t6\t-infinity\tinfinity\n"
        );
    }

    #[test]
    fn bad_rows_name_line_and_reason() {
        let csv = b"prefix,rate\n1212,abc\n1213,-0.1\n12a4,0.1\n1215,0.1\n1215,0.2\n1215,0.1\n";
        let (_, r) = rows(csv, &Mapping::default());
        let errs: Vec<&String> = r.iter().filter_map(|x| x.as_ref().err()).collect();
        assert_eq!(errs.len(), 4, "{r:?}");
        assert!(errs[0].contains("line 2") && errs[0].contains("not a number"));
        assert!(errs[1].contains("line 3") && errs[1].contains("negative rate"));
        assert!(errs[2].contains("line 4") && errs[2].contains("E.164 digits"));
        assert!(
            errs[3].contains("line 6") && errs[3].contains("different rates (first at line 5)")
        );
        // line 7 repeats line 5 exactly: dropped, not an error
        assert_eq!(r.len(), 5);
    }

    #[test]
    fn wrong_columns_are_named() {
        let src = CsvSource::new(&b"code,prise\n1,2\n"[..], "t.csv").unwrap();
        let e = detect_layout("t.csv", src.headers(), &Mapping::default(), false).unwrap_err();
        let msg = e[0].to_string();
        assert!(
            msg.contains("rate") && msg.contains("not recognized: prise"),
            "{msg}"
        );
        // a mapping fixes it
        let m = Mapping::parse("Prise=rate").unwrap();
        detect_layout("t.csv", src.headers(), &m, false).unwrap();
        assert!(Mapping::parse("x=nope").is_err());
    }

    #[test]
    fn empty_file_and_ragged_rows() {
        let e = CsvSource::new(&b""[..], "t.csv").err().unwrap();
        assert!(e.to_string().contains("empty file"), "{e}");
        let e = CsvSource::new(&b"\r\n\r\n"[..], "t.csv").err().unwrap();
        assert!(e.to_string().contains("empty file"), "{e}");
        let (_, r) = rows(b"prefix,rate\n1212,0,1\n", &Mapping::default());
        assert!(r[0].as_ref().unwrap_err().contains("expected 2 fields"));
    }

    #[test]
    fn rates_are_written_minimal() {
        for (v, want) in [
            (0, "0"),
            (45_000, "0.0045"),
            (10_000_000, "1"),
            (u32::MAX, "429.4967295"),
            (1, "0.0000001"),
        ] {
            let mut b = vec![];
            push_rate(v, &mut b);
            assert_eq!(String::from_utf8(b).unwrap(), want);
            assert_eq!(fmt_scaled(i64::from(v), 7), want);
        }
    }

    #[test]
    fn dates() {
        assert_eq!(parse_when("2026-12-01").unwrap(), 1_796_083_200_000_000);
        assert_eq!(parse_when("12/01/2026").unwrap(), 1_796_083_200_000_000);
        assert_eq!(
            parse_when("2026-12-01T00:00Z").unwrap(),
            1_796_083_200_000_000
        );
        assert!(parse_when("tomorrow").is_err());
    }

    #[test]
    fn sniff() {
        assert_eq!(Format::sniff(&[0x1f, 0x8b, 8]), Format::Gzip);
        assert_eq!(Format::sniff(b"PK\x03\x04"), Format::Xlsx);
        assert_eq!(Format::sniff(b"prefix"), Format::Csv);
    }

    #[test]
    fn gzip_is_read_through() {
        use std::io::Write;
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(b"prefix,rate\n1,0.5\n").unwrap();
        let bytes = gz.finish().unwrap();
        let (fmt, mut src) = open_source(Box::new(Cursor::new(bytes)), "t.csv.gz", None, 1 << 20)
            .map_err(|e| e.to_string())
            .unwrap();
        assert_eq!(fmt, Format::Gzip);
        let mut f = vec![];
        assert_eq!(src.next_row(&mut f).unwrap(), Some(2));
        assert_eq!(f, vec!["1".to_string(), "0.5".to_string()]);
    }

    /// A minimal XLSX workbook (inline strings) with the given sheets.
    fn xlsx(sheets: &[(&str, &[&[&str]])]) -> Vec<u8> {
        use std::io::Write;
        let mut z = zip::ZipWriter::new(Cursor::new(Vec::new()));
        let o = zip::write::SimpleFileOptions::default();
        let mut put = |name: &str, body: String| {
            z.start_file(name, o).unwrap();
            z.write_all(body.as_bytes()).unwrap();
        };
        let mut ct = String::from(
            r#"<?xml version="1.0" encoding="UTF-8"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types"><Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/><Default Extension="xml" ContentType="application/xml"/><Override PartName="/xl/workbook.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/>"#,
        );
        let mut wb = String::from(
            r#"<?xml version="1.0" encoding="UTF-8"?><workbook xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships"><sheets>"#,
        );
        let mut rels = String::from(
            r#"<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">"#,
        );
        for (i, (name, rows)) in sheets.iter().enumerate() {
            let n = i + 1;
            ct.push_str(&format!(r#"<Override PartName="/xl/worksheets/sheet{n}.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/>"#));
            wb.push_str(&format!(
                r#"<sheet name="{name}" sheetId="{n}" r:id="rId{n}"/>"#
            ));
            rels.push_str(&format!(r#"<Relationship Id="rId{n}" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/worksheet" Target="worksheets/sheet{n}.xml"/>"#));
            let mut sh = String::from(
                r#"<?xml version="1.0" encoding="UTF-8"?><worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><sheetData>"#,
            );
            for (r, row) in rows.iter().enumerate() {
                sh.push_str(&format!(r#"<row r="{}">"#, r + 1));
                for (c, v) in row.iter().enumerate() {
                    let col = (b'A' + c as u8) as char;
                    if v.parse::<f64>().is_ok() {
                        sh.push_str(&format!(r#"<c r="{col}{}"><v>{v}</v></c>"#, r + 1));
                    } else {
                        sh.push_str(&format!(
                            r#"<c r="{col}{}" t="inlineStr"><is><t>{v}</t></is></c>"#,
                            r + 1
                        ));
                    }
                }
                sh.push_str("</row>");
            }
            sh.push_str("</sheetData></worksheet>");
            put(&format!("xl/worksheets/sheet{n}.xml"), sh);
        }
        ct.push_str("</Types>");
        wb.push_str("</sheets></workbook>");
        rels.push_str("</Relationships>");
        put("[Content_Types].xml", ct);
        put("_rels/.rels", r#"<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument" Target="xl/workbook.xml"/></Relationships>"#.to_string());
        put("xl/workbook.xml", wb);
        put("xl/_rels/workbook.xml.rels", rels);
        z.finish().unwrap().into_inner()
    }

    #[test]
    fn xlsx_single_and_multi_sheet() {
        let rows: &[&[&str]] = &[
            &["Prefix", "Destination", "Rate"],
            &["4420", "London", "0.008"],
            &["44", "UK", "0.01"],
        ];
        let one = xlsx(&[("Deck", rows)]);
        let (fmt, mut src) = open_source(Box::new(Cursor::new(one)), "d.xlsx", None, 1 << 20)
            .map_err(|e| e.to_string())
            .unwrap();
        assert_eq!(fmt, Format::Xlsx);
        assert_eq!(src.headers(), ["Prefix", "Destination", "Rate"]);
        let mut f = vec![];
        assert_eq!(src.next_row(&mut f).unwrap(), Some(2));
        assert_eq!(f, ["4420", "London", "0.008"]);

        let two = xlsx(&[("Notes", &[&["hello"]]), ("Deck", rows)]);
        let e = open_source(Box::new(Cursor::new(two.clone())), "d.xlsx", None, 1 << 20)
            .err()
            .unwrap();
        assert!(e.to_string().contains("2 sheets (Notes, Deck)"), "{e}");
        let (_, src) = open_source(
            Box::new(Cursor::new(two.clone())),
            "d.xlsx",
            Some("Deck"),
            1 << 20,
        )
        .map_err(|e| e.to_string())
        .unwrap();
        assert_eq!(src.headers()[0], "Prefix");
        let e = open_source(Box::new(Cursor::new(two)), "d.xlsx", Some("Nope"), 1 << 20)
            .err()
            .unwrap();
        assert!(e.to_string().contains("no sheet \"Nope\""), "{e}");
        let e = open_source(
            Box::new(Cursor::new(b"PK\x03\x04garbage".to_vec())),
            "d.xlsx",
            None,
            1 << 20,
        )
        .err()
        .unwrap();
        assert!(e.to_string().contains("not a readable XLSX"), "{e}");
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(256))]
        /// Any bytes: no panic, and every row is either valid or an issue with a line number.
        #[test]
        fn never_panics_on_any_bytes(body in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..400)) {
            let mut input = b"prefix,description,rate,min,increment,effective date\n".to_vec();
            input.extend_from_slice(&body);
            let mut src = CsvSource::new(&input[..], "f.csv").unwrap();
            let layout = detect_layout("f.csv", src.headers(), &Mapping::default(), false).unwrap();
            let mut v = Validator::new("f.csv", layout, Rules::default());
            let mut f = vec![];
            for _ in 0..1000 {
                match src.next_row(&mut f) {
                    Ok(None) => break,
                    Ok(Some(line)) => {
                        proptest::prop_assert!(line >= 2);
                        if let Err(is) = v.check(line, &f) {
                            proptest::prop_assert!(is.iter().all(|i| i.line == Some(line)));
                        }
                    }
                    Err(i) => { proptest::prop_assert!(i.line.is_some()); break; }
                }
            }
        }

        /// Any bytes under a long (zone) header: no panic, every issue has its row's line, and
        /// every pivoted row is one of the lines read.
        #[test]
        fn long_layout_never_panics(body in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..400)) {
            let mut input = b"prefix,zone,rate,min\n".to_vec();
            input.extend_from_slice(&body);
            let mut src = CsvSource::new(&input[..], "f.csv").unwrap();
            let layout = detect_layout("f.csv", src.headers(), &Mapping::default(), false).unwrap();
            let mut v = Validator::new("f.csv", layout, Rules::default());
            let mut f = vec![];
            let mut lines = vec![];
            for _ in 0..1000 {
                match src.next_row(&mut f) {
                    Ok(None) => break,
                    Ok(Some(line)) => {
                        lines.push(line);
                        match v.check(line, &f) {
                            Err(is) => proptest::prop_assert!(is.iter().all(|i| i.line == Some(line))),
                            Ok(r) => proptest::prop_assert!(r.is_none()),
                        }
                    }
                    Err(i) => { proptest::prop_assert!(i.line.is_some()); break; }
                }
            }
            let mut ok = true;
            v.finish(|r| ok &= lines.contains(&r.line) && r.prefix.is_some());
            proptest::prop_assert!(ok);
        }

        /// A long deck (zone rows in any order) pivots into exactly the wide rows.
        #[test]
        fn long_layout_round_trips(rows in proptest::collection::vec(
            ("[1-9][0-9]{0,10}", proptest::option::of(0u32..100_000_000u32),
             proptest::option::of(0u32..100_000_000u32), proptest::option::of(0u32..100_000_000u32)), 1..30),
            by_zone in proptest::prelude::any::<bool>()) {
            let mut seen = std::collections::HashSet::new();
            let mut want = vec![];
            let mut lines = vec![];
            for (p, a, b, c) in &rows {
                if (a.is_none() && b.is_none() && c.is_none()) || !seen.insert(p.clone()) { continue; }
                want.push((p.clone(), [*a, *b, *c]));
                for (z, r) in ["interstate", "intrastate", "local"].iter().zip([a, b, c]) {
                    if let Some(r) = r {
                        lines.push((*z, format!("{p},{z},{}\n", fmt_scaled(i64::from(*r), 7))));
                    }
                }
            }
            if by_zone {
                // all interstate rows, then all intrastate, then local (prefix order is kept)
                lines.sort_by_key(|(z, _)| *z);
            }
            let mut input = "Code,Zone,Price\n".to_string();
            for (_, l) in &lines {
                input.push_str(l);
            }
            let mut src = CsvSource::new(input.as_bytes(), "f.csv").unwrap();
            let layout = detect_layout("f.csv", src.headers(), &Mapping::default(), false).unwrap();
            let mut v = Validator::new("f.csv", layout, Rules::default());
            let mut f = vec![];
            while let Some(line) = src.next_row(&mut f).unwrap() {
                proptest::prop_assert!(v.check(line, &f).unwrap().is_none());
            }
            let mut got = vec![];
            v.finish(|r| got.push((r.prefix.unwrap().to_string(), r.rates)));
            got.sort();
            want.sort();
            proptest::prop_assert_eq!(got, want);
        }

        /// Valid generated rows (with quoting and CRLF) come back exactly.
        #[test]
        fn valid_rows_round_trip(rows in proptest::collection::vec(
            ("[1-9][0-9]{0,10}", "[a-zA-Z ,\"]{0,12}", 0u32..100_000_000u32), 1..30),
            crlf in proptest::prelude::any::<bool>()) {
            let eol = if crlf { "\r\n" } else { "\n" };
            let mut input = format!("Code,Destination,Price{eol}");
            let mut want = vec![];
            let mut seen = std::collections::HashSet::new();
            for (p, d, r) in &rows {
                if !seen.insert(p.clone()) { continue; }
                input.push_str(&format!("{p},\"{}\",{}{eol}", d.replace('"', "\"\""), fmt_scaled(i64::from(*r), 7)));
                want.push((p.clone(), d.trim().to_string(), *r));
            }
            let mut src = CsvSource::new(input.as_bytes(), "f.csv").unwrap();
            let layout = detect_layout("f.csv", src.headers(), &Mapping::default(), false).unwrap();
            let mut v = Validator::new("f.csv", layout, Rules::default());
            let mut f = vec![];
            let mut got = vec![];
            while let Some(line) = src.next_row(&mut f).unwrap() {
                let r = v.check(line, &f).unwrap().unwrap();
                got.push((r.prefix.unwrap().to_string(), r.description.unwrap_or("").to_string(), r.rates[0].unwrap()));
            }
            proptest::prop_assert_eq!(got, want);
        }
    }
}
