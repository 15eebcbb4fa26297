//! Per-row validation of a deck: [`Rules`] (deck-wide parameters), the value parsers of deck
//! cells ([`parse_when`], rates, [`zone_mask`]) and the [`Validator`], which checks each record,
//! names every problem with its line and column, and drops exact duplicates.
//!
//! Owns: the key (prefix, NPA-NXX, OCN/LATA), rates, billing terms and dates of a row, duplicate
//! detection of the wide layout. The long layout's pivot is `pivot`'s.
//! Must not touch: the file format (see `source`), the COPY text (see `row`).

use rustc_hash::FxHashMap;

use super::layout::{normalize_header, Field, Layout};
use super::pivot::{pack_digits, unpack_digits, Pending, PivotKey};
use super::row::DeckRow;
use crate::excerpt::{excerpt, plain};
use crate::provision::values::{check_prefix, parse_rate, NEG_INF, POS_INF};
use crate::provision::Issue;

/// Deck-wide parameters of validation.
#[derive(Clone, Debug)]
pub struct Rules {
    pub ocn_lata: bool,
    pub default_min: u16,
    pub default_inc: u16,
}

impl Default for Rules {
    fn default() -> Self {
        Rules {
            ocn_lata: false,
            default_min: 6,
            default_inc: 6,
        }
    }
}

/// Parses a date or timestamp as written in decks: RFC 3339, `YYYY-MM-DD[ HH:MM[:SS]]` (UTC),
/// `MM/DD/YYYY`. Returns unix µs.
pub fn parse_when(s: &str) -> Result<i64, String> {
    use chrono::{NaiveDate, NaiveDateTime};
    let t = s.trim();
    if let Ok(d) = chrono::DateTime::parse_from_rfc3339(t) {
        return Ok(d.timestamp_micros());
    }
    if let Ok(d) = chrono::DateTime::parse_from_str(t, "%Y-%m-%dT%H:%M%#z") {
        return Ok(d.timestamp_micros());
    }
    for f in ["%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M", "%Y-%m-%dT%H:%M:%S"] {
        if let Ok(d) = NaiveDateTime::parse_from_str(t, f) {
            return Ok(d.and_utc().timestamp_micros());
        }
    }
    for f in ["%Y-%m-%d", "%m/%d/%Y", "%Y%m%d"] {
        if let Ok(d) = NaiveDate::parse_from_str(t, f) {
            return Ok(d
                .and_hms_opt(0, 0, 0)
                .map(|x| x.and_utc().timestamp_micros())
                .unwrap_or(0));
        }
    }
    Err(format!(
        "{} is not a date (2026-12-01, 2026-12-01T00:00Z, 12/01/2026)",
        excerpt(s)
    ))
}

fn rate_value(s: &str) -> Result<u32, String> {
    let t = s.strip_prefix('$').unwrap_or(s).trim();
    if t.starts_with('-') {
        return Err(format!("{}: negative rate", excerpt(s)));
    }
    parse_rate(t).map_err(|m| {
        if t.parse::<f64>().is_err() {
            format!("{} is not a number", excerpt(s))
        } else {
            m
        }
    })
}

/// The zones a zone-column value stands for: [interstate, intrastate, local].
pub fn zone_mask(s: &str) -> Option<[bool; 3]> {
    match normalize_header(s).as_str() {
        "interstate" | "inter" => Some([true, false, false]),
        "intrastate" | "intra" => Some([false, true, false]),
        "local" => Some([false, false, true]),
        "flat" | "international" | "intl" | "default" | "all" | "any" => Some([true; 3]),
        _ => None,
    }
}

/// Validates rows one by one, remembering keys for duplicate detection.
///
/// A deck with a zone column ("long" layout: prefix, zone, rate) is pivoted: [`Validator::check`]
/// validates each row and folds it into one pending row per prefix (`Ok(None)`), and
/// [`Validator::finish`] hands out the assembled rows in first-line order. Memory is one small
/// entry per distinct prefix (~100 bytes plus its description) — the same order as the duplicate
/// map of the wide layout; the rows can only be written once the file has been read.
pub struct Validator {
    pub(super) label: String,
    pub(super) layout: Layout,
    pub(super) rules: Rules,
    pub(super) cols: FxHashMap<Field, usize>,
    /// key → (first line, fingerprint of the rates/terms)
    pub(super) seen: FxHashMap<u64, (u64, u64)>,
    pub(super) seen_text: FxHashMap<(Box<str>, Box<str>), (u64, u64)>,
    pub(super) prefix_buf: String,
    /// long layout: key → index into `pending`
    pub(super) pivot: FxHashMap<PivotKey, u32>,
    pub(super) pending: Vec<Pending>,
    pub(super) descriptions: String,
    /// identical duplicate rows dropped
    pub duplicates_dropped: u64,
}

