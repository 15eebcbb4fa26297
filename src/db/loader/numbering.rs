//! The streamed numbering tables: npanxx, local_calling, lnp and dno.
//!
//! Owns: those COPY queries and the rows' conversion into the builder. Phone numbers appear in
//! errors only masked.
//! Must not touch: the rate tables (see `rates`).

use tokio_postgres::Client;
use warpd_core::pgcopy::field_str;

use super::copy::{copy_binary, need};
use super::DbError;
use crate::numbering::mask;
use crate::routing::{NpaNxxInfo, SnapshotBuilder};

/// npanxx, local_calling, lnp, dno. Returns the total rows.
pub(super) async fn load_numbering(
    client: &Client,
    b: &mut SnapshotBuilder,
) -> Result<u64, DbError> {
    let one = |sql: &str| [(client, sql.to_string())];
    let mut total = 0;
    const TN: &str = "npanxx";
    total += copy_binary::<5>(
        &one("SELECT npanxx, state, lata, ocn, rate_center FROM npanxx"),
        TN,
        |f| {
            let [npanxx, state, lata, ocn, rc] = f.map(field_str);
            let key = || npanxx.unwrap_or("?").to_string();
            let info = NpaNxxInfo {
                state: need(state, TN, &key, "state")?.to_string(),
                lata: need(lata, TN, &key, "lata")?.to_string(),
                ocn: need(ocn, TN, &key, "ocn")?.to_string(),
                rate_center: need(rc, TN, &key, "rate_center")?.to_string(),
            };
            b.npanxx(need(npanxx, TN, &key, "npanxx")?, info)
                .map_err(|e| DbError::bad_row(TN, key(), e.to_string()))
        },
    )
    .await?;
    const TL: &str = "local_calling";
    total += copy_binary::<2>(
        &one("SELECT a_npanxx, b_npanxx FROM local_calling"),
        TL,
        |f| {
            let [a, bb] = f.map(field_str);
            let key = || format!("{} / {}", a.unwrap_or("?"), bb.unwrap_or("?"));
            b.local_calling(
                need(a, TL, &key, "a_npanxx")?,
                need(bb, TL, &key, "b_npanxx")?,
            )
            .map_err(|e| DbError::bad_row(TL, key(), e.to_string()))
        },
    )
    .await?;
    const TP: &str = "lnp";
    total += copy_binary::<2>(&one("SELECT tn, lrn FROM lnp"), TP, |f| {
        let [tn, lrn] = f.map(field_str);
        // phone numbers: only ever masked in errors
        let key = || format!("tn {}", mask(tn.unwrap_or("?")));
        let lrn = need(lrn, TP, &key, "lrn")?;
        b.lnp(need(tn, TP, &key, "tn")?, lrn).map_err(|_| {
            DbError::bad_row(
                TP,
                key(),
                format!("invalid 10-digit TN or LRN (lrn {})", mask(lrn)),
            )
        })
    })
    .await?;
    const TD: &str = "dno";
    total += copy_binary::<1>(&one("SELECT number FROM dno"), TD, |f| {
        let [number] = f.map(field_str);
        let key = || format!("number {}", mask(number.unwrap_or("?")));
        // The column holds E.164 digits without '+': say so, or international numbers (12+
        // digits, or 11 not starting with 1) would not normalize.
        b.dno(&format!("+{}", need(number, TD, &key, "number")?))
            .map_err(|_| DbError::bad_row(TD, key(), "not a valid E.164 number (7 to 15 digits)"))
    })
    .await?;
    Ok(total)
}
