//! Pure deck parsing: bytes (CSV, gzip'ed CSV, XLSX) → header mapping → validated canonical rows.
//! CSV is streamed (memory is the duplicate-key map, not the file); XLSX is read one sheet at a
//! time by calamine (the sheet is held in memory: XLSX is a zip, it cannot be streamed).
//!
//! Owns: file formats, encodings (UTF-8, Latin-1 fallback per field, BOM, CRLF/CR line ends),
//! header auto-detection and saved mappings, per-row validation with line numbers.
//! Must not touch: the database, the clock, the network.
//!
//! Layout: [`layout`] maps the header to fields, [`source`] reads the file formats, [`validate`]
//! checks each row, [`pivot`] folds a long (zone column) deck into one row per prefix, and
//! [`row`] writes a validated row as COPY text.

mod layout;
mod pivot;
mod row;
mod source;
mod validate;

#[cfg(test)]
mod tests;

pub use layout::{detect_layout, normalize_header, Field, Layout, Mapping};
pub use row::{DeckRow, COPY_COLUMNS};
pub use source::{open_source, CsvSource, Format, RowSource, XlsxSource};
pub use validate::{parse_when, zone_mask, Rules, Validator};
