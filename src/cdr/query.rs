//! CDR query and export: filters (time range, BAN, route, vendor, disposition, ANI/DNIS prefix),
//! keyset pagination on `(started_at, call_id)` with an opaque cursor, and CSV / NDJSON encoding.
//! Used by `GET /v1/cdrs`, `GET /v1/cdrs/export` and `warpd cdr export`.

use chrono::{DateTime, Utc};
use serde_json::Value;
use tokio_postgres::types::ToSql;
use tokio_postgres::Client;

/// Columns of an export, in order (CSV header).
pub const EXPORT_COLUMNS: &[&str] = &[
    "call_id",
    "started_at",
    "ring_at",
    "answered_at",
    "ended_at",
    "customer_ban",
    "src_ip",
    "ani",
    "dnis",
    "lrn",
    "ocn",
    "lata",
    "state",
    "zone",
    "partition",
    "route_id",
    "vendor",
    "attempts",
    "attempt_count",
    "vendor_rate",
    "customer_rate",
    "vendor_min",
    "vendor_inc",
    "customer_min",
    "customer_inc",
    "duration_ms",
    "vendor_billed_s",
    "customer_billed_s",
    "cost",
    "price",
    "disposition",
    "sip_code",
    "hangup",
    "cause",
    "pdd_ms",
    "mos",
    "jitter_ms",
    "loss_pct",
    "recording",
    "recording_node",
    "flags",
    "direction",
    "trunk",
    "number",
    "stir_attest",
    "stir_origid",
    "stir_verstat",
    "stir_reason",
    "written_at",
];

/// Most rows per page.
pub const MAX_LIMIT: i64 = 1000;

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CdrFilter {
    pub from: Option<DateTime<Utc>>,
    pub to: Option<DateTime<Utc>>,
    pub ban: Option<String>,
    pub route: Option<String>,
    pub vendor: Option<String>,
    pub disposition: Option<String>,
    pub ani_prefix: Option<String>,
    pub dnis_prefix: Option<String>,
    /// `inbound` or `outbound` (checked by [`parse_direction`])
    pub direction: Option<String>,
    /// the customer trunk
    pub trunk: Option<String>,
    /// keyset cursor: rows strictly after (started_at, call_id)
    pub after: Option<(DateTime<Utc>, String)>,
}

/// A filter problem: the parameter and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {why}")]
pub struct FilterError {
    pub field: &'static str,
    pub why: String,
}

fn ferr(field: &'static str, why: impl Into<String>) -> FilterError {
    FilterError {
        field,
        why: why.into(),
    }
}

/// A direction filter: `inbound` or `outbound`.
pub fn parse_direction(s: &str) -> Result<String, FilterError> {
    match s {
        "inbound" | "outbound" => Ok(s.to_string()),
        _ => Err(ferr("direction", "expected inbound or outbound")),
    }
}

/// RFC 3339 or unix seconds.
pub fn parse_time(field: &'static str, s: &str) -> Result<DateTime<Utc>, FilterError> {
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Ok(t.with_timezone(&Utc));
    }
    if let Ok(secs) = s.parse::<f64>() {
        if secs.is_finite() {
            if let Some(t) = DateTime::from_timestamp_micros((secs * 1e6) as i64) {
                return Ok(t);
            }
        }
    }
    Err(ferr(
        field,
        format!(
            "{} is not an RFC 3339 time or unix seconds",
            warpd_core::excerpt::excerpt(s)
        ),
    ))
}

/// Encodes a cursor: `<unix micros>:<call_id>` in hex, so it is URL-safe.
pub fn encode_cursor(started: DateTime<Utc>, call_id: &str) -> String {
    let raw = format!("{}:{call_id}", started.timestamp_micros());
    raw.bytes().map(|b| format!("{b:02x}")).collect()
}

