//! The result of `warpd apply`: what was (or, for `--dry-run`, would be) created, updated and
//! deleted, what was already as the file says, and which CSV decks are (re)loaded. Serializable
//! (for `--json` style output) and [`Display`](std::fmt::Display) (what the CLI prints).
//!
//! Owns: the plan types and their presentation. Must not touch: the database, files.

use std::collections::BTreeMap;
use std::fmt;

use serde::Serialize;

pub use super::deck::DeckKind;

/// Kind of a provisioned object.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ObjectKind {
    Vendor,
    Gateway,
    Route,
    Partition,
    /// membership of a route in a partition
    PartitionRoute,
    Customer,
    CustomerSourceIp,
    CustomerPartition,
    MarginRule,
    Override,
    Exclusion,
    MediaPolicy,
    /// a customer's credit account (terms only)
    Account,
}

impl ObjectKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ObjectKind::Vendor => "vendor",
            ObjectKind::Gateway => "gateway",
            ObjectKind::Route => "route",
            ObjectKind::Partition => "partition",
            ObjectKind::PartitionRoute => "partition route",
            ObjectKind::Customer => "customer",
            ObjectKind::CustomerSourceIp => "customer source ip",
            ObjectKind::CustomerPartition => "customer partition",
            ObjectKind::MarginRule => "margin rule",
            ObjectKind::Override => "override",
            ObjectKind::Exclusion => "exclusion",
            ObjectKind::MediaPolicy => "media policy",
            ObjectKind::Account => "account",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    Create,
    Update,
    Delete,
}

/// One changed field. `old` is `None` for creates.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct FieldChange {
    pub field: String,
    pub old: Option<String>,
    pub new: Option<String>,
}

/// One object created, updated (with the changed fields) or deleted.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Change {
    pub kind: ObjectKind,
    /// natural key: `northstar`, `northstar/ns-gw1`, `10001 127.0.0.1/32`, ...
    pub name: String,
    pub action: Action,
    pub fields: Vec<FieldChange>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DeckAction {
    /// the table rows of the target are replaced by the CSV rows
    Load,
    /// the database already holds exactly these rows
    Unchanged,
}

/// A CSV deck named by the file.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct DeckPlan {
    pub kind: DeckKind,
    /// route name (vendor rates), customer BAN (sell rates) or the table name (numbering)
    pub target: String,
    /// the CSV path as written in the provisioning file
    pub file: String,
    /// rows the CSV yields (local_calling: both directions)
    pub rows: u64,
    /// rows of the target in the database before this apply
    pub existing_rows: u64,
    pub action: DeckAction,
    /// vendor rates: the deck version the apply created (None before it is applied)
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Option<i64>,
}

/// What `apply` did or would do.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Plan {
    /// the provisioning file (or `<input>`)
    pub source: String,
    pub dry_run: bool,
    /// true once the changes are committed
    pub applied: bool,
    pub changes: Vec<Change>,
    /// objects named by the file that already match it, per kind
    pub unchanged: BTreeMap<ObjectKind, u64>,
    pub decks: Vec<DeckPlan>,
    /// allowed but probably unintended situations
    pub warnings: Vec<String>,
}

impl Plan {
    /// True if applying would write anything.
    pub fn has_changes(&self) -> bool {
        !self.changes.is_empty() || self.decks.iter().any(|d| d.action == DeckAction::Load)
    }

    pub fn count(&self, action: Action) -> usize {
        self.changes.iter().filter(|c| c.action == action).count()
    }

    /// The change of one object, if any.
    pub fn change(&self, kind: ObjectKind, name: &str) -> Option<&Change> {
        self.changes
            .iter()
            .find(|c| c.kind == kind && c.name == name)
    }

    pub fn unchanged_count(&self, kind: ObjectKind) -> u64 {
        self.unchanged.get(&kind).copied().unwrap_or(0)
    }

