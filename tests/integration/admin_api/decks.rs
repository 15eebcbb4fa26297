//! Decks over the admin API: upload (raw and multipart), the next dip changing without a restart,
//! a refused deck changing nothing, staged versions, shadow, diff, export, activate, rollback.

use serde_json::Value;

use super::{start, Stack};

/// Before any deck London goes to beta at 0.02; a good deck for alpha at 0.01 makes alpha the
/// first route of the next dips (checked by dipping until it is).
async fn alpha_deck_goes_live(st: &Stack) {
    let ops = st.ops.as_str();
    // a real dip (the shadow below replays recorded dips), priced by the admin simulation
    assert_eq!(st.london().await["routes"][0]["route_id"], "beta");
    let a = st
        .priced("ban=1001&ani=%2B12125550100&dnis=%2B442071234567")
        .await;
    assert_eq!(
        (
            a["routes"][0]["route_id"].as_str(),
            a["routes"][0]["rate"].as_f64()
        ),
        (Some("beta"), Some(0.02)),
        "{a}"
    );
    let (s, r) = st
        .upload(
            "/v1/admin/routes/alpha/decks?name=alpha.csv",
            ops,
            "Code,Destination,Price\n44,UK,0.01\n",
        )
        .await;
    assert_eq!(s, 200, "{r}");
    assert_eq!(
        (r["rows"].as_u64(), r["state"].as_str()),
        (Some(1), Some("live"))
    );
    st.dip_until("1001", "deck picked up", |a| {
        a["routes"][0]["route_id"] == "alpha"
    })
    .await;
    let a = st
        .priced("ban=1001&ani=%2B12125550100&dnis=%2B442071234567")
        .await;
    assert_eq!(a["routes"][0]["route_id"], "alpha", "{a}");
    assert_eq!(a["routes"][0]["rate"].as_f64(), Some(0.01));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_deck_changes_nothing_and_a_good_one_changes_the_next_dip() {
    let st = start().await;
    let (ops, ro) = (st.ops.as_str(), st.ro.as_str());
    // a bad deck over HTTP: 422 naming the line, nothing changes
    let (s, e) = st
        .upload(
            "/v1/admin/routes/alpha/decks?name=bad.csv",
            ops,
            "Code,Price\n44,0.01\n4420,x\n",
        )
        .await;
    assert_eq!(s, 422, "{e}");
    assert!(
        e["error"].as_str().unwrap().contains("bad.csv line 3"),
        "{e}"
    );
    let (s, e) = st
        .upload("/v1/admin/routes/alpha/decks", ro, "Code,Price\n44,0.01\n")
        .await;
    assert_eq!(s, 403, "{e}");
    let (s, e) = st
        .upload("/v1/admin/routes/nope/decks", ops, "Code,Price\n44,0.01\n")
        .await;
    assert_eq!(s, 404, "{e}");
    // a good deck: the next dips change without a restart
    alpha_deck_goes_live(&st).await;
    st.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn staged_deck_shadow_replays_recent_dips_then_activates_and_rolls_back() {
    let st = start().await;
    let (api, ops, ro) = (&st, st.ops.as_str(), st.ro.as_str());
    alpha_deck_goes_live(&st).await;

    // staged version, then shadow replays the dips just made (from the dip log)
    let (s, stg) = st
        .upload(
            "/v1/admin/routes/alpha/decks?stage=true",
            ops,
            "Code,Price\n44,0.045\n",
        )
        .await;
    assert_eq!((s, stg["state"].as_str()), (200, Some("staged")), "{stg}");
    let staged = stg["version"].as_i64().unwrap();
    let (s, sh) = api
        .request(
            "GET",
            &format!("/v1/admin/routes/alpha/decks/{staged}/shadow"),
            Some(ops),
            None,
        )
        .await;
    assert_eq!(s, 200, "{sh}");
    assert!(sh["samples"].as_u64().unwrap() >= 2, "{sh}");
    assert!(sh["changed"].as_u64().unwrap() >= 1, "{sh}");
    assert_eq!(sh["destinations"][0]["destination"], "4420", "{sh}");

    let (s, vs) = api
        .request("GET", "/v1/admin/routes/alpha/decks", Some(ro), None)
        .await;
    assert_eq!((s, vs.as_array().map(Vec::len)), (200, Some(2)), "{vs}");
    let (s, d) = api
        .request(
            "GET",
            &format!("/v1/admin/routes/alpha/decks/diff?to={staged}"),
            Some(ro),
            None,
        )
        .await;
    assert_eq!((s, d["up"].as_i64()), (200, Some(1)), "{d}");
    assert!(d.get("next").is_none(), "one changed row, one page: {d}");
    for (q, field) in [
        ("sort=bogus", "sort"),
        ("limit=10001", "limit"),
        ("limit=-1", "limit"),
        ("sort=pct&after=x", "after"),
    ] {
        let (s, e) = api
            .request(
                "GET",
                &format!("/v1/admin/routes/alpha/decks/diff?to={staged}&{q}"),
                Some(ro),
                None,
            )
            .await;
        assert_eq!(s, 400, "{q}: {e}");
        assert!(e.to_string().contains(field), "{q}: {e}");
    }
    let resp = st
        .http
        .get(st.url("/v1/admin/routes/alpha/decks/current/export"))
        .bearer_auth(ro)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    assert_eq!(
        resp.text().await.unwrap(),
        "Code,Destination,Price\n44,UK,0.01\n"
    );
    let (s, m) = api
        .request("GET", "/v1/admin/margins?ban=1001", Some(ro), None)
        .await;
    assert_eq!(s, 200, "{m}");
    assert_eq!(m[0]["route"], "alpha");
    assert_eq!(m[0]["margin"], "0.04");

    // activate, then roll back over HTTP
    let (s, v) = api
        .request(
            "POST",
            &format!("/v1/admin/routes/alpha/decks/{staged}/activate"),
            Some(ops),
            None,
        )
        .await;
    assert_eq!((s, v["state"].as_str()), (200, Some("live")), "{v}");
    let (s, v) = api
        .request(
            "POST",
            "/v1/admin/routes/alpha/decks/rollback",
            Some(ops),
            None,
        )
        .await;
    assert_eq!((s, v["rolled_back"].as_i64()), (200, Some(staged)), "{v}");
    let (s, e) = api
        .request(
            "POST",
            &format!("/v1/admin/routes/alpha/decks/{staged}/activate"),
            Some(ro),
            None,
        )
        .await;
    assert_eq!(s, 403, "{e}");
    st.stop().await;
}

/// A multipart/form-data body (boundary `b0undary`): (field, file name, value).
fn form(parts: &[(&str, Option<&str>, &str)]) -> String {
    let mut s = String::new();
    for (name, file, v) in parts {
        s.push_str(&format!(
            "--b0undary\r\nContent-Disposition: form-data; name=\"{name}\""
        ));
        if let Some(f) = file {
            s.push_str(&format!("; filename=\"{f}\"\r\nContent-Type: text/csv"));
        }
        s.push_str(&format!("\r\n\r\n{v}\r\n"));
    }
    s.push_str("--b0undary--\r\n");
    s
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deck_upload_as_multipart_form() {
    let st = start().await;
    let (api, ops, ro) = (&st, st.ops.as_str(), st.ro.as_str());
    let (_, doc) = api.request("GET", "/v1/openapi.json", None, None).await;
    assert!(
        doc["paths"]["/v1/admin/routes/{route}/decks"]["post"]["requestBody"]["content"]
            ["multipart/form-data"]
            .is_object(),
        "{doc}"
    );
    let post = |token: &str, path: &str, body: String| {
        api.http
            .post(api.url(path))
            .bearer_auth(token)
            .header("content-type", "multipart/form-data; boundary=b0undary")
            .body(body)
            .send()
    };
    let versions = || async {
        let (_, v) = api
            .request("GET", "/v1/admin/routes/alpha/decks", Some(ro), None)
            .await;
        v.as_array().map(Vec::len).unwrap_or(0)
    };
    let deck = "Code,Destination,Price\n44,UK,0.01\n";

    // readonly: 403; no file part: 400 naming it; a dry run as a form field stores nothing
    let r = post(
        ro,
        "/v1/admin/routes/alpha/decks",
        form(&[("file", Some("a.csv"), deck)]),
    )
    .await
    .unwrap();
    assert_eq!(r.status().as_u16(), 403);
    let r = post(
        ops,
        "/v1/admin/routes/alpha/decks",
        form(&[("effective", None, "2026-01-01T00:00Z")]),
    )
    .await
    .unwrap();
    assert_eq!(r.status().as_u16(), 400);
    let e: Value = r.json().await.unwrap();
    assert!(e["error"].as_str().unwrap().starts_with("file: "), "{e}");
    let r = post(
        ops,
        "/v1/admin/routes/alpha/decks",
        form(&[("file", Some("a.csv"), deck), ("dry_run", None, "true")]),
    )
    .await
    .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    assert_eq!(versions().await, 0);
    // a form field contradicting the query
    let r = post(
        ops,
        "/v1/admin/routes/alpha/decks?dry_run=false",
        form(&[("file", Some("a.csv"), deck), ("dry_run", None, "true")]),
    )
    .await
    .unwrap();
    assert_eq!(r.status().as_u16(), 400);
    // a bad row inside the file part: 422 with its line, under the part's file name
    let r = post(
        ops,
        "/v1/admin/routes/alpha/decks",
        form(&[("file", Some("lumen.csv"), "Code,Price\n44,0.01\n4420,x\n")]),
    )
    .await
    .unwrap();
    assert_eq!(r.status().as_u16(), 422);
    let e: Value = r.json().await.unwrap();
    assert!(
        e["error"].as_str().unwrap().contains("lumen.csv line 3"),
        "{e}"
    );
    assert_eq!(versions().await, 0);

    // the real thing: options after the file part, the version named after the file
    let r = post(
        ops,
        "/v1/admin/routes/alpha/decks",
        form(&[
            ("file", Some("alpha-form.csv"), deck),
            ("skip_invalid", None, "false"),
        ]),
    )
    .await
    .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let rep: Value = r.json().await.unwrap();
    assert_eq!(
        (rep["rows"].as_u64(), rep["state"].as_str()),
        (Some(1), Some("live")),
        "{rep}"
    );
    let (_, v) = api
        .request("GET", "/v1/admin/routes/alpha/decks", Some(ro), None)
        .await;
    assert_eq!(v.as_array().unwrap().len(), 1, "{v}");
    assert_eq!(v[0]["source"], "alpha-form.csv", "{v}");
    let a = st
        .priced_until("1001", "multipart deck", |a| {
            a["routes"][0]["route_id"] == "alpha"
        })
        .await;
    assert_eq!(a["routes"][0]["rate"].as_f64(), Some(0.01), "{a}");
    st.stop().await;
}