pub fn decode_cursor(s: &str) -> Result<(DateTime<Utc>, String), FilterError> {
    let bad = || ferr("cursor", "not a cursor returned by this API");
    if s.len() % 2 != 0 || s.len() > 2048 {
        return Err(bad());
    }
    let bytes: Option<Vec<u8>> = (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect();
    let raw = String::from_utf8(bytes.ok_or_else(bad)?).map_err(|_| bad())?;
    let (us, id) = raw.split_once(':').ok_or_else(bad)?;
    let t = us
        .parse::<i64>()
        .ok()
        .and_then(DateTime::from_timestamp_micros)
        .ok_or_else(bad)?;
    Ok((t, id.to_string()))
}

fn like_prefix(p: &str) -> String {
    let mut s = String::with_capacity(p.len() + 1);
    for c in p.chars() {
        if matches!(c, '%' | '_' | '\\') {
            s.push('\\');
        }
        s.push(c);
    }
    s.push('%');
    s
}

/// One page: rows as JSON objects (in `EXPORT_COLUMNS` order of keys) and the next cursor.
pub struct Page {
    pub rows: Vec<Value>,
    pub next: Option<String>,
}

/// Runs one page of the query.
pub async fn page(
    client: &Client,
    f: &CdrFilter,
    limit: i64,
) -> Result<Page, tokio_postgres::Error> {
    let limit = limit.clamp(1, MAX_LIMIT);
    let mut conds: Vec<String> = vec![];
    let mut params: Vec<Box<dyn ToSql + Sync + Send>> = vec![];
    let mut add = |cond: &str, v: Box<dyn ToSql + Sync + Send>, conds: &mut Vec<String>| {
        params.push(v);
        conds.push(cond.replace('?', &format!("${}", params.len())));
    };
    if let Some(t) = f.from {
        add("started_at >= ?", Box::new(t), &mut conds);
    }
    if let Some(t) = f.to {
        add("started_at < ?", Box::new(t), &mut conds);
    }
    if let Some(v) = &f.ban {
        add("customer_ban = ?", Box::new(v.clone()), &mut conds);
    }
    if let Some(v) = &f.route {
        add("route_id = ?", Box::new(v.clone()), &mut conds);
    }
    if let Some(v) = &f.vendor {
        add("vendor = ?", Box::new(v.clone()), &mut conds);
    }
    if let Some(v) = &f.disposition {
        add("disposition = ?", Box::new(v.clone()), &mut conds);
    }
    if let Some(v) = &f.ani_prefix {
        add("ani LIKE ?", Box::new(like_prefix(v)), &mut conds);
    }
    if let Some(v) = &f.dnis_prefix {
        add("dnis LIKE ?", Box::new(like_prefix(v)), &mut conds);
    }
    if let Some(v) = &f.direction {
        add("direction = ?", Box::new(v.clone()), &mut conds);
    }
    if let Some(v) = &f.trunk {
        add("trunk = ?", Box::new(v.clone()), &mut conds);
    }
    if let Some((t, id)) = &f.after {
        params.push(Box::new(*t));
        params.push(Box::new(id.clone()));
        let n = params.len();
        conds.push(format!("(started_at, call_id) > (${}, ${n})", n - 1));
    }
    params.push(Box::new(limit));
    let where_ = if conds.is_empty() {
        String::new()
    } else {
        format!("WHERE {}", conds.join(" AND "))
    };
    let sql = format!(
        "SELECT row_to_json(c)::text, started_at, call_id FROM (SELECT {} FROM cdrs {where_} \
         ORDER BY started_at, call_id LIMIT ${}) c",
        EXPORT_COLUMNS.join(", "),
        params.len()
    );
    let refs: Vec<&(dyn ToSql + Sync)> = params
        .iter()
        .map(|p| p.as_ref() as &(dyn ToSql + Sync))
        .collect();
    let rows = client.query(&sql, &refs).await?;
    let mut out = Vec::with_capacity(rows.len());
    let mut last = None;
    for r in &rows {
        let json: String = r.try_get(0)?;
        let started: DateTime<Utc> = r.try_get(1)?;
        let id: String = r.try_get(2)?;
        out.push(serde_json::from_str(&json).unwrap_or(Value::Null));
        last = Some((started, id));
    }
    let next = if rows.len() as i64 == limit {
        last.map(|(t, id)| encode_cursor(t, &id))
    } else {
        None
    };
    Ok(Page { rows: out, next })
}

/// Export formats.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Csv,
    /// one JSON object per line
    Json,
}

