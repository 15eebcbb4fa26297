//! The long-deck pivot: a deck with a zone column (one row per prefix and zone) is folded into
//! one pending row per prefix (or OCN/LATA) while it is read, and handed out by
//! `Validator::finish` (in `validate.rs`) in first-line order.
//!
//! Owns: the pivot key and pending rows, the per-prefix consistency of zone rows (one rate per
//! zone, one set of billing terms and dates).
//! Must not touch: the validation of one row's values (see `validate`).

/// Packs up to 15 digits plus the length into a u64 ("01" ≠ "1").
pub(super) fn pack_digits(s: &str) -> u64 {
    let mut v: u64 = 0;
    for b in s.bytes().take(15) {
        v = v * 10 + u64::from(b.wrapping_sub(b'0') % 10);
    }
    (v << 4) | (s.len().min(15) as u64)
}

/// Unpacks [`pack_digits`].
pub(super) fn unpack_digits(v: u64, out: &mut String) {
    use std::fmt::Write;
    out.clear();
    let len = (v & 15) as usize;
    let _ = write!(out, "{:0>len$}", v >> 4);
}

/// Key of a pivoted ("long" layout) row.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(super) enum PivotKey {
    /// [`pack_digits`] of the prefix
    Prefix(u64),
    OcnLata(Box<str>, Box<str>),
}

/// One prefix (or OCN/LATA) of a long deck being assembled from its zone rows.
pub(super) struct Pending {
    pub(super) key: PivotKey,
    /// first line of the prefix
    pub(super) line: u64,
    pub(super) rates: [Option<u32>; 3],
    /// the line each zone's rate came from
    pub(super) zone_lines: [u64; 3],
    pub(super) min_seconds: u16,
    pub(super) inc_seconds: u16,
    pub(super) from: i64,
    pub(super) until: i64,
    /// description: (start, len) in the validator's arena
    pub(super) desc: (u32, u32),
}
