//! Value syntax shared by the provisioning file and its CSV decks: exact decimals, timestamps,
//! local times, weekdays, digit prefixes, and the canonical row cells used both to COPY rows into
//! PostgreSQL and to fingerprint a deck (so re-applying an unchanged deck is a no-op).
//!
//! Owns: parsing/formatting of single values. Must not touch: I/O, the database.

use std::hash::{Hash, Hasher};

use chrono::{DateTime, NaiveTime, SecondsFormat, Utc};

use super::spec::Day;
use crate::routing::model::Rate;

/// `-infinity` as unix microseconds.
pub const NEG_INF: i64 = i64::MIN;
/// `infinity` as unix microseconds.
pub const POS_INF: i64 = i64::MAX;

/// Parses a non-negative rate in currency per minute (at most 7 decimals, at most 429.4967294).
pub fn parse_rate(s: &str) -> Result<u32, String> {
    Rate::parse(s).map(|r| r.0).ok_or_else(|| {
        format!(
            "{s:?} is not a non-negative decimal with at most 7 decimal places (max 429.4967294)"
        )
    })
}

/// Parses a signed decimal with at most `digits` fractional digits into an integer scaled by
/// 10^digits, with |value| < 10^`int_digits`.
pub fn parse_scaled(s: &str, digits: u32, int_digits: u32) -> Result<i64, String> {
    let bad = || {
        format!("{s:?} is not a decimal with at most {digits} decimal places and {int_digits} integer digits")
    };
    let t = s.trim();
    let (neg, t) = match t.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, t.strip_prefix('+').unwrap_or(t)),
    };
    let (int, frac) = t.split_once('.').unwrap_or((t, ""));
    if (int.is_empty() && frac.is_empty())
        || !int.bytes().all(|b| b.is_ascii_digit())
        || !frac.bytes().all(|b| b.is_ascii_digit())
    {
        return Err(bad());
    }
    let int = int.trim_start_matches('0');
    let frac = frac.trim_end_matches('0');
    if int.len() > int_digits as usize || frac.len() > digits as usize {
        return Err(bad());
    }
    let iv: i64 = if int.is_empty() {
        0
    } else {
        int.parse().map_err(|_| bad())?
    };
    let mut fv: i64 = if frac.is_empty() {
        0
    } else {
        frac.parse().map_err(|_| bad())?
    };
    for _ in frac.len()..digits as usize {
        fv *= 10;
    }
    let v = iv
        .checked_mul(10i64.pow(digits))
        .and_then(|x| x.checked_add(fv))
        .ok_or_else(bad)?;
    Ok(if neg { -v } else { v })
}

/// Formats an integer scaled by 10^digits as a minimal decimal: `45000, 7` → `0.0045`.
pub fn fmt_scaled(v: i64, digits: u32) -> String {
    let p = 10u64.pow(digits);
    let a = v.unsigned_abs();
    let sign = if v < 0 { "-" } else { "" };
    let frac = format!("{:0width$}", a % p, width = digits as usize);
    let frac = frac.trim_end_matches('0');
    if frac.is_empty() {
        format!("{sign}{}", a / p)
    } else {
        format!("{sign}{}.{frac}", a / p)
    }
}

/// Parses an RFC 3339 timestamp (or `-infinity` / `infinity`) into unix microseconds.
pub fn parse_ts(s: &str) -> Result<i64, String> {
    match s.trim() {
        "-infinity" => return Ok(NEG_INF),
        "infinity" => return Ok(POS_INF),
        _ => {}
    }
    let t = DateTime::parse_from_rfc3339(s.trim()).map_err(|e| {
        format!("{s:?} is not an RFC 3339 timestamp like 2025-01-01T00:00:00Z ({e})")
    })?;
    if t.timestamp_subsec_nanos() % 1000 != 0 {
        return Err(format!(
            "{s:?}: PostgreSQL keeps microseconds; drop the extra fractional digits"
        ));
    }
    let us = t.timestamp_micros();
    if us == NEG_INF || us == POS_INF {
        return Err(format!("{s:?} is out of range"));
    }
    Ok(us)
}

/// Formats unix microseconds as PostgreSQL accepts it (`-infinity`, `infinity`, RFC 3339 UTC).
pub fn fmt_ts(us: i64) -> String {
    match us {
        NEG_INF => "-infinity".into(),
        POS_INF => "infinity".into(),
        _ => DateTime::<Utc>::from_timestamp_micros(us)
            .map(|t| t.to_rfc3339_opts(SecondsFormat::AutoSi, true))
            .unwrap_or_else(|| us.to_string()),
    }
}

/// SQL expression turning a timestamptz column into unix microseconds (±infinity as i64 bounds).
pub fn sql_micros(col: &str) -> String {
    format!(
        "(CASE WHEN {col} = '-infinity' THEN -9223372036854775808 WHEN {col} = 'infinity' \
         THEN 9223372036854775807 ELSE round(extract(epoch FROM {col}) * 1000000) END)::bigint"
    )
}

/// Parses a local time `HH:MM` or `HH:MM:SS` into the canonical `HH:MM:SS`.
pub fn parse_time(s: &str) -> Result<String, String> {
    let t = s.trim();
    NaiveTime::parse_from_str(t, "%H:%M")
        .or_else(|_| NaiveTime::parse_from_str(t, "%H:%M:%S"))
        .map(|t| t.format("%H:%M:%S").to_string())
        .map_err(|_| {
            format!("{s:?} is not a time like \"08:00\" (00:00..23:59; use 00:00 for midnight)")
        })
}

/// ISO weekday numbers (1 = Monday .. 7 = Sunday), sorted and de-duplicated.
pub fn parse_days(days: &[Day]) -> Result<Vec<i16>, String> {
    const NAMES: [(&str, &str); 7] = [
        ("mon", "monday"),
        ("tue", "tuesday"),
        ("wed", "wednesday"),
        ("thu", "thursday"),
        ("fri", "friday"),
        ("sat", "saturday"),
        ("sun", "sunday"),
    ];
    let mut out = Vec::with_capacity(days.len());
    for d in days {
        let n = match d {
            Day::Number(n) if (1..=7).contains(n) => *n as i16,
            Day::Number(n) => {
                return Err(format!("day {n} is not an ISO weekday 1 (Mon) ..= 7 (Sun)"))
            }
            Day::Name(s) => {
                let l = s.trim().to_ascii_lowercase();
                match NAMES.iter().position(|(a, b)| *a == l || *b == l) {
                    Some(i) => i as i16 + 1,
                    None => {
                        return Err(format!(
                            "day {s:?} is not one of mon,tue,wed,thu,fri,sat,sun"
                        ))
                    }
                }
            }
        };
        out.push(n);
    }
    out.sort_unstable();
    out.dedup();
    Ok(out)
}

/// `^[0-9]+$` (or `^[0-9]*$` when `allow_empty`), at most 15 digits (E.164).
pub fn check_prefix(s: &str, allow_empty: bool) -> Result<(), String> {
    if s.is_empty() {
        return if allow_empty {
            Ok(())
        } else {
            Err("empty prefix".into())
        };
    }
    if !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!(
            "{s:?} must be E.164 digits without '+' or separators (e.g. 1212 for NANP 212, 44 for the UK)"
        ));
    }
    if s.len() > 15 {
        return Err(format!("{s:?} is longer than 15 digits"));
    }
    Ok(())
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
