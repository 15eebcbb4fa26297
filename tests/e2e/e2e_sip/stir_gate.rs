//! Issue 20, which calls' Identity Kamailio verifies. Verifying fetches the certificate at the
//! PASSporT's x5u from a SIP worker, so only a call from a source warpd knows is verified: a
//! customer by its address, a vendor/peer, or a trunk once its digest credentials are checked.
//! An unknown source's INVITE with an Identity header makes Kamailio fetch nothing (every case
//! here has an x5u server of its own, on a fresh URL that secsipid's cache cannot hold, counting
//! its requests) and gets the usual challenge (RESP) or refusal (HTTP only); a wrong password
//! fetches nothing either; the right one is verified after the authentication, and its valid
//! Identity is kept. A customer's valid Identity reaches the vendor unchanged (`keep`, in the
//! CDR). The same through the HTTP dip (`-A WITHOUT_RESP_DIP`): see [`http_stack`].

use std::sync::atomic::AtomicUsize;

use super::inbound::call_from;
use super::stir::{identities, identity_scenario, now_s, serve_x5u, Pki, OWN_ANI};
use super::*;

/// No customer's, vendor's or trunk's address.
const UNKNOWN_IP: &str = "127.0.0.5";
/// A trunk known by its digest credentials only.
const TRUNK_IP: &str = "127.0.0.6";
const USER: &str = "stir-digest";
const PASSWORD: &str = "stir-digest-pw";

/// Which dip the Kamailio under test uses.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Dip {
    Resp,
    /// `-A WITHOUT_RESP_DIP`: HTTP only (an unknown source gets 403, no digest challenge)
    Http,
}

/// A valid Identity for `ani` → `dnis` whose certificate is served at a fresh x5u, and that
/// server's request counter.
fn fresh_identity(pki: &Pki, ani: &str, dnis: &str) -> (String, Arc<AtomicUsize>) {
    let (x5u, hits) = serve_x5u(&pki.cert);
    let payload = serde_json::json!({
        "attest": "A", "dest": {"tn": [&dnis[1..]]}, "iat": now_s(), "orig": {"tn": &ani[1..]},
        "origid": "0f6b6c1e-6a43-4f52-9a55-1f0e5e1f0002"
    });
    (pki.identity(&x5u, &payload), hits)
}

/// A digest trunk of customer 10001 (no source address), loaded.
pub(super) fn add_digest_trunk(s: &Sip) {
    s.sql(&format!(
        "INSERT INTO trunks (name, customer_id) SELECT 'stir-digest', id FROM customers WHERE ban = '10001';
         INSERT INTO trunk_credentials (trunk_id, username, realm, ha1)
             SELECT id, '{USER}', 'warpd', md5('{USER}:warpd:{PASSWORD}') FROM trunks WHERE name = 'stir-digest';"
    ));
    let url = format!("{}/v1/credentials?user={USER}&realm=warpd", s.base);
    support::eventually_blocking("the digest trunk loaded", Duration::from_secs(15), || {
        let a: Value = s.rt.block_on(async {
            match s.http.get(&url).send().await {
                Ok(r) => r.json().await.unwrap_or(Value::Null),
                Err(_) => Value::Null,
            }
        });
        (a["found"] == true)
            .then_some(())
            .ok_or_else(|| a.to_string())
    });
}

