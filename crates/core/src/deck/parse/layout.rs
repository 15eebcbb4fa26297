//! Deck columns: what a column can mean ([`Field`] and its common header spellings), a vendor's
//! saved [`Mapping`], and [`detect_layout`], which maps a header row to fields and says what is
//! missing or ambiguous.
//!
//! Owns: header normalization, auto-detection, the wide/long (zone column) layout decision.
//! Must not touch: the rows (see `validate`), the file format (see `source`).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::excerpt::{excerpt, list, plain};
use crate::provision::Issue;

/// What a deck column means.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Field {
    Prefix,
    /// NANP NPA-NXX(-X) block, stored as prefix `1NPANXX`
    Npanxx,
    Ocn,
    Lata,
    Description,
    Interstate,
    Intrastate,
    Local,
    /// one rate for every zone
    Rate,
    MinSeconds,
    IncSeconds,
    EffectiveFrom,
    EffectiveUntil,
    /// rate zone of a "long" deck (one row per prefix and zone): interstate, intrastate, local,
    /// or flat (every zone); such rows are pivoted into one row per prefix
    Zone,
    /// column read and dropped
    Ignore,
}

impl Field {
    pub const ALL: [Field; 15] = [
        Field::Prefix,
        Field::Npanxx,
        Field::Ocn,
        Field::Lata,
        Field::Description,
        Field::Interstate,
        Field::Intrastate,
        Field::Local,
        Field::Rate,
        Field::MinSeconds,
        Field::IncSeconds,
        Field::EffectiveFrom,
        Field::EffectiveUntil,
        Field::Zone,
        Field::Ignore,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Field::Prefix => "prefix",
            Field::Npanxx => "npanxx",
            Field::Ocn => "ocn",
            Field::Lata => "lata",
            Field::Description => "description",
            Field::Interstate => "interstate",
            Field::Intrastate => "intrastate",
            Field::Local => "local",
            Field::Rate => "rate",
            Field::MinSeconds => "min_seconds",
            Field::IncSeconds => "inc_seconds",
            Field::EffectiveFrom => "effective_from",
            Field::EffectiveUntil => "effective_until",
            Field::Zone => "zone",
            Field::Ignore => "ignore",
        }
    }

    pub fn from_name(s: &str) -> Option<Field> {
        Field::ALL.into_iter().find(|f| f.name() == s)
    }

    /// Common header spellings (normalized: lower-case letters and digits only).
    fn aliases(self) -> &'static [&'static str] {
        match self {
            Field::Prefix => &[
                "prefix",
                "code",
                "dialcode",
                "dialcodes",
                "dialingcode",
                "destcode",
                "destinationcode",
                "digits",
            ],
            Field::Npanxx => &["npanxx", "npanxxx", "npaxxx"],
            Field::Ocn => &["ocn"],
            Field::Lata => &["lata"],
            Field::Description => &["description", "destination", "desc", "dest", "name"],
            Field::Interstate => &["interstate", "inter", "interrate", "interstaterate"],
            Field::Intrastate => &["intrastate", "intra", "intrarate", "intrastaterate"],
            Field::Local => &["local", "localrate"],
            Field::Rate => &["rate", "price", "cost", "ratepermin", "rateperminute"],
            Field::MinSeconds => &[
                "min",
                "minimum",
                "initial",
                "mindur",
                "minduration",
                "initialincrement",
                "mins",
                "minseconds",
            ],
            Field::IncSeconds => &[
                "increment",
                "interval",
                "inc",
                "billingincrement",
                "incseconds",
            ],
            Field::EffectiveFrom => &[
                "effectivedate",
                "effective",
                "effectivefrom",
                "startdate",
                "effdate",
            ],
            Field::EffectiveUntil => &[
                "enddate",
                "end",
                "expires",
                "expirydate",
                "expirationdate",
                "effectiveuntil",
            ],
            Field::Zone => &[
                "zone",
                "ratezone",
                "zonetype",
                "jurisdiction",
                "jurisdictiontype",
                "juris",
                "jur",
            ],
            Field::Ignore => &[],
        }
    }
}

/// Header normalization for matching: lower-case ASCII letters and digits only.
pub fn normalize_header(h: &str) -> String {
    h.chars()
        .filter(char::is_ascii_alphanumeric)
        .map(|c| c.to_ascii_lowercase())
        .collect()
}

/// A vendor's saved column mapping: normalized header → field. Overrides auto-detection.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Mapping(pub BTreeMap<String, Field>);

