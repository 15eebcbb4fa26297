//! The XLSX reader: one sheet of a workbook read cell by cell (calamine's cell reader), never as
//! a dense range: a sheet with one cell at A1 and one at XFD1048576 costs two cells, not the
//! 17-billion-cell bounding box. The zip's parts are measured (decompressed, up to
//! [`Limits::xlsx_unzipped_bytes`]) before calamine reads any of them.
//!
//! Owns: sheet choice, cell text, the sheet's bounds (columns, cell and row text).
//! Must not touch: what the columns mean (see `layout`), row validation (see `validate`).

use std::io::{Read, Seek, SeekFrom};

use calamine::DataRef;

use super::limits::Limits;
use super::source::RowSource;
use crate::excerpt::{excerpt, plain};
use crate::provision::Issue;

/// One XLSX sheet, its data rows' cells held as one text buffer.
pub struct XlsxSource {
    headers: Vec<String>,
    /// every data cell's text, back to back
    text: String,
    /// end offset in `text` of each cell
    ends: Vec<u32>,
    /// (row number, first cell index in `ends`, number of cells) of each data row
    rows: Vec<(u64, u32, u32)>,
    next: usize,
}

/// `A`, `Z`, `AA`, … for a 0-based column.
fn col_name(mut col: u32) -> String {
    let mut s = Vec::new();
    loop {
        s.push(b'A' + (col % 26) as u8);
        if col < 26 {
            break;
        }
        col = col / 26 - 1;
    }
    s.reverse();
    String::from_utf8_lossy(&s).into_owned()
}

/// `B7` for the 0-based (row, col).
fn cell_ref((row, col): (u32, u32)) -> String {
    format!("{}{}", col_name(col), u64::from(row) + 1)
}

fn cell_text(c: &DataRef<'_>, out: &mut String) {
    use std::fmt::Write;
    out.clear();
    match c {
        DataRef::Empty => {}
        DataRef::String(s) => out.push_str(s.trim()),
        DataRef::SharedString(s) => out.push_str(s.trim()),
        DataRef::Float(f) => {
            // prefixes stored as numbers come back as 1212.0; rates as 0.0123
            if f.fract() == 0.0 && f.abs() < 1e15 {
                let _ = write!(out, "{}", *f as i64);
            } else {
                let _ = write!(out, "{f}");
            }
        }
        DataRef::Int(i) => {
            let _ = write!(out, "{i}");
        }
        DataRef::Bool(b) => {
            let _ = write!(out, "{b}");
        }
        DataRef::DateTime(d) => {
            let (y, mo, da, h, mi, s, _) = d.to_ymd_hms_milli();
            let _ = write!(out, "{y:04}-{mo:02}-{da:02}T{h:02}:{mi:02}:{s:02}Z");
        }
        DataRef::DateTimeIso(s) | DataRef::DurationIso(s) => out.push_str(s),
        DataRef::Error(e) => {
            let _ = write!(out, "#ERROR {e:?}");
        }
    }
}

/// Decompresses every part of the zip into nothing, refusing a total above the bound (a zip
/// bomb is found here, before calamine holds any part in memory).
fn measure_parts<RS: Read + Seek>(rs: &mut RS, label: &str, limit: u64) -> Result<(), Issue> {
    let unreadable = |e: &dyn std::fmt::Display| {
        Issue::new(label, "", format!("not a readable XLSX workbook: {e}"))
    };
    let mut zip = zip::ZipArchive::new(&mut *rs).map_err(|e| unreadable(&e))?;
    let mut total: u64 = 0;
    for i in 0..zip.len() {
        let part = zip.by_index(i).map_err(|e| unreadable(&e))?;
        let name = part.name().to_string();
        let room = limit.saturating_sub(total);
        let n = std::io::copy(&mut part.take(room + 1), &mut std::io::sink())
            .map_err(|e| unreadable(&e))?;
        total = total.saturating_add(n);
        if total > limit {
            return Err(Issue::new(
                label,
                "",
                format!(
                    "the XLSX parts decompress to more than {limit} bytes (at part {}); export the sheet as CSV",
                    excerpt(&name)
                ),
            ));
        }
    }
    drop(zip);
    rs.seek(SeekFrom::Start(0)).map_err(|e| unreadable(&e))?;
    Ok(())
}

/// Builds the rows as the cells arrive (in the sheet's row order).
struct Collect<'l> {
    label: &'l str,
    sheet: &'l str,
    limits: &'l Limits,
    /// the current row: its number and cells (at most `limits.columns`)
    row: Option<u32>,
    cells: Vec<String>,
    row_bytes: usize,
    headers: Option<(u64, Vec<String>)>,
    out: XlsxSource,
}

