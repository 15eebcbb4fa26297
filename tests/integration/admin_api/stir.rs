//! Issue 20 over the admin API: a customer's STIR/SHAKEN cap set with `PUT
//! /v1/admin/stir/policies` reaches the next dip's attestation (the snapshot reloads); TN ranges
//! are added and removed; bad requests are refused naming the field (422) (an overlap with another
//! customer's range is a 409) and change nothing.

use super::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stir_policies_and_ranges_over_the_admin_api() {
    use Body::*;
    use Expect::*;
    use Who::*;
    let st = start().await;
    // customer 1001 dips London from a US number it does not own: B
    let a = st
        .dip_until("1001", "attest B", |a| a["stir"]["attest"] == "B")
        .await;
    assert_eq!(a["stir"]["orig"], "12125550100", "{a}");

    // its own range: A
    let (s, r) = st
        .request(
            "POST",
            "/v1/admin/stir/tn_ranges",
            Some(&st.ops),
            Some(json!({"customer": "1001", "range": "+12125550100-+12125550199"})),
        )
        .await;
    assert_eq!(s, 201, "{r}");
    let id = r["after"]["id"].to_string();
    st.dip_until("1001", "attest A", |a| a["stir"]["attest"] == "A")
        .await;
    // capped at C by the customer setting
    let (s, r) = st
        .request(
            "PUT",
            "/v1/admin/stir/policies",
            Some(&st.ops),
            Some(json!({"customer": "1001", "max_attest": "C"})),
        )
        .await;
    assert_eq!(s, 201, "{r}");
    st.dip_until("1001", "attest C", |a| a["stir"]["attest"] == "C")
        .await;
    // signing off: no stir in the answer
    st.request(
        "PUT",
        "/v1/admin/stir/policies",
        Some(&st.ops),
        Some(json!({"customer": "1001", "max_attest": "off"})),
    )
    .await;
    st.dip_until("1001", "unsigned", |a| {
        a["action"] == "route" && a.get("stir").is_none()
    })
    .await;
    let (_, list) = st
        .request("GET", "/v1/admin/stir/policies", Some(&st.ro), None)
        .await;
    assert_eq!(list[0]["max_attest"], "off", "{list}");

    st.client
        .execute(
            "INSERT INTO customers (ban, name) VALUES ('2002', 'Other')",
            &[],
        )
        .await
        .unwrap();
    st.refuses(&[
        bad(
            "a cap that is none",
            "PUT",
            "/v1/admin/stir/policies",
            Ops,
            Json(json!({"customer": "1001", "max_attest": "D"})),
            422,
            Field("max_attest"),
        ),
        bad(
            "a reject code that is no Identity failure",
            "PUT",
            "/v1/admin/stir/policies",
            Ops,
            Json(json!({"customer": "1001", "verify_reject_code": 403})),
            422,
            Field("verify_reject_code"),
        ),
        bad(
            "an unknown customer",
            "PUT",
            "/v1/admin/stir/policies",
            Ops,
            Json(json!({"customer": "9999"})),
            404,
            Names("9999"),
        ),
        bad(
            "a readonly token",
            "PUT",
            "/v1/admin/stir/policies",
            Ro,
            Json(json!({"customer": "1001"})),
            403,
            Any,
        ),
        bad(
            "not a range",
            "POST",
            "/v1/admin/stir/tn_ranges",
            Ops,
            Json(json!({"customer": "1001", "range": "+1212555019-+12125550100"})),
            422,
            Field("range"),
        ),
        bad(
            "a range of another customer's numbers",
            "POST",
            "/v1/admin/stir/tn_ranges",
            Ops,
            Json(json!({"customer": "2002", "range": "+12125550150-+12125550250"})),
            409,
            Any,
        ),
        bad(
            "not a range id",
            "DELETE",
            "/v1/admin/stir/tn_ranges/x1",
            Ops,
            Empty,
            422,
            Field("id"),
        ),
    ])
    .await;
    let (s, r) = st
        .request(
            "DELETE",
            &format!("/v1/admin/stir/tn_ranges/{id}"),
            Some(&st.ops),
            None,
        )
        .await;
    assert_eq!(s, 200, "{r}");
    let (s, r) = st
        .request(
            "DELETE",
            "/v1/admin/stir/policies/1001",
            Some(&st.ops),
            None,
        )
        .await;
    assert_eq!(s, 200, "{r}");
    st.dip_until("1001", "back to B", |a| a["stir"]["attest"] == "B")
        .await;
    st.stop().await;
}
