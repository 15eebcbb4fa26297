//! Time windows of partitions and overrides: whether a window is open at a given instant, in
//! the window's own time zone (days of week, start/end minute, windows across midnight).

use chrono::{Datelike, TimeZone, Timelike};

use super::model::TimeWindow;

/// Is `now` (unix seconds) inside the window?
pub fn window_open(w: &TimeWindow, now: i64) -> bool {
    let Some(utc) = chrono::Utc.timestamp_opt(now, 0).single() else {
        return false;
    };
    let local = utc.with_timezone(&w.tz);
    let minute = (local.hour() * 60 + local.minute()) as u16;
    let today = local.weekday().num_days_from_monday() as u8;
    let yesterday = (today + 6) % 7;
    let day_ok = |d: u8| w.days == 0 || w.days & (1 << d) != 0;
    if w.start_min < w.end_min {
        day_ok(today) && (w.start_min..w.end_min).contains(&minute)
    } else {
        // crosses midnight (or start == end: a full day starting at start)
        (day_ok(today) && minute >= w.start_min) || (day_ok(yesterday) && minute < w.end_min)
    }
}
