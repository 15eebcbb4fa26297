//! [`open_source`]: sniffs a byte stream's [`Format`] and opens the reader for it under
//! [`Limits`] (gzip is decompressed on the fly; an XLSX is read into memory up to its bound).
//!
//! Owns: the choice of reader. Must not touch: the formats themselves (`source`, `xlsx`).

use std::io::{BufRead, BufReader, Cursor, Read};

use super::limits::Limits;
use super::source::{CsvSource, Format, RowSource};
use super::xlsx::XlsxSource;
use crate::provision::Issue;

/// Opens a deck from any byte stream, sniffing gzip/XLSX/CSV, under `limits`. XLSX is read into
/// memory (up to `limits.xlsx_bytes`).
pub fn open_source(
    r: Box<dyn Read + Send>,
    label: &str,
    sheet: Option<&str>,
    limits: &Limits,
) -> Result<(Format, Box<dyn RowSource + Send>), Issue> {
    let mut br = BufReader::with_capacity(1 << 16, r);
    let head = br
        .fill_buf()
        .map_err(|e| Issue::new(label, "", format!("cannot read: {e}")))?;
    let format = Format::sniff(head);
    Ok(match format {
        Format::Csv => (
            format,
            Box::new(CsvSource::with_limits(br, label, *limits)?),
        ),
        Format::Gzip => {
            let gz = flate2::bufread::MultiGzDecoder::new(br);
            // a gzip'ed XLSX is not a thing; the content must be CSV
            (
                format,
                Box::new(CsvSource::with_limits(gz, label, *limits)?),
            )
        }
        Format::Xlsx => {
            let max = limits.xlsx_bytes;
            let mut buf = vec![];
            br.take(max + 1)
                .read_to_end(&mut buf)
                .map_err(|e| Issue::new(label, "", format!("cannot read: {e}")))?;
            if buf.len() as u64 > max {
                return Err(Issue::new(
                    label,
                    "",
                    format!("XLSX larger than {max} bytes; export the sheet as CSV (gzip'ed if you like)"),
                ));
            }
            (
                format,
                Box::new(XlsxSource::open_with_limits(
                    Cursor::new(buf),
                    label,
                    sheet,
                    limits,
                )?),
            )
        }
    })
}
