//! Issue 20, STIR/SHAKEN through Kamailio with `WITH_STIR` (secsipid): a test STI-CA and a
//! signing certificate made with openssl here, the certificate served at its x5u by a small HTTP
//! server of the test.
//!
//! Outbound: a customer call reaches the vendor SIPp with an Identity header whose PASSporT
//! (decoded here, its ES256 signature verified with the test certificate's key) has the
//! attestation warpd decided (`A` for the customer's own number, `B` for a foreign ANI, never
//! `A` once the customer is capped at B, `C` for a transit customer), the canonical orig/dest TNs, a fresh iat and the
//! customer's origid; a failed-over attempt is signed too; the CDR records the attestation.
//! Inbound: a vendor's call with a valid Identity (signed by the test CA's certificate) reaches
//! the customer with `verstat=TN-Validation-Passed`; a tampered one (`-Failed`, bad signature),
//! one whose dest TN is another number (`-Failed`, TN mismatch: warpd's own check), none
//! (`No-TN-Validation`); each CDR holds the outcome; under the customer's reject policy the
//! tampered call gets 438. Which sources are verified at all (an unknown source or a trunk
//! failing authentication fetches nothing), a customer's kept Identity, and the same through
//! the HTTP dip: [`super::stir_gate`].

use std::io::{BufRead, BufReader, Write};

use base64::Engine as _;
use p256::ecdsa::signature::{Signer, Verifier};
use p256::pkcs8::DecodePublicKey;

use super::inbound::call_from;
use super::stir_gate;
use super::*;

pub(super) const OWN_ANI: &str = "+13125550100";
const FOREIGN_ANI: &str = "+13125559999";
const NUMBER: &str = "+12125550177";
const VENDOR_IP: &str = "127.0.0.2";
const VENDOR_ANI: &str = "+13105550000";

fn b64(data: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(data)
}

fn unb64(s: &str) -> Vec<u8> {
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(s)
        .unwrap_or_else(|e| panic!("{s}: {e}"))
}

fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("run openssl");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A test STI-CA and a service provider's signing key and certificate (EC P-256), made with
/// openssl in `dir/pki`.
pub(super) struct Pki {
    dir: PathBuf,
    key: PathBuf,
    pub(super) cert: PathBuf,
    ca: PathBuf,
    /// the signing certificate's public key
    verifier: p256::ecdsa::VerifyingKey,
    signer: p256::ecdsa::SigningKey,
}

impl Pki {
    fn make(dir: &Path) -> Pki {
        require_tool("openssl");
        let dir = dir.join("pki");
        std::fs::create_dir_all(&dir).expect("pki dir");
        let ec = [
            "ecparam",
            "-name",
            "prime256v1",
            "-genkey",
            "-noout",
            "-out",
        ];
        openssl(&dir, &[&ec[..], &["ca.key"]].concat());
        openssl(
            &dir,
            &[
                "req",
                "-x509",
                "-new",
                "-key",
                "ca.key",
                "-subj",
                "/CN=warpd test STI-CA",
                "-days",
                "2",
                "-out",
                "ca.pem",
                "-addext",
                "basicConstraints=critical,CA:TRUE",
                "-addext",
                "keyUsage=critical,keyCertSign,cRLSign",
            ],
        );
        openssl(&dir, &[&ec[..], &["sp.key"]].concat());
        openssl(
            &dir,
            &[
                "req",
                "-new",
                "-key",
                "sp.key",
                "-subj",
                "/CN=warpd test SP",
                "-out",
                "sp.csr",
            ],
        );
        std::fs::write(dir.join("sp.ext"), "keyUsage=critical,digitalSignature\n")
            .expect("ext file");
        openssl(
            &dir,
            &[
                "x509",
                "-req",
                "-in",
                "sp.csr",
                "-CA",
                "ca.pem",
                "-CAkey",
                "ca.key",
                "-CAcreateserial",
                "-days",
                "1",
                "-out",
                "sp.pem",
                "-extfile",
                "sp.ext",
            ],
        );
        let key = dir.join("sp.key");
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600))
                .expect("chmod key");
        }
        let out = Command::new("openssl")
            .args(["x509", "-in", "sp.pem", "-pubkey", "-noout"])
            .current_dir(&dir)
            .output()
            .expect("openssl x509 -pubkey");
        let verifier =
            p256::ecdsa::VerifyingKey::from_public_key_pem(&String::from_utf8_lossy(&out.stdout))
                .expect("the certificate's P-256 public key");
        let secret =
            p256::SecretKey::from_sec1_pem(&std::fs::read_to_string(&key).expect("read key"))
                .expect("the SEC1 key");
        Pki {
            cert: dir.join("sp.pem"),
            ca: dir.join("ca.pem"),
            key,
            dir,
            verifier,
            signer: p256::ecdsa::SigningKey::from(secret),
        }
    }

    /// A SHAKEN Identity header value signed with the test key.
    pub(super) fn identity(&self, x5u: &str, payload: &Value) -> String {
        let header =
            serde_json::json!({"alg": "ES256", "ppt": "shaken", "typ": "passport", "x5u": x5u});
        let signing = format!(
            "{}.{}",
            b64(header.to_string().as_bytes()),
            b64(payload.to_string().as_bytes())
        );
        let sig: p256::ecdsa::Signature = self.signer.sign(signing.as_bytes());
        format!(
            "{signing}.{};info=<{x5u}>;alg=ES256;ppt=shaken",
            b64(&sig.to_bytes())
        )
    }
}

