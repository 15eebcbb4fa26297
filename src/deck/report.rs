//! Read-only deck reports: the margin report (sell deck or margin rules against every allowed
//! vendor's buy rate) and shadow evaluation (recent real dips replayed against a candidate version, not served).
//!
//! Owns: nothing in the database (reads only; shadow uses a session-local TEMP VIEW that shadows
//! `vendor_rates` on its own connection). Must not touch: the engine serving dips.

use std::collections::BTreeMap;

use serde::Serialize;
use tokio_postgres::Client;

use super::store::{lock_route, TIMELINE_ROWS};
use super::DeckError;
use crate::routing::{dip, DipAnswer, DipRequest, RoutingSettings, Snapshot};

/// One line of the margin report (interstate rate; international rows carry one rate).
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct MarginRow {
    pub ban: String,
    pub prefix: String,
    pub route: String,
    pub vendor: String,
    pub vendor_prefix: String,
    pub sell: Option<String>,
    pub buy: Option<String>,
    pub margin: Option<String>,
    /// margin as a percent of the sell rate
    pub margin_pct: Option<f64>,
    /// where the sell rate comes from: `sell_deck`, `margin_rule` (the customer's margin rule
    /// for `rule_prefix`, "" = every destination) or `default_margin` (the customer's
    /// margin_percent and fixed_fee)
    pub pricing: String,
    pub rule_prefix: Option<String>,
}

/// The margin report, in force now, per customer, destination prefix and route of the customer's
/// partitions (buy = the route's longest matching vendor prefix, interstate rate):
/// - customers with a sell deck: each sell prefix at its sell rate;
/// - customers priced by margin rules (`customer_margin_rules`, else the customer's default
///   `margin_percent` + `fixed_fee`): each vendor prefix and each rule prefix not covered by the
///   sell deck, sold at buy × (1 + margin/100) + fee (rounded to 1e-7 as the dip does) under the
///   longest matching rule. Customers priced at cost are not listed.
pub async fn margins(
    client: &Client,
    ban: Option<&str>,
    prefix: Option<&str>,
    limit: i64,
) -> Result<Vec<MarginRow>, DeckError> {
    if let Some(b) = ban {
        let found = client
            .query_opt("SELECT 1 FROM customers WHERE ban = $1", &[&b])
            .await
            .map_err(DeckError::db("looking up the customer"))?;
        if found.is_none() {
            return Err(DeckError::UnknownCustomer(b.to_string()));
        }
    }
    // the route's longest vendor prefix of destination `d` in force now
    let buy = |d: &str| {
        format!(
            "JOIN LATERAL (SELECT v.prefix, v.rate_inter FROM vendor_rates v \
               WHERE v.route_id = r.id \
                 AND v.prefix IN (SELECT left({d}, n) FROM generate_series(1, length({d})) n) \
                 AND v.effective_from <= now() AND v.effective_until > now() \
               ORDER BY length(v.prefix) DESC LIMIT 1) vr ON true"
        )
    };
    let in_partitions = "EXISTS (SELECT 1 FROM customer_partitions cp \
        JOIN partition_routes pr ON pr.partition_id = cp.partition_id \
        WHERE cp.customer_id = c.id AND pr.route_id = r.id)";
    let sql = format!(
        "SELECT * FROM ( \
         SELECT c.ban, cr.prefix, r.name AS route, vd.name, vr.prefix, trim_scale(cr.rate_inter)::text, \
               trim_scale(vr.rate_inter)::text, trim_scale(cr.rate_inter - vr.rate_inter)::text, \
               CASE WHEN cr.rate_inter > 0 \
                    THEN round((cr.rate_inter - vr.rate_inter) / cr.rate_inter * 100, 2)::float8 END, \
               'sell_deck'::text, NULL::text, vr.rate_inter AS buy_n \
         FROM customer_rates cr \
         JOIN customers c ON c.id = cr.customer_id \
         JOIN routes r ON {in_partitions} \
         JOIN vendors vd ON vd.id = r.vendor_id \
         {buy_cr} \
         WHERE cr.effective_from <= now() AND cr.effective_until > now() \
           AND ($1::text IS NULL OR c.ban = $1) AND ($2::text IS NULL OR cr.prefix LIKE $2 || '%') \
         UNION ALL \
         SELECT c.ban, d.prefix, r.name, vd.name, vr.prefix, trim_scale(s.sell)::text, \
               trim_scale(vr.rate_inter)::text, trim_scale(s.sell - vr.rate_inter)::text, \
               CASE WHEN s.sell > 0 THEN round((s.sell - vr.rate_inter) / s.sell * 100, 2)::float8 END, \
               CASE WHEN m.prefix IS NULL THEN 'default_margin' ELSE 'margin_rule' END, m.prefix, \
               vr.rate_inter \
         FROM customers c \
         JOIN routes r ON {in_partitions} \
         JOIN vendors vd ON vd.id = r.vendor_id \
         JOIN LATERAL (SELECT v.prefix FROM vendor_rates v WHERE v.route_id = r.id AND v.prefix IS NOT NULL \
                         AND v.effective_from <= now() AND v.effective_until > now() \
                       UNION SELECT m.prefix FROM customer_margin_rules m \
                         WHERE m.customer_id = c.id AND m.prefix <> '') d ON true \
         {buy_d} \
         LEFT JOIN LATERAL (SELECT m.prefix, m.margin_percent, m.fixed_fee FROM customer_margin_rules m \
                            WHERE m.customer_id = c.id AND d.prefix LIKE m.prefix || '%' \
                            ORDER BY length(m.prefix) DESC LIMIT 1) m ON true \
         CROSS JOIN LATERAL (SELECT CASE WHEN m.prefix IS NULL THEN c.margin_percent ELSE m.margin_percent END AS pct, \
                                    CASE WHEN m.prefix IS NULL THEN c.fixed_fee ELSE m.fixed_fee END AS fee) p \
         CROSS JOIN LATERAL (SELECT greatest(0, round(vr.rate_inter * (1 + p.pct / 100), 7) + p.fee) AS sell) s \
         WHERE p.pct IS NOT NULL AND vr.rate_inter IS NOT NULL \
           AND ($1::text IS NULL OR c.ban = $1) AND ($2::text IS NULL OR d.prefix LIKE $2 || '%') \
           AND NOT EXISTS (SELECT 1 FROM customer_rates cr WHERE cr.customer_id = c.id \
                           AND d.prefix LIKE cr.prefix || '%' \
                           AND cr.effective_from <= now() AND cr.effective_until > now()) \
         ) t ORDER BY 1, 2, buy_n, route LIMIT $3",
        buy_cr = buy("cr.prefix"),
        buy_d = buy("d.prefix"),
    );
    let rows = client
        .query(&sql, &[&ban, &prefix, &limit])
        .await
        .map_err(DeckError::db("computing margins"))?;
    Ok(rows
        .iter()
        .map(|r| MarginRow {
            ban: r.get(0),
            prefix: r.get(1),
            route: r.get(2),
            vendor: r.get(3),
            vendor_prefix: r.get(4),
            sell: r.get(5),
            buy: r.get(6),
            margin: r.get(7),
            margin_pct: r.get(8),
            pricing: r.get(9),
            rule_prefix: r.get(10),
        })
        .collect())
}

