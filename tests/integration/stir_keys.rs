//! Issue 20: the STIR/SHAKEN signing key and certificate (`[stir]`). warpd refuses a key file
//! readable by others (at start and in `warpd stir check`), a key that is not EC P-256 or not the
//! certificate's, and a file that is no certificate, naming the file; a good pair starts, and
//! `/readyz` and `warpd_stir_cert_days_to_expiry` show the days until the certificate expires;
//! `warpd stir check` prints the expiry. Keys are generated here (rcgen), never committed.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use rcgen::{CertificateParams, KeyPair};

use crate::support::{TestPg, Warpd};

/// A self-signed certificate valid for `days` and its key, as `<stem>.pem` / `<stem>.key`
/// (mode 0600) in `dir`.
fn pair(
    dir: &Path,
    stem: &str,
    alg: &'static rcgen::SignatureAlgorithm,
    days: i64,
) -> (PathBuf, PathBuf) {
    let key = KeyPair::generate_for(alg).expect("key");
    let mut params = CertificateParams::new(Vec::<String>::new()).expect("params");
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, format!("SHAKEN test {stem}"));
    // valid until midnight UTC `days` days from now
    let until = chrono::Utc::now() + chrono::Duration::days(days);
    use chrono::Datelike;
    params.not_after = rcgen::date_time_ymd(until.year(), until.month() as u8, until.day() as u8);
    let cert = params.self_signed(&key).expect("certificate");
    let (k, c) = (
        dir.join(format!("{stem}.key")),
        dir.join(format!("{stem}.pem")),
    );
    std::fs::write(&k, key.serialize_pem()).expect("write key");
    std::fs::set_permissions(&k, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    std::fs::write(&c, cert.pem()).expect("write cert");
    (k, c)
}

fn cfg(key: &Path, cert: &Path) -> warpd::stir::StirConfig {
    warpd::stir::StirConfig {
        key_file: key.into(),
        cert_file: cert.into(),
        expiry_warn_days: 30,
    }
}

#[test]
fn stir_key_and_certificate_checks() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (key, cert) = pair(d, "good", &rcgen::PKCS_ECDSA_P256_SHA256, 90);
    let now = chrono::Utc::now().timestamp();
    let info = warpd::stir::check(&cfg(&key, &cert)).expect("a good pair");
    assert!((88..=90).contains(&info.days_left(now)), "{info:?}");
    assert!(
        warpd::stir::describe(&info, now).contains("expires"),
        "{info:?}"
    );

    let (other_key, _) = pair(d, "other", &rcgen::PKCS_ECDSA_P256_SHA256, 90);
    let (p384_key, p384_cert) = pair(d, "p384", &rcgen::PKCS_ECDSA_P384_SHA384, 90);
    let open = d.join("open.key");
    std::fs::copy(&key, &open).unwrap();
    std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o644)).unwrap();
    let garbage = d.join("garbage.pem");
    std::fs::write(&garbage, "not a certificate\n").unwrap();
    let table: &[(&Path, &Path, &str)] = &[
        (&open, &cert, "stir.key_file"),
        (&other_key, &cert, "is not the key of stir.cert_file"),
        (&p384_key, &p384_cert, "not an EC P-256 private key"),
        (&key, &garbage, "stir.cert_file"),
        (&d.join("missing.key"), &cert, "cannot read"),
    ];
    for (k, c, why) in table {
        let e = warpd::stir::check(&cfg(k, c)).unwrap_err().to_string();
        assert!(e.contains(why), "{k:?} {c:?}: {e}");
        assert!(!e.contains("PRIVATE KEY"), "key material in an error: {e}");
    }
    let e = warpd::stir::check(&cfg(&open, &cert))
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("readable by others") && e.contains("open.key"),
        "{e}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_readable_key_stops_the_start_and_a_good_pair_shows_its_expiry() {
    let dir = tempfile::tempdir().unwrap();
    let (key, cert) = pair(dir.path(), "sp", &rcgen::PKCS_ECDSA_P256_SHA256, 40);
    let pg = TestPg::start();

    // world-readable: server::run refuses to start, naming the key
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o604)).unwrap();
    let (config, _spool) = Warpd::builder(&pg)
        .env("WARPD_STIR__KEY_FILE", key.display())
        .env("WARPD_STIR__CERT_FILE", cert.display())
        .build_config();
    let listeners = warpd::api::Listeners {
        kamailio: tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap(),
        admin: tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap(),
        kamailio_resp: vec![],
    };
    let token = tokio_util::sync::CancellationToken::new();
    let e = tokio::time::timeout(
        std::time::Duration::from_secs(10),
        warpd::server::run(config, listeners, token),
    )
    .await
    .expect("the start is refused at once")
    .unwrap_err()
    .to_string();
    assert!(
        e.contains("readable by others") && e.contains("sp.key"),
        "{e}"
    );

    // the binary's check: the same refusal, then the expiry of a good pair
    std::fs::write(
        dir.path().join("warpd.toml"),
        "[database]\nurl = \"postgres://warpd@127.0.0.1/warpd\"\n",
    )
    .unwrap();
    let check = || {
        std::process::Command::new(env!("CARGO_BIN_EXE_warpd"))
            .arg("--config")
            .arg(dir.path().join("warpd.toml"))
            .args(["stir", "check", "--key"])
            .arg(&key)
            .arg("--cert")
            .arg(&cert)
            .output()
            .expect("run warpd stir check")
    };
    let out = check();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("readable by others"),
        "{out:?}"
    );
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
    let out = check();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{out:?}");
    assert!(
        stdout.contains("certificate \"CN=SHAKEN test sp\" expires") && stdout.contains("days)"),
        "{stdout}"
    );

    // a good pair: started, and the days left in /readyz and the metrics
    let w = Warpd::builder(&pg)
        .env("WARPD_STIR__KEY_FILE", key.display())
        .env("WARPD_STIR__CERT_FILE", cert.display())
        .start()
        .await;
    let (status, ready) = w.get("/readyz").await;
    assert_eq!(status, 200, "{ready}");
    assert!(
        (38..=40).any(|d| ready.contains(&format!("stir_cert_days_to_expiry {d}\n"))),
        "{ready}"
    );
    let days = w.metric("warpd_stir_cert_days_to_expiry").await;
    assert!(
        matches!(days, Some(d) if (38.0..=40.0).contains(&d)),
        "{days:?}"
    );
    w.stop().await;
}
