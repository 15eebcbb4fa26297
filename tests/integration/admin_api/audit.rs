//! Issue 17: every admin write is audited in the same transaction as its change. One table holds
//! a valid request for every write route of `warpd::admin::ROUTES` (a test checks none is
//! missing); each is sent first with the audit insert failing (a test-only trigger): it fails
//! and the database is exactly as before; then with the audit log working: it succeeds and
//! leaves exactly one audit row.

use super::*;

/// A request body.
enum Send {
    None,
    Json(Value),
    /// a raw upload (CSV)
    Raw(&'static str),
}

/// One admin write: `{id}` in `path` is the `after.id` of the previous step's answer, `{version}`
/// the `version` of the last deck upload.
struct Write {
    /// the route template of `warpd::admin::ROUTES` this exercises
    route: &'static str,
    method: &'static str,
    path: &'static str,
    body: Send,
}

fn w(method: &'static str, route: &'static str, path: &'static str, body: Send) -> Write {
    Write {
        route,
        method,
        path,
        body,
    }
}

fn writes() -> Vec<Write> {
    use Send::{Json, None as Empty, Raw};
    vec![
        w(
            "POST",
            "/v1/admin/vendors",
            "/v1/admin/vendors",
            Json(json!({"name": "Gamma", "billing_model": "INTERNATIONAL"})),
        ),
        w(
            "PATCH",
            "/v1/admin/vendors/{vendor}",
            "/v1/admin/vendors/Gamma",
            Json(json!({"enabled": false})),
        ),
        w(
            "POST",
            "/v1/admin/vendors/{vendor}/gateways",
            "/v1/admin/vendors/Gamma/gateways",
            Json(json!({"name": "g1", "host": "127.0.0.1"})),
        ),
        w(
            "DELETE",
            "/v1/admin/vendors/{vendor}/gateways/{gateway}",
            "/v1/admin/vendors/Gamma/gateways/g1",
            Empty,
        ),
        w(
            "POST",
            "/v1/admin/routes",
            "/v1/admin/routes",
            Json(json!({"name": "gamma", "vendor": "Gamma"})),
        ),
        w(
            "PATCH",
            "/v1/admin/routes/{route}",
            "/v1/admin/routes/gamma",
            Json(json!({"capacity": 5})),
        ),
        w(
            "POST",
            "/v1/admin/partitions",
            "/v1/admin/partitions",
            Json(json!({"name": "p2"})),
        ),
        w(
            "POST",
            "/v1/admin/partitions/{partition}/routes",
            "/v1/admin/partitions/p2/routes",
            Json(json!({"route": "gamma"})),
        ),
        w(
            "DELETE",
            "/v1/admin/partitions/{partition}/routes/{route}",
            "/v1/admin/partitions/p2/routes/gamma",
            Empty,
        ),
        w(
            "POST",
            "/v1/admin/customers",
            "/v1/admin/customers",
            Json(json!({"ban": "2002"})),
        ),
        w(
            "PATCH",
            "/v1/admin/customers/{ban}",
            "/v1/admin/customers/2002",
            Json(json!({"max_cps": 3})),
        ),
        // credit accounts (issue 21)
        w(
            "PUT",
            "/v1/admin/customers/{ban}/account",
            "/v1/admin/customers/2002/account",
            Json(json!({"mode": "prepaid"})),
        ),
        w(
            "POST",
            "/v1/admin/customers/{ban}/account/ledger",
            "/v1/admin/customers/2002/account/ledger",
            Json(json!({"kind": "topup", "amount": "10"})),
        ),
        w(
            "POST",
            "/v1/admin/customers/{ban}/blocked_prefixes",
            "/v1/admin/customers/2002/blocked_prefixes",
            Json(json!({"prefix": "4420"})),
        ),
        w(
            "DELETE",
            "/v1/admin/customers/{ban}/blocked_prefixes/{prefix}",
            "/v1/admin/customers/2002/blocked_prefixes/4420",
            Empty,
        ),
        w(
            "POST",
            "/v1/admin/customers/{ban}/partitions",
            "/v1/admin/customers/2002/partitions",
            Json(json!({"partition": "p2"})),
        ),
        w(
            "DELETE",
            "/v1/admin/customers/{ban}/partitions/{partition}",
            "/v1/admin/customers/2002/partitions/p2",
            Empty,
        ),
        w(
            "POST",
            "/v1/admin/customers/{ban}/source_ips",
            "/v1/admin/customers/2002/source_ips",
            Json(json!({"cidr": "192.0.2.7/32"})),
        ),
        w(
            "DELETE",
            "/v1/admin/customers/{ban}/source_ips/{cidr}",
            "/v1/admin/customers/2002/source_ips/192.0.2.7%2F32",
            Empty,
        ),
        w(
            "POST",
            "/v1/admin/overrides",
            "/v1/admin/overrides",
            Json(json!({"route": "alpha", "prefix": "44", "rate": "0.01"})),
        ),
        w(
            "DELETE",
            "/v1/admin/overrides/{id}",
            "/v1/admin/overrides/{id}",
            Empty,
        ),
        w(
            "POST",
            "/v1/admin/exclusions",
            "/v1/admin/exclusions",
            Json(json!({"prefix": "4420", "vendor": "Alpha"})),
        ),
        w(
            "DELETE",
            "/v1/admin/exclusions/{id}",
            "/v1/admin/exclusions/{id}",
            Empty,
        ),
        w(
            "POST",
            "/v1/admin/numbering/{table}",
            "/v1/admin/numbering/npanxx",
            Raw("npanxx,state,lata,ocn,rate_center\n212555,NY,132,9104,NWYRCYZN01\n"),
        ),
        w(
            "POST",
            "/v1/admin/routes/{route}/decks",
            "/v1/admin/routes/alpha/decks",
            Raw("prefix,rate\n44,0.01\n"),
        ),
        w(
            "POST",
            "/v1/admin/routes/{route}/decks/rollback",
            "/v1/admin/routes/alpha/decks/rollback",
            Empty,
        ),
        w(
            "POST",
            "/v1/admin/routes/{route}/decks/{version}/activate",
            "/v1/admin/routes/alpha/decks/{version}/activate",
            Empty,
        ),
        w(
            "POST",
            "/v1/admin/tokens",
            "/v1/admin/tokens",
            Json(json!({"name": "t2", "role": "readonly"})),
        ),
        w(
            "DELETE",
            "/v1/admin/tokens/{name}",
            "/v1/admin/tokens/t2",
            Empty,
        ),
        w(
            "POST",
            "/v1/admin/trunks",
            "/v1/admin/trunks",
            Json(json!({"name": "t2002", "customer": "2002"})),
        ),
        w(
            "POST",
            "/v1/admin/numbers",
            "/v1/admin/numbers",
            Json(json!({"number": "+12125550177", "customer": "2002", "trunk": "t2002"})),
        ),
        w(
            "POST",
            "/v1/admin/numbers/import",
            "/v1/admin/numbers/import",
            Raw("number,customer\n+12125550178,2002\n"),
        ),
        w(
            "POST",
            "/v1/admin/numbers/{number}/move",
            "/v1/admin/numbers/%2B12125550177/move",
            Json(json!({"customer": "2002"})),
        ),
        w(
            "PATCH",
            "/v1/admin/numbers/{number}",
            "/v1/admin/numbers/%2B12125550177",
            Json(json!({"status": "reserved", "cnam": "ACME"})),
        ),
        w(
            "PATCH",
            "/v1/admin/trunks/{trunk}",
            "/v1/admin/trunks/t2002",
            Json(json!({"max_cps": 4})),
        ),
        w(
            "POST",
            "/v1/admin/trunks/{trunk}/source_ips",
            "/v1/admin/trunks/t2002/source_ips",
            Json(json!({"cidr": "198.51.100.0/28"})),
        ),
        w(
            "DELETE",
            "/v1/admin/trunks/{trunk}/source_ips/{cidr}",
            "/v1/admin/trunks/t2002/source_ips/198.51.100.0%2F28",
            Empty,
        ),
        w(
            "POST",
            "/v1/admin/trunks/{trunk}/credentials",
            "/v1/admin/trunks/t2002/credentials",
            Json(json!({"username": "u2002", "realm": "sip.example.net", "password": "pw-2002"})),
        ),
        w(
            "DELETE",
            "/v1/admin/trunks/{trunk}/credentials/{credential}",
            "/v1/admin/trunks/t2002/credentials/u2002@sip.example.net",
            Empty,
        ),
        w(
            "POST",
            "/v1/admin/trunks/{trunk}/destinations",
            "/v1/admin/trunks/t2002/destinations",
            Json(json!({"host": "127.0.0.9", "priority": 5})),
        ),
        w(
            "PATCH",
            "/v1/admin/trunks/{trunk}/destinations/{id}",
            "/v1/admin/trunks/t2002/destinations/{id}",
            Json(json!({"priority": 3, "weight": 2})),
        ),
        w(
            "DELETE",
            "/v1/admin/trunks/{trunk}/destinations/{id}",
            "/v1/admin/trunks/t2002/destinations/{id}",
            Empty,
        ),
        w(
            "DELETE",
            "/v1/admin/numbers/{number}",
            "/v1/admin/numbers/12125550177",
            Empty,
        ),
        // STIR/SHAKEN (issue 20)
        w(
            "PUT",
            "/v1/admin/stir/policies",
            "/v1/admin/stir/policies",
            Json(json!({"customer": "2002", "trunk": "t2002", "max_attest": "B"})),
        ),
        w(
            "DELETE",
            "/v1/admin/stir/policies/{ban}",
            "/v1/admin/stir/policies/2002?trunk=t2002",
            Empty,
        ),
        w(
            "POST",
            "/v1/admin/stir/tn_ranges",
            "/v1/admin/stir/tn_ranges",
            Json(json!({"customer": "2002", "range": "+13125550000-+13125550999"})),
        ),
        w(
            "DELETE",
            "/v1/admin/stir/tn_ranges/{id}",
            "/v1/admin/stir/tn_ranges/{id}",
            Empty,
        ),
        w(
            "DELETE",
            "/v1/admin/trunks/{trunk}",
            "/v1/admin/trunks/t2002",
            Empty,
        ),
        w(
            "DELETE",
            "/v1/admin/partitions/{partition}",
            "/v1/admin/partitions/p2",
            Empty,
        ),
        w(
            "DELETE",
            "/v1/admin/customers/{ban}",
            "/v1/admin/customers/2002",
            Empty,
        ),
        w(
            "DELETE",
            "/v1/admin/routes/{route}",
            "/v1/admin/routes/gamma",
            Empty,
        ),
        w(
            "DELETE",
            "/v1/admin/vendors/{vendor}",
            "/v1/admin/vendors/Gamma",
            Empty,
        ),
    ]
}

/// Every row of every table but the audit log and the dip samples (written in the background).
async fn fingerprint(c: &tokio_postgres::Client) -> Vec<(String, Option<String>)> {
    let tables: Vec<String> = c
        .query(
            "SELECT table_name::text FROM information_schema.tables WHERE table_schema = 'public' \
             AND table_type = 'BASE TABLE' AND table_name NOT IN ('audit_log', 'dip_samples') \
             ORDER BY 1",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    let mut out = vec![];
    for t in tables {
        let h: Option<String> = c
            .query_one(
                &format!("SELECT md5(string_agg(t::text, '|' ORDER BY t::text)) FROM {t} t"),
                &[],
            )
            .await
            .unwrap()
            .get(0);
        out.push((t, h));
    }
    out
}

async fn audit_count(c: &tokio_postgres::Client) -> i64 {
    c.query_one("SELECT count(*) FROM audit_log", &[])
        .await
        .unwrap()
        .get(0)
}

#[test]
fn the_table_covers_every_admin_write() {
    let covered: Vec<(&str, &str)> = writes().iter().map(|w| (w.method, w.route)).collect();
    for r in warpd::admin::ROUTES.iter().filter(|r| r.method != "GET") {
        assert!(
            covered.contains(&(r.method, r.path)),
            "{} {} has no row in the audit table",
            r.method,
            r.path
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_admin_write_audits_in_its_transaction() {
    let st = start().await;
    let admin = st.admin.clone();
    let c = &st.client;
    let (mut last_id, mut version) = (String::new(), String::new());
    for step in writes() {
        let path = step
            .path
            .replace("{id}", &last_id)
            .replace("{version}", &version);
        let label = format!("{} {path}", step.method);
        let send = || async {
            match &step.body {
                Send::None => st.request(step.method, &path, Some(&admin), None).await,
                Send::Json(v) => {
                    st.request(step.method, &path, Some(&admin), Some(v.clone()))
                        .await
                }
                Send::Raw(b) => st.upload(&path, &admin, *b).await,
            }
        };
        // the audit insert fails: the request fails and nothing changed
        support::fail_audit_inserts(c, "*").await;
        let (before, audits) = (fingerprint(c).await, audit_count(c).await);
        let (s, v) = send().await;
        assert!(s >= 500, "{label}: {s} {v}");
        assert_eq!(
            fingerprint(c).await,
            before,
            "{label} changed the database: {v}"
        );
        assert_eq!(audit_count(c).await, audits, "{label}");
        // the audit log works: the change happens with exactly one audit row
        support::allow_audit_inserts(c).await;
        let (s, v) = send().await;
        assert!((200..300).contains(&s), "{label}: {s} {v}");
        assert_ne!(fingerprint(c).await, before, "{label} changed nothing: {v}");
        assert_eq!(audit_count(c).await - audits, 1, "{label}: {v}");
        let actor: String = c
            .query_one("SELECT actor FROM audit_log ORDER BY id DESC LIMIT 1", &[])
            .await
            .unwrap()
            .get(0);
        assert_eq!(actor, "token:root", "{label}");
        if let Some(id) = v["after"]["id"].as_i64() {
            last_id = id.to_string();
        }
        if let Some(n) = v["version"].as_i64() {
            version = n.to_string();
        }
    }
    st.stop().await;
}