/// How one destination's answers change under the candidate.
#[derive(Clone, Debug, Default, Serialize, utoipa::ToSchema)]
pub struct ShadowDest {
    /// first digits of the dialed number (country code / NANP 1+NPA)
    pub destination: String,
    pub dips: u64,
    /// the first route offered differs
    pub route_changed: u64,
    pub became_rejected: u64,
    pub became_routed: u64,
    /// average buy rate of the first route, before / after (routed dips only)
    pub cost_before: Option<f64>,
    pub cost_after: Option<f64>,
    /// average sell minus buy of the first route, before / after
    pub margin_before: Option<f64>,
    pub margin_after: Option<f64>,
}

#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct ShadowReport {
    pub route: String,
    pub version: i64,
    pub samples: u64,
    pub changed: u64,
    pub destinations: Vec<ShadowDest>,
}

fn destination_of(dnis: &str) -> String {
    let d: String = dnis.chars().filter(char::is_ascii_digit).collect();
    let d = d.strip_prefix("011").unwrap_or(&d);
    d.chars().take(4).collect()
}

#[derive(Default)]
struct Acc {
    d: ShadowDest,
    cost: [(f64, u64); 2],
    margin: [(f64, u64); 2],
}

fn first(a: &DipAnswer) -> Option<(&str, f64, f64)> {
    match a {
        DipAnswer::Route(r) => r
            .routes
            .first()
            .map(|c| (c.route_id.as_str(), c.rate, c.customer_rate)),
        DipAnswer::Reject(_) => None,
    }
}

