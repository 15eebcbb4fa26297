//! Bulk import of numbers (DIDs) from CSV (issue 19): `warpd numbers import FILE` and
//! `POST /v1/admin/numbers/import`. The file's lines are checked one by one with the shared rules
//! (`rules::trunk`: E.164, status, URI, rate, CNAM), COPY'd into a temporary staging table, checked
//! against the database set-based (unknown customer or trunk, a trunk of another customer, a
//! number owned by another customer without `move_from`, a number on two lines), and only when no
//! line has a problem written with ONE upsert and one audit row, in one transaction. Any problem:
//! nothing is applied and every problem (up to [`MAX_REPORTED`]) names its line and field.
//!
//! CSV: a header line, then one number per line. Columns (any order): `number` and `customer` (the
//! owner's BAN) required; `trunk`, `status`, `voice`, `fax`, `destination`, `inbound_rate`,
//! `monthly_fee`, `cnam`, `move_from` optional (empty cell = default: no trunk, active, voice, no
//! fax, none, 0, none, none, none). As in `warpd apply`'s `[[numbers]]`, moving a number of
//! another customer is explicit: `move_from` must name its current owner's BAN. An existing number's row is replaced by the line's values.

use std::io::Read;
use std::pin::pin;

use bytes::Bytes;
use futures_util::SinkExt;
use serde::Serialize;
use tokio_postgres::Client;

use crate::rules::{self, trunk as tr};

/// Most lines one import takes.
pub const MAX_LINES: usize = 1_000_000;
/// Most problems one report lists (the count covers all).
pub const MAX_REPORTED: usize = 100;

const COLUMNS: [&str; 11] = [
    "number",
    "customer",
    "trunk",
    "status",
    "voice",
    "fax",
    "destination",
    "inbound_rate",
    "monthly_fee",
    "cnam",
    "move_from",
];

/// One problem of an import: its CSV line (1 = the header) and field.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct LineProblem {
    pub line: u64,
    pub field: String,
    pub message: String,
}

impl std::fmt::Display for LineProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "line {}: {}: {}", self.line, self.field, self.message)
    }
}

fn list(p: &[LineProblem], total: &usize) -> String {
    let mut s: Vec<String> = p.iter().map(|p| format!("  - {p}")).collect();
    if *total > p.len() {
        s.push(format!("  - … and {} more", total - p.len()));
    }
    s.join("\n")
}

/// Why an import applied nothing.
#[derive(Debug, thiserror::Error)]
pub enum NumbersImportError {
    #[error("cannot read the CSV: {0}")]
    Read(#[source] std::io::Error),
    /// Problems of lines (format or against the database); nothing applied.
    #[error("{total} problem(s), nothing applied:\n{}", list(problems, total))]
    Lines {
        problems: Vec<LineProblem>,
        total: usize,
    },
    #[error("database error while {context}: {source}; nothing applied")]
    Db {
        context: &'static str,
        #[source]
        source: tokio_postgres::Error,
    },
}

impl NumbersImportError {
    fn db(context: &'static str) -> impl FnOnce(tokio_postgres::Error) -> NumbersImportError {
        move |source| NumbersImportError::Db { context, source }
    }
}

/// What an import did (or, for a dry run, would do).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct ImportReport {
    pub rows: u64,
    pub inserted: u64,
    pub updated: u64,
    /// existing numbers that changed customer (lines with `move_from`)
    pub moved: u64,
    pub dry_run: bool,
}

impl std::fmt::Display for ImportReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} number(s): {} inserted, {} updated, {} moved{}",
            self.rows,
            self.inserted,
            self.updated,
            self.moved,
            if self.dry_run {
                " (dry run: nothing was changed)"
            } else {
                ""
            }
        )
    }
}

/// Problems collected while checking; counts all, keeps the first [`MAX_REPORTED`].
#[derive(Default)]
struct Problems {
    kept: Vec<LineProblem>,
    total: usize,
}

impl Problems {
    fn push(&mut self, line: u64, field: &str, message: impl Into<String>) {
        self.total += 1;
        if self.kept.len() < MAX_REPORTED {
            self.kept.push(LineProblem {
                line,
                field: field.to_string(),
                message: message.into(),
            });
        }
    }

    fn rule(&mut self, line: u64, e: rules::RuleError) {
        let s = e.to_string();
        match s.split_once(": ") {
            Some((f, m)) => self.push(line, f, m),
            None => self.push(line, "", s),
        }
    }

