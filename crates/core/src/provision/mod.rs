//! Provisioning, pure: the declarative file's schema ([`spec`]), value parsing ([`values`]), CSV
//! rows ([`csv_rows`]), deck scans ([`deck`]), the plan ([`plan`]) and validation findings
//! ([`Issue`]). Writing a plan in one transaction is the daemon's (`warpd::provision`).

pub mod csv_rows;
pub mod deck;
mod issue;
pub mod plan;
pub mod spec;
pub mod values;

pub use issue::Issue;
pub use plan::{Action, Change, DeckAction, DeckKind, DeckPlan, FieldChange, ObjectKind, Plan};
pub use spec::Network;
