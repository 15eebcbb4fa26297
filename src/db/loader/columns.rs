//! Column conversions of the snapshot loader: SQL expressions that make the server hand out
//! model units (unix seconds, 1e-7 money units, minutes of the day), reading a row's columns
//! with errors naming the table, and the checks of values the model needs (rates in range,
//! integers that fit, ISO weekdays, time windows, digit-only prefixes).
//!
//! Owns: the mapping of column values to `routing::model` values.
//! Must not touch: which tables are read (the loaders), the binary COPY framing.

use chrono_tz::Tz;
use tokio_postgres::types::FromSql;
use tokio_postgres::{Client, Row};

use super::DbError;
use crate::routing::{Rate, TimeWindow};

/// SQL for a timestamptz column as unix seconds, with -infinity/infinity as i64::MIN/i64::MAX.
/// `date_part` (float8) is much cheaper than numeric `extract` and exact to the second here.
pub(super) fn epoch(col: &str) -> String {
    format!(
        "CASE WHEN {col} = '-infinity' THEN '-9223372036854775808'::bigint \
              WHEN {col} = 'infinity' THEN '9223372036854775807'::bigint \
              ELSE floor(date_part('epoch', {col}))::bigint END"
    )
}

/// SQL for a money column (numeric dollars) as integer units of 1e-7.
pub(super) fn scaled(col: &str) -> String {
    format!("round({col} * 10000000)::bigint")
}

/// SQL for a `time` column as minutes after midnight (24:00 gives 1440).
pub(super) fn minutes(col: &str) -> String {
    format!("(extract(hour FROM {col}) * 60 + extract(minute FROM {col}))::integer")
}

pub(super) fn col<'a, T: FromSql<'a>>(
    row: &'a Row,
    i: usize,
    table: &'static str,
) -> Result<T, DbError> {
    row.try_get(i)
        .map_err(DbError::query(format!("reading {table}")))
}

pub(super) async fn select(
    client: &Client,
    table: &'static str,
    sql: &str,
) -> Result<Vec<Row>, DbError> {
    client
        .query(sql, &[])
        .await
        .map_err(DbError::query(format!("reading {table}")))
}

pub(super) fn rate_col(
    v: Option<i64>,
    table: &'static str,
    key: &dyn Fn() -> String,
    what: &str,
) -> Result<Option<Rate>, DbError> {
    match v {
        None => Ok(None),
        Some(x) => Rate::from_scaled(x).map(Some).ok_or_else(|| {
            DbError::bad_row(
                table,
                key(),
                format!(
                    "{what} {} out of range 0..={}",
                    x as f64 / Rate::SCALE,
                    Rate::MAX
                ),
            )
        }),
    }
}

pub(super) fn int_col<T: TryFrom<i64>>(
    v: i64,
    table: &'static str,
    key: &dyn Fn() -> String,
    what: &str,
) -> Result<T, DbError> {
    T::try_from(v).map_err(|_| DbError::bad_row(table, key(), format!("{what} {v} out of range")))
}

/// ISO weekdays (1 = Monday .. 7 = Sunday) to the model's bitmask (bit 0 = Monday).
fn day_mask(days: &[i16]) -> Result<u8, String> {
    let mut m = 0u8;
    for &d in days {
        if !(1..=7).contains(&d) {
            return Err(format!("weekday {d} out of range 1..=7 (ISO, 1 = Monday)"));
        }
        m |= 1 << (d - 1);
    }
    Ok(m)
}

/// A time window from its columns. No times and no days: no window (always open). Days without
/// times: whole days.
pub(super) fn window(
    days: &[i16],
    start: Option<i32>,
    end: Option<i32>,
    tz: &str,
) -> Result<Option<TimeWindow>, String> {
    let tz: Tz = tz
        .parse()
        .map_err(|_| format!("unknown time zone {tz:?} (IANA names like America/New_York)"))?;
    let days = day_mask(days)?;
    let to_min = |m: i32| u16::try_from(m).ok().filter(|m| *m <= 1440);
    match (start, end) {
        (None, None) if days == 0 => Ok(None),
        (None, None) => Ok(Some(TimeWindow {
            days,
            start_min: 0,
            end_min: 0,
            tz,
        })),
        (Some(s), Some(e)) => match (to_min(s), to_min(e)) {
            (Some(start_min), Some(end_min)) => Ok(Some(TimeWindow {
                days,
                start_min,
                end_min,
                tz,
            })),
            _ => Err(format!("time of day out of range ({s}, {e} minutes)")),
        },
        _ => Err("start_time and end_time must both be set or both be NULL".into()),
    }
}

/// A prefix column that must be digits only (may be empty where the schema allows '').
pub(super) fn digits_only(p: &str) -> bool {
    p.bytes().all(|b| b.is_ascii_digit())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_from_columns() {
        assert_eq!(window(&[], None, None, "UTC"), Ok(None));
        let w = window(&[1, 5, 7], Some(9 * 60), Some(17 * 60), "America/New_York")
            .unwrap()
            .unwrap();
        assert_eq!(w.days, 0b101_0001);
        assert_eq!((w.start_min, w.end_min), (540, 1020));
        assert_eq!(w.tz, chrono_tz::America::New_York);
        let whole = window(&[6, 7], None, None, "UTC").unwrap().unwrap();
        assert_eq!(
            (whole.days, whole.start_min, whole.end_min),
            (0b110_0000, 0, 0)
        );
        assert!(window(&[], Some(0), Some(60), "Mars/Olympus")
            .unwrap_err()
            .contains("Mars/Olympus"));
        assert!(window(&[0], None, None, "UTC")
            .unwrap_err()
            .contains("weekday 0"));
        assert!(window(&[], Some(0), None, "UTC").is_err());
    }
}
