//! Tests against the external SIP/media stack: real RTPEngine daemons, Kamailio and SIPp, with an
//! in-process warpd and a throwaway PostgreSQL (harness in `tests/support`). A binary of its own,
//! so `cargo test --test integration` runs everything else without these tools.
//!
//! Concurrency: each RTPEngine gets an RTP port range of its own (30000..=30399 split between the
//! media tests; the SIP test picks 31000 and up), ng/SIP ports are free ports, so the tests run in
//! parallel threads.

#[path = "../support/mod.rs"]
mod support;

mod e2e_sip;
mod media_consul;
mod media_e2e;
mod media_rtpengine;