/// Serves the signing certificate at `http://127.0.0.1:<port>/sp.pem` (the x5u), counting GETs.
pub(super) fn serve_x5u(cert: &Path) -> (String, Arc<std::sync::atomic::AtomicUsize>) {
    let pem = std::fs::read(cert).expect("read cert");
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind x5u server");
    let url = format!("http://{}/sp.pem", listener.local_addr().expect("addr"));
    let hits = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counted = hits.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let mut reader = BufReader::new(&stream);
            let mut line = String::new();
            // the request line and headers (bounded), then one answer
            for _ in 0..64 {
                line.clear();
                if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                    break;
                }
            }
            counted.fetch_add(1, Ordering::SeqCst);
            let mut w = &stream;
            let _ = write!(
                w,
                "HTTP/1.1 200 OK\r\nContent-Type: application/x-pem-file\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                pem.len()
            );
            let _ = w.write_all(&pem);
        }
    });
    (url, hits)
}

/// The Identity header values of the INVITEs a SIPp UAS received.
pub(super) fn identities(uas: &Uas) -> Vec<String> {
    std::fs::read_to_string(&uas.msgs)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.trim().strip_prefix("Identity:"))
        .map(|v| v.trim().to_string())
        .collect()
}

/// Decodes a PASSporT, verifies its ES256 signature with the certificate's key and its header;
/// returns the payload.
fn verified_passport(pki: &Pki, x5u: &str, identity: &str) -> Value {
    let (token, params) = identity.split_once(';').expect("Identity parameters");
    assert!(params.contains(&format!("info=<{x5u}>")), "{identity}");
    assert!(
        params.contains("alg=ES256") && params.contains("ppt=shaken"),
        "{identity}"
    );
    let parts: Vec<&str> = token.split('.').collect();
    assert_eq!(parts.len(), 3, "{token}");
    let sig = p256::ecdsa::Signature::from_slice(&unb64(parts[2])).expect("a 64-byte signature");
    pki.verifier
        .verify(format!("{}.{}", parts[0], parts[1]).as_bytes(), &sig)
        .unwrap_or_else(|e| panic!("the signature does not verify: {e}: {identity}"));
    let header: Value = serde_json::from_slice(&unb64(parts[0])).expect("header JSON");
    assert_eq!(header["alg"], "ES256", "{header}");
    assert_eq!(header["ppt"], "shaken", "{header}");
    assert_eq!(header["typ"], "passport", "{header}");
    assert_eq!(header["x5u"], x5u, "{header}");
    serde_json::from_slice(&unb64(parts[1])).expect("payload JSON")
}

pub(super) fn now_s() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// `base` (a scenario of tests/sipp) with an `Identity: [identity]` header (SIPp `-key
/// identity …`) in every INVITE (both of a digest scenario) and `@CODE@` replaced.
pub(super) fn identity_scenario(dir: &Path, base: &str, code: u16, tag: &str) -> PathBuf {
    let text = std::fs::read_to_string(repo().join("tests/sipp").join(base)).expect(base);
    let text: String = text
        .lines()
        .map(|l| {
            let t = l.trim();
            if t.starts_with("CSeq: ") && t.ends_with(" INVITE") {
                format!("{l}\n      Identity: [identity]\n")
            } else {
                format!("{l}\n")
            }
        })
        .collect();
    let text = text.replace("@CODE@", &code.to_string());
    let path = dir.join(format!("stir-{tag}.xml"));
    std::fs::write(&path, text).expect("write scenario");
    path
}

