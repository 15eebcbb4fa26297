//! Deck versions in PostgreSQL: import (parse on a blocking thread while COPY streams into
//! `deck_rates`, then activation in the same transaction), versions, diff, rollback/activate,
//! export, saved mappings. Every write is one transaction; a refused import leaves nothing.
//!
//! Owns: the SQL over `deck_versions`, `deck_rates`, `deck_mappings` and the deck rows of
//! `vendor_rates`. Must not touch: other routing tables, the snapshot (the NOTIFY trigger on
//! vendor_rates makes every warpd reload).

use std::io::{Read, Write};
use std::time::Instant;

use bytes::Bytes;
use chrono::{DateTime, Utc};
use futures_util::{pin_mut, SinkExt, TryStreamExt};
use serde::Serialize;
use tokio_postgres::{Client, GenericClient, Transaction};

use super::parse::{self, detect_layout, open_source, Field, Mapping, Rules, Validator};
use super::DeckError;
use crate::provision::values::{fmt_scaled, parse_scaled};
use crate::provision::Issue;

/// At most this many bad rows are listed (all are counted).
pub const MAX_REPORTED_ISSUES: usize = 100;
/// COPY chunk size.
const CHUNK: usize = 256 * 1024;
/// Largest XLSX read into memory.
pub const MAX_XLSX_BYTES: u64 = 256 << 20;

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

/// One deck version.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct VersionInfo {
    pub id: i64,
    pub route: String,
    pub state: String,
    pub effective_from: String,
    pub rows: i64,
    pub skipped_rows: i64,
    pub source: String,
    pub created_at: String,
    pub created_by: String,
    /// the version routing right now on this route
    pub current: bool,
}

/// Per-prefix comparison of two versions.
#[derive(Clone, Debug, Default, Serialize, utoipa::ToSchema)]
pub struct DiffReport {
    pub from_version: i64,
    pub to_version: i64,
    pub added: i64,
    pub removed: i64,
    pub up: i64,
    pub down: i64,
    /// some zones up, some down, or a zone rate added/removed
    pub changed: i64,
    pub unchanged: i64,
    /// rows with a rate moving by more than the threshold percent
    pub over_threshold: i64,
    pub rows: Vec<DiffRow>,
}

#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct DiffRow {
    /// prefix, or OCN/LATA
    pub key: String,
    pub change: String,
    /// interstate rates (or the single rate), old and new
    pub old_rate: Option<String>,
    pub new_rate: Option<String>,
    pub pct: Option<f64>,
}

fn ts_text(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)
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
        open_source(input, label, sheet.as_deref(), MAX_XLSX_BYTES).map_err(|i| vec![i])?;
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
    fn push(&mut self, row: &super::parse::DeckRow<'_>) {
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
    ensure_baseline(&tx, route.id, &opts.actor).await?;
    let version_id: i64 = tx
        .query_one(
            "INSERT INTO deck_versions (route_id, effective_from, state, source, created_by) \
             VALUES ($1, $2, 'staged', $3, $4) RETURNING id",
            &[&route.id, &effective, &opts.source, &opts.actor],
        )
        .await
        .map_err(DeckError::db("creating the deck version"))?
        .get(0);

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
    tx.execute(
        "UPDATE deck_versions SET columns = $2, fields = $3, row_count = $4, skipped_rows = $5 \
         WHERE id = $1",
        &[
            &version_id,
            &columns,
            &fields,
            &(parsed.rows as i64),
            &(parsed.bad_rows as i64),
        ],
    )
    .await
    .map_err(DeckError::db("recording the deck version"))?;
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
            parsed.layout.unrecognized.join(", ")
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
        activate_incremental(&tx, route.id, version_id, effective, &opts.actor).await?;
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
    audit(
        &tx,
        &opts.actor,
        "deck.import",
        &format!("route {} version {version_id}", opts.route),
        None,
        Some(serde_json::json!({
            "version": version_id, "state": state, "effective_from": report.effective_from,
            "rows": report.rows, "skipped_rows": report.skipped_rows, "source": opts.source,
        })),
    )
    .await?;
    tx.commit()
        .await
        .map_err(DeckError::db("committing the import"))?;
    Ok(report)
}

