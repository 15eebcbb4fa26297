//! Tests against the external SIP/media stack: real RTPEngine daemons, Kamailio and SIPp, with an
//! in-process warpd and a throwaway PostgreSQL (harness in `tests/support`). A binary of its own,
//! so `cargo test --test integration` runs everything else without these tools.
//!
//! Concurrency: the tests run in parallel threads, none is serialized. Each RTPEngine relays on an
//! RTP port range of its own (fixed, disjoint ranges in 30000..=30499 for the media tests; the SIP
//! test picks one from 31000 up); ng, SIP, HTTP and database ports are free ports; Kamailio (the
//! SIP test only) runs with its own run directory and control socket.

#[path = "../support/mod.rs"]
mod support;

mod e2e_sip;
mod kamailio_cfg;
mod media_consul;
mod media_e2e;
mod media_rtpengine;
