//! Declarative provisioning (`warpd apply FILE [--dry-run]`): a TOML or YAML file describing vendors,
//! gateways, routes, partitions, customers (with call limits and billing increments), overrides,
//! exclusions, media policies, rate decks and numbering data is made true in the database,
//! idempotently, in ONE transaction. See docs/PROVISIONING.md.
//!
//! Flow: parse ([`spec`]) → validate everything without writing (`validate`, CSV decks in `deck`)
//! → diff against the current rows ([`Plan`]) → write (row upserts/deletes, deck DELETE + COPY) →
//! commit. Any error rolls back; a dry run computes the plan and rolls back.
//!
//! Semantics: the file is the desired state of the objects it names (keyed by vendor name, gateway
//! name within its vendor, route name, partition name, customer BAN; overrides, exclusions and
//! media policies by their identity). Child lists present in the file are replaced to match;
//! objects and child lists the file does not mention are left alone — nothing is ever deleted for
//! being absent.
//!
//! Owns: the provisioning file format and the writes of `warpd apply`. Must not touch: the schema
//! (migrations), the routing snapshot / reload machinery (the database triggers notify it), the CLI.

mod db;
mod error;
pub mod numbers_import;

pub use warpd_core::provision::{csv_rows, spec, values};
use warpd_core::provision::{deck, diff, plan, validate};

use std::path::Path;

use tokio_postgres::Client;

pub use error::{Issue, ProvisionError};
pub use plan::{Action, Change, DeckAction, DeckKind, DeckPlan, FieldChange, ObjectKind, Plan};
pub use spec::Network;
pub use validate::DEFAULT_DIALSTRING;

use deck::{DeckScan, DeckSource};

/// Syntax of a provisioning file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Toml,
    Yaml,
}

impl Format {
    /// `.yaml` / `.yml` is YAML, anything else TOML.
    pub fn from_path(path: &Path) -> Format {
        match path
            .extension()
            .and_then(|e| e.to_str())
            .map(str::to_ascii_lowercase)
        {
            Some(e) if e == "yaml" || e == "yml" => Format::Yaml,
            _ => Format::Toml,
        }
    }
}

/// Key of the transaction-scoped advisory lock that serializes concurrent applies.
const APPLY_LOCK: i64 = 0x7761_7270_6170_706c; // "warpappl"

/// Parses a provisioning file (no validation beyond the syntax and field names/types).
pub fn parse(text: &str, format: Format, source: &str) -> Result<Network, ProvisionError> {
    let res = match format {
        Format::Toml => {
            serde_path_to_error::deserialize(toml::Deserializer::new(text)).map_err(|e| {
                let path = e.path().to_string();
                (path, e.into_inner().to_string())
            })
        }
        Format::Yaml => serde_path_to_error::deserialize(serde_yaml::Deserializer::from_str(text))
            .map_err(|e| {
                let path = e.path().to_string();
                (path, e.into_inner().to_string())
            }),
    };
    res.map_err(|(path, msg)| ProvisionError::Parse {
        file: source.to_string(),
        message: if path == "." || path.is_empty() {
            msg.trim().to_string()
        } else {
            format!("at {path}: {}", msg.trim())
        },
    })
}

/// Who an apply is audited as when the caller does not say (`apply_by` / `apply_str_by` do).
pub const DEFAULT_ACTOR: &str = "apply";

/// Applies the provisioning file at `path` (TOML, or YAML for `.yaml`/`.yml`). CSV paths in it are
/// relative to its directory. With `dry_run` nothing is written; the plan says what would be.
/// Audited as [`DEFAULT_ACTOR`].
pub async fn apply(
    client: &mut Client,
    path: &Path,
    dry_run: bool,
) -> Result<Plan, ProvisionError> {
    apply_by(client, path, dry_run, DEFAULT_ACTOR).await
}

/// [`apply`], audited as `actor` (the CLI user, `--actor`, an admin token).
pub async fn apply_by(
    client: &mut Client,
    path: &Path,
    dry_run: bool,
    actor: &str,
) -> Result<Plan, ProvisionError> {
    let text = tokio::fs::read_to_string(path)
        .await
        .map_err(|source| ProvisionError::Read {
            file: path.to_path_buf(),
            source,
        })?;
    let base = path.parent().unwrap_or(Path::new(""));
    let source = path.display().to_string();
    let input = Input {
        text: &text,
        format: Format::from_path(path),
        base,
        source: &source,
    };
    run(client, &input, dry_run, actor).await
}