/// First import on a route that already has rows (from `warpd apply`): keep them as version
/// `baseline`, so diff, rollback and shadow have something to compare with.
async fn ensure_baseline(
    tx: &Transaction<'_>,
    route_id: i64,
    actor: &str,
) -> Result<(), DeckError> {
    let has_versions: bool = tx
        .query_one(
            "SELECT EXISTS (SELECT 1 FROM deck_versions WHERE route_id = $1)",
            &[&route_id],
        )
        .await
        .map_err(DeckError::db("checking deck versions"))?
        .get(0);
    if has_versions {
        return Ok(());
    }
    let id: i64 = tx
        .query_one(
            "INSERT INTO deck_versions (route_id, effective_from, state, source, created_by) \
             VALUES ($1, '-infinity', 'baseline', 'rows before the first import', $2) RETURNING id",
            &[&route_id, &actor],
        )
        .await
        .map_err(DeckError::db("creating the baseline version"))?
        .get(0);
    let n = tx
        .execute(
            "INSERT INTO deck_rates (version_id, prefix, ocn, lata, rate_inter, rate_intra, \
             rate_local, min_seconds, inc_seconds, effective_from, effective_until) \
             SELECT $1, prefix, ocn, lata, rate_inter, rate_intra, rate_local, min_seconds, \
             inc_seconds, effective_from, effective_until FROM vendor_rates \
             WHERE route_id = $2 AND effective_until > now()",
            &[&id, &route_id],
        )
        .await
        .map_err(DeckError::db(
            "keeping the route's rows as the baseline version",
        ))?;
    if n == 0 {
        tx.execute("DELETE FROM deck_versions WHERE id = $1", &[&id])
            .await
            .map_err(DeckError::db("creating the baseline version"))?;
    } else {
        tx.execute(
            "UPDATE deck_versions SET row_count = $2, columns = '{prefix,ocn,lata,interstate,intrastate,local,min_seconds,inc_seconds,effective_from,effective_until}', \
             fields = '{prefix,ocn,lata,interstate,intrastate,local,min_seconds,inc_seconds,effective_from,effective_until}' WHERE id = $1",
            &[&id, &(n as i64)],
        )
        .await
        .map_err(DeckError::db("creating the baseline version"))?;
    }
    Ok(())
}

const VR_COLS: &str = "route_id, prefix, ocn, lata, rate_inter, rate_intra, rate_local, \
                       min_seconds, inc_seconds, effective_from, effective_until";

