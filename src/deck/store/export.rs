//! Export of a deck version as CSV in the layout it was imported with.
//!
//! Owns: the export query and the CSV writing. Must not touch: any write to the database.

use std::io::Write;

use futures_util::{pin_mut, TryStreamExt};
use tokio_postgres::Client;

use super::timeline::versions;
use crate::deck::parse::Field;
use crate::deck::DeckError;
use warpd_core::provision::values::{fmt_scaled, parse_scaled};

/// Writes a version as CSV in the layout it was imported with. Returns the number of rows.
pub async fn export<W: Write>(
    client: &Client,
    route: &str,
    version: Option<i64>,
    out: W,
) -> Result<u64, DeckError> {
    let vs = versions(client, route).await?;
    let v = match version {
        Some(id) => vs.iter().find(|v| v.id == id),
        None => vs.iter().find(|v| v.current),
    }
    .ok_or_else(|| match version {
        Some(id) => DeckError::UnknownVersion {
            route: route.to_string(),
            version: id,
        },
        None => DeckError::Conflict(format!("route {route:?} has no version in force now")),
    })?;
    let meta = client
        .query_one(
            "SELECT columns, fields FROM deck_versions WHERE id = $1",
            &[&v.id],
        )
        .await
        .map_err(DeckError::db("reading the version layout"))?;
    let columns: Vec<String> = meta.get(0);
    let fields: Vec<Field> = meta
        .get::<_, Vec<String>>(1)
        .iter()
        .map(|f| Field::from_name(f).unwrap_or(Field::Ignore))
        .collect();
    let mut w = csv::Writer::from_writer(out);
    let io = |e: csv::Error| DeckError::Internal(format!("writing the export: {e}"));
    w.write_record(&columns).map_err(io)?;
    let ts = |c: &str| {
        format!(
            "CASE WHEN {c} IN ('-infinity', 'infinity') THEN '' \
             ELSE to_char({c} AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"') END"
        )
    };
    let sql = format!(
        "SELECT prefix, ocn, lata, description, trim_scale(rate_inter)::text, \
         trim_scale(rate_intra)::text, trim_scale(rate_local)::text, min_seconds::text, \
         inc_seconds::text, {}, {} FROM deck_rates WHERE version_id = $1 \
         ORDER BY prefix, ocn, lata",
        ts("effective_from"),
        ts("effective_until")
    );
    let stream = client
        .query_raw(&sql, [&v.id])
        .await
        .map_err(DeckError::db("reading the version's rows"))?;
    pin_mut!(stream);
    let mut n = 0u64;
    let mut rec: Vec<String> = Vec::with_capacity(columns.len());
    while let Some(row) = stream
        .try_next()
        .await
        .map_err(DeckError::db("reading the version's rows"))?
    {
        let s = |i: usize| row.get::<_, Option<String>>(i).unwrap_or_default();
        // a deck imported with a zone column goes back out as one row per zone (one "flat"
        // row when every zone has the same rate); any other deck as one row
        let zones: Vec<(&str, String)> = if fields.contains(&Field::Zone) {
            let r = [s(4), s(5), s(6)];
            if !r[0].is_empty() && r[0] == r[1] && r[1] == r[2] {
                vec![("flat", r[0].clone())]
            } else {
                ["interstate", "intrastate", "local"]
                    .into_iter()
                    .zip(r)
                    .filter(|(_, v)| !v.is_empty())
                    .collect()
            }
        } else {
            vec![("", s(4))]
        };
        for (zone, rate) in zones {
            rec.clear();
            for f in &fields {
                rec.push(match f {
                    Field::Prefix => s(0),
                    Field::Npanxx => s(0).strip_prefix('1').unwrap_or_default().to_string(),
                    Field::Ocn => s(1),
                    Field::Lata => s(2),
                    Field::Description => s(3),
                    Field::Interstate | Field::Rate => rate.clone(),
                    Field::Intrastate => s(5),
                    Field::Local => s(6),
                    Field::MinSeconds => s(7),
                    Field::IncSeconds => s(8),
                    Field::EffectiveFrom => s(9),
                    Field::EffectiveUntil => s(10),
                    Field::Zone => zone.to_string(),
                    Field::Ignore => String::new(),
                });
            }
            w.write_record(&rec).map_err(io)?;
            n += 1;
        }
    }
    w.flush()
        .map_err(|e| DeckError::Internal(format!("writing the export: {e}")))?;
    Ok(n)
}

/// Normalizes a money string for display (`0.0045000` → `0.0045`).
pub fn money_text(s: &str) -> String {
    parse_scaled(s, 7, 5)
        .map(|v| fmt_scaled(v, 7))
        .unwrap_or_else(|_| s.to_string())
}
