//! Deck import: the file is parsed and validated on a blocking thread while its good rows stream
//! into `deck_rates` by COPY, then the new version is activated in the same transaction. A
//! route's first import keeps the rows it already had as version `baseline`.
//!
//! Owns: [`ImportOptions`], [`ImportReport`], the parse/COPY hand-over, the refusal of a deck
//! with bad rows. Must not touch: the timeline rules (see `timeline`), other routes.

use std::io::Read;
use std::time::Instant;

use bytes::Bytes;
use chrono::{DateTime, Utc};
use futures_util::{pin_mut, SinkExt};
use serde::Serialize;
use tokio_postgres::Client;

use super::diff::{diff_versions, DiffReport};
use super::timeline::activate_incremental;
use super::version::{audit_version, new_version, record_layout, VersionAudit, VersionLayout};
use super::{lock_route, saved_mapping, ts_text, Since};
use crate::deck::parse::{self, detect_layout, open_source, Limits, Mapping, Rules, Validator};
use crate::deck::DeckError;
use warpd_core::provision::Issue;

/// At most this many bad rows are listed (all are counted).
pub const MAX_REPORTED_ISSUES: usize = 100;
/// COPY chunk size.
const CHUNK: usize = 256 * 1024;

/// What to import and how.
#[derive(Clone, Debug)]
pub struct ImportOptions {
    pub route: String,
    /// when the version takes over (None = now)
    pub effective: Option<DateTime<Utc>>,
    /// validate, diff and warn, then roll back
    pub dry_run: bool,
    /// load the good rows and report the bad ones
    pub skip_invalid: bool,
    /// store the version without routing it (activate later)
    pub stage: bool,
    /// header → field, on top of the vendor's saved mapping
    pub mapping: Mapping,
    /// save the (merged) mapping with the vendor
    pub save_mapping: bool,
    pub sheet: Option<String>,
    /// file name shown in messages and kept with the version
    pub source: String,
    /// who imports (audit)
    pub actor: String,
    /// warn when a rate moves by more than this percent against the previous version
    pub warn_change_pct: f64,
}

impl ImportOptions {
    pub fn new(route: &str, source: &str, actor: &str) -> ImportOptions {
        ImportOptions {
            route: route.to_string(),
            effective: None,
            dry_run: false,
            skip_invalid: false,
            stage: false,
            mapping: Mapping::default(),
            save_mapping: false,
            sheet: None,
            source: source.to_string(),
            actor: actor.to_string(),
            warn_change_pct: 25.0,
        }
    }
}

/// Outcome of an import.
#[derive(Clone, Debug, Serialize)]
pub struct ImportReport {
    pub route: String,
    /// None on a dry run
    pub version: Option<i64>,
    pub state: &'static str,
    pub effective_from: String,
    pub format: parse::Format,
    pub columns: Vec<String>,
    pub fields: Vec<&'static str>,
    pub rows: u64,
    pub skipped_rows: u64,
    pub duplicates_dropped: u64,
    pub latin1_fields: u64,
    /// bad rows (with --skip-invalid), at most MAX_REPORTED_ISSUES
    pub issues: Vec<Issue>,
    pub warnings: Vec<String>,
    /// against the version in force before this one at its effective time, if any
    pub diff: Option<DiffReport>,
    pub dry_run: bool,
    pub parse_copy_ms: u64,
    /// comparing with the previous version (sanity warnings)
    pub diff_ms: u64,
    pub activate_ms: u64,
}

/// Result of the blocking parse task.
struct Parsed {
    format: parse::Format,
    layout: parse::Layout,
    rows: u64,
    bad_rows: u64,
    issues: Vec<Issue>,
    duplicates_dropped: u64,
    latin1_fields: u64,
}

/// Parses and validates `input`, sending COPY chunks of valid rows to `tx` (stops sending after
/// the first bad row unless `skip_invalid`, but keeps validating to report every bad row).
struct ParseJob {
    label: String,
    sheet: Option<String>,
    mapping: Mapping,
    rules: Rules,
    version_id: i64,
    skip_invalid: bool,
}