    /// A rule error reported under `field` (the rule names its own field differently).
    fn rule_as(&mut self, line: u64, field: &str, e: rules::RuleError) {
        let s = e.to_string();
        self.push(
            line,
            field,
            s.split_once(": ").map_or(s.as_str(), |(_, m)| m),
        );
    }

    fn into_result(self) -> Result<(), NumbersImportError> {
        if self.total == 0 {
            Ok(())
        } else {
            Err(NumbersImportError::Lines {
                problems: self.kept,
                total: self.total,
            })
        }
    }
}

/// Appends `v` as one COPY text-format field (`\N` for none).
fn field(out: &mut Vec<u8>, v: Option<&str>) {
    match v {
        None => out.extend_from_slice(b"\\N"),
        Some(s) => {
            for b in s.bytes() {
                match b {
                    b'\\' => out.extend_from_slice(b"\\\\"),
                    b'\t' => out.extend_from_slice(b"\\t"),
                    b'\n' => out.extend_from_slice(b"\\n"),
                    b'\r' => out.extend_from_slice(b"\\r"),
                    _ => out.push(b),
                }
            }
        }
    }
}

fn flag(v: &str) -> Option<bool> {
    match v.to_ascii_lowercase().as_str() {
        "true" | "t" | "yes" | "y" | "1" => Some(true),
        "false" | "f" | "no" | "n" | "0" => Some(false),
        _ => None,
    }
}

/// Checks every line of `input` with the shared rules and renders the valid ones as COPY text
/// lines of the staging table (line, number, customer, trunk, status, voice, fax, destination,
/// inbound_rate and monthly_fee in 1e-7 units, cnam, move_from). Pure: no database.
pub fn stage_lines(input: impl Read) -> Result<(Vec<u8>, u64), NumbersImportError> {
    let mut rdr = csv::ReaderBuilder::new()
        .flexible(true)
        .trim(csv::Trim::All)
        .from_reader(input);
    let mut problems = Problems::default();
    let headers = match rdr.headers() {
        Ok(h) => h.clone(),
        Err(e) => return Err(csv_problem(e, 1)),
    };
    let mut pos = [None::<usize>; 11];
    for (i, h) in headers.iter().enumerate() {
        match COLUMNS.iter().position(|c| c.eq_ignore_ascii_case(h)) {
            Some(c) if pos[c].is_none() => pos[c] = Some(i),
            Some(_) => problems.push(1, h, "column appears twice"),
            None => problems.push(
                1,
                "header",
                format!(
                    "unknown column {} (columns: {})",
                    warpd_core::excerpt::excerpt(h),
                    COLUMNS.join(", ")
                ),
            ),
        }
    }
    for (c, name) in COLUMNS.iter().enumerate().take(2) {
        if pos[c].is_none() {
            problems.push(1, name, "required column missing");
        }
    }
    if problems.total > 0 {
        return problems.into_result().map(|()| (Vec::new(), 0));
    }
    let mut out = Vec::new();
    let mut rows = 0u64;
    let mut rec = csv::StringRecord::new();
    loop {
        let line = rdr.position().line();
        match rdr.read_record(&mut rec) {
            Ok(false) => break,
            Ok(true) => {}
            Err(e) => return Err(csv_problem(e, line)),
        }
        let line = rec.position().map_or(line, |p| p.line());
        rows += 1;
        if rows as usize > MAX_LINES {
            problems.push(line, "file", format!("more than {MAX_LINES} lines"));
            break;
        }
        let get = |c: usize| pos[c].and_then(|i| rec.get(i)).filter(|v| !v.is_empty());
        let before = problems.total;
        let number = get(0).map_or_else(
            || Err(rules::RuleError::invalid("number", "missing")),
            |v| tr::e164("number", v),
        );
        let number = number.map_err(|e| problems.rule(line, e)).ok();
        let customer = get(1);
        match customer {
            None => problems.push(line, "customer", "missing"),
            Some(b) if b.chars().count() > 64 || b.chars().any(char::is_control) => problems.push(
                line,
                "customer",
                format!("{} is not a BAN", warpd_core::excerpt::excerpt(b)),
            ),
            Some(_) => {}
        }
        if let Some(Err(e)) = get(2).map(|t| tr::trunk_name("", t)) {
            problems.rule_as(line, "trunk", e);
        }
        let status = tr::number_status("status", get(3))
            .map_err(|e| problems.rule(line, e))
            .ok();
        let mut bool_of = |c: usize, default: bool| match get(c) {
            None => default,
            Some(v) => flag(v).unwrap_or_else(|| {
                problems.push(
                    line,
                    COLUMNS[c],
                    format!("{} is not true/false", warpd_core::excerpt::excerpt(v)),
                );
                default
            }),
        };
        let (voice, fax) = (bool_of(4, true), bool_of(5, false));
        let destination = get(6)
            .map(|u| tr::sip_uri("destination", u))
            .transpose()
            .map_err(|e| problems.rule(line, e))
            .ok()
            .flatten();
        let mut money = |c: usize| match get(c) {
            None => None,
            Some(v) => match rules::values::parse_rate(v) {
                Ok(r) => Some(r.to_string()),
                Err(why) => {
                    problems.push(line, COLUMNS[c], why);
                    None
                }
            },
        };
        let (rate, fee) = (money(7), money(8));
        let cnam = get(9)
            .map(|v| tr::cnam("cnam", v))
            .transpose()
            .map_err(|e| problems.rule(line, e))
            .ok()
            .flatten();
        if problems.total > before {
            continue;
        }
        let yes = |b: bool| Some(if b { "t" } else { "f" });
        let line_s = line.to_string();
        let cells: [Option<&str>; 12] = [
            Some(&line_s),
            number.as_deref(),
            customer,
            get(2),
            status.map(|s| s.as_str()),
            yes(voice),
            yes(fax),
            destination.as_deref(),
            Some(rate.as_deref().unwrap_or("0")),
            fee.as_deref(),
            cnam.as_deref(),
            get(10),
        ];
        for (i, c) in cells.iter().enumerate() {
            if i > 0 {
                out.push(b'\t');
            }
            field(&mut out, *c);
        }
        out.push(b'\n');
    }
    problems.into_result()?;
    Ok((out, rows))
}