    /// Total CSV rows (re)loaded.
    pub fn rows_to_load(&self) -> u64 {
        self.decks
            .iter()
            .filter(|d| d.action == DeckAction::Load)
            .map(|d| d.rows)
            .sum()
    }
}

fn q(v: &str) -> String {
    if !v.is_empty()
        && v.chars()
            .all(|c| c.is_ascii_alphanumeric() || "._-:/[],+".contains(c))
    {
        v.to_string()
    } else {
        format!("{v:?}")
    }
}

impl fmt::Display for Plan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mode = if self.dry_run {
            "dry run, nothing written"
        } else if self.applied {
            "applied"
        } else {
            "not applied"
        };
        writeln!(f, "plan for {} ({mode})", self.source)?;
        for w in &self.warnings {
            writeln!(f, "  warning: {w}")?;
        }
        for c in &self.changes {
            let sign = match c.action {
                Action::Create => '+',
                Action::Update => '~',
                Action::Delete => '-',
            };
            write!(f, "  {sign} {} {}", c.kind.as_str(), c.name)?;
            match c.action {
                Action::Create if !c.fields.is_empty() => {
                    let parts: Vec<String> = c
                        .fields
                        .iter()
                        .map(|x| format!("{}={}", x.field, q(x.new.as_deref().unwrap_or("null"))))
                        .collect();
                    write!(f, " ({})", parts.join(", "))?;
                }
                Action::Update => {
                    let parts: Vec<String> = c
                        .fields
                        .iter()
                        .map(|x| {
                            format!(
                                "{}: {} -> {}",
                                x.field,
                                q(x.old.as_deref().unwrap_or("null")),
                                q(x.new.as_deref().unwrap_or("null"))
                            )
                        })
                        .collect();
                    write!(f, ": {}", parts.join("; "))?;
                }
                _ => {}
            }
            writeln!(f)?;
        }
        for d in &self.decks {
            // numbering decks target their whole table: do not repeat its name
            let target = if d.target == d.kind.table() {
                ""
            } else {
                d.target.as_str()
            };
            let sep = if target.is_empty() { "" } else { " " };
            match (d.action, d.kind) {
                (DeckAction::Load, DeckKind::VendorRates) => {
                    write!(
                        f,
                        "  > new deck version for route {}: {} rates (was {}) from {}",
                        d.target, d.rows, d.existing_rows, d.file
                    )?;
                    match d.version {
                        Some(v) => writeln!(f, " (version {v})")?,
                        None => writeln!(f)?,
                    }
                }
                (DeckAction::Unchanged, DeckKind::VendorRates) => writeln!(
                    f,
                    "  = deck of route {}: {} rates from {} unchanged (no new version)",
                    d.target, d.rows, d.file
                )?,
                (DeckAction::Load, _) => writeln!(
                    f,
                    "  > load {}{sep}{target}: {} rows from {} (replacing {} rows)",
                    d.kind.table(),
                    d.rows,
                    d.file,
                    d.existing_rows
                )?,
                (DeckAction::Unchanged, _) => writeln!(
                    f,
                    "  = {}{sep}{target}: {} rows from {} unchanged",
                    d.kind.table(),
                    d.rows,
                    d.file
                )?,
            }
        }
        if !self.unchanged.is_empty() {
            let parts: Vec<String> = self
                .unchanged
                .iter()
                .map(|(k, n)| format!("{n} {}", k.as_str()))
                .collect();
            writeln!(f, "  unchanged: {}", parts.join(", "))?;
        }
        let loads = self
            .decks
            .iter()
            .filter(|d| d.action == DeckAction::Load)
            .count();
        if self.has_changes() {
            write!(
                f,
                "summary: {} to create, {} to update, {} to delete, {} deck(s) to load ({} rows)",
                self.count(Action::Create),
                self.count(Action::Update),
                self.count(Action::Delete),
                loads,
                self.rows_to_load()
            )
        } else {
            write!(f, "summary: no changes")
        }
    }
}