fn parse_blocking(
    input: Box<dyn Read + Send>,
    job: ParseJob,
    tx: tokio::sync::mpsc::Sender<Bytes>,
) -> Result<Parsed, Vec<Issue>> {
    let ParseJob {
        label,
        sheet,
        mapping,
        rules,
        version_id,
        skip_invalid,
    } = job;
    let label = label.as_str();
    let (format, mut src) =
        open_source(input, label, sheet.as_deref(), &Limits::default()).map_err(|i| vec![i])?;
    let layout = detect_layout(label, src.headers(), &mapping, rules.ocn_lata)?;
    let mut v = Validator::new(label, layout.clone(), rules);
    let mut out = Parsed {
        format,
        layout,
        rows: 0,
        bad_rows: 0,
        issues: vec![],
        duplicates_dropped: 0,
        latin1_fields: 0,
    };
    let mut sink = CopySink {
        buf: Vec::with_capacity(CHUNK + 4096),
        sending: true,
        tx,
        version_id,
    };
    let mut fields = Vec::new();
    let note = |out: &mut Parsed, is: Vec<Issue>| {
        out.bad_rows += 1;
        for i in is {
            if out.issues.len() < MAX_REPORTED_ISSUES {
                out.issues.push(i);
            }
        }
    };
    loop {
        let line = match src.next_row(&mut fields) {
            Ok(None) => break,
            Ok(Some(l)) => l,
            Err(i) => {
                note(&mut out, vec![i]);
                if !skip_invalid {
                    sink.sending = false;
                }
                // a syntax error in the middle of a CSV ends the read (the reader cannot resync)
                if i_is_fatal(&out) {
                    break;
                }
                continue;
            }
        };
        match v.check(line, &fields) {
            Ok(Some(row)) => {
                out.rows += 1;
                sink.push(&row);
            }
            Ok(None) => {}
            Err(is) => {
                note(&mut out, is);
                if !skip_invalid {
                    sink.sending = false;
                }
            }
        }
    }
    // a deck with a zone column: its rows, pivoted per prefix, come out at the end
    v.finish(|row| {
        out.rows += 1;
        sink.push(&row);
    });
    sink.flush();
    out.duplicates_dropped = v.duplicates_dropped;
    out.latin1_fields = src.latin1_fields();
    Ok(out)
}

/// The parse side of the COPY: good rows in COPY text, handed over in chunks of [`CHUNK`] bytes.
/// Stops sending once a bad row refuses the import or the COPY side gave up.
struct CopySink {
    buf: Vec<u8>,
    sending: bool,
    tx: tokio::sync::mpsc::Sender<Bytes>,
    version_id: i64,
}

impl CopySink {
    fn push(&mut self, row: &parse::DeckRow<'_>) {
        if !self.sending {
            return;
        }
        row.write_copy(self.version_id, &mut self.buf);
        if self.buf.len() >= CHUNK {
            let full = std::mem::replace(&mut self.buf, Vec::with_capacity(CHUNK + 4096));
            if self.tx.blocking_send(Bytes::from(full)).is_err() {
                // the COPY side gave up (database error); it reports why
                self.sending = false;
            }
        }
    }

    fn flush(self) {
        if self.sending && !self.buf.is_empty() {
            let _ = self.tx.blocking_send(Bytes::from(self.buf));
        }
    }
}

fn i_is_fatal(out: &Parsed) -> bool {
    out.issues
        .last()
        .is_some_and(|i| i.message.starts_with("cannot read"))
}

