//! The validated deck row ([`DeckRow`]) and its `deck_rates` COPY text ([`COPY_COLUMNS`],
//! [`DeckRow::write_copy`]).
//!
//! Owns: the COPY text encoding of a row, minimal rate decimals.
//! Must not touch: validation (see `validate`), the database.

use crate::provision::values::Cell;

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

/// Appends a rate in 1e-7 units as a minimal decimal (`45000` → `0.0045`) without allocating.
pub(super) fn push_rate(v: u32, out: &mut Vec<u8>) {
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
