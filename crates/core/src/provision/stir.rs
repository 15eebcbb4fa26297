//! `[[stir]]` of a provisioning file (issue 20): a customer's (or one of its trunks')
//! STIR/SHAKEN settings, validated with the shared rules (`crate::rules::stir`) into
//! [`StirDesired`], every problem an [`Issue`] naming its field path. Checks within the file:
//! one entry per customer or trunk, trunk entries carry only `max_attest`, no two TN ranges
//! overlap. What needs the database (an unknown customer or trunk, a trunk of another customer,
//! a range overlapping another customer's) is checked by the daemon in the apply transaction.
//!
//! Upsert semantics: the settings of an entry replace the stored ones; `tn_ranges` replaces the
//! customer's ranges when given and leaves them alone when omitted.

use std::collections::HashMap;

use super::spec::StirSpec;
use super::Issue;
use crate::routing::stir::AttestCap;
use crate::rules::stir::{max_attest, ranges_overlap, reject_code, tn_range};

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StirDesired {
    /// the field path of the entry (`stir[0]`)
    pub at: String,
    pub customer: String,
    pub trunk: Option<String>,
    pub max_attest: AttestCap,
    pub transit: bool,
    pub verify_reject_code: Option<u16>,
    /// (first, last) E.164 bounds; None: left as they are
    pub tn_ranges: Option<Vec<(String, String)>>,
}

/// Validates the file's `[[stir]]` entries; every problem goes to `issues`.
pub fn build(specs: &[StirSpec], source: &str, issues: &mut Vec<Issue>) -> Vec<StirDesired> {
    let mut out = Vec::new();
    let mut scopes: HashMap<(String, Option<String>), usize> = HashMap::new();
    let mut ranges: Vec<((String, String), String)> = Vec::new();
    let mut issue = |field: String, msg: String| issues.push(Issue::new(source, field, msg));
    for (i, s) in specs.iter().enumerate() {
        let at = format!("stir[{i}]");
        let mut ok = true;
        if s.customer.0.is_empty() {
            issue(format!("{at}.customer"), "must not be empty".into());
            ok = false;
        }
        if let Some(j) = scopes.insert((s.customer.0.clone(), s.trunk.clone()), i) {
            issue(
                format!("{at}.customer"),
                format!("the same customer/trunk is also stir[{j}]"),
            );
            ok = false;
        }
        if s.trunk.is_some() {
            for (given, field) in [
                (s.transit.is_some(), "transit"),
                (s.verify_reject_code.is_some(), "verify_reject_code"),
                (s.tn_ranges.is_some(), "tn_ranges"),
            ] {
                if given {
                    issue(
                        format!("{at}.{field}"),
                        "a customer setting: give it in the customer's entry (without trunk)"
                            .into(),
                    );
                    ok = false;
                }
            }
        }
        let cap = match max_attest(&format!("{at}.max_attest"), s.max_attest.as_deref()) {
            Ok(c) => Some(c),
            Err(e) => {
                issue(e.field().to_string(), e.problem());
                None
            }
        };
        let code = match reject_code(&format!("{at}.verify_reject_code"), s.verify_reject_code) {
            Ok(c) => Some(c),
            Err(e) => {
                issue(e.field().to_string(), e.problem());
                None
            }
        };
        let tn_ranges = s.tn_ranges.as_ref().map(|list| {
            let mut v = Vec::new();
            for (j, r) in list.iter().enumerate() {
                let field = format!("{at}.tn_ranges[{j}]");
                match tn_range(&field, r) {
                    Ok(b) => {
                        if let Some((_, f)) = ranges.iter().find(|(o, _)| ranges_overlap(o, &b)) {
                            issue(
                                field.clone(),
                                format!(
                                    "{}-{} overlaps {f}: a number belongs to one customer",
                                    b.0, b.1
                                ),
                            );
                            ok = false;
                        }
                        ranges.push((b.clone(), field));
                        v.push(b);
                    }
                    Err(e) => {
                        issue(e.field().to_string(), e.problem());
                        ok = false;
                    }
                }
            }
            v
        });
        if let (true, Some(cap), Some(code)) = (ok, cap, code) {
            out.push(StirDesired {
                at,
                customer: s.customer.0.clone(),
                trunk: s.trunk.clone(),
                max_attest: cap,
                transit: s.transit.unwrap_or(false),
                verify_reject_code: code,
                tn_ranges,
            });
        }
    }
    out
}
