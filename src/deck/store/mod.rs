//! Deck versions in PostgreSQL: import (parse on a blocking thread while COPY streams into
//! `deck_rates`, then activation in the same transaction), versions, diff, rollback/activate,
//! export, saved mappings. Every write is one transaction; a refused import leaves nothing.
//!
//! Owns: the SQL over `deck_versions`, `deck_rates`, `deck_mappings` and the deck rows of
//! `vendor_rates`. Must not touch: other routing tables, the snapshot (the NOTIFY trigger on
//! vendor_rates makes every warpd reload).
//!
//! Layout: [`import`] parses, validates and COPYs a deck into a new version; [`timeline`] puts
//! versions on a route's timeline (activation, rollback, rebuild) and lists them; [`diff`]
//! compares two versions; [`export`] writes one back out as CSV; [`version`] creates a version
//! (shared by `deck import` and `warpd apply`). This file holds what they share:
//! the route lock, the audit log, saved mappings, [`Since`] (a version's effective time).

mod diff;
mod export;
mod import;
mod timeline;
pub(crate) mod version;

use bytes::BytesMut;
use chrono::{DateTime, Utc};
use tokio_postgres::types::{to_sql_checked, FromSql, IsNull, ToSql, Type};
use tokio_postgres::GenericClient;

use super::parse::Mapping;
use super::DeckError;

pub use diff::{
    diff, diff_page, diff_versions, DiffPage, DiffReport, DiffRow, DiffSort, VersionRowsError,
    MAX_HELD_ROWS,
};
pub use export::{export, money_text};
pub use import::{import, ImportOptions, ImportReport, MAX_REPORTED_ISSUES};
pub(crate) use timeline::TIMELINE_ROWS;
pub use timeline::{activate, rebuild_route, rollback, versions, VersionInfo};

fn ts_text(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)
}

/// When a version takes over: at a time, or since always (`-infinity`: a route's first rates from
/// `warpd apply` without `rates_effective_from`). A `timestamptz` parameter and column value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Since {
    Always,
    At(DateTime<Utc>),
}

impl Since {
    pub fn text(self) -> String {
        match self {
            Since::Always => "-infinity".to_string(),
            Since::At(t) => ts_text(t),
        }
    }
}

/// PostgreSQL's binary `timestamptz`: microseconds since 2000, `-infinity` as `i64::MIN`.
impl ToSql for Since {
    fn to_sql(
        &self,
        ty: &Type,
        out: &mut BytesMut,
    ) -> Result<IsNull, Box<dyn std::error::Error + Sync + Send>> {
        match self {
            Since::Always => i64::MIN.to_sql(&Type::INT8, out),
            Since::At(t) => t.to_sql(ty, out),
        }
    }

    fn accepts(ty: &Type) -> bool {
        <DateTime<Utc> as ToSql>::accepts(ty)
    }

    to_sql_checked!();
}

impl<'a> FromSql<'a> for Since {
    fn from_sql(
        ty: &Type,
        raw: &'a [u8],
    ) -> Result<Since, Box<dyn std::error::Error + Sync + Send>> {
        if raw == i64::MIN.to_be_bytes() {
            return Ok(Since::Always);
        }
        DateTime::<Utc>::from_sql(ty, raw).map(Since::At)
    }

    fn accepts(ty: &Type) -> bool {
        <DateTime<Utc> as FromSql>::accepts(ty)
    }
}

async fn audit<C: GenericClient>(
    c: &C,
    actor: &str,
    action: &str,
    target: &str,
    before: Option<serde_json::Value>,
    after: Option<serde_json::Value>,
) -> Result<(), DeckError> {
    c.execute(
        "INSERT INTO audit_log (actor, action, target, before, after) VALUES ($1, $2, $3, $4, $5)",
        &[&actor, &action, &target, &before, &after],
    )
    .await
    .map_err(DeckError::db("writing the audit log"))?;
    Ok(())
}

pub(crate) struct RouteRow {
    pub id: i64,
    pub vendor_id: i64,
    pub ocn_lata: bool,
}

/// Looks up a route by name, locking it (deck changes of one route are serialized).
pub(crate) async fn lock_route<C: GenericClient>(
    c: &C,
    route: &str,
) -> Result<RouteRow, DeckError> {
    let row = c
        .query_opt(
            "SELECT r.id, r.vendor_id, v.billing_model::text = 'OCN_LATA' \
             FROM routes r JOIN vendors v ON v.id = r.vendor_id WHERE r.name = $1 FOR UPDATE OF r",
            &[&route],
        )
        .await
        .map_err(DeckError::db("looking up the route"))?
        .ok_or_else(|| DeckError::UnknownRoute(route.to_string()))?;
    Ok(RouteRow {
        id: row.get(0),
        vendor_id: row.get(1),
        ocn_lata: row.get(2),
    })
}

/// The saved mapping of a vendor (empty if none).
pub async fn saved_mapping<C: GenericClient>(c: &C, vendor_id: i64) -> Result<Mapping, DeckError> {
    let row = c
        .query_opt(
            "SELECT mapping FROM deck_mappings WHERE vendor_id = $1",
            &[&vendor_id],
        )
        .await
        .map_err(DeckError::db("reading the saved mapping"))?;
    match row {
        None => Ok(Mapping::default()),
        Some(r) => {
            let v: serde_json::Value = r.get(0);
            serde_json::from_value(v).map_err(|e| {
                DeckError::Internal(format!("saved mapping of vendor {vendor_id}: {e}"))
            })
        }
    }
}
