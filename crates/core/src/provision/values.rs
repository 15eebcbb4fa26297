//! Value syntax shared by the provisioning file and its CSV decks: exact decimals, timestamps,
//! local times, weekdays, digit prefixes, and the canonical row cells used both to COPY rows into
//! PostgreSQL and to fingerprint a deck (so re-applying an unchanged deck is a no-op).
//!
//! Owns: parsing/formatting of single values. Must not touch: I/O, the database.

use std::hash::{Hash, Hasher};

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
    fn hash_into<H: Hasher>(&self, h: &mut H) {
        match self {
            Cell::Null => 0u8.hash(h),
            Cell::Int(v) | Cell::Scaled7(v) | Cell::Ts(v) => {
                1u8.hash(h);
                v.hash(h);
            }
            Cell::Text(s) => {
                2u8.hash(h);
                s.hash(h);
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

/// Order-independent fingerprint of a multiset of rows (two 64-bit sums of SipHash values).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Digest {
    pub rows: u64,
    a: u64,
    b: u64,
}

impl Digest {
    pub fn add(&mut self, cells: &[Cell<'_>]) {
        // DefaultHasher::new() uses fixed keys: deterministic within and across runs of one build
        let mut h1 = std::collections::hash_map::DefaultHasher::new();
        let mut h2 = std::collections::hash_map::DefaultHasher::new();
        0x5eed_0001u32.hash(&mut h1);
        0x5eed_0002u32.hash(&mut h2);
        for c in cells {
            c.hash_into(&mut h1);
            c.hash_into(&mut h2);
        }
        self.rows += 1;
        self.a = self.a.wrapping_add(h1.finish());
        self.b = self.b.wrapping_add(h2.finish());
    }

    /// The fingerprint as stored with a deck version (`deck_versions.content_digest`), tagged
    /// with its scheme. Should the standard library's hasher ever change, a stored value stops
    /// matching and the next apply of an unchanged deck makes one more (identical) version.
    pub fn to_text(&self) -> String {
        format!("sip13x2:{}:{:016x}:{:016x}", self.rows, self.a, self.b)
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
