//! Pure deck parsing: bytes (CSV, gzip'ed CSV, XLSX) → header mapping → validated canonical rows.
//! CSV is streamed (memory is the duplicate-key map, not the file); XLSX is read one sheet at a
//! time, cell by cell (the sheet's text is held in memory: XLSX is a zip, it cannot be streamed).
//! Everything is read under [`Limits`] (content, record, field, columns, XLSX size and its
//! decompressed parts), and errors quote input through `crate::excerpt`.
//!
//! Owns: file formats, encodings (UTF-8, Latin-1 fallback per field, BOM, CRLF/CR line ends),
//! header auto-detection and saved mappings, per-row validation with line numbers.
//! Must not touch: the database, the clock, the network.
//!
//! Layout: `open` sniffs the format and opens its reader, `source` reads CSV, `xlsx` reads a
//! sheet cell by cell, `limits` holds the bounds, `layout` maps the header to fields, `validate`
//! checks each row, `pivot` folds a long (zone column) deck into one row per prefix, and `row`
//! writes a validated row as COPY text.

mod layout;
mod limits;
mod open;
mod pivot;
mod row;
mod source;
mod validate;
mod xlsx;

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_limits;

pub use layout::{detect_layout, normalize_header, Field, Layout, Mapping};
pub use limits::{
    Limits, MAX_COLUMNS, MAX_CONTENT_BYTES, MAX_FIELD_BYTES, MAX_RECORD_BYTES, MAX_XLSX_BYTES,
    MAX_XLSX_UNZIPPED_BYTES,
};
pub use open::open_source;
pub use row::{DeckRow, COPY_COLUMNS};
pub use source::{CsvSource, Format, RowSource};
pub use validate::{parse_when, zone_mask, Rules, Validator};
pub use xlsx::XlsxSource;
