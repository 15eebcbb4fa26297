//! Issue 19: Kamailio reports failed SIP digest authentications as `event=auth_failure` lines of
//! `POST /v1/events`; warpd counts them (`warpd_auth_failures_total{blocked}`), stores no call
//! for them, and the call events of the same body go on as usual.

use super::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auth_failures_are_counted_beside_call_events() {
    let f = Scratch::new();
    let client = demo_db(&f.pg).await;
    let s = start(&f.pg, f.spool.path(), &[]).await;
    let series = |b: &str| format!("warpd_auth_failures_total{{blocked=\"{b}\"}}");
    let failure =
        "event=auth_failure&ts=1700000000.5&src_ip=192.0.2.7&user=acme-trunk&realm=warpd&blocked=0";
    // alone, then with a call event and a failure that blocked its source
    assert_eq!(
        s.events(failure).await,
        (200, json!({"ok": true, "events": 1}))
    );
    let body = format!(
        "{failure}\nevent=end&call_id=auth-ghost-1&hangup=caller\nevent=auth_failure&src_ip=2001:db8::7&user=acme-trunk&realm=warpd&blocked=1\n"
    );
    assert_eq!(
        s.events(&body).await,
        (200, json!({"ok": true, "events": 3}))
    );
    assert_eq!(s.metric(&series("false")).await, Some(2.0));
    assert_eq!(s.metric(&series("true")).await, Some(1.0));
    // the call event was taken; no call for the failures
    let n: i64 = count(
        &client,
        "SELECT count(*) FROM call_events WHERE call_id = 'auth-ghost-1'",
    )
    .await;
    assert_eq!(n, 1);

    // a bad auth_failure line refuses the body, naming its line and field; nothing is counted
    for (line, field) in [
        ("event=auth_failure&user=acme", "line 2: src_ip"),
        (
            "event=auth_failure&src_ip=192.0.2.7&blocked=maybe",
            "line 2: blocked",
        ),
        (
            "event=auth_failure&src_ip=192.0.2.7&password=secret",
            "line 2: password",
        ),
    ] {
        let body = format!("event=end&call_id=auth-ghost-2&hangup=caller\n{line}");
        let (status, err) = s.events(&body).await;
        assert_eq!(status, 400, "{line}: {err}");
        let msg = err["error"].as_str().unwrap_or_default();
        assert!(msg.starts_with(field), "{line}: {err}");
        assert!(!msg.contains("secret"), "the value is echoed: {err}");
    }
    assert_eq!(s.metric(&series("false")).await, Some(2.0));
    let n: i64 = count(
        &client,
        "SELECT count(*) FROM call_events WHERE call_id = 'auth-ghost-2'",
    )
    .await;
    assert_eq!(n, 0, "nothing of a refused body is stored");
    s.stop().await;
}