impl Collect<'_> {
    fn issue(&self, pos: (u32, u32), msg: String) -> Issue {
        Issue::at_line(
            self.label,
            u64::from(pos.0) + 1,
            format!("sheet {}, cell {}", excerpt(self.sheet), cell_ref(pos)),
            msg,
        )
    }

    fn cell(&mut self, pos: (u32, u32), text: &str) -> Result<(), Issue> {
        let (row, col) = pos;
        if text.is_empty() {
            return Ok(());
        }
        if col as usize >= self.limits.columns {
            return Err(self.issue(
                pos,
                format!(
                    "a value right of column {} (a deck has at most {} columns)",
                    col_name(self.limits.columns as u32 - 1),
                    self.limits.columns
                ),
            ));
        }
        if text.len() > self.limits.field_bytes {
            return Err(self.issue(
                pos,
                format!(
                    "a cell longer than {} bytes: {}",
                    self.limits.field_bytes,
                    excerpt(text)
                ),
            ));
        }
        match self.row {
            Some(r) if r == row => {}
            Some(r) if r > row => {
                return Err(self.issue(pos, format!("cells out of order (after row {})", r + 1)))
            }
            _ => {
                self.end_row()?;
                self.row = Some(row);
            }
        }
        self.row_bytes += text.len();
        if self.row_bytes > self.limits.record_bytes {
            return Err(self.issue(
                pos,
                format!("a row of more than {} bytes", self.limits.record_bytes),
            ));
        }
        let c = col as usize;
        if self.cells.len() <= c {
            self.cells.resize_with(c + 1, String::new);
        }
        self.cells[c].clear();
        self.cells[c].push_str(text);
        Ok(())
    }

    /// The current row is complete: it is the header or a data row.
    fn end_row(&mut self) -> Result<(), Issue> {
        let Some(row) = self.row.take() else {
            return Ok(());
        };
        let line = u64::from(row) + 1;
        let mut cells = std::mem::take(&mut self.cells);
        self.row_bytes = 0;
        // trailing empty cells are just the sheet's width
        while cells.last().is_some_and(String::is_empty) {
            cells.pop();
        }
        let Some((_, headers)) = &self.headers else {
            if let Some(i) = cells.iter().position(String::is_empty) {
                return Err(Issue::at_line(
                    self.label,
                    line,
                    format!("column {}", i + 1),
                    "empty column name in header",
                ));
            }
            self.headers = Some((line, cells));
            return Ok(());
        };
        let width = headers.len().max(cells.len());
        let o = &mut self.out;
        let (Ok(first), Ok(n)) = (u32::try_from(o.ends.len()), u32::try_from(width)) else {
            return Err(Issue::at_line(self.label, line, "", "too many cells"));
        };
        for i in 0..width {
            if let Some(c) = cells.get(i) {
                o.text.push_str(c);
            }
            let Ok(end) = u32::try_from(o.text.len()) else {
                return Err(Issue::at_line(self.label, line, "", "too much text"));
            };
            o.ends.push(end);
        }
        o.rows.push((line, first, n));
        self.cells = cells;
        self.cells.clear();
        Ok(())
    }
}

impl XlsxSource {
    /// Opens a workbook under the default [`Limits`]. A workbook with several sheets needs
    /// `sheet` (the error lists them).
    pub fn open<RS: Read + Seek>(r: RS, label: &str, sheet: Option<&str>) -> Result<Self, Issue> {
        Self::open_with_limits(r, label, sheet, &Limits::default())
    }

    pub fn open_with_limits<RS: Read + Seek>(
        mut r: RS,
        label: &str,
        sheet: Option<&str>,
        limits: &Limits,
    ) -> Result<Self, Issue> {
        use calamine::Reader;
        measure_parts(&mut r, label, limits.xlsx_unzipped_bytes)?;
        let mut wb: calamine::Xlsx<RS> = calamine::Xlsx::new(r)
            .map_err(|e| Issue::new(label, "", format!("not a readable XLSX workbook: {e}")))?;
        let names = wb.sheet_names().to_vec();
        let list = || {
            names
                .iter()
                .map(|n| plain(n))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let name = match (sheet, names.as_slice()) {
            (Some(s), _) if names.iter().any(|n| n == s) => s.to_string(),
            (Some(s), _) => {
                return Err(Issue::new(
                    label,
                    "sheet",
                    format!("no sheet {}; the workbook has: {}", excerpt(s), list()),
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
                        list()
                    ),
                ))
            }
        };
        let cant = |e: calamine::XlsxError| {
            Issue::new(
                label,
                "sheet",
                format!("cannot read sheet {}: {e}", excerpt(&name)),
            )
        };
        let mut reader = wb.worksheet_cells_reader(&name).map_err(cant)?;
        let mut c = Collect {
            label,
            sheet: &name,
            limits,
            row: None,
            cells: Vec::new(),
            row_bytes: 0,
            headers: None,
            out: XlsxSource {
                headers: Vec::new(),
                text: String::new(),
                ends: Vec::new(),
                rows: Vec::new(),
                next: 0,
            },
        };
        let mut text = String::new();
        while let Some(cell) = reader.next_cell().map_err(cant)? {
            cell_text(cell.get_value(), &mut text);
            c.cell(cell.get_position(), &text)?;
        }
        c.end_row()?;
        let Some((_, headers)) = c.headers else {
            return Err(Issue::at_line(
                label,
                1,
                "",
                "empty sheet: expected a header row",
            ));
        };
        let mut out = c.out;
        out.headers = headers;
        Ok(out)
    }
}

impl RowSource for XlsxSource {
    fn headers(&self) -> &[String] {
        &self.headers
    }
    fn next_row(&mut self, out: &mut Vec<String>) -> Result<Option<u64>, Issue> {
        let Some(&(line, first, n)) = self.rows.get(self.next) else {
            return Ok(None);
        };
        self.next += 1;
        let (first, n) = (first as usize, n as usize);
        out.resize_with(n, String::new);
        for (i, dst) in out.iter_mut().enumerate() {
            let end = self.ends.get(first + i).copied().unwrap_or(0) as usize;
            let start = match (first + i).checked_sub(1) {
                Some(p) => self.ends.get(p).copied().unwrap_or(0) as usize,
                None => 0,
            };
            dst.clear();
            dst.push_str(self.text.get(start..end).unwrap_or(""));
        }
        Ok(Some(line))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cell_names() {
        assert_eq!(cell_ref((0, 0)), "A1");
        assert_eq!(cell_ref((6, 1)), "B7");
        assert_eq!(col_name(25), "Z");
        assert_eq!(col_name(26), "AA");
        assert_eq!(col_name(255), "IV");
        assert_eq!(cell_ref((1_048_575, 16_383)), "XFD1048576");
    }
}