/// Like [`apply`] for a file held in memory; CSV paths are relative to `base_dir`.
pub async fn apply_str(
    client: &mut Client,
    text: &str,
    format: Format,
    base_dir: &Path,
    dry_run: bool,
) -> Result<Plan, ProvisionError> {
    apply_str_by(client, text, format, base_dir, dry_run, DEFAULT_ACTOR).await
}

/// [`apply_str`], audited as `actor`.
pub async fn apply_str_by(
    client: &mut Client,
    text: &str,
    format: Format,
    base_dir: &Path,
    dry_run: bool,
    actor: &str,
) -> Result<Plan, ProvisionError> {
    let input = Input {
        text,
        format,
        base: base_dir,
        source: "<input>",
    };
    run(client, &input, dry_run, actor).await
}

/// A provisioning file to apply.
struct Input<'a> {
    text: &'a str,
    format: Format,
    /// directory CSV paths are relative to
    base: &'a Path,
    /// the name used in messages
    source: &'a str,
}

/// A deck named by the file and who it belongs to.
struct NamedDeck {
    src: DeckSource,
    /// route name, customer BAN, or table name
    target: String,
}

/// The id of a deck's owner in the database: `Some(None)` for a table-wide deck, `None` for a
/// route / customer this apply creates.
fn target_id(state: &db::State, kind: &DeckKind, target: &str) -> Option<Option<i64>> {
    match kind {
        DeckKind::VendorRates => state.routes.get(target).map(|r| Some(r.id)),
        DeckKind::CustomerRates => state.customers.get(target).map(|c| Some(c.id)),
        _ => Some(None),
    }
}

fn named_decks(d: &validate::Desired) -> Vec<NamedDeck> {
    let routes = d.routes.iter().filter_map(|r| {
        r.deck.clone().map(|src| NamedDeck {
            src,
            target: r.name.clone(),
        })
    });
    let sells = d.customers.iter().filter_map(|c| {
        c.sell.clone().map(|src| NamedDeck {
            src,
            target: c.ban.clone(),
        })
    });
    let numbering = d.numbering.iter().map(|src| NamedDeck {
        target: src.kind.table().to_string(),
        src: src.clone(),
    });
    routes.chain(sells).chain(numbering).collect()
}

async fn scan_deck(src: &DeckSource) -> Result<DeckScan, ProvisionError> {
    let s = src.clone();
    tokio::task::spawn_blocking(move || deck::scan(&s, &mut |_| true))
        .await
        .map_err(|e| ProvisionError::Internal(format!("CSV reader for {}: {e}", src.label)))
}