/// Waits until the dip of `ani` (from customer 10001's address) answers `attest`.
fn wait_attest(s: &Sip, ani: &str, attest: &str) {
    let url = format!(
        "{}/v1/route?src_ip=127.0.0.1&ani={}&dnis={}",
        s.base,
        ani.replace('+', "%2B"),
        DNIS.replace('+', "%2B")
    );
    support::eventually_blocking(
        format!("the dip of {ani} answers attest {attest}"),
        Duration::from_secs(15),
        || {
            let a: Value = s.rt.block_on(async {
                match s.http.get(&url).send().await {
                    Ok(r) => r.json().await.unwrap_or(Value::Null),
                    Err(_) => Value::Null,
                }
            });
            (a["stir"]["attest"] == attest)
                .then_some(())
                .ok_or_else(|| format!("{a}"))
        },
    );
}

#[test]
fn stir_calls_are_signed_and_verified_through_kamailio() {
    require_tool("openssl");
    let s = Sip::start();
    let dir = s.dir.as_path();
    let pki = Pki::make(dir);
    let (x5u, x5u_hits) = serve_x5u(&pki.cert);
    let cache = dir.join("secsipid-cache");
    std::fs::create_dir_all(&cache).expect("cache dir");

    // warpd's own check of the pair (what `warpd stir check` and the start run)
    let info = warpd::stir::check(&warpd::stir::StirConfig {
        key_file: pki.key.clone(),
        cert_file: pki.cert.clone(),
        expiry_warn_days: 30,
    })
    .expect("the test key and certificate pass warpd's check");
    assert!((0..=1).contains(&info.days_left(now_s())), "{info:?}");

    // customer 10001 owns OWN_ANI
    s.sql(&format!(
        "INSERT INTO numbers (number, customer_id) SELECT '{OWN_ANI}', id FROM customers WHERE ban = '10001';"
    ));
    wait_attest(&s, OWN_ANI, "A");
    let stir_defines = vec![
        "WITH_STIR".to_string(),
        format!("STIR_KEY_PATH=\"{}\"", pki.key.display()),
        format!("STIR_X5U=\"{x5u}\""),
        format!("STIR_CA_FILE=\"CertCAFile={}\"", pki.ca.display()),
        format!("STIR_CACHE_DIR=\"{}\"", cache.display()),
    ];
    let mut defines = s.base_defines();
    defines.extend_from_slice(&stir_defines);
    let kam = Kamailio::start(dir, "stir", &defines);

    // 0. only a known source's Identity is verified (nothing fetched for an unknown source or a
    // trunk that failed authentication); a customer's valid Identity is kept
    stir_gate::add_digest_trunk(&s);
    stir_gate::unknown_sources_fetch_nothing(&s, &kam, &pki, stir_gate::Dip::Resp);
    stir_gate::customer_identity_is_kept(&s, &kam, &pki, "resp");
    let origid = warpd::routing::stir::customer_origid(
        &warpd::routing::stir::DEFAULT_ORIGID_NAMESPACE,
        "10001",
    )
    .to_string();

    // 1. own number: A, and a failed-over attempt is signed as well
    {
        let first = Uas::start(dir, s.cheapest, "uas_503.xml", "stir-a");
        let second = Uas::start(dir, s.second, "uas.xml", "stir-a");
        let t0 = now_s();
        let r = call_from(
            dir,
            &kam,
            "127.0.0.1",
            &s.uac,
            (OWN_ANI, DNIS),
            "stir-a",
            &[],
        );
        assert!(r.ok, "A call failed:\n{}", r.trace);
        let ids: Vec<String> = [&first, &second]
            .iter()
            .flat_map(|u| identities(u))
            .collect();
        assert_eq!(ids.len(), 2, "both attempts signed: {ids:?}");
        for id in &ids {
            let p = verified_passport(&pki, &x5u, id);
            assert_eq!(p["attest"], "A", "{p}");
            assert_eq!(p["orig"]["tn"], &OWN_ANI[1..], "{p}");
            assert_eq!(p["dest"]["tn"], serde_json::json!([&DNIS[1..]]), "{p}");
            assert_eq!(p["origid"], origid.as_str(), "{p}");
            let iat = p["iat"].as_i64().expect("iat");
            assert!(
                (t0 - 2..=now_s() + 2).contains(&iat),
                "iat {iat} not fresh: {p}"
            );
        }
        let call_id = call_id_of(&r.trace);
        let cdr =
            support::eventually_blocking("A CDR", Duration::from_secs(10), || s.cdr_of(&call_id));
        assert_eq!(cdr["stir_attest"], "A", "{cdr}");
        assert_eq!(cdr["stir_origid"], origid.as_str(), "{cdr}");
    }
    // 2. a foreign ANI: B
    {
        let gw = Uas::start(dir, s.cheapest, "uas.xml", "stir-b");
        let r = call_from(
            dir,
            &kam,
            "127.0.0.1",
            &s.uac,
            (FOREIGN_ANI, DNIS),
            "stir-b",
            &[],
        );
        assert!(r.ok, "B call failed:\n{}", r.trace);
        let ids = identities(&gw);
        assert_eq!(ids.len(), 1, "{ids:?}");
        let p = verified_passport(&pki, &x5u, &ids[0]);
        assert_eq!(p["attest"], "B", "{p}");
        assert_eq!(p["orig"]["tn"], &FOREIGN_ANI[1..], "{p}");
    }
    // 3. the customer capped at B: its own number no longer gets A
    s.sql(
        "INSERT INTO stir_policies (customer_id, max_attest) SELECT id, 'B' FROM customers WHERE ban = '10001' \
         ON CONFLICT ON CONSTRAINT stir_policies_scope DO UPDATE SET max_attest = 'B';",
    );
    wait_attest(&s, OWN_ANI, "B");
    {
        let gw = Uas::start(dir, s.cheapest, "uas.xml", "stir-cap");
        let r = call_from(
            dir,
            &kam,
            "127.0.0.1",
            &s.uac,
            (OWN_ANI, DNIS),
            "stir-cap",
            &[],
        );
        assert!(r.ok, "capped call failed:\n{}", r.trace);
        let ids = identities(&gw);
        assert_eq!(ids.len(), 1, "{ids:?}");
        assert_eq!(verified_passport(&pki, &x5u, &ids[0])["attest"], "B");
    }
    // 3b. the customer marked transit (a peer re-originating traffic): C, whatever the ANI
    s.sql(
        "UPDATE stir_policies SET max_attest = 'A', transit = true WHERE trunk_id IS NULL \
         AND customer_id = (SELECT id FROM customers WHERE ban = '10001');",
    );
    wait_attest(&s, OWN_ANI, "C");
    {
        let gw = Uas::start(dir, s.cheapest, "uas.xml", "stir-transit");
        let r = call_from(
            dir,
            &kam,
            "127.0.0.1",
            &s.uac,
            (OWN_ANI, DNIS),
            "stir-transit",
            &[],
        );
        assert!(r.ok, "transit call failed:\n{}", r.trace);
        let ids = identities(&gw);
        assert_eq!(ids.len(), 1, "{ids:?}");
        assert_eq!(verified_passport(&pki, &x5u, &ids[0])["attest"], "C");
    }
    s.sql(
        "UPDATE stir_policies SET transit = false WHERE trunk_id IS NULL \
         AND customer_id = (SELECT id FROM customers WHERE ban = '10001');",
    );
    let text = s.rt.block_on(s.warpd.as_ref().expect("warpd").metrics());
    assert!(
        text.contains(r#"warpd_stir_attestations_total{attest="A"}"#)
            && text.contains(r#"warpd_stir_attestations_total{attest="B"}"#),
        "{text}"
    );

    // 4. inbound: a vendor (an origination source of northstar) calls the customer's number
    let d1 = free_udp_port();
    s.sql(&format!(
        "INSERT INTO trunks (name, customer_id) SELECT 'stir-trunk', id FROM customers WHERE ban = '10001';
         INSERT INTO trunk_destinations (trunk_id, host, port) SELECT id, '127.0.0.1', {d1} FROM trunks WHERE name = 'stir-trunk';
         INSERT INTO numbers (number, customer_id, trunk_id)
             SELECT '{NUMBER}', c.id, t.id FROM customers c JOIN trunks t ON t.customer_id = c.id
             WHERE c.ban = '10001' AND t.name = 'stir-trunk';
         INSERT INTO origination_sources SELECT id, '{VENDOR_IP}/32' FROM vendors WHERE name = 'northstar'
             ON CONFLICT DO NOTHING;"
    ));
    let inbound_url = format!(
        "{}/v1/inbound?src_ip={VENDOR_IP}&ani=%2B1&dnis={}",
        s.base,
        NUMBER.replace('+', "%2B")
    );
    support::eventually_blocking("the number loaded", Duration::from_secs(15), || {
        let a: Value = s.rt.block_on(async {
            match s.http.get(&inbound_url).send().await {
                Ok(r) => r.json().await.unwrap_or(Value::Null),
                Err(_) => Value::Null,
            }
        });
        (a["action"] == "route").then_some(())
    });
    let passport = |orig: &str, dest: &str| {
        serde_json::json!({
            "attest": "A", "dest": {"tn": [dest]}, "iat": now_s(), "orig": {"tn": orig},
            "origid": "0f6b6c1e-6a43-4f52-9a55-1f0e5e1f0001"
        })
    };
    let with_id = identity_scenario(dir, "uac.xml", 0, "uac");
    let inbound = |kam: &Kamailio, tag: &str, identity: Option<String>| {
        let uas = Uas::start(dir, d1, "uas.xml", tag);
        let extra: Vec<String> = identity
            .map(|i| vec!["-key".to_string(), "identity".to_string(), i])
            .unwrap_or_default();
        let extra: Vec<&str> = extra.iter().map(String::as_str).collect();
        let scenario = if extra.is_empty() { &s.uac } else { &with_id };
        let r = call_from(
            dir,
            kam,
            VENDOR_IP,
            scenario,
            (VENDOR_ANI, NUMBER),
            tag,
            &extra,
        );
        assert!(r.ok, "{tag} call failed:\n{}", r.trace);
        let seen = std::fs::read_to_string(&uas.msgs).unwrap_or_default();
        let pai = seen
            .lines()
            .find_map(|l| l.trim().strip_prefix("P-Asserted-Identity:"))
            .unwrap_or_default()
            .trim()
            .to_string();
        let call_id = call_id_of(&r.trace);
        let cdr =
            support::eventually_blocking(format!("{tag} CDR"), Duration::from_secs(10), || {
                s.cdr_of(&call_id)
            });
        (pai, cdr)
    };
    let good = pki.identity(&x5u, &passport(&VENDOR_ANI[1..], &NUMBER[1..]));
    {
        let (pai, cdr) = inbound(&kam, "stir-in-valid", Some(good.clone()));
        assert_eq!(
            pai,
            format!("<tel:{VENDOR_ANI};verstat=TN-Validation-Passed>"),
            "{cdr}"
        );
        assert_eq!(cdr["direction"], "inbound", "{cdr}");
        assert_eq!(cdr["stir_verstat"], "TN-Validation-Passed", "{cdr}");
        assert_eq!(cdr["stir_attest"], "A", "{cdr}");
        assert_eq!(
            cdr["stir_origid"], "0f6b6c1e-6a43-4f52-9a55-1f0e5e1f0001",
            "{cdr}"
        );
        assert!(
            x5u_hits.load(Ordering::SeqCst) >= 1,
            "the certificate was fetched"
        );
    }
    // tampered: the payload's orig changed after signing (the signature no longer verifies)
    let tamper = |good: &str| {
        let (token, params) = good.split_once(';').expect("params");
        let parts: Vec<&str> = token.split('.').collect();
        let forged = b64(passport("13105550001", &NUMBER[1..]).to_string().as_bytes());
        format!("{}.{forged}.{};{params}", parts[0], parts[2])
    };
    let tampered = tamper(&good);
    {
        let (pai, cdr) = inbound(&kam, "stir-in-tampered", Some(tampered.clone()));
        assert!(pai.ends_with(";verstat=TN-Validation-Failed>"), "{pai}");
        assert_eq!(cdr["stir_verstat"], "TN-Validation-Failed", "{cdr}");
        assert_eq!(cdr["stir_reason"], "bad_signature", "{cdr}");
    }
    // validly signed for another number: warpd's TN check fails it
    {
        let other = pki.identity(&x5u, &passport(&VENDOR_ANI[1..], "12125550199"));
        let (pai, cdr) = inbound(&kam, "stir-in-mismatch", Some(other));
        assert!(pai.ends_with(";verstat=TN-Validation-Failed>"), "{pai}");
        assert_eq!(cdr["stir_reason"], "tn_mismatch", "{cdr}");
    }
    // no Identity at all
    {
        let (pai, cdr) = inbound(&kam, "stir-in-none", None);
        assert!(pai.ends_with(";verstat=No-TN-Validation>"), "{pai}");
        assert_eq!(cdr["stir_verstat"], "No-TN-Validation", "{cdr}");
    }
    // 4b. the HTTP dip (-A WITHOUT_RESP_DIP) carries the same: the source check (over HTTP),
    // the customer's kept Identity, the inbound verification, its verstat and its CDR
    {
        let kam_http = stir_gate::http_stack(&s, &stir_defines);
        stir_gate::unknown_sources_fetch_nothing(&s, &kam_http, &pki, stir_gate::Dip::Http);
        stir_gate::customer_identity_is_kept(&s, &kam_http, &pki, "http");
        let good = pki.identity(&x5u, &passport(&VENDOR_ANI[1..], &NUMBER[1..]));
        let (pai, cdr) = inbound(&kam_http, "stir-http-valid", Some(good.clone()));
        assert_eq!(
            pai,
            format!("<tel:{VENDOR_ANI};verstat=TN-Validation-Passed>"),
            "{cdr}"
        );
        assert_eq!(cdr["stir_verstat"], "TN-Validation-Passed", "{cdr}");
        assert_eq!(cdr["stir_attest"], "A", "{cdr}");
        let (pai, cdr) = inbound(&kam_http, "stir-http-tampered", Some(tamper(&good)));
        assert!(pai.ends_with(";verstat=TN-Validation-Failed>"), "{pai}");
        assert_eq!(cdr["stir_reason"], "bad_signature", "{cdr}");
    }
    // 5. the customer refuses failed verification: the tampered call gets 438, a valid one passes
    s.sql(
        "UPDATE stir_policies SET verify_reject_code = 438 WHERE trunk_id IS NULL \
         AND customer_id = (SELECT id FROM customers WHERE ban = '10001');",
    );
    support::eventually_blocking("the reject policy loaded", Duration::from_secs(15), || {
        let url = format!(
            "{inbound_url}&verify=-251&identity={}",
            percent_encoding::utf8_percent_encode(&tampered, percent_encoding::NON_ALPHANUMERIC)
        );
        let a: Value = s.rt.block_on(async {
            match s.http.get(&url).send().await {
                Ok(r) => r.json().await.unwrap_or(Value::Null),
                Err(_) => Value::Null,
            }
        });
        (a["code"] == 438)
            .then_some(())
            .ok_or_else(|| a.to_string())
    });
    {
        let uas = Uas::start(dir, d1, "uas.xml", "stir-in-438");
        let refused = identity_scenario(dir, "uac_reject.xml", 438, "reject-438");
        let extra = ["-key", "identity", tampered.as_str()];
        let r = call_from(
            dir,
            &kam,
            VENDOR_IP,
            &refused,
            (VENDOR_ANI, NUMBER),
            "stir-in-438",
            &extra,
        );
        assert!(r.ok, "expected 438:\n{}", r.trace);
        assert!(
            r.trace.contains("438 Invalid Identity Header"),
            "{}",
            r.trace
        );
        assert_eq!(uas.invites(), 0);
        drop(uas);
        let good = pki.identity(&x5u, &passport(&VENDOR_ANI[1..], &NUMBER[1..]));
        let (pai, _) = inbound(&kam, "stir-in-valid-2", Some(good));
        assert!(pai.ends_with(";verstat=TN-Validation-Passed>"), "{pai}");
    }
    let text = s.rt.block_on(s.warpd.as_ref().expect("warpd").metrics());
    for want in [
        r#"warpd_stir_verifications_total{reason="",verstat="passed"}"#,
        r#"warpd_stir_verifications_total{reason="bad_signature",verstat="failed"}"#,
        r#"warpd_stir_verifications_total{reason="",verstat="none"}"#,
    ] {
        assert!(text.contains(want), "{want} missing:\n{text}");
    }
    drop(pki.dir);
}