/// Imports a deck from `input`. See [`ImportOptions`]. Nothing is changed unless the whole
/// import succeeds (and it is not a dry run).
pub async fn import(
    client: &mut Client,
    input: Box<dyn Read + Send>,
    opts: &ImportOptions,
) -> Result<ImportReport, DeckError> {
    let t0 = Instant::now();
    let tx = client
        .transaction()
        .await
        .map_err(DeckError::db("starting the import transaction"))?;
    let route = lock_route(&tx, &opts.route).await?;
    let saved = saved_mapping(&tx, route.vendor_id).await?;
    let mapping = saved.merged(&opts.mapping);
    let effective: DateTime<Utc> = match opts.effective {
        Some(e) => e,
        None => tx
            .query_one("SELECT now()", &[])
            .await
            .map_err(DeckError::db("reading the clock"))?
            .get(0),
    };
    let version_id = new_version(
        &tx,
        route.id,
        Since::At(effective),
        &opts.source,
        &opts.actor,
    )
    .await?;

    // parse on a blocking thread, COPY here: the two overlap
    let (chunk_tx, mut chunk_rx) = tokio::sync::mpsc::channel::<Bytes>(8);
    let job = ParseJob {
        label: opts.source.clone(),
        sheet: opts.sheet.clone(),
        mapping: mapping.clone(),
        rules: Rules {
            ocn_lata: route.ocn_lata,
            ..Rules::default()
        },
        version_id,
        skip_invalid: opts.skip_invalid,
    };
    let task = tokio::task::spawn_blocking(move || parse_blocking(input, job, chunk_tx));
    let sink = tx
        .copy_in::<_, Bytes>(&format!(
            "COPY deck_rates ({}) FROM STDIN",
            parse::COPY_COLUMNS
        ))
        .await
        .map_err(DeckError::db("starting COPY"))?;
    pin_mut!(sink);
    let mut copy_err = None;
    while let Some(chunk) = chunk_rx.recv().await {
        if let Err(e) = sink.send(chunk).await {
            copy_err = Some(e);
            break;
        }
    }
    drop(chunk_rx);
    let parsed = task
        .await
        .map_err(|e| DeckError::Internal(format!("deck parser task: {e}")))?;
    if let Some(e) = copy_err {
        return Err(DeckError::db("copying deck rows")(e));
    }
    let parsed = match parsed {
        Ok(p) => p,
        Err(issues) => {
            return Err(DeckError::Invalid {
                source_label: opts.source.clone(),
                total: issues.len() as u64,
                issues,
            })
        }
    };
    if parsed.bad_rows > 0 && !opts.skip_invalid {
        // dropping the unfinished sink aborts the COPY; the transaction rolls back on drop
        return Err(DeckError::Invalid {
            source_label: opts.source.clone(),
            issues: parsed.issues,
            total: parsed.bad_rows,
        });
    }
    let copied = sink
        .as_mut()
        .finish()
        .await
        .map_err(DeckError::db("copying deck rows"))?;
    if copied != parsed.rows {
        return Err(DeckError::Internal(format!(
            "COPY stored {copied} rows, the parser produced {}",
            parsed.rows
        )));
    }
    if parsed.rows == 0 {
        return Err(DeckError::Invalid {
            source_label: opts.source.clone(),
            issues: vec![Issue::new(
                &opts.source,
                "",
                "no valid rows: nothing to import",
            )],
            total: 1,
        });
    }
    let parse_copy_ms = t0.elapsed().as_millis() as u64;
    let columns = parsed.layout.headers.clone();
    let fields: Vec<&'static str> = parsed.layout.fields.iter().map(|f| f.name()).collect();
    let layout = VersionLayout {
        columns: &columns,
        fields: &fields,
        rows: parsed.rows,
        skipped_rows: parsed.bad_rows,
        digest: None,
    };
    record_layout(&tx, version_id, &layout).await?;
    if opts.save_mapping && !opts.mapping.0.is_empty() {
        let m = serde_json::to_value(&mapping).map_err(|e| DeckError::Internal(e.to_string()))?;
        tx.execute(
            "INSERT INTO deck_mappings (vendor_id, mapping) VALUES ($1, $2) \
             ON CONFLICT (vendor_id) DO UPDATE SET mapping = EXCLUDED.mapping, updated_at = now()",
            &[&route.vendor_id, &m],
        )
        .await
        .map_err(DeckError::db("saving the mapping"))?;
    }

    // sanity: against the version in force just before this one takes over
    let mut warnings = vec![];
    if !parsed.layout.unrecognized.is_empty() {
        warnings.push(format!(
            "columns ignored (not recognized): {}",
            warpd_core::excerpt::list(&parsed.layout.unrecognized)
        ));
    }
    if parsed.latin1_fields > 0 {
        warnings.push(format!(
            "{} field(s) were not UTF-8 and were read as Latin-1",
            parsed.latin1_fields
        ));
    }
    let prev: Option<i64> = tx
        .query_opt(
            "SELECT id FROM deck_versions WHERE route_id = $1 AND state IN ('live', 'baseline') \
             AND effective_from <= $2 ORDER BY effective_from DESC, id DESC LIMIT 1",
            &[&route.id, &effective],
        )
        .await
        .map_err(DeckError::db("finding the previous version"))?
        .map(|r| r.get(0));
    let t_diff = Instant::now();
    let diff = match prev {
        Some(p) => {
            let d = diff_versions(&tx, p, version_id, opts.warn_change_pct, 20).await?;
            if d.over_threshold > 0 {
                warnings.push(format!(
                    "{} prefix(es) change rate by more than {}% against version {p}",
                    d.over_threshold, opts.warn_change_pct
                ));
            }
            if d.removed > 0 {
                warnings.push(format!(
                    "{} prefix(es) of version {p} are not in this deck (they stop routing on this route)",
                    d.removed
                ));
            }
            Some(d)
        }
        None => None,
    };

    let diff_ms = t_diff.elapsed().as_millis() as u64;
    let t1 = Instant::now();
    let state = if opts.dry_run {
        "dry_run"
    } else if opts.stage {
        "staged"
    } else {
        activate_incremental(&tx, route.id, version_id, Since::At(effective), &opts.actor).await?;
        "live"
    };
    let activate_ms = t1.elapsed().as_millis() as u64;
    let report = ImportReport {
        route: opts.route.clone(),
        version: (!opts.dry_run).then_some(version_id),
        state,
        effective_from: ts_text(effective),
        format: parsed.format,
        columns,
        fields,
        rows: parsed.rows,
        skipped_rows: parsed.bad_rows,
        duplicates_dropped: parsed.duplicates_dropped,
        latin1_fields: parsed.latin1_fields,
        issues: parsed.issues,
        warnings,
        diff,
        dry_run: opts.dry_run,
        parse_copy_ms,
        diff_ms,
        activate_ms,
    };
    if opts.dry_run {
        tx.rollback()
            .await
            .map_err(DeckError::db("rolling back the dry run"))?;
        return Ok(report);
    }
    audit_version(
        &tx,
        &VersionAudit {
            route: &opts.route,
            version_id,
            state,
            effective: Since::At(effective),
            rows: report.rows,
            skipped_rows: report.skipped_rows,
            source: &opts.source,
            actor: &opts.actor,
            before: None,
            via: "deck import",
        },
    )
    .await?;
    tx.commit()
        .await
        .map_err(DeckError::db("committing the import"))?;
    Ok(report)
}
