//! Single values shared by every surface that writes provisioning data (`warpd apply`, its CSV
//! decks, the admin API): exact decimals, timestamps, local times, weekdays, digit prefixes.
//!
//! Owns: parsing/formatting of single values. Must not touch: I/O.

use chrono::{DateTime, NaiveTime, SecondsFormat, Utc};
use serde::Deserialize;

use crate::excerpt::excerpt;
use crate::routing::model::Rate;

/// A weekday: `"mon"`.. / `"monday"`.. (any case) or ISO number 1 (Monday) ..= 7 (Sunday).
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum Day {
    Number(i64),
    Name(String),
}

/// `-infinity` as unix microseconds.
pub const NEG_INF: i64 = i64::MIN;
/// `infinity` as unix microseconds.
pub const POS_INF: i64 = i64::MAX;

/// Parses a non-negative rate in currency per minute (at most 7 decimals, at most 429.4967294).
pub fn parse_rate(s: &str) -> Result<u32, String> {
    Rate::parse(s).map(|r| r.0).ok_or_else(|| {
        format!(
            "{} is not a non-negative decimal with at most 7 decimal places (max 429.4967294)",
            excerpt(s)
        )
    })
}

/// Parses a signed decimal with at most `digits` fractional digits into an integer scaled by
/// 10^digits, with |value| < 10^`int_digits`.
pub fn parse_scaled(s: &str, digits: u32, int_digits: u32) -> Result<i64, String> {
    let bad = || {
        format!(
            "{} is not a decimal with at most {digits} decimal places and {int_digits} integer digits",
            excerpt(s)
        )
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
            "{} must be E.164 digits without '+' or separators (e.g. 1212 for NANP 212, 44 for the UK)",
            excerpt(s)
        ));
    }
    if s.len() > 15 {
        return Err(format!("{} is longer than 15 digits", excerpt(s)));
    }
    Ok(())
}