/// Puts a new version on the route's timeline without rewriting the other versions' rows: the
/// version before it is cut at `effective`, rows inside its window (up to the next live version)
/// are replaced. Equivalent to [`rebuild`] (a test checks it), but proportional to the new deck.
async fn activate_incremental(
    tx: &Transaction<'_>,
    route_id: i64,
    version_id: i64,
    effective: DateTime<Utc>,
    actor: &str,
) -> Result<(), DeckError> {
    tx.execute(
        "UPDATE deck_versions SET state = 'replaced', changed_at = now(), changed_by = $4 \
         WHERE route_id = $1 AND state = 'live' AND effective_from = $2 AND id <> $3",
        &[&route_id, &effective, &version_id, &actor],
    )
    .await
    .map_err(DeckError::db(
        "replacing a version with the same effective time",
    ))?;
    tx.execute(
        "UPDATE deck_versions SET state = 'live' WHERE id = $1",
        &[&version_id],
    )
    .await
    .map_err(DeckError::db("activating the version"))?;
    // next live version after this one; 'infinity' if none
    let next: Option<DateTime<Utc>> = tx
        .query_one(
            "SELECT min(effective_from) FROM deck_versions WHERE route_id = $1 \
             AND state IN ('live', 'baseline') AND effective_from > $2",
            &[&route_id, &effective],
        )
        .await
        .map_err(DeckError::db("finding the next version"))?
        .get(0);
    let next_sql = "coalesce($3::timestamptz, 'infinity')";
    tx.execute(
        &format!(
            "DELETE FROM vendor_rates WHERE route_id = $1 AND effective_from >= $2 \
             AND effective_from < {next_sql}"
        ),
        &[&route_id, &effective, &next],
    )
    .await
    .map_err(DeckError::db("removing the rows the new version replaces"))?;
    // The version before ends at `effective`. If that is already past, its rows are expired:
    // delete them (their history is in deck_rates) instead of rewriting every one of them.
    tx.execute(
        "DELETE FROM vendor_rates WHERE route_id = $1 AND effective_from < $2 \
         AND effective_until > $2 AND $2 <= now()",
        &[&route_id, &effective],
    )
    .await
    .map_err(DeckError::db("ending the previous version now"))?;
    tx.execute(
        "UPDATE vendor_rates SET effective_until = $2 WHERE route_id = $1 \
         AND effective_from < $2 AND effective_until > $2 AND $2 > now()",
        &[&route_id, &effective],
    )
    .await
    .map_err(DeckError::db(
        "ending the previous version at the new effective time",
    ))?;
    tx.execute(
        &format!(
            "INSERT INTO vendor_rates ({VR_COLS}) \
             SELECT $1, prefix, ocn, lata, rate_inter, rate_intra, rate_local, min_seconds, \
             inc_seconds, greatest(effective_from, $2), least(effective_until, {next_sql}) \
             FROM deck_rates WHERE version_id = $4 \
             AND greatest(effective_from, $2) < least(effective_until, {next_sql}) \
             AND least(effective_until, {next_sql}) > now()"
        ),
        &[&route_id, &effective, &next, &version_id],
    )
    .await
    .map_err(DeckError::db("routing the new version's rows"))?;
    prune_expired(tx, route_id).await
}

async fn prune_expired(tx: &Transaction<'_>, route_id: i64) -> Result<(), DeckError> {
    tx.execute(
        "DELETE FROM vendor_rates WHERE route_id = $1 AND effective_until <= now()",
        &[&route_id],
    )
    .await
    .map_err(DeckError::db("pruning expired rows"))?;
    Ok(())
}

/// SQL of the rows a route routes from `now()` on, from its live versions (plus `extra`, a
/// candidate version id, or NULL): `$1` route id, `$2` extra version id (bigint, may be NULL).
pub(crate) const TIMELINE_ROWS: &str = "\
    SELECT v.route_id, d.prefix, d.ocn, d.lata, d.rate_inter, d.rate_intra, d.rate_local, \
           d.min_seconds, d.inc_seconds, greatest(d.effective_from, v.effective_from) AS effective_from, \
           least(d.effective_until, v.next_from) AS effective_until \
    FROM (SELECT id, route_id, effective_from, \
                 lead(effective_from, 1, 'infinity') OVER (ORDER BY effective_from, id) AS next_from \
          FROM (SELECT DISTINCT ON (effective_from) id, route_id, effective_from FROM deck_versions \
                WHERE route_id = $1 AND (state IN ('live', 'baseline') OR id = $2) \
                ORDER BY effective_from, (id = $2) DESC, id DESC) latest) v \
    JOIN deck_rates d ON d.version_id = v.id \
    WHERE greatest(d.effective_from, v.effective_from) < least(d.effective_until, v.next_from) \
      AND least(d.effective_until, v.next_from) > now()";

/// Rewrites a route's future rows from its live versions (after rollback/activate).
async fn rebuild(tx: &Transaction<'_>, route_id: i64) -> Result<(), DeckError> {
    tx.execute(
        "DELETE FROM vendor_rates WHERE route_id = $1 AND effective_until > now()",
        &[&route_id],
    )
    .await
    .map_err(DeckError::db("clearing the route's rows"))?;
    let none: Option<i64> = None;
    tx.execute(
        &format!("INSERT INTO vendor_rates ({VR_COLS}) {TIMELINE_ROWS}"),
        &[&route_id, &none],
    )
    .await
    .map_err(DeckError::db(
        "rewriting the route's rows from its versions",
    ))?;
    prune_expired(tx, route_id).await
}