async fn run(
    client: &mut Client,
    input: &Input<'_>,
    dry_run: bool,
    actor: &str,
) -> Result<Plan, ProvisionError> {
    let (text, format, base, source) = (input.text, input.format, input.base, input.source);
    let net = parse(text, format, source)?;
    let (mut desired, mut issues) = validate::build(&net, source, base);
    let mut inbound =
        warpd_core::provision::trunks::build(&net.trunks, &net.numbers, source, &mut issues);
    warpd_core::provision::trunks::build_origination(
        &net.origination_sources,
        source,
        &mut issues,
        &mut inbound,
    );
    let stir = warpd_core::provision::stir::build(&net.stir, source, &mut issues);
    let accounts = warpd_core::provision::accounts::build(&net.customers, source, &mut issues);

    let tx = client
        .transaction()
        .await
        .map_err(|e| ProvisionError::db("beginning the apply transaction", e))?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&APPLY_LOCK])
        .await
        .map_err(|e| ProvisionError::db("waiting for other applies to finish", e))?;
    let state = db::load_state(&tx).await?;
    let warnings = validate::check_refs(&mut desired, &state, source, &mut issues);

    let decks = named_decks(&desired);
    let mut scans = Vec::with_capacity(decks.len());
    for nd in &decks {
        let scan = scan_deck(&nd.src).await?;
        issues.extend(scan.issues.iter().cloned());
        if scan.suppressed > 0 {
            issues.push(Issue::new(
                &nd.src.label,
                "",
                format!("{} more problem(s) not shown", scan.suppressed),
            ));
        }
        scans.push(scan);
    }
    if !issues.is_empty() {
        // dropping the transaction rolls it back; say so explicitly anyway
        let _ = tx.rollback().await;
        tracing::warn!(
            file = source,
            problems = issues.len(),
            "provisioning file rejected"
        );
        return Err(ProvisionError::Invalid {
            file: source.to_string(),
            issues,
        });
    }

    let mut diff = diff::diff(&desired, &state);
    let current_accounts = crate::credit::store::load_terms(&tx)
        .await
        .map_err(|e| ProvisionError::db("reading the credit accounts", e))?;
    let (account_changes, account_writes) =
        warpd_core::provision::accounts::diff(&accounts, &current_accounts);
    diff.changes.extend(account_changes);
    let mut deck_plans = Vec::with_capacity(decks.len());
    // per deck: the route's deck version a new version replaces (id, rows)
    let mut replaces = Vec::with_capacity(decks.len());
    for (nd, scan) in decks.iter().zip(&scans) {
        let rows = scan.digest.rows;
        let (existing, same, current) =
            match (nd.src.kind, target_id(&state, &nd.src.kind, &nd.target)) {
                // a new route / customer has no rows yet
                (_, None) => (0, rows == 0, None),
                // a route's rates are compared with its version in force when they would take over
                // (or, before its first version, with its rows)
                (DeckKind::VendorRates, Some(Some(route_id))) => {
                    let at = db::version_effective(&tx, route_id, nd.src.effective_from).await?;
                    match db::route_version_at(&tx, route_id, at).await? {
                        // a version made by an apply carries its fingerprint: nothing to read
                        Some(v) if v.digest.is_some() => {
                            let same = v.digest == Some(scan.digest.to_text());
                            (v.rows, same, Some((v.id, v.rows)))
                        }
                        Some(v) => {
                            let (n, digest) =
                                db::deck_digest(&tx, &db::Rows::version(v.id), rows).await?;
                            (n, digest == Some(scan.digest), Some((v.id, n)))
                        }
                        None => {
                            let target = db::Rows::of(DeckKind::VendorRates, Some(route_id))?;
                            let (n, digest) = db::deck_digest(&tx, &target, rows).await?;
                            (n, digest == Some(scan.digest), None)
                        }
                    }
                }
                (kind, Some(owner)) => {
                    let (n, digest) =
                        db::deck_digest(&tx, &db::Rows::of(kind, owner)?, rows).await?;
                    (n, digest == Some(scan.digest), None)
                }
            };
        replaces.push(current);
        deck_plans.push(DeckPlan {
            kind: nd.src.kind,
            target: nd.target.clone(),
            file: nd.src.label.clone(),
            rows,
            existing_rows: existing,
            action: if same {
                DeckAction::Unchanged
            } else {
                DeckAction::Load
            },
            version: None,
        });
    }

    let mut plan = Plan {
        source: source.to_string(),
        dry_run,
        applied: false,
        changes: diff.changes,
        unchanged: diff.unchanged,
        decks: deck_plans,
        warnings,
    };
    if dry_run {
        let _ = tx.rollback().await;
        return Ok(plan);
    }

    let mut ids = db::Ids::new(&state);
    db::execute(&tx, &desired, &diff.ops, &mut ids).await?;
    if !inbound.is_empty() {
        // after the customers the file creates; an issue here rolls everything back
        let done = db::apply_inbound(&tx, &inbound, source).await?;
        tracing::info!(
            file = source,
            trunks = done.trunks,
            numbers = done.numbers,
            moved = done.moved,
            "provisioned trunks and numbers"
        );
    }
    if !stir.is_empty() {
        // after the trunks the file creates; an issue here rolls everything back
        let done = db::apply_stir(&tx, &stir, source).await?;
        tracing::info!(
            file = source,
            policies = done.policies,
            tn_ranges = done.ranges,
            "provisioned STIR/SHAKEN settings"
        );
    }
    // after the customers the file creates (an account names its customer); terms only, the
    // balance moves through the ledger alone
    for (ban, terms) in &account_writes {
        crate::credit::store::put_terms(&tx, ban, terms)
            .await
            .map_err(|e| ProvisionError::db(format!("writing the account of customer {ban}"), e))?;
    }
    for ((nd, dp), current) in decks.iter().zip(plan.decks.iter_mut()).zip(&replaces) {
        if dp.action != DeckAction::Load {
            continue;
        }
        if nd.src.kind == DeckKind::VendorRates {
            // one timeline: a route's rates are a deck version, as if `warpd deck import`ed
            let v = db::load_route_version(&tx, &nd.src, &nd.target, *current, actor).await?;
            dp.version = Some(v);
        } else {
            let owner = db::deck_owner(&ids, nd.src.kind, &nd.target)?;
            db::load_deck(&tx, &nd.src, &db::Rows::of(nd.src.kind, owner)?).await?;
        }
    }
    db::audit_apply(&tx, actor, &plan).await?;
    tx.commit()
        .await
        .map_err(|e| ProvisionError::db("committing the apply transaction", e))?;
    plan.applied = true;
    tracing::info!(
        file = source,
        created = plan.count(Action::Create),
        updated = plan.count(Action::Update),
        deleted = plan.count(Action::Delete),
        rows_loaded = plan.rows_to_load(),
        "provisioning applied"
    );
    Ok(plan)
}
