//! warpd's pure core: everything that decides, computes or parses, and nothing that waits.
//!
//! Architecture Invariant: **the core does no I/O.** This crate depends on no async runtime,
//! no database driver and no HTTP stack (`tests/crate_graph.rs` checks its normal dependency
//! tree), so a dip, a rating or a deck parse cannot block on the network by construction.
//! The daemon crate (`warpd`) owns every socket, task and connection and calls in here.
#![forbid(unsafe_code)]
#![deny(clippy::unwrap_used, clippy::expect_used)]

pub mod calls;
pub mod cdr;
pub mod credit;
pub mod deck;
pub mod excerpt;
pub mod numbering;
pub mod pgcopy;
pub mod provision;
pub mod routing;
pub mod rules;