impl Format {
    pub fn parse(s: &str) -> Result<Format, FilterError> {
        match s {
            "csv" => Ok(Format::Csv),
            "json" | "ndjson" => Ok(Format::Json),
            _ => Err(ferr("format", "expected csv or json")),
        }
    }
}

/// The CSV header line.
pub fn csv_header() -> Vec<u8> {
    let mut w = csv::Writer::from_writer(vec![]);
    let _ = w.write_record(EXPORT_COLUMNS);
    w.into_inner().unwrap_or_default()
}

/// Encodes rows in the format (CSV without header).
pub fn encode(rows: &[Value], format: Format) -> Vec<u8> {
    match format {
        Format::Json => {
            let mut out = Vec::with_capacity(rows.len() * 600);
            for r in rows {
                if serde_json::to_writer(&mut out, r).is_ok() {
                    out.push(b'\n');
                }
            }
            out
        }
        Format::Csv => {
            let mut w = csv::Writer::from_writer(Vec::with_capacity(rows.len() * 400));
            for r in rows {
                let rec: Vec<String> = EXPORT_COLUMNS
                    .iter()
                    .map(|c| match r.get(*c) {
                        None | Some(Value::Null) => String::new(),
                        Some(Value::String(s)) => s.clone(),
                        Some(v) => v.to_string(),
                    })
                    .collect();
                let _ = w.write_record(&rec);
            }
            w.into_inner().unwrap_or_default()
        }
    }
}

/// Streams every matching row, page by page, into `tx` (header first for CSV). Stops early when
/// the receiver goes away.
pub async fn export(
    client: &Client,
    filter: &CdrFilter,
    format: Format,
    tx: tokio::sync::mpsc::Sender<Vec<u8>>,
) -> Result<u64, tokio_postgres::Error> {
    if format == Format::Csv && tx.send(csv_header()).await.is_err() {
        return Ok(0);
    }
    let mut f = filter.clone();
    let mut n = 0u64;
    loop {
        let p = page(client, &f, MAX_LIMIT).await?;
        n += p.rows.len() as u64;
        if !p.rows.is_empty() && tx.send(encode(&p.rows, format)).await.is_err() {
            return Ok(n);
        }
        match p.next.as_deref().map(decode_cursor) {
            Some(Ok(c)) => f.after = Some(c),
            _ => return Ok(n),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursor_round_trip_and_garbage() {
        let t = DateTime::from_timestamp_micros(1_700_000_000_123_456).unwrap();
        let c = encode_cursor(t, "a:b@c");
        assert_eq!(decode_cursor(&c).unwrap(), (t, "a:b@c".to_string()));
        for bad in ["zz", "abc", "", "3a"] {
            assert_eq!(decode_cursor(bad).unwrap_err().field, "cursor", "{bad}");
        }
    }

    #[test]
    fn times_and_csv() {
        assert_eq!(
            parse_time("from", "2026-01-01T00:00:00Z")
                .unwrap()
                .timestamp(),
            1_767_225_600
        );
        assert_eq!(
            parse_time("from", "1700000000").unwrap().timestamp(),
            1_700_000_000
        );
        assert_eq!(parse_time("to", "yesterday").unwrap_err().field, "to");
        let rows = vec![serde_json::json!({"call_id": "x,1", "duration_ms": 5, "flags": ["a"]})];
        let s = String::from_utf8(encode(&rows, Format::Csv)).unwrap();
        assert!(s.starts_with("\"x,1\","), "{s}");
        assert!(s.contains(",5,"));
        assert_eq!(like_prefix("1_2%"), "1\\_2\\%%");
    }
}