/// Compares answers of two snapshots over the same dips (pure; `now` in unix seconds).
pub fn compare(
    current: &Snapshot,
    candidate: &Snapshot,
    samples: &[DipRequest],
    now: i64,
) -> (u64, Vec<ShadowDest>) {
    let mut by: BTreeMap<String, Acc> = BTreeMap::new();
    let mut changed = 0;
    for req in samples {
        let a = dip(current, req, now);
        let b = dip(candidate, req, now);
        let key = destination_of(&req.dnis);
        let acc = by.entry(key.clone()).or_default();
        acc.d.destination = key;
        acc.d.dips += 1;
        let (fa, fb) = (first(&a), first(&b));
        let diff = match (fa, fb) {
            (Some(x), Some(y)) => {
                x.0 != y.0 || (x.1 - y.1).abs() > 1e-9 || (x.2 - y.2).abs() > 1e-9
            }
            (None, None) => false,
            _ => true,
        };
        if diff {
            changed += 1;
        }
        match (fa, fb) {
            (Some(x), Some(y)) if x.0 != y.0 => acc.d.route_changed += 1,
            (Some(_), None) => acc.d.became_rejected += 1,
            (None, Some(_)) => acc.d.became_routed += 1,
            _ => {}
        }
        for (i, f) in [fa, fb].into_iter().enumerate() {
            if let Some((_, rate, sell)) = f {
                acc.cost[i].0 += rate;
                acc.cost[i].1 += 1;
                acc.margin[i].0 += sell - rate;
                acc.margin[i].1 += 1;
            }
        }
    }
    let avg = |(s, n): (f64, u64)| (n > 0).then(|| (s / n as f64 * 1e7).round() / 1e7);
    let dests = by
        .into_values()
        .map(|mut a| {
            a.d.cost_before = avg(a.cost[0]);
            a.d.cost_after = avg(a.cost[1]);
            a.d.margin_before = avg(a.margin[0]);
            a.d.margin_after = avg(a.margin[1]);
            a.d
        })
        .collect();
    (changed, dests)
}

/// Builds the current snapshot and the candidate one (the route's rows as if `version` were live)
/// from the database, on `client`, which must be a connection of its own (it gets a TEMP VIEW).
pub async fn candidate_snapshots(
    client: &mut Client,
    route: &str,
    version: i64,
    settings: RoutingSettings,
) -> Result<(Snapshot, Snapshot), DeckError> {
    let (route_id, state): (i64, String) = {
        let tx = client
            .transaction()
            .await
            .map_err(DeckError::db("starting a transaction"))?;
        let r = lock_route(&tx, route).await?;
        let row = tx
            .query_opt(
                "SELECT state FROM deck_versions WHERE id = $1 AND route_id = $2",
                &[&version, &r.id],
            )
            .await
            .map_err(DeckError::db("reading the version"))?
            .ok_or_else(|| DeckError::UnknownVersion {
                route: route.to_string(),
                version,
            })?;
        tx.rollback()
            .await
            .map_err(DeckError::db("ending a transaction"))?;
        (r.id, row.get(0))
    };
    if state == "baseline" {
        return Err(DeckError::Conflict(format!(
            "version {version} is the route's baseline; shadow a staged or later version"
        )));
    }
    let current = crate::db::loader::load_snapshot(client, settings.clone()).await?;
    // The loader reads `vendor_rates` unqualified; a TEMP VIEW of that name on this connection
    // comes first in the search path and shows the candidate timeline for this route.
    let timeline = TIMELINE_ROWS
        .replace("$1", &route_id.to_string())
        .replace("$2", &version.to_string());
    // `load_row` (sql/0024) is the one value per row the loader reads; the candidate rows get
    // it from the same function the column is generated by
    let view = format!(
        "CREATE TEMP VIEW vendor_rates AS \
         SELECT route_id, prefix, ocn, lata, rate_inter, rate_intra, rate_local, min_seconds, \
                inc_seconds, effective_from, effective_until, load_row \
         FROM public.vendor_rates WHERE route_id <> {route_id} \
         UNION ALL SELECT t.*, warpd_rate_load_row(t.route_id, t.min_seconds, t.inc_seconds, \
                t.effective_from, t.effective_until, t.rate_inter, t.rate_intra, t.rate_local) \
         FROM ({timeline}) t"
    );
    client
        .batch_execute(&view)
        .await
        .map_err(DeckError::db("creating the candidate view"))?;
    let candidate = crate::db::loader::load_snapshot(client, settings).await;
    client
        .batch_execute("DROP VIEW IF EXISTS pg_temp.vendor_rates")
        .await
        .map_err(DeckError::db("dropping the candidate view"))?;
    Ok((current, candidate?))
}

/// Replays `samples` against the route's candidate `version` and the current data.
pub async fn shadow(
    client: &mut Client,
    route: &str,
    version: i64,
    samples: &[DipRequest],
    settings: RoutingSettings,
    now: i64,
) -> Result<ShadowReport, DeckError> {
    let (cur, cand) = candidate_snapshots(client, route, version, settings).await?;
    let (changed, destinations) = compare(&cur, &cand, samples, now);
    Ok(ShadowReport {
        route: route.to_string(),
        version,
        samples: samples.len() as u64,
        changed,
        destinations,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn destinations() {
        assert_eq!(destination_of("+13125550100"), "1312");
        assert_eq!(destination_of("011447911123456"), "4479");
        assert_eq!(destination_of("12"), "12");
    }
}