impl Mapping {
    /// Parses `Header=field,Other Header=field` (the CLI's `--map`).
    pub fn parse(s: &str) -> Result<Mapping, String> {
        let mut m = BTreeMap::new();
        for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (h, f) = part
                .split_once('=')
                .ok_or_else(|| format!("{}: expected HEADER=FIELD", excerpt(part)))?;
            let field = Field::from_name(f.trim()).ok_or_else(|| {
                let names: Vec<&str> = Field::ALL.iter().map(|f| f.name()).collect();
                format!(
                    "{} is not a field (one of {})",
                    excerpt(f),
                    names.join(", ")
                )
            })?;
            let key = normalize_header(h);
            if key.is_empty() {
                return Err(format!("{}: empty header name", excerpt(part)));
            }
            m.insert(key, field);
        }
        Ok(Mapping(m))
    }

    /// Entries of `other` win.
    pub fn merged(&self, other: &Mapping) -> Mapping {
        let mut m = self.0.clone();
        m.extend(other.0.iter().map(|(k, v)| (k.clone(), *v)));
        Mapping(m)
    }
}

/// Which columns hold which field.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Layout {
    /// the header as written in the file (BOM and surrounding spaces removed)
    pub headers: Vec<String>,
    pub fields: Vec<Field>,
    /// headers that matched nothing (ignored, reported as a warning)
    pub unrecognized: Vec<String>,
}

impl Layout {
    fn col(&self, f: Field) -> Option<usize> {
        self.fields.iter().position(|x| *x == f)
    }
    fn has(&self, f: Field) -> bool {
        self.col(f).is_some()
    }
}

/// Maps a header to fields: the saved/explicit mapping first, then the common names. Errors name
/// the problem and list what was found.
pub fn detect_layout(
    label: &str,
    headers: &[String],
    mapping: &Mapping,
    ocn_lata: bool,
) -> Result<Layout, Vec<Issue>> {
    let mut fields = Vec::with_capacity(headers.len());
    let mut unrecognized = vec![];
    let mut issues = vec![];
    for h in headers {
        let n = normalize_header(h);
        let f = mapping.0.get(&n).copied().or_else(|| {
            Field::ALL
                .into_iter()
                .find(|f| f.aliases().contains(&n.as_str()))
        });
        match f {
            Some(f) => {
                if f != Field::Ignore && fields.contains(&f) {
                    issues.push(Issue::at_line(
                        label,
                        1,
                        plain(h),
                        format!("a second column is read as {}", f.name()),
                    ));
                }
                fields.push(f);
            }
            None => {
                unrecognized.push(h.clone());
                fields.push(Field::Ignore);
            }
        }
    }
    // a deck with interstate/intrastate/local columns is wide: a column merely *named* like a
    // zone column (not mapped to it) is some other information, ignored
    let wide = [Field::Interstate, Field::Intrastate, Field::Local]
        .iter()
        .any(|z| fields.contains(z));
    if wide {
        for (h, f) in headers.iter().zip(fields.iter_mut()) {
            if *f == Field::Zone && mapping.0.get(&normalize_header(h)) != Some(&Field::Zone) {
                *f = Field::Ignore;
                unrecognized.push(h.clone());
            }
        }
    }
    let l = Layout {
        headers: headers.to_vec(),
        fields,
        unrecognized,
    };
    let found = || {
        let mut s = format!("found columns: {}", list(headers));
        if !l.unrecognized.is_empty() {
            s.push_str(&format!(
                "; not recognized: {} (map them with --map \"Header=field\")",
                list(&l.unrecognized)
            ));
        }
        s
    };
    let by_prefix = l.has(Field::Prefix) || l.has(Field::Npanxx);
    if l.has(Field::Prefix) && l.has(Field::Npanxx) {
        issues.push(Issue::at_line(
            label,
            1,
            "header",
            "both a prefix and an npanxx column",
        ));
    }
    if ocn_lata {
        if !(l.has(Field::Ocn) && l.has(Field::Lata)) {
            issues.push(Issue::at_line(
                label,
                1,
                "header",
                format!(
                    "the route's vendor bills by OCN/LATA: the deck needs ocn and lata columns; {}",
                    found()
                ),
            ));
        }
    } else if !by_prefix {
        issues.push(Issue::at_line(
            label,
            1,
            "header",
            format!(
                "no prefix column (expected one of prefix, code, dial code, npanxx); {}",
                found()
            ),
        ));
    }
    let zones = [Field::Interstate, Field::Intrastate, Field::Local]
        .iter()
        .any(|z| l.has(*z));
    if l.has(Field::Zone) && (zones || !l.has(Field::Rate)) {
        issues.push(Issue::at_line(
            label,
            1,
            "header",
            format!(
                "a zone column (one row per prefix and zone) needs one rate column (rate, price, cost) \
                 and no interstate/intrastate/local columns; {}",
                found()
            ),
        ));
    } else if l.has(Field::Rate) == zones {
        issues.push(Issue::at_line(
            label,
            1,
            "header",
            format!(
                "the deck needs either one rate column (rate, price, cost) or interstate/intrastate/local columns; {}",
                found()
            ),
        ));
    }
    if issues.is_empty() {
        Ok(l)
    } else {
        Err(issues)
    }
}
