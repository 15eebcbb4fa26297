//! The routing core: an immutable [`Snapshot`] of all routing data, built off the hot path by
//! [`SnapshotBuilder`], and the pure dip procedure over it ([`dip`], [`simulate`]).
//!
//! Owns: LCR, partitions, overrides, exclusions, pricing, dialstrings, the [`Engine`] that holds the
//! current snapshot behind `ArcSwap`.
//! Must not touch: the network, the database, files, the clock (callers pass `now`), except
//! [`Engine`], which reads the clock once per dip.

pub mod api_types;
mod dip;
mod engine;
pub mod inbound;
pub mod model;
mod snapshot;
pub mod stir;
pub mod synthetic;
#[cfg(test)]
mod tests;
mod trie;
mod window;

pub mod params;

pub use api_types::*;
pub use model::*;
pub mod settings;
pub use settings::*;

pub use dip::{attestation, dip, dip_with_full, simulate};
pub use engine::Engine;
pub use snapshot::{BuildError, Part, PartSet, Snapshot, SnapshotBuilder, SnapshotStats};
pub use window::window_open;