/// Test/diagnostic hook: rebuilds a route's rows from its versions in one transaction.
pub async fn rebuild_route(client: &mut Client, route: &str) -> Result<(), DeckError> {
    let tx = client
        .transaction()
        .await
        .map_err(DeckError::db("starting a transaction"))?;
    let r = lock_route(&tx, route).await?;
    rebuild(&tx, r.id).await?;
    tx.commit().await.map_err(DeckError::db("committing"))
}

async fn version_route(
    tx: &Transaction<'_>,
    route: &RouteRow,
    route_name: &str,
    version: i64,
) -> Result<(String, DateTime<Utc>), DeckError> {
    let row = tx
        .query_opt(
            "SELECT state, effective_from FROM deck_versions WHERE id = $1 AND route_id = $2",
            &[&version, &route.id],
        )
        .await
        .map_err(DeckError::db("reading the version"))?
        .ok_or_else(|| DeckError::UnknownVersion {
            route: route_name.to_string(),
            version,
        })?;
    Ok((row.get(0), row.get(1)))
}

/// Withdraws a live version (default: the route's newest) and rewrites the route's rows from the
/// versions that remain. Returns the id of the withdrawn version.
pub async fn rollback(
    client: &mut Client,
    route: &str,
    version: Option<i64>,
    actor: &str,
) -> Result<i64, DeckError> {
    let tx = client
        .transaction()
        .await
        .map_err(DeckError::db("starting the rollback"))?;
    let r = lock_route(&tx, route).await?;
    let v = match version {
        Some(v) => v,
        None => tx
            .query_opt(
                "SELECT id FROM deck_versions WHERE route_id = $1 AND state = 'live' \
                 ORDER BY id DESC LIMIT 1",
                &[&r.id],
            )
            .await
            .map_err(DeckError::db("finding the newest version"))?
            .map(|row| row.get(0))
            .ok_or_else(|| {
                DeckError::Conflict(format!(
                    "route {route:?} has no live deck version to roll back"
                ))
            })?,
    };
    let (state, _) = version_route(&tx, &r, route, v).await?;
    if state != "live" {
        return Err(DeckError::Conflict(format!(
            "version {v} of route {route:?} is {state}; only a live version can be rolled back"
        )));
    }
    tx.execute(
        "UPDATE deck_versions SET state = 'rolled_back', changed_at = now(), changed_by = $2 WHERE id = $1",
        &[&v, &actor],
    )
    .await
    .map_err(DeckError::db("marking the version rolled back"))?;
    rebuild(&tx, r.id).await?;
    audit(
        &tx,
        actor,
        "deck.rollback",
        &format!("route {route} version {v}"),
        Some(serde_json::json!({"version": v, "state": "live"})),
        Some(serde_json::json!({"version": v, "state": "rolled_back"})),
    )
    .await?;
    tx.commit()
        .await
        .map_err(DeckError::db("committing the rollback"))?;
    Ok(v)
}

