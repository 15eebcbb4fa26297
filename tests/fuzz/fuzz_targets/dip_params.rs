//! Any dip request body (JSON-RPC params, `POST /v1/routing/simulate`) or query string
//! (`GET /v1/route`): parsed or refused with an error naming the field, never a panic.
#![no_main]
use libfuzzer_sys::fuzz_target;
use warpd_core::routing::params::{dip_from_json, dip_from_query};

fuzz_target!(|data: &[u8]| {
    if let Err(e) = dip_from_json(data, "params") {
        assert!(!e.to_string().is_empty());
    }
    if let Ok(q) = std::str::from_utf8(data) {
        let _ = dip_from_query(Some(q));
    }
});
