//! `[[trunks]]` and `[[numbers]]` written inside the apply transaction (issue 19): upserts by
//! name / number, a trunk's lists replaced when the file gives them. Everything that needs the
//! database is checked here and reported as [`Issue`]s naming the field (an unknown customer or
//! trunk, a network overlapping another trunk's, credentials of another trunk, a number of another
//! customer without `move_from`); any issue fails the apply and the caller's transaction rolls
//! back: nothing is applied. A password is hashed by PostgreSQL (`md5(user:realm:password)`) in
//! the INSERT and never stored, logged or returned.

use tokio_postgres::Transaction;

use super::super::ProvisionError;
use crate::provision::Issue;
use warpd_core::provision::trunks::{DesiredInbound, Secret};

/// What the inbound part of an apply wrote.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct InboundApplied {
    pub trunks: u64,
    pub numbers: u64,
    pub moved: u64,
    /// vendors whose origination sources were replaced
    pub origination: u64,
}

fn dberr(what: &str) -> impl Fn(tokio_postgres::Error) -> ProvisionError + '_ {
    move |e| ProvisionError::db(what.to_string(), e)
}

async fn customer_id(tx: &Transaction<'_>, ban: &str) -> Result<Option<i64>, ProvisionError> {
    Ok(tx
        .query_opt("SELECT id FROM customers WHERE ban = $1", &[&ban])
        .await
        .map_err(dberr("reading customers"))?
        .map(|r| r.get(0)))
}

const SOURCES: &str = "SELECT cidr::text FROM trunk_sources WHERE trunk_id = $1";
const CREDENTIALS: &str =
    "SELECT username || '@' || realm || '=' || ha1 FROM trunk_credentials WHERE trunk_id = $1";
const DESTINATIONS: &str = "SELECT coalesce(uri, '') || '|' || coalesce(host, '') || '|' || port || '|' || \
     transport::text || '|' || priority || '|' || weight || '|' || enabled FROM trunk_destinations WHERE trunk_id = $1";

/// Whether a trunk's list (rows of `sql`, one text each) already equals `want` (as a multiset).
async fn same(
    tx: &Transaction<'_>,
    sql: &str,
    trunk: i64,
    mut want: Vec<String>,
) -> Result<bool, ProvisionError> {
    let mut have: Vec<String> = tx
        .query(sql, &[&trunk])
        .await
        .map_err(dberr("reading a trunk's lists"))?
        .iter()
        .map(|r| r.get(0))
        .collect();
    have.sort();
    want.sort();
    Ok(have == want)
}

