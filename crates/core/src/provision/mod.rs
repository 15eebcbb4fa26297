//! Provisioning, pure: the declarative file's schema ([`spec`]), value parsing ([`values`]), CSV
//! rows ([`csv_rows`]), deck scans ([`deck`]), the plan ([`plan`]) and validation findings
//! ([`Issue`]), validation of everything before anything is written ([`validate`], the desired
//! state in [`desired`]) and the diff against the current rows ([`state`] → [`diff`]). Writing a
//! plan in one transaction is the daemon's (`warpd::provision`).

pub mod accounts;
pub mod csv_rows;
pub mod deck;
pub mod desired;
pub mod diff;
mod issue;
pub mod plan;
pub mod spec;
pub mod state;
pub mod stir;
pub mod trunks;
pub mod validate;
pub mod values;

pub use issue::Issue;
pub use plan::{Action, Change, DeckAction, DeckKind, DeckPlan, FieldChange, ObjectKind, Plan};
pub use spec::Network;
