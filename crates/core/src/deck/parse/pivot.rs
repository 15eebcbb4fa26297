//! The long-deck pivot: a deck with a zone column (one row per prefix and zone) is folded into
//! one pending row per prefix (or OCN/LATA) while it is read, and handed out by
//! [`Validator::finish`] in first-line order.
//!
//! Owns: the pivot key and pending rows, the per-prefix consistency of zone rows (one rate per
//! zone, one set of billing terms and dates).
//! Must not touch: the validation of one row's values (see `validate`).

use rustc_hash::FxHashMap;

use super::row::DeckRow;
use super::validate::Validator;
use crate::provision::Issue;

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
    key: PivotKey,
    /// first line of the prefix
    line: u64,
    rates: [Option<u32>; 3],
    /// the line each zone's rate came from
    zone_lines: [u64; 3],
    min_seconds: u16,
    inc_seconds: u16,
    from: i64,
    until: i64,
    /// description: (start, len) in the validator's arena
    desc: (u32, u32),
}

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