/// Makes a staged (or rolled-back) version live, optionally at a new effective time.
pub async fn activate(
    client: &mut Client,
    route: &str,
    version: i64,
    effective: Option<DateTime<Utc>>,
    actor: &str,
) -> Result<VersionInfo, DeckError> {
    let tx = client
        .transaction()
        .await
        .map_err(DeckError::db("starting the activation"))?;
    let r = lock_route(&tx, route).await?;
    let (state, from) = version_route(&tx, &r, route, version).await?;
    if !matches!(state.as_str(), "staged" | "rolled_back" | "replaced") {
        return Err(DeckError::Conflict(format!(
            "version {version} of route {route:?} is {state}; only a staged, replaced or rolled-back version can be activated"
        )));
    }
    let eff = effective.unwrap_or(from);
    tx.execute(
        "UPDATE deck_versions SET state = 'replaced', changed_at = now(), changed_by = $4 \
         WHERE route_id = $1 AND state = 'live' AND effective_from = $2 AND id <> $3",
        &[&r.id, &eff, &version, &actor],
    )
    .await
    .map_err(DeckError::db(
        "replacing a version with the same effective time",
    ))?;
    tx.execute(
        "UPDATE deck_versions SET state = 'live', effective_from = $2, changed_at = now(), changed_by = $3 WHERE id = $1",
        &[&version, &eff, &actor],
    )
    .await
    .map_err(DeckError::db("activating the version"))?;
    rebuild(&tx, r.id).await?;
    audit(
        &tx,
        actor,
        "deck.activate",
        &format!("route {route} version {version}"),
        Some(serde_json::json!({"version": version, "state": state, "effective_from": ts_text(from)})),
        Some(serde_json::json!({"version": version, "state": "live", "effective_from": ts_text(eff)})),
    )
    .await?;
    tx.commit()
        .await
        .map_err(DeckError::db("committing the activation"))?;
    versions(client, route)
        .await?
        .into_iter()
        .find(|v| v.id == version)
        .ok_or_else(|| DeckError::Internal("activated version vanished".into()))
}

/// Every version of a route, oldest first.
pub async fn versions<C: GenericClient>(c: &C, route: &str) -> Result<Vec<VersionInfo>, DeckError> {
    let exists = c
        .query_opt("SELECT id FROM routes WHERE name = $1", &[&route])
        .await
        .map_err(DeckError::db("looking up the route"))?;
    let Some(r) = exists else {
        return Err(DeckError::UnknownRoute(route.to_string()));
    };
    let route_id: i64 = r.get(0);
    let rows = c
        .query(
            "SELECT id, state, effective_from::text, row_count, skipped_rows, source, \
             created_at, created_by, \
             id = (SELECT id FROM deck_versions WHERE route_id = $1 AND state IN ('live','baseline') \
                   AND effective_from <= now() ORDER BY effective_from DESC, id DESC LIMIT 1) \
             FROM deck_versions WHERE route_id = $1 ORDER BY id",
            &[&route_id],
        )
        .await
        .map_err(DeckError::db("listing versions"))?;
    Ok(rows
        .iter()
        .map(|row| VersionInfo {
            id: row.get(0),
            route: route.to_string(),
            state: row.get(1),
            effective_from: row.get(2),
            rows: row.get(3),
            skipped_rows: row.get(4),
            source: row.get(5),
            created_at: ts_text(row.get(6)),
            created_by: row.get(7),
            current: row.get::<_, Option<bool>>(8).unwrap_or(false),
        })
        .collect())
}