impl Validator {
    pub fn new(label: &str, layout: Layout, rules: Rules) -> Validator {
        let cols = layout
            .fields
            .iter()
            .enumerate()
            .filter(|(_, f)| **f != Field::Ignore)
            .map(|(i, f)| (*f, i))
            .collect();
        Validator {
            label: label.to_string(),
            layout,
            rules,
            cols,
            seen: FxHashMap::default(),
            seen_text: FxHashMap::default(),
            prefix_buf: String::new(),
            pivot: FxHashMap::default(),
            pending: Vec::new(),
            descriptions: String::new(),
            duplicates_dropped: 0,
        }
    }

    pub fn layout(&self) -> &Layout {
        &self.layout
    }

    /// Checks one record. `Ok(None)` is an exact duplicate of an earlier row (dropped).
    /// Every problem of the row is returned, each naming line and column.
    pub fn check<'a>(
        &'a mut self,
        line: u64,
        fields: &'a [String],
    ) -> Result<Option<DeckRow<'a>>, Vec<Issue>> {
        let mut issues = vec![];
        let label = self.label.as_str();
        let get = |f: Field| -> Option<&'a str> {
            self.cols
                .get(&f)
                .map(|&i| fields.get(i).map(String::as_str).unwrap_or(""))
        };
        let name = |f: Field| -> String {
            self.cols
                .get(&f)
                .and_then(|&i| self.layout.headers.get(i))
                .map(|h| plain(h))
                .unwrap_or_else(|| f.name().to_string())
        };
        let mut issue = |f: Field, m: String| issues.push(Issue::at_line(label, line, name(f), m));

        // key
        let mut prefix: Option<&str> = None;
        let (mut ocn, mut lata) = (None, None);
        if self.rules.ocn_lata {
            let o = get(Field::Ocn).unwrap_or("");
            let l = get(Field::Lata).unwrap_or("");
            if o.is_empty() || !o.bytes().all(|b| b.is_ascii_alphanumeric()) {
                issue(
                    Field::Ocn,
                    format!("{} is not an OCN (letters and digits)", excerpt(o)),
                );
            }
            if l.is_empty() || !l.bytes().all(|b| b.is_ascii_digit()) {
                issue(
                    Field::Lata,
                    format!("{} is not a LATA code (digits)", excerpt(l)),
                );
            }
            ocn = Some(o);
            lata = Some(l);
        } else if let Some(p) = get(Field::Prefix) {
            let p = p.strip_prefix('+').unwrap_or(p);
            match check_prefix(p, false) {
                Ok(()) => prefix = Some(p),
                Err(m) => issue(Field::Prefix, m),
            }
        } else if let Some(n) = get(Field::Npanxx) {
            let digits: String = n.chars().filter(|c| *c != '-' && *c != ' ').collect();
            let b = digits.as_bytes();
            if (b.len() == 6 || b.len() == 7)
                && b.iter().all(u8::is_ascii_digit)
                && b[0] >= b'2'
                && b[3] >= b'2'
            {
                self.prefix_buf.clear();
                self.prefix_buf.push('1');
                self.prefix_buf.push_str(&digits);
                prefix = Some("");
            } else {
                issue(
                    Field::Npanxx,
                    format!(
                        "{} is not an NPA-NXX (6 digits) or NPA-NXX-X (7 digits)",
                        excerpt(n)
                    ),
                );
            }
        }

        // rates
        let rate_of = |f: Field, issue: &mut dyn FnMut(Field, String)| -> Option<u32> {
            let v = get(f).unwrap_or("");
            if v.is_empty() {
                return None;
            }
            match rate_value(v) {
                Ok(r) => Some(r),
                Err(m) => {
                    issue(f, m);
                    None
                }
            }
        };
        let zone = match get(Field::Zone) {
            None => None,
            Some(z) => match zone_mask(z) {
                Some(m) => Some(m),
                None => {
                    let col = name(Field::Zone);
                    issue(
                        Field::Zone,
                        format!(
                            "unknown zone {} (interstate, intrastate, local or flat; if column {} \
                             is not the rate zone, map it: --map \"{}=description\")",
                            excerpt(z),
                            excerpt(&col),
                            plain(&col)
                        ),
                    );
                    None
                }
            },
        };
        let rates = if self.cols.contains_key(&Field::Rate) {
            if get(Field::Rate).unwrap_or("").is_empty() {
                issue(Field::Rate, "empty rate".into());
            }
            let r = rate_of(Field::Rate, &mut issue);
            [r, r, r]
        } else {
            let r = [
                rate_of(Field::Interstate, &mut issue),
                rate_of(Field::Intrastate, &mut issue),
                rate_of(Field::Local, &mut issue),
            ];
            let empty = [Field::Interstate, Field::Intrastate, Field::Local]
                .iter()
                .all(|z| get(*z).unwrap_or("").is_empty());
            if empty {
                issue(Field::Interstate, "no rate in any zone".into());
            }
            r
        };
        let secs = |f: Field, default: u16, min: u16, issue: &mut dyn FnMut(Field, String)| {
            let v = get(f).unwrap_or("");
            if v.is_empty() {
                return default;
            }
            match v.parse::<u16>() {
                Ok(n) if n >= min => n,
                _ => {
                    issue(
                        f,
                        format!(
                            "{} is not a whole number of seconds in {min}..=65535",
                            excerpt(v)
                        ),
                    );
                    default
                }
            }
        };
        let min_seconds = secs(Field::MinSeconds, self.rules.default_min, 0, &mut issue);
        let inc_seconds = secs(Field::IncSeconds, self.rules.default_inc, 1, &mut issue);
        let when = |f: Field, default: i64, issue: &mut dyn FnMut(Field, String)| {
            let v = get(f).unwrap_or("");
            if v.is_empty() {
                return default;
            }
            parse_when(v).unwrap_or_else(|m| {
                issue(f, m);
                default
            })
        };
        let from = when(Field::EffectiveFrom, NEG_INF, &mut issue);
        let until = when(Field::EffectiveUntil, POS_INF, &mut issue);
        if until <= from {
            issue(
                Field::EffectiveUntil,
                "end date is not after the effective date".into(),
            );
        }
        if !issues.is_empty() {
            return Err(issues);
        }

        // duplicates: the same rates again is dropped, different rates is an error
        let mut fp: u64 = 0xcbf2_9ce4_8422_2325;
        for v in rates
            .iter()
            .map(|r| r.map(u64::from).unwrap_or(u64::MAX))
            .chain([u64::from(min_seconds), u64::from(inc_seconds)])
            .chain([from as u64, until as u64])
        {
            fp = (fp ^ v).wrapping_mul(0x0000_0100_0000_01b3);
        }
        if let Some(mask) = zone {
            let (key, what, col) = match (prefix, ocn, lata) {
                (Some(p), _, _) => {
                    let p = if p.is_empty() {
                        self.prefix_buf.as_str()
                    } else {
                        p
                    };
                    (
                        PivotKey::Prefix(pack_digits(p)),
                        format!("prefix {p}"),
                        name(if self.cols.contains_key(&Field::Npanxx) {
                            Field::Npanxx
                        } else {
                            Field::Prefix
                        }),
                    )
                }
                (None, Some(o), Some(l)) => (
                    PivotKey::OcnLata(Box::from(o), Box::from(l)),
                    format!("ocn/lata {o}/{l}"),
                    name(Field::Ocn),
                ),
                _ => {
                    return Err(vec![Issue::at_line(
                        label,
                        line,
                        "",
                        "row has no prefix or ocn/lata",
                    )])
                }
            };
            let description = get(Field::Description).filter(|d| !d.is_empty());
            self.fold(
                line,
                key,
                what,
                col,
                mask,
                rates[0],
                (min_seconds, inc_seconds, from, until),
                description,
            )?;
            return Ok(None);
        }
        let prefix: Option<&str> = match prefix {
            Some("") => Some(self.prefix_buf.as_str()),
            p => p,
        };
        let first = match (prefix, ocn, lata) {
            (Some(p), _, _) => *self.seen.entry(pack_digits(p)).or_insert((line, fp)),
            (None, Some(o), Some(l)) => *self
                .seen_text
                .entry((Box::from(o), Box::from(l)))
                .or_insert((line, fp)),
            _ => {
                return Err(vec![Issue::at_line(
                    label,
                    line,
                    "",
                    "row has no prefix or ocn/lata",
                )])
            }
        };
        if first.0 != line {
            if first.1 == fp {
                self.duplicates_dropped += 1;
                return Ok(None);
            }
            return Err(vec![Issue::at_line(
                label,
                line,
                name(if prefix.is_some() {
                    Field::Prefix
                } else {
                    Field::Ocn
                }),
                format!(
                    "duplicate {} with different rates (first at line {})",
                    match prefix {
                        Some(p) => format!("prefix {p}"),
                        None => format!(
                            "ocn/lata {}/{}",
                            ocn.unwrap_or_default(),
                            lata.unwrap_or_default()
                        ),
                    },
                    first.0
                ),
            )]);
        }
        Ok(Some(DeckRow {
            line,
            prefix,
            ocn,
            lata,
            description: get(Field::Description).filter(|d| !d.is_empty()),
            rates,
            min_seconds,
            inc_seconds,
            from,
            until,
        }))
    }
}