fn csv_problem(e: csv::Error, line: u64) -> NumbersImportError {
    let line = e.position().map_or(line, |p| p.line());
    match e.into_kind() {
        csv::ErrorKind::Io(e) => NumbersImportError::Read(e),
        other => NumbersImportError::Lines {
            problems: vec![LineProblem {
                line,
                field: "file".into(),
                message: match other {
                    csv::ErrorKind::Utf8 { .. } => "not UTF-8".into(),
                    _ => "not valid CSV".into(),
                },
            }],
            total: 1,
        },
    }
}

/// The set-based checks against the database: (line, field, message) of every problem.
const CHECKS: &str = "
    SELECT line, 'number', 'number ' || number || ' is also on line ' || first FROM (
        SELECT line, number, min(line) OVER (PARTITION BY number) AS first FROM numbers_import) d
      WHERE line <> first
    UNION ALL
    SELECT s.line, 'customer', 'customer ' || quote_literal(left(s.customer, 40)) || ' does not exist'
      FROM numbers_import s LEFT JOIN customers c ON c.ban = s.customer WHERE c.id IS NULL
    UNION ALL
    SELECT s.line, 'trunk', 'trunk ' || quote_literal(left(s.trunk, 64)) || ' does not exist'
      FROM numbers_import s LEFT JOIN trunks t ON t.name = s.trunk
      WHERE s.trunk IS NOT NULL AND t.id IS NULL
    UNION ALL
    SELECT s.line, 'trunk', 'trunk ' || quote_literal(s.trunk) || ' belongs to customer ' || tc.ban
           || ', not ' || quote_literal(left(s.customer, 40))
      FROM numbers_import s JOIN trunks t ON t.name = s.trunk JOIN customers tc ON tc.id = t.customer_id
      WHERE tc.ban <> s.customer
    UNION ALL
    SELECT s.line, 'customer', 'number ' || s.number || ' belongs to customer ' || oc.ban
           || CASE WHEN s.move_from IS NULL THEN ': moving it is explicit (move_from = ' || oc.ban || ')'
                   ELSE ', not ' || quote_literal(left(s.move_from, 40)) || ' (move_from)' END
      FROM numbers_import s JOIN numbers n ON n.number = s.number
      JOIN customers oc ON oc.id = n.customer_id
      WHERE oc.ban <> s.customer AND s.move_from IS DISTINCT FROM oc.ban
    ORDER BY 1 LIMIT 100";