/// An unknown source's Identity is never verified: nothing fetched, the usual answer. With the
/// RESP dip also a digest trunk: a wrong password fetches nothing, the right one is verified
/// after the authentication and its valid Identity is kept.
pub(super) fn unknown_sources_fetch_nothing(s: &Sip, kam: &Kamailio, pki: &Pki, dip: Dip) {
    let dir = s.dir.as_path();
    let tag = if dip == Dip::Resp { "resp" } else { "http" };
    // RESP: warpd knows the source as nobody: challenged (407); HTTP only: refused (403)
    let code = if dip == Dip::Resp { 407 } else { 403 };
    let (identity, hits) = fresh_identity(pki, OWN_ANI, DNIS);
    let refused = identity_scenario(dir, "uac_reject.xml", code, &format!("gate-{code}"));
    // twice: the first INVITE is dipped, the second meets the source already known as nobody
    for i in 0..2 {
        let r = call_from(
            dir,
            kam,
            UNKNOWN_IP,
            &refused,
            (OWN_ANI, DNIS),
            &format!("stir-unknown-{tag}-{i}"),
            &["-key", "identity", identity.as_str()],
        );
        assert!(r.ok, "expected {code}:\n{}", r.trace);
        assert_eq!(
            hits.load(Ordering::SeqCst),
            0,
            "an unknown source made Kamailio fetch its x5u ({tag}, INVITE {i})"
        );
    }
    // warpd was asked and said so (counted per answer)
    let text = s.rt.block_on(s.warpd.as_ref().expect("warpd").metrics());
    assert!(
        text.contains(r#"warpd_stir_source_checks_total{source="unknown"}"#),
        "{text}"
    );
    if dip == Dip::Http {
        return;
    }
    // a digest trunk with a wrong password: 407, then 403; nothing fetched
    let (identity, hits) = fresh_identity(pki, OWN_ANI, DNIS);
    let wrong = identity_scenario(dir, "uac_auth_403.xml", 0, "gate-auth-403");
    let r = call_from(
        dir,
        kam,
        TRUNK_IP,
        &wrong,
        (OWN_ANI, DNIS),
        "stir-digest-403",
        &["-key", "identity", &identity, "-au", USER, "-ap", "wrong"],
    );
    assert!(r.ok, "expected 407 then 403:\n{}", r.trace);
    assert_eq!(
        hits.load(Ordering::SeqCst),
        0,
        "a trunk that failed authentication made Kamailio fetch its x5u"
    );
    // the right password: verified after the authentication, and kept
    let gw = Uas::start(dir, s.cheapest, "uas.xml", "stir-digest");
    let auth = identity_scenario(dir, "uac_auth.xml", 0, "gate-auth");
    let r = call_from(
        dir,
        kam,
        TRUNK_IP,
        &auth,
        (OWN_ANI, DNIS),
        "stir-digest",
        &["-key", "identity", &identity, "-au", USER, "-ap", PASSWORD],
    );
    assert!(r.ok, "digest call failed:\n{}", r.trace);
    assert!(
        hits.load(Ordering::SeqCst) >= 1,
        "the authenticated trunk's Identity was not verified"
    );
    assert_eq!(
        identities(&gw),
        vec![identity],
        "the verified Identity kept"
    );
    let call_id = call_id_of(&r.trace);
    let cdr =
        support::eventually_blocking("digest CDR", Duration::from_secs(10), || s.cdr_of(&call_id));
    assert_eq!(cdr["trunk"], "stir-digest", "{cdr}");
    assert_eq!(cdr["stir_attest"], "keep", "{cdr}");
}

/// A customer (by its address) calling with a valid Identity: verified, and the vendor gets the
/// header unchanged; the CDR says `keep`.
pub(super) fn customer_identity_is_kept(s: &Sip, kam: &Kamailio, pki: &Pki, tag: &str) {
    let dir = s.dir.as_path();
    let (identity, hits) = fresh_identity(pki, OWN_ANI, DNIS);
    let gw = Uas::start(dir, s.cheapest, "uas.xml", &format!("stir-keep-{tag}"));
    let scenario = identity_scenario(dir, "uac.xml", 0, "keep");
    let r = call_from(
        dir,
        kam,
        "127.0.0.1",
        &scenario,
        (OWN_ANI, DNIS),
        &format!("stir-keep-{tag}"),
        &["-key", "identity", identity.as_str()],
    );
    assert!(r.ok, "keep call ({tag}) failed:\n{}", r.trace);
    assert!(hits.load(Ordering::SeqCst) >= 1, "not verified ({tag})");
    assert_eq!(identities(&gw), vec![identity], "kept ({tag})");
    let call_id = call_id_of(&r.trace);
    let cdr =
        support::eventually_blocking(format!("keep CDR ({tag})"), Duration::from_secs(10), || {
            s.cdr_of(&call_id)
        });
    assert_eq!(cdr["stir_attest"], "keep", "{cdr}");
}

/// A Kamailio with `WITH_STIR` and the HTTP dip only (`-A WITHOUT_RESP_DIP`); `stir` the STIR
/// defines of the RESP one.
pub(super) fn http_stack(s: &Sip, stir: &[String]) -> Kamailio {
    let mut defines = vec![
        s.so_define.clone(),
        "WITHOUT_RESP_DIP".to_string(),
        format!("WARPD_URL=\"{}\"", s.base),
        format!("WARPD_SECRET=\"{E2E_SECRET}\""),
        format!("WARPD_HTTPCON=\"warpd=>{}\"", with_secret(&s.base)),
        format!(
            "WARPD_EVENTS_HTTPCON=\"events=>{}\"",
            with_secret(&s.events_url)
        ),
    ];
    defines.extend_from_slice(stir);
    Kamailio::start(&s.dir, "stir-http", &defines)
}