// Folding long-deck rows (see `pivot.rs` for the keys and the packed prefixes).
impl Validator {
    /// Long layout: hands out the pivoted rows (first-line order) and forgets them. Nothing for
    /// a wide deck.
    pub fn finish(&mut self, mut emit: impl FnMut(DeckRow<'_>)) {
        let pending = std::mem::take(&mut self.pending);
        self.pivot = FxHashMap::default();
        let mut prefix = String::new();
        for p in &pending {
            let (pfx, ocn, lata) = match &p.key {
                PivotKey::Prefix(v) => {
                    unpack_digits(*v, &mut prefix);
                    (Some(prefix.as_str()), None, None)
                }
                PivotKey::OcnLata(o, l) => (None, Some(&**o), Some(&**l)),
            };
            let (start, len) = (p.desc.0 as usize, p.desc.1 as usize);
            let description = self
                .descriptions
                .get(start..start + len)
                .filter(|d| !d.is_empty());
            emit(DeckRow {
                line: p.line,
                prefix: pfx,
                ocn,
                lata,
                description,
                rates: p.rates,
                min_seconds: p.min_seconds,
                inc_seconds: p.inc_seconds,
                from: p.from,
                until: p.until,
            });
        }
        self.descriptions = String::new();
    }

    /// Folds one validated zone row into its prefix's pending row. Errors: the zone given again
    /// with another rate (the duplicate error), other billing terms or dates than the prefix's
    /// earlier rows (one deck row holds one set).
    #[allow(clippy::too_many_arguments)] // the parts of one validated row
    pub(super) fn fold(
        &mut self,
        line: u64,
        key: PivotKey,
        what: String,
        key_col: String,
        mask: [bool; 3],
        rate: Option<u32>,
        terms: (u16, u16, i64, i64),
        description: Option<&str>,
    ) -> Result<(), Vec<Issue>> {
        let label = self.label.as_str();
        if let Some(&i) = self.pivot.get(&key) {
            let p = &mut self.pending[i as usize];
            if (p.min_seconds, p.inc_seconds, p.from, p.until) != terms {
                return Err(vec![Issue::at_line(
                    label,
                    line,
                    key_col,
                    format!(
                        "{what}: billing terms or dates differ from its row at line {} (a prefix has one set for all zones)",
                        p.line
                    ),
                )]);
            }
            let mut new = false;
            for z in (0..3).filter(|z| mask[*z]) {
                match p.rates[z] {
                    Some(old) if old != rate.unwrap_or(u32::MAX) => {
                        return Err(vec![Issue::at_line(
                            label,
                            line,
                            key_col,
                            format!(
                                "duplicate {what} with different rates (first at line {})",
                                p.zone_lines[z]
                            ),
                        )]);
                    }
                    Some(_) => {}
                    None => new = true,
                }
            }
            if !new {
                self.duplicates_dropped += 1;
                return Ok(());
            }
            for z in (0..3).filter(|z| mask[*z]) {
                if p.rates[z].is_none() {
                    p.rates[z] = rate;
                    p.zone_lines[z] = line;
                }
            }
            return Ok(());
        }
        let d = description.unwrap_or("");
        let desc = match u32::try_from(self.descriptions.len()) {
            Ok(start) if d.len() < u32::MAX as usize - start as usize => {
                self.descriptions.push_str(d);
                (start, d.len() as u32)
            }
            _ => (0, 0),
        };
        let Ok(idx) = u32::try_from(self.pending.len()) else {
            return Err(vec![Issue::at_line(
                label,
                line,
                key_col,
                "more than 4 billion prefixes",
            )]);
        };
        self.pending.push(Pending {
            key: key.clone(),
            line,
            rates: [0, 1, 2].map(|z| if mask[z] { rate } else { None }),
            zone_lines: [line; 3],
            min_seconds: terms.0,
            inc_seconds: terms.1,
            from: terms.2,
            until: terms.3,
            desc,
        });
        self.pivot.insert(key, idx);
        Ok(())
    }
}