const UPSERT: &str = "
    INSERT INTO numbers (number, customer_id, trunk_id, status, voice, fax, destination, inbound_rate,
                         monthly_fee, cnam)
    SELECT s.number, c.id, t.id, s.status::number_status, s.voice, s.fax, s.destination,
           s.inbound_rate / 10000000.0, s.monthly_fee / 10000000.0, s.cnam
      FROM numbers_import s JOIN customers c ON c.ban = s.customer LEFT JOIN trunks t ON t.name = s.trunk
    ON CONFLICT (number) DO UPDATE SET customer_id = EXCLUDED.customer_id, trunk_id = EXCLUDED.trunk_id,
        status = EXCLUDED.status, voice = EXCLUDED.voice, fax = EXCLUDED.fax,
        destination = EXCLUDED.destination, inbound_rate = EXCLUDED.inbound_rate,
        monthly_fee = EXCLUDED.monthly_fee, cnam = EXCLUDED.cnam, updated_at = now()
      WHERE (numbers.customer_id, numbers.trunk_id, numbers.status, numbers.voice, numbers.fax,
             numbers.destination, numbers.inbound_rate, numbers.monthly_fee, numbers.cnam)
            IS DISTINCT FROM (EXCLUDED.customer_id, EXCLUDED.trunk_id, EXCLUDED.status, EXCLUDED.voice,
             EXCLUDED.fax, EXCLUDED.destination, EXCLUDED.inbound_rate, EXCLUDED.monthly_fee, EXCLUDED.cnam)
    RETURNING (xmax = 0)";

/// Imports the numbers of the CSV `input` (see the module doc) in one transaction, audited as
/// `numbers.import` by `actor` (`file`: the name recorded). A dry run checks and counts, then
/// rolls back.
pub async fn import(
    c: &mut Client,
    input: impl Read + Send + 'static,
    file: &str,
    actor: &str,
    dry_run: bool,
) -> Result<ImportReport, NumbersImportError> {
    let (copy, rows) = tokio::task::spawn_blocking(move || stage_lines(input))
        .await
        .map_err(|e| NumbersImportError::Read(std::io::Error::other(e.to_string())))??;
    let tx = c
        .transaction()
        .await
        .map_err(NumbersImportError::db("starting the transaction"))?;
    tx.batch_execute(
        "CREATE TEMP TABLE numbers_import (line bigint NOT NULL, number text NOT NULL, \
           customer text NOT NULL, trunk text, status text NOT NULL, voice boolean NOT NULL, \
           fax boolean NOT NULL, destination text, inbound_rate bigint NOT NULL, monthly_fee bigint, \
           cnam text, move_from text) ON COMMIT DROP",
    )
    .await
    .map_err(NumbersImportError::db("creating the staging table"))?;
    let sink = tx
        .copy_in::<_, Bytes>("COPY numbers_import FROM STDIN")
        .await
        .map_err(NumbersImportError::db("staging the numbers"))?;
    let mut sink = pin!(sink);
    let copy = Bytes::from(copy);
    let mut at = 0;
    while at < copy.len() {
        let end = (at + (1 << 20)).min(copy.len());
        sink.feed(copy.slice(at..end))
            .await
            .map_err(NumbersImportError::db("staging the numbers"))?;
        at = end;
    }
    sink.as_mut()
        .finish()
        .await
        .map_err(NumbersImportError::db("staging the numbers"))?;
    tx.batch_execute("ANALYZE numbers_import")
        .await
        .map_err(NumbersImportError::db("staging the numbers"))?;
    let mut problems = Problems::default();
    for r in tx
        .query(CHECKS, &[])
        .await
        .map_err(NumbersImportError::db("checking the numbers"))?
    {
        problems.push(
            r.get::<_, i64>(0) as u64,
            r.get::<_, &str>(1),
            r.get::<_, String>(2),
        );
    }
    problems.into_result()?;
    let moved: i64 = tx
        .query_one(
            "SELECT count(*) FROM numbers_import s JOIN numbers n ON n.number = s.number \
             JOIN customers c ON c.ban = s.customer WHERE n.customer_id <> c.id",
            &[],
        )
        .await
        .map_err(NumbersImportError::db("checking the numbers"))?
        .get(0);
    let written = tx
        .query(UPSERT, &[])
        .await
        .map_err(NumbersImportError::db("writing the numbers"))?;
    let inserted = written.iter().filter(|r| r.get::<_, bool>(0)).count() as u64;
    let report = ImportReport {
        rows,
        inserted,
        updated: written.len() as u64 - inserted,
        moved: moved as u64,
        dry_run,
    };
    if dry_run {
        return Ok(report);
    }
    if !written.is_empty() {
        let after = serde_json::json!({"file": file, "rows": rows, "inserted": report.inserted,
            "updated": report.updated, "moved": report.moved});
        tx.execute(
            "INSERT INTO audit_log (actor, action, target, before, after) \
             VALUES ($1, 'numbers.import', 'numbers', NULL, $2)",
            &[&actor, &after],
        )
        .await
        .map_err(NumbersImportError::db("writing the audit log"))?;
    }
    tx.commit()
        .await
        .map_err(NumbersImportError::db("committing"))?;
    Ok(report)
}
