//! `[[stir]]` written inside the apply transaction (issue 20): a `stir_policies` row upserted per
//! entry (written only when it changed: statement triggers bump the data version even for zero
//! rows), a customer's `stir_tn_ranges` replaced when the entry gives them. What needs the
//! database is checked here and reported as [`Issue`]s naming the field: an unknown customer or
//! trunk, a trunk of another customer, a range overlapping another customer's. Any issue fails
//! the apply and the caller's transaction rolls back.

use tokio_postgres::Transaction;

use super::super::ProvisionError;
use crate::provision::Issue;
use warpd_core::provision::stir::StirDesired;

fn dberr(what: &str) -> impl Fn(tokio_postgres::Error) -> ProvisionError + '_ {
    move |e| ProvisionError::db(what.to_string(), e)
}

/// What the STIR part of an apply wrote.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct StirApplied {
    pub policies: u64,
    /// customers whose ranges were replaced
    pub ranges: u64,
}

/// Writes the file's `[[stir]]` entries; `Err(Invalid)` with every problem found.
pub(crate) async fn apply_stir(
    tx: &Transaction<'_>,
    entries: &[StirDesired],
    source: &str,
) -> Result<StirApplied, ProvisionError> {
    let mut issues = Vec::new();
    let mut out = StirApplied::default();
    for e in entries {
        let Some(cid) = tx
            .query_opt("SELECT id FROM customers WHERE ban = $1", &[&e.customer])
            .await
            .map_err(dberr("reading customers"))?
            .map(|r| r.get::<_, i64>(0))
        else {
            issues.push(Issue::new(
                source,
                format!("{}.customer", e.at),
                format!("unknown customer {:?}", e.customer),
            ));
            continue;
        };
        let tid = match &e.trunk {
            None => None,
            Some(t) => {
                let row = tx
                    .query_opt("SELECT id, customer_id FROM trunks WHERE name = $1", &[t])
                    .await
                    .map_err(dberr("reading trunks"))?;
                match row {
                    Some(r) if r.get::<_, i64>(1) == cid => Some(r.get::<_, i64>(0)),
                    Some(_) => {
                        issues.push(Issue::new(
                            source,
                            format!("{}.trunk", e.at),
                            format!("trunk {t:?} is not customer {:?}'s", e.customer),
                        ));
                        continue;
                    }
                    None => {
                        issues.push(Issue::new(
                            source,
                            format!("{}.trunk", e.at),
                            format!("unknown trunk {t:?}"),
                        ));
                        continue;
                    }
                }
            }
        };
        let cap = e.max_attest.as_str();
        let code = e.verify_reject_code.map(|c| c as i16);
        let cur = tx
            .query_opt(
                "SELECT max_attest, transit, verify_reject_code FROM stir_policies \
                 WHERE customer_id = $1 AND trunk_id IS NOT DISTINCT FROM $2",
                &[&cid, &tid],
            )
            .await
            .map_err(dberr("reading stir_policies"))?;
        let same = cur.is_some_and(|r| {
            (
                r.get::<_, String>(0),
                r.get::<_, bool>(1),
                r.get::<_, Option<i16>>(2),
            ) == (cap.to_string(), e.transit, code)
        });
        if !same {
            tx.execute(
                "INSERT INTO stir_policies (customer_id, trunk_id, max_attest, transit, verify_reject_code) \
                 VALUES ($1, $2, $3, $4, $5) \
                 ON CONFLICT ON CONSTRAINT stir_policies_scope DO UPDATE SET \
                   max_attest = EXCLUDED.max_attest, transit = EXCLUDED.transit, \
                   verify_reject_code = EXCLUDED.verify_reject_code, updated_at = now()",
                &[&cid, &tid, &cap, &e.transit, &code],
            )
            .await
            .map_err(dberr("writing stir_policies"))?;
            out.policies += 1;
        }
        let Some(ranges) = &e.tn_ranges else {
            continue;
        };
        let mut have: Vec<(String, String)> = tx
            .query(
                "SELECT first_tn, last_tn FROM stir_tn_ranges WHERE customer_id = $1",
                &[&cid],
            )
            .await
            .map_err(dberr("reading stir_tn_ranges"))?
            .iter()
            .map(|r| (r.get(0), r.get(1)))
            .collect();
        let mut want = ranges.clone();
        have.sort();
        want.sort();
        if have == want {
            continue;
        }
        let mut clash = false;
        for (j, (a, b)) in ranges.iter().enumerate() {
            let other = tx
                .query_opt(
                    "SELECT c.ban, r.first_tn, r.last_tn FROM stir_tn_ranges r \
                     JOIN customers c ON c.id = r.customer_id \
                     WHERE r.customer_id <> $1 AND length(r.first_tn) = length($2::text) \
                       AND r.first_tn <= $3::text AND $2::text <= r.last_tn LIMIT 1",
                    &[&cid, a, b],
                )
                .await
                .map_err(dberr("reading stir_tn_ranges"))?;
            if let Some(o) = other {
                clash = true;
                issues.push(Issue::new(
                    source,
                    format!("{}.tn_ranges[{j}]", e.at),
                    format!(
                        "{a}-{b} overlaps {}-{} of customer {:?}: a number belongs to one customer",
                        o.get::<_, String>(1),
                        o.get::<_, String>(2),
                        o.get::<_, String>(0)
                    ),
                ));
            }
        }
        if clash {
            continue;
        }
        tx.execute("DELETE FROM stir_tn_ranges WHERE customer_id = $1", &[&cid])
            .await
            .map_err(dberr("replacing stir_tn_ranges"))?;
        for (a, b) in ranges {
            tx.execute(
                "INSERT INTO stir_tn_ranges (customer_id, first_tn, last_tn) VALUES ($1, $2, $3)",
                &[&cid, a, b],
            )
            .await
            .map_err(dberr("writing stir_tn_ranges"))?;
        }
        out.ranges += 1;
    }
    if issues.is_empty() {
        Ok(out)
    } else {
        Err(ProvisionError::Invalid {
            file: source.to_string(),
            issues,
        })
    }
}
