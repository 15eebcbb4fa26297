//! Issue 19 B: Kamailio identifies a caller with one Call-ID through several dips — the outbound
//! dip by source address first ("403 unknown customer": no customer's source), then the inbound
//! dip (a vendor/peer), else a digest challenge and the dip by the authenticated trunk. Only the
//! dip that takes the call leaves a CDR: the "who are you?" rejects before it leave none.

use std::time::Duration;

use warpd_resp::Value;

use crate::inbound::{resp, stack};
use crate::support::{eventually, Warpd};

async fn cdrs_of(
    client: &tokio_postgres::Client,
    call_id: &str,
) -> Vec<(String, Option<String>, String)> {
    client
        .query(
            "SELECT direction, trunk, disposition FROM cdrs WHERE call_id = $1",
            &[&call_id],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect()
}

/// Answered on attempt 1 (`route_id`), 5 s, ended by the caller.
async fn answered(w: &Warpd, call_id: &str, route_id: &str) {
    let t0 = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
        .floor();
    let (status, e) = w
        .events(&format!(
            "event=attempt&call_id={call_id}&ts={}&attempt=1&route_id={route_id}&sip_code=200\n\
             event=answer&call_id={call_id}&ts={}&attempt=1\n\
             event=end&call_id={call_id}&ts={}&hangup=caller",
            t0 + 1.0,
            t0 + 1.0,
            t0 + 6.0
        ))
        .await;
    assert_eq!(status, 200, "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_cdr_per_call_through_the_identification_chain() {
    let (_pg, client, w) = stack().await;
    let q = |call_id: &str| format!("ani=%2B13105550000&dnis=%2B12125550142&call_id={call_id}");

    // a vendor's call: the dip by source says unknown customer, the inbound dip routes it
    let a = w.dip(&format!("src_ip=192.0.2.7&{}", q("chain-in"))).await;
    assert_eq!(
        (a["sip_code"].as_u64(), a["reason"].as_str()),
        (Some(403), Some("unknown customer")),
        "{a}"
    );
    let r = resp(
        w.resp_addr.expect("RESP listener"),
        &[&[
            "INBOUND",
            "192.0.2.7",
            "+13105550000",
            "+12125550142",
            "chain-in",
        ]],
    )
    .await;
    let Value::Array(b) = &r[0] else {
        panic!("{r:?}")
    };
    let text = |v: &Value| match v {
        Value::Bulk(b) => String::from_utf8_lossy(b).into_owned(),
        other => format!("{other:?}"),
    };
    assert_eq!(text(&b[0]), "route", "{b:?}");
    let dest = text(&b[8]);
    answered(&w, "chain-in", &dest).await;
    let rows = eventually("the inbound CDR", Duration::from_secs(10), || async {
        let rows = cdrs_of(&client, "chain-in").await;
        rows.iter()
            .any(|r| r.2 == "answered")
            .then_some(rows)
            .ok_or("not yet")
    })
    .await;
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(rows[0].0, "inbound", "{rows:?}");

    // an unknown source: unknown customer, no origination peer (403), then its digest-
    // authenticated INVITE (same Call-ID) dips as the trunk
    let a = w
        .dip(&format!("src_ip=203.0.113.9&{}", q("chain-auth")))
        .await;
    assert_eq!(a["sip_code"], 403, "{a}");
    let (_, b) = w
        .get_json(&format!(
            "/v1/inbound?src_ip=203.0.113.9&{}",
            q("chain-auth")
        ))
        .await;
    assert_eq!(
        (b["action"].as_str(), b["code"].as_u64()),
        (Some("reject"), Some(403)),
        "{b}"
    );
    let c = w
        .dip("trunk=acme-main&ani=%2B12125550100&dnis=%2B13125550100&call_id=chain-auth")
        .await;
    assert_eq!(c["action"], "route", "{c}");
    let route = c["routes"][0]["route_id"].as_str().unwrap().to_string();
    answered(&w, "chain-auth", &route).await;
    let rows = eventually("the trunk's CDR", Duration::from_secs(10), || async {
        let rows = cdrs_of(&client, "chain-auth").await;
        rows.iter()
            .any(|r| r.2 == "answered")
            .then_some(rows)
            .ok_or("not yet")
    })
    .await;
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(rows[0].1.as_deref(), Some("acme-main"), "{rows:?}");

    // a known customer's rejected dip still leaves its rejected CDR
    let a = w
        .dip("ban=10001&ani=%2B12125550100&dnis=%2B19005550100&call_id=chain-blocked")
        .await;
    assert_eq!(a["sip_code"], 403, "{a}");
    let rows = eventually("the rejected CDR", Duration::from_secs(10), || async {
        let rows = cdrs_of(&client, "chain-blocked").await;
        (!rows.is_empty()).then_some(rows).ok_or("not yet")
    })
    .await;
    assert_eq!(rows[0].2, "rejected", "{rows:?}");
}
