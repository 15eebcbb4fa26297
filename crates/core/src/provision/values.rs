//! Value syntax shared by the provisioning file and its CSV decks: exact decimals, timestamps,
//! local times, weekdays, digit prefixes, and the canonical row cells used both to COPY rows into
//! PostgreSQL and to fingerprint a deck (so re-applying an unchanged deck is a no-op).
//!
//! Owns: parsing/formatting of single values. Must not touch: I/O, the database.

use sha2::{Digest as _, Sha256};

pub use crate::rules::values::{
    check_prefix, fmt_scaled, fmt_ts, parse_days, parse_rate, parse_scaled, parse_time, parse_ts,
    NEG_INF, POS_INF,
};

/// SQL expression turning a timestamptz column into unix microseconds (±infinity as i64 bounds).
pub fn sql_micros(col: &str) -> String {
    format!(
        "(CASE WHEN {col} = '-infinity' THEN -9223372036854775808 WHEN {col} = 'infinity' \
         THEN 9223372036854775807 ELSE round(extract(epoch FROM {col}) * 1000000) END)::bigint"
    )
}

/// One column value of a deck row in canonical form.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cell<'a> {
    Null,
    Int(i64),
    /// money scaled by 1e7 (same fingerprint as `Int`, written as a decimal)
    Scaled7(i64),
    /// unix microseconds (same fingerprint as `Int`, written as a timestamp)
    Ts(i64),
    Text(&'a str),
}

impl Cell<'_> {
    /// Feeds the value into a row hash in a fixed byte form (tag, little-endian integer or
    /// length-prefixed text), so a stored fingerprint does not depend on the toolchain.
    fn hash_into(&self, h: &mut Sha256) {
        match self {
            Cell::Null => h.update([0u8]),
            Cell::Int(v) | Cell::Scaled7(v) | Cell::Ts(v) => {
                h.update([1u8]);
                h.update(v.to_le_bytes());
            }
            Cell::Text(s) => {
                h.update([2u8]);
                h.update((s.len() as u64).to_le_bytes());
                h.update(s.as_bytes());
            }
        }
    }

    /// Appends the value in PostgreSQL COPY text format.
    pub fn write_copy(&self, out: &mut Vec<u8>) {
        match self {
            Cell::Null => out.extend_from_slice(b"\\N"),
            Cell::Int(v) => out.extend_from_slice(v.to_string().as_bytes()),
            Cell::Scaled7(v) => out.extend_from_slice(fmt_scaled(*v, 7).as_bytes()),
            Cell::Ts(v) => out.extend_from_slice(fmt_ts(*v).as_bytes()),
            Cell::Text(s) => {
                for b in s.bytes() {
                    match b {
                        b'\\' => out.extend_from_slice(b"\\\\"),
                        b'\t' => out.extend_from_slice(b"\\t"),
                        b'\n' => out.extend_from_slice(b"\\n"),
                        b'\r' => out.extend_from_slice(b"\\r"),
                        _ => out.push(b),
                    }
                }
            }
        }
    }
}

/// Appends one COPY text-format line made of `lead` then `cells`.
pub fn write_copy_line(lead: &[Cell<'_>], cells: &[Cell<'_>], out: &mut Vec<u8>) {
    for (i, c) in lead.iter().chain(cells).enumerate() {
        if i > 0 {
            out.push(b'\t');
        }
        c.write_copy(out);
    }
    out.push(b'\n');
}

/// Order-independent fingerprint of a multiset of rows: the row count and the wrapping sum of
/// each row's SHA-256 (first 128 bits). SHA-256 rather than the standard library's hasher, whose
/// algorithm may change between Rust releases: a stored fingerprint stays comparable.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Digest {
    pub rows: u64,
    sum: u128,
}

impl Digest {
    pub fn add(&mut self, cells: &[Cell<'_>]) {
        let mut h = Sha256::new();
        for c in cells {
            c.hash_into(&mut h);
        }
        let out = h.finalize();
        let mut first = [0u8; 16];
        first.copy_from_slice(&out[..16]);
        self.rows += 1;
        self.sum = self.sum.wrapping_add(u128::from_le_bytes(first));
    }

    /// The fingerprint as stored with a deck version (`deck_versions.content_digest`), tagged
    /// with its scheme (a value of another scheme never matches, so it costs at most one more,
    /// identical version).
    pub fn to_text(&self) -> String {
        format!("sha256sum128:{}:{:032x}", self.rows, self.sum)
    }
}

/// Canonical field values of an object (`name`, text) used to diff the file against the database.
pub type Fields = Vec<(&'static str, String)>;

pub fn f_money(v: Option<i64>) -> String {
    v.map(|v| fmt_scaled(v, 7)).unwrap_or_else(|| "null".into())
}

pub fn f_pct(v: Option<i64>) -> String {
    v.map(|v| fmt_scaled(v, 4)).unwrap_or_else(|| "null".into())
}

pub fn f_opt<T: std::fmt::Display>(v: Option<T>) -> String {
    v.map(|v| v.to_string()).unwrap_or_else(|| "null".into())
}

pub fn f_list<T: std::fmt::Display>(v: &[T]) -> String {
    let items: Vec<String> = v.iter().map(|x| x.to_string()).collect();
    format!("[{}]", items.join(","))
}

/// A list column that may be NULL (`null`) as opposed to empty (`[]`).
pub fn f_opt_list<T: std::fmt::Display>(v: Option<&[T]>) -> String {
    v.map(f_list).unwrap_or_else(|| "null".into())
}
