//! CDRs on the daemon side: the crash-safe local [`spool`], the PostgreSQL side ([`store`]: event
//! rows, batched COPY of CDRs into the monthly partitioned `cdrs` table, rebuild of unfinished
//! calls) and [`query`] / export. Building and rating a CDR are pure and live in
//! `warpd_core::cdr` (re-exported here); applying events and making them durable is
//! `crate::calls::writer`.
//!
//! Owns: `cdrs`, `call_events` (sql/0003_cdr.sql), the spool directory. Must not touch: routing,
//! the live call table (see `crate::calls`), HTTP (see `crate::api::cdrs`).

pub mod query;
pub mod spool;
pub mod store;

pub use warpd_core::cdr::*;
