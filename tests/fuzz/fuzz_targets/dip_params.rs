//! Any dip request body (JSON-RPC params, `POST /v1/routing/simulate`) or query string
//! (`GET /v1/route`, with `trunk`), any inbound dip (`did.route` params, `GET /v1/inbound`,
//! RESP `INBOUND` arguments), credential look-up (`GET /v1/credentials`, RESP `CRED`) and
//! source look-up (`GET /v1/source`, RESP `SOURCE`):
//! parsed or refused with an error naming the field, never a panic; a parsed inbound request
//! is routed on a small inbound table without a panic either.
#![no_main]
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use warpd_core::routing::inbound::params::{
    credential_from_args, credential_from_query, inbound_from_args, inbound_from_json,
    inbound_from_query, source_from_args, source_from_query,
};
use warpd_core::routing::inbound::{
    route_inbound, DestinationRow, Inbound, InboundBuilder, NumberRow, NumberStatus, Peers,
    TrunkRow,
};
use warpd_core::routing::params::{dip_from_json, dip_from_query};
use warpd_core::routing::{Rate, Transport};

fn table() -> &'static Inbound {
    static T: OnceLock<Inbound> = OnceLock::new();
    T.get_or_init(|| {
        let mut b = InboundBuilder::new();
        b.trunk(TrunkRow {
            id: 1,
            name: "t1".into(),
            customer_id: 1,
            max_calls: None,
            max_cps: None,
            media_policy: None,
            enabled: true,
            sources: vec![],
        });
        b.destination(DestinationRow {
            id: 1,
            trunk_id: 1,
            uri: None,
            host: Some("10.0.0.1".into()),
            port: 5060,
            transport: Transport::Udp,
            priority: 1,
            weight: 1,
            enabled: true,
        });
        b.number(NumberRow {
            number: "+12125550100".into(),
            customer_id: 1,
            trunk_id: Some(1),
            status: NumberStatus::Active,
            voice: true,
            fax: false,
            destination: None,
            inbound_rate: Rate(1),
            cnam: None,
        });
        b.build().unwrap()
    })
}

fn peers() -> &'static Peers {
    static P: OnceLock<Peers> = OnceLock::new();
    P.get_or_init(|| {
        let mut p = Peers::new();
        p.add_customer(1, "C1", true)
            .add_source("V", true, "0.0.0.0/0".parse().unwrap());
        p
    })
}

fuzz_target!(|data: &[u8]| {
    if let Err(e) = dip_from_json(data, "params") {
        assert!(!e.to_string().is_empty());
    }
    match inbound_from_json(data, "params") {
        Ok(r) => {
            let _ = route_inbound(table(), peers(), &r);
        }
        Err(e) => assert!(!e.to_string().is_empty()),
    }
    if let Ok(q) = std::str::from_utf8(data) {
        let _ = dip_from_query(Some(q));
        if let Ok(r) = inbound_from_query(Some(q)) {
            let _ = route_inbound(table(), peers(), &r);
        }
        let _ = credential_from_query(Some(q));
        let args: Vec<&str> = q.split(' ').collect();
        if let Ok(r) = inbound_from_args(&args) {
            let _ = route_inbound(table(), peers(), &r);
        }
        let _ = credential_from_args(&args);
        let _ = source_from_query(Some(q));
        let _ = source_from_args(&args);
    }
});