/// Compares two versions prefix by prefix. `limit` rows of detail (changes only).
pub async fn diff_versions<C: GenericClient>(
    c: &C,
    from: i64,
    to: i64,
    warn_pct: f64,
    limit: i64,
) -> Result<DiffReport, DeckError> {
    let sql = "\
        WITH a AS (SELECT coalesce(prefix, ocn || '/' || lata) k, rate_inter i, rate_intra j, rate_local l \
                   FROM deck_rates WHERE version_id = $1), \
             b AS (SELECT coalesce(prefix, ocn || '/' || lata) k, rate_inter i, rate_intra j, rate_local l \
                   FROM deck_rates WHERE version_id = $2), \
             j AS (SELECT coalesce(a.k, b.k) k, a.i ai, b.i bi, a.k IS NULL added, b.k IS NULL removed, \
                     coalesce(b.i > a.i, false) OR coalesce(b.j > a.j, false) OR coalesce(b.l > a.l, false) up, \
                     coalesce(b.i < a.i, false) OR coalesce(b.j < a.j, false) OR coalesce(b.l < a.l, false) down, \
                     (a.i IS NULL) <> (b.i IS NULL) OR (a.j IS NULL) <> (b.j IS NULL) OR (a.l IS NULL) <> (b.l IS NULL) nullchg, \
                     greatest(abs(b.i - a.i) / nullif(a.i, 0), abs(b.j - a.j) / nullif(a.j, 0), \
                              abs(b.l - a.l) / nullif(a.l, 0)) * 100 AS pct \
                   FROM a FULL JOIN b ON a.k = b.k), \
             c AS (SELECT k, ai, bi, pct, CASE WHEN added THEN 'added' WHEN removed THEN 'removed' \
                     WHEN up AND NOT down AND NOT nullchg THEN 'up' \
                     WHEN down AND NOT up AND NOT nullchg THEN 'down' \
                     WHEN up OR down OR nullchg THEN 'changed' ELSE 'unchanged' END AS change FROM j) \
        SELECT change, count(*), count(*) FILTER (WHERE pct > $3::float8), NULL::text, NULL::text, NULL::text, NULL::float8 \
          FROM c GROUP BY change \
        UNION ALL \
        (SELECT 'row', 0, 0, k, change, trim_scale(ai)::text || '|' || coalesce(trim_scale(bi)::text, ''), pct::float8 \
           FROM c WHERE change <> 'unchanged' ORDER BY k LIMIT $4)";
    let rows = c
        .query(sql, &[&from, &to, &warn_pct, &limit])
        .await
        .map_err(DeckError::db("comparing versions"))?;
    let mut d = DiffReport {
        from_version: from,
        to_version: to,
        ..DiffReport::default()
    };
    for row in rows {
        let kind: String = row.get(0);
        let n: i64 = row.get(1);
        match kind.as_str() {
            "added" => d.added = n,
            "removed" => d.removed = n,
            "up" => d.up = n,
            "down" => d.down = n,
            "changed" => d.changed = n,
            "unchanged" => d.unchanged = n,
            _ => {}
        }
        if kind != "row" {
            d.over_threshold += row.get::<_, i64>(2);
            continue;
        }
        let rates: Option<String> = row.get(5);
        let (old, new) = match rates.as_deref().and_then(|s| s.split_once('|')) {
            Some((o, n)) => (
                (!o.is_empty()).then(|| o.to_string()),
                (!n.is_empty()).then(|| n.to_string()),
            ),
            None => (None, None),
        };
        d.rows.push(DiffRow {
            key: row.get(3),
            change: row.get(4),
            old_rate: old,
            new_rate: new,
            pct: row.get(6),
        });
    }
    Ok(d)
}

/// `deck diff`: `to` defaults to the route's newest version, `from` to the live version before
/// `to` on the timeline.
pub async fn diff(
    client: &Client,
    route: &str,
    from: Option<i64>,
    to: Option<i64>,
    warn_pct: f64,
    limit: i64,
) -> Result<DiffReport, DeckError> {
    let vs = versions(client, route).await?;
    let to = match to {
        Some(t) => t,
        None => vs
            .iter()
            .rev()
            .find(|v| v.state != "rolled_back")
            .map(|v| v.id)
            .ok_or_else(|| DeckError::Conflict(format!("route {route:?} has no deck versions")))?,
    };
    let to_v = vs
        .iter()
        .find(|v| v.id == to)
        .ok_or_else(|| DeckError::UnknownVersion {
            route: route.to_string(),
            version: to,
        })?;
    let from = match from {
        Some(f) => {
            if !vs.iter().any(|v| v.id == f) {
                return Err(DeckError::UnknownVersion {
                    route: route.to_string(),
                    version: f,
                });
            }
            f
        }
        None => {
            let row = client
                .query_opt(
                    "SELECT v.id FROM deck_versions v, deck_versions t WHERE t.id = $1 \
                     AND v.route_id = t.route_id AND v.id <> t.id AND v.state IN ('live','baseline') \
                     AND v.effective_from <= t.effective_from \
                     ORDER BY v.effective_from DESC, v.id DESC LIMIT 1",
                    &[&to_v.id],
                )
                .await
                .map_err(DeckError::db("finding the previous version"))?;
            row.map(|r| r.get(0)).ok_or_else(|| {
                DeckError::Conflict(format!(
                    "version {to} of route {route:?} has no earlier version to compare with (give --from)"
                ))
            })?
        }
    };
    diff_versions(client, from, to, warn_pct, limit).await
}

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