/// Writes the file's trunks and numbers; `Err(Invalid)` with every problem found.
pub(crate) async fn apply_inbound(
    tx: &Transaction<'_>,
    d: &DesiredInbound,
    source: &str,
) -> Result<InboundApplied, ProvisionError> {
    let mut issues: Vec<Issue> = Vec::new();
    let mut out = InboundApplied::default();
    for t in &d.trunks {
        let Some(cid) = customer_id(tx, &t.customer).await? else {
            issues.push(Issue::new(
                source,
                format!("{}.customer", t.at),
                format!("unknown customer {:?}", t.customer),
            ));
            continue;
        };
        // statement triggers bump the data version even for zero rows: write only a change
        let cur = tx
            .query_opt(
                "SELECT id, customer_id, enabled, max_concurrent_calls, max_cps FROM trunks WHERE name = $1",
                &[&t.name],
            )
            .await
            .map_err(dberr("reading trunks"))?;
        let row = match cur {
            Some(r)
                if (r.get::<_, i64>(1), r.get::<_, bool>(2), r.get::<_, Option<i32>>(3), r.get::<_, Option<i32>>(4))
                    == (cid, t.enabled, t.max_calls, t.max_cps) =>
            {
                Ok(r.get::<_, i64>(0))
            }
            Some(r) => tx
                .execute(
                    "UPDATE trunks SET customer_id = $2, enabled = $3, max_concurrent_calls = $4, \
                     max_cps = $5, updated_at = now() WHERE id = $1",
                    &[&r.get::<_, i64>(0), &cid, &t.enabled, &t.max_calls, &t.max_cps],
                )
                .await
                .map(|_| {
                    out.trunks += 1;
                    r.get::<_, i64>(0)
                }),
            None => tx
                .query_one(
                    "INSERT INTO trunks (name, customer_id, enabled, max_concurrent_calls, max_cps) \
                     VALUES ($1, $2, $3, $4, $5) RETURNING id",
                    &[&t.name, &cid, &t.enabled, &t.max_calls, &t.max_cps],
                )
                .await
                .map(|r| {
                    out.trunks += 1;
                    r.get::<_, i64>(0)
                }),
        };
        let tid: i64 = match row {
            Ok(id) => id,
            Err(e) if e.code().is_some() => {
                // a trunk moved to another customer while it has numbers (the numbers' key)
                issues.push(Issue::new(
                    source,
                    format!("{}.customer", t.at),
                    format!(
                        "trunk {:?} cannot change customer while numbers use it: {}",
                        t.name,
                        e.as_db_error().map(|d| d.message()).unwrap_or("refused")
                    ),
                ));
                continue;
            }
            Err(e) => return Err(ProvisionError::db("writing trunks", e)),
        };
        if let Some(nets) = &t.sources {
            let want: Vec<String> = nets.iter().map(|n| n.to_string()).collect();
            if !same(tx, SOURCES, tid, want.clone()).await? {
                tx.execute("DELETE FROM trunk_sources WHERE trunk_id = $1", &[&tid])
                    .await
                    .map_err(dberr("writing trunk_sources"))?;
                for (j, cidr) in want.iter().enumerate() {
                    let other = tx
                        .query_opt(
                            "SELECT t.name, s.cidr::text FROM trunk_sources s JOIN trunks t ON t.id = s.trunk_id \
                             WHERE s.cidr && $1::text::cidr AND s.trunk_id <> $2 LIMIT 1",
                            &[cidr, &tid],
                        )
                        .await
                        .map_err(dberr("reading trunk_sources"))?;
                    if let Some(r) = other {
                        let (name, other_net): (String, String) = (r.get(0), r.get(1));
                        issues.push(Issue::new(
                            source,
                            format!("{}.source_ips[{j}]", t.at),
                            format!("{cidr} overlaps {other_net} of trunk {name:?}: a network belongs to one trunk"),
                        ));
                        continue;
                    }
                    tx.execute(
                        "INSERT INTO trunk_sources (trunk_id, cidr) VALUES ($1, $2::text::cidr) ON CONFLICT DO NOTHING",
                        &[&tid, cidr],
                    )
                    .await
                    .map_err(dberr("writing trunk_sources"))?;
                }
            }
        }
        if let Some(creds) = &t.credentials {
            let mut want = Vec::with_capacity(creds.len());
            for c in creds {
                let ha1 = match &c.secret {
                    Secret::Ha1(h) => h.clone(),
                    Secret::Password(p) => tx
                        .query_one(
                            "SELECT md5($1 || ':' || $2 || ':' || $3)",
                            &[&c.username, &c.realm, p],
                        )
                        .await
                        .map_err(dberr("computing an HA1"))?
                        .get(0),
                };
                want.push((c, ha1));
            }
            let keys: Vec<String> = want
                .iter()
                .map(|(c, h)| format!("{}@{}={h}", c.username, c.realm))
                .collect();
            if !same(tx, CREDENTIALS, tid, keys).await? {
                tx.execute("DELETE FROM trunk_credentials WHERE trunk_id = $1", &[&tid])
                    .await
                    .map_err(dberr("writing trunk_credentials"))?;
                for (j, (c, ha1)) in want.iter().enumerate() {
                    let other = tx
                        .query_opt(
                            "SELECT t.name FROM trunk_credentials c JOIN trunks t ON t.id = c.trunk_id \
                             WHERE c.username = $1 AND c.realm = $2 AND c.trunk_id <> $3",
                            &[&c.username, &c.realm, &tid],
                        )
                        .await
                        .map_err(dberr("reading trunk_credentials"))?;
                    if let Some(r) = other {
                        let name: String = r.get(0);
                        issues.push(Issue::new(
                            source,
                            format!("{}.credentials[{j}].username", t.at),
                            format!(
                                "credentials {:?}@{:?} belong to trunk {name:?}",
                                c.username, c.realm
                            ),
                        ));
                        continue;
                    }
                    tx.execute(
                        "INSERT INTO trunk_credentials (trunk_id, username, realm, ha1) VALUES ($1, $2, $3, $4)",
                        &[&tid, &c.username, &c.realm, ha1],
                    )
                    .await
                    .map_err(dberr("writing trunk_credentials"))?;
                }
            }
        }
        if let Some(dests) = &t.destinations {
            let keys: Vec<String> = dests
                .iter()
                .map(|x| {
                    format!(
                        "{}|{}|{}|{}|{}|{}|{}",
                        x.uri.as_deref().unwrap_or(""),
                        x.host.as_deref().unwrap_or(""),
                        x.port,
                        x.transport.as_str(),
                        x.priority,
                        x.weight,
                        x.enabled
                    )
                })
                .collect();
            if !same(tx, DESTINATIONS, tid, keys).await? {
                tx.execute(
                    "DELETE FROM trunk_destinations WHERE trunk_id = $1",
                    &[&tid],
                )
                .await
                .map_err(dberr("writing trunk_destinations"))?;
                for x in dests {
                    tx.execute(
                        "INSERT INTO trunk_destinations (trunk_id, uri, host, port, transport, priority, weight, enabled) \
                         VALUES ($1, $2, $3, $4, $5::text::sip_transport, $6, $7, $8)",
                        &[&tid, &x.uri, &x.host, &x.port, &x.transport.as_str(), &x.priority, &x.weight, &x.enabled],
                    )
                    .await
                    .map_err(dberr("writing trunk_destinations"))?;
                }
            }
        }
    }
    for n in &d.numbers {
        let Some(cid) = customer_id(tx, &n.customer).await? else {
            issues.push(Issue::new(
                source,
                format!("{}.customer", n.at),
                format!("unknown customer {:?}", n.customer),
            ));
            continue;
        };
        let tid: Option<i64> = match &n.trunk {
            None => None,
            Some(name) => {
                let r = tx
                    .query_opt(
                        "SELECT id, customer_id FROM trunks WHERE name = $1",
                        &[name],
                    )
                    .await
                    .map_err(dberr("reading trunks"))?;
                match r {
                    None => {
                        issues.push(Issue::new(
                            source,
                            format!("{}.trunk", n.at),
                            format!("unknown trunk {name:?}"),
                        ));
                        continue;
                    }
                    Some(r) if r.get::<_, i64>(1) != cid => {
                        issues.push(Issue::new(
                            source,
                            format!("{}.trunk", n.at),
                            format!(
                                "trunk {name:?} belongs to another customer than {:?}",
                                n.customer
                            ),
                        ));
                        continue;
                    }
                    Some(r) => Some(r.get(0)),
                }
            }
        };
        let cur = tx
            .query_opt(
                "SELECT c.ban, n.trunk_id, n.status::text, n.voice, n.fax, n.destination, \
                   round(n.inbound_rate * 10000000)::bigint, round(n.monthly_fee * 10000000)::bigint, n.cnam \
                 FROM numbers n JOIN customers c ON c.id = n.customer_id WHERE n.number = $1",
                &[&n.number],
            )
            .await
            .map_err(dberr("reading numbers"))?;
        let owner: Option<String> = cur.as_ref().map(|r| r.get(0));
        let unchanged = cur.as_ref().is_some_and(|r| {
            owner.as_deref() == Some(n.customer.as_str())
                && r.get::<_, Option<i64>>(1) == tid
                && r.get::<_, String>(2) == n.status.as_str()
                && r.get::<_, bool>(3) == n.voice
                && r.get::<_, bool>(4) == n.fax
                && r.get::<_, Option<String>>(5) == n.destination
                && r.get::<_, i64>(6) == n.inbound_rate
                && r.get::<_, Option<i64>>(7) == n.monthly_fee
                && r.get::<_, Option<String>>(8) == n.cnam
        });
        if unchanged {
            continue;
        }
        match (&owner, &n.move_from) {
            (Some(o), _) if *o == n.customer => {}
            (Some(o), Some(from)) if o == from => out.moved += 1,
            (Some(o), _) => {
                issues.push(Issue::new(
                    source,
                    format!("{}.customer", n.at),
                    format!(
                        "{} belongs to customer {o:?}: moving a number is explicit (move_from = {o:?})",
                        crate::numbering::mask(&n.number)
                    ),
                ));
                continue;
            }
            (None, _) => {}
        }
        let rate = n.inbound_rate;
        let written = tx.execute(
            "INSERT INTO numbers (number, customer_id, trunk_id, status, voice, fax, destination, \
               inbound_rate, monthly_fee, cnam) \
             VALUES ($1, $2, $3, $4::text::number_status, $5, $6, $7, $8::bigint / 10000000.0, \
               $9::bigint / 10000000.0, $10) \
             ON CONFLICT (number) DO UPDATE SET customer_id = $2, trunk_id = $3, \
               status = $4::text::number_status, voice = $5, fax = $6, destination = $7, \
               inbound_rate = $8::bigint / 10000000.0, monthly_fee = $9::bigint / 10000000.0, \
               cnam = $10, updated_at = now() \
             WHERE (numbers.customer_id, numbers.trunk_id, numbers.status, numbers.voice, numbers.fax, \
               numbers.destination, numbers.inbound_rate, numbers.monthly_fee, numbers.cnam) IS DISTINCT FROM \
               ($2, $3, $4::text::number_status, $5, $6, $7, $8::bigint / 10000000.0, \
               $9::bigint / 10000000.0, $10)",
            &[
                &n.number,
                &cid,
                &tid,
                &n.status.as_str(),
                &n.voice,
                &n.fax,
                &n.destination,
                &rate,
                &n.monthly_fee,
                &n.cnam,
            ],
        )
        .await
        .map_err(dberr("writing numbers"))?;
        out.numbers += written;
    }
    for o in &d.origination {
        let vid: Option<i64> = tx
            .query_opt("SELECT id FROM vendors WHERE name = $1", &[&o.vendor])
            .await
            .map_err(dberr("reading vendors"))?
            .map(|r| r.get(0));
        let Some(vid) = vid else {
            issues.push(Issue::new(
                source,
                format!("{}.vendor", o.at),
                format!("unknown vendor {:?}", o.vendor),
            ));
            continue;
        };
        let want: Vec<String> = o.nets.iter().map(|n| n.to_string()).collect();
        if same(tx, ORIGINATION, vid, want.clone()).await? {
            continue;
        }
        tx.execute(
            "DELETE FROM origination_sources WHERE vendor_id = $1",
            &[&vid],
        )
        .await
        .map_err(dberr("writing origination_sources"))?;
        for (j, cidr) in want.iter().enumerate() {
            let other = tx
                .query_opt(
                    "SELECT v.name, o.cidr::text FROM origination_sources o JOIN vendors v ON v.id = o.vendor_id \
                     WHERE o.cidr && $1::text::cidr AND o.vendor_id <> $2 LIMIT 1",
                    &[cidr, &vid],
                )
                .await
                .map_err(dberr("reading origination_sources"))?;
            if let Some(r) = other {
                let (name, net): (String, String) = (r.get(0), r.get(1));
                issues.push(Issue::new(
                    source,
                    format!("{}.cidrs[{j}]", o.at),
                    format!(
                        "{cidr} overlaps {net} of vendor {name:?}: a network belongs to one vendor"
                    ),
                ));
                continue;
            }
            tx.execute(
                "INSERT INTO origination_sources (vendor_id, cidr) VALUES ($1, $2::text::cidr) ON CONFLICT DO NOTHING",
                &[&vid, cidr],
            )
            .await
            .map_err(dberr("writing origination_sources"))?;
        }
        out.origination += 1;
    }
    if !issues.is_empty() {
        return Err(ProvisionError::Invalid {
            file: source.to_string(),
            issues,
        });
    }
    Ok(out)
}

const ORIGINATION: &str = "SELECT cidr::text FROM origination_sources WHERE vendor_id = $1";
