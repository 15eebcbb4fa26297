//! Database side of provisioning: reads the current state of the routing tables (inside the apply
//! transaction), fingerprints existing deck rows, and executes the planned writes (row upserts and
//! deletes, deck replacement by DELETE + `COPY FROM STDIN`).
//!
//! Owns: every SQL statement of `warpd apply`. Must not touch: transaction boundaries (the caller
//! begins, commits or rolls back), validation rules, the schema (it only writes rows).
//!
//! Layout: [`state`] reads the current rows, [`execute`] runs the planned row operations, and
//! [`decks`] fingerprints and replaces deck rows (a route's rates as a deck version), [`audit`] writes
//! the apply's audit rows.

mod audit;
mod decks;
mod execute;
mod state;
mod stir;
mod trunks;

pub(crate) use audit::audit_apply;
pub(crate) use decks::{
    deck_digest, deck_owner, load_deck, load_route_version, route_version_at, version_effective,
    Rows,
};
pub(crate) use execute::{execute, Ids};
pub(crate) use state::{load_state, State};
pub(crate) use stir::apply_stir;
pub(crate) use trunks::apply_inbound;
