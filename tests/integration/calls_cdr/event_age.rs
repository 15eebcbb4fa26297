//! The lower time bound of events for calls warpd never saw dipped (issue 16): older than
//! now − (calls.max_call_duration_s + 300 s skew) is refused naming the field, over JSON-RPC and
//! the form surface; nothing is stored; a dipped call is not subject to it.

use super::*;

fn now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn old_events_of_a_call_never_dipped_are_refused() {
    let f = Scratch::new();
    let client = demo_db(&f.pg).await;
    // a 1-hour longest call: the bound is 3,600 + 300 s
    let s = start(
        &f.pg,
        f.spool.path(),
        &[("WARPD_CALLS__MAX_CALL_DURATION_S", "3600")],
    )
    .await;
    let t = now();
    // (call, method, params, refused field)
    let cases = [
        (
            "ok-now",
            "call.end",
            json!({"call_id":"ok-now","ts":t}),
            None,
        ),
        (
            "ok-hour",
            "call.end",
            json!({"call_id":"ok-hour","ts":t - 3600.0}),
            None,
        ),
        (
            "old-end",
            "call.end",
            json!({"call_id":"old-end","ts":t - 4000.0}),
            Some("ts"),
        ),
        (
            "old-30d",
            "call.end",
            json!({"call_id":"old-30d","ts":t - 30.0 * 86_400.0}),
            Some("ts"),
        ),
        (
            "old-answer",
            "call.answer",
            json!({"call_id":"old-answer","ts":t - 4000.0}),
            Some("ts"),
        ),
        (
            "old-ring",
            "call.attempt",
            json!({"call_id":"old-ring","attempt":1,"route_id":"r","sip_code":200,"ts":t,"ring_ts":t - 4000.0}),
            Some("ring_ts"),
        ),
    ];
    for (call_id, method, params, refused) in cases {
        match refused {
            None => s.rpc_ok(method, params).await,
            Some(field) => {
                let (code, msg) = s.rpc_error(method, params).await;
                assert_eq!(code, -32602, "{call_id}: {msg}");
                assert!(msg.starts_with(&format!("{field}: ")), "{call_id}: {msg}");
                assert!(msg.contains("max_call_duration_s"), "{call_id}: {msg}");
            }
        }
        let stored = count(
            &client,
            &format!("SELECT count(*) FROM call_events WHERE call_id = '{call_id}'"),
        )
        .await;
        assert_eq!(stored, i64::from(refused.is_none()), "{call_id}");
    }
    // the form surface: the whole request refused, 400 naming the field
    let (status, body) = s
        .events(&format!(
            "event=end&call_id=form-old&ts={}\nevent=end&call_id=form-ok&ts={t}",
            t - 4000.0
        ))
        .await;
    assert_eq!(status, 400, "{body}");
    assert!(body.to_string().contains("ts"), "{body}");
    // a dipped call is not subject to it: its events are bounded by the call itself
    assert_eq!(s.dip(&call("dipped-old")).await["action"], "route");
    s.rpc_ok("call.end", json!({"call_id":"dipped-old","ts":t - 4000.0}))
        .await;
    s.stop().await;
}
