//! The Kamailio config as shipped: `kamailio -c -f kamailio/kamailio.cfg` with its default
//! defines must parse and load every module on a host prepared by `scripts/install-deps.sh`
//! (which installs the http_async_client module it builds). The SIP test runs the same file with
//! its own defines; this one checks what a network engineer deploys.

use std::process::Command;

use crate::support::{repo, require_tool};

#[test]
fn the_shipped_config_checks_with_its_default_defines() {
    require_tool("kamailio");
    let out = Command::new("kamailio")
        .current_dir(repo())
        .args(["-c", "-f", "kamailio/kamailio.cfg"])
        .output()
        .expect("running kamailio -c");
    let log =
        String::from_utf8_lossy(&out.stderr).into_owned() + &String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && log.contains("config file ok"),
        "kamailio -c -f kamailio/kamailio.cfg failed ({}):\n{log}",
        out.status
    );
    for bad in ["ERROR", "CRITICAL"] {
        assert!(
            !log.contains(bad),
            "{bad} while checking the config:\n{log}"
        );
    }
}

/// Issue 17: the shipped config listens on TCP as well as UDP (gateways with transport=tcp), and
/// `-A WITH_TLS` adds the TLS listener (module from kamailio-tls-modules, installed by
/// scripts/provision-host.sh). SIPp here is built without TLS, so no call goes over TLS in the
/// tests; `tests/e2e/e2e_sip` places one over TCP.
#[test]
fn the_shipped_config_listens_on_tcp_and_on_tls_with_its_define() {
    require_tool("kamailio");
    for (defines, want) in [
        (vec![], vec!["udp: 127.0.0.1", "tcp: 127.0.0.1"]),
        (
            vec!["-A", "WITH_TLS"],
            vec![
                "udp: 127.0.0.1",
                "tcp: 127.0.0.1",
                "tls: 127.0.0.1 [127.0.0.1]:5061",
            ],
        ),
    ] {
        let out = Command::new("kamailio")
            .current_dir(repo())
            .args(["-c", "-f", "kamailio/kamailio.cfg"])
            .args(&defines)
            .output()
            .expect("running kamailio -c");
        let log = String::from_utf8_lossy(&out.stderr).into_owned()
            + &String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success() && log.contains("config file ok"),
            "kamailio -c {defines:?} failed ({}):\n{log}",
            out.status
        );
        for w in want {
            assert!(log.contains(w), "no listener {w} with {defines:?}:\n{log}");
        }
    }
}

/// The janssonrpcc calibration path sends no secret: the config refuses to load it together with
/// `WARPD_SECRET` (a configuration for an authenticated warpd), and loads it alone.
#[test]
fn the_janssonrpc_calibration_path_refuses_a_warpd_secret() {
    require_tool("kamailio");
    let check = |defines: &[&str]| {
        let mut args = vec!["-c", "-f", "kamailio/kamailio.cfg"];
        for d in defines {
            args.extend(["-A", d]);
        }
        let out = Command::new("kamailio")
            .current_dir(repo())
            .args(&args)
            .output()
            .expect("running kamailio -c");
        let log = String::from_utf8_lossy(&out.stderr).into_owned()
            + &String::from_utf8_lossy(&out.stdout);
        (out.status.success() && log.contains("config file ok"), log)
    };
    let jrpc = [
        "BENCH_JANSSONRPC",
        "JRPC_SERVER=\"conn=calibration;addr=127.0.0.1;port=8091\"",
    ];
    let (ok, log) = check(&jrpc);
    assert!(ok, "calibration defines alone:\n{log}");
    let (ok, log) = check(&[jrpc[0], jrpc[1], "WARPD_SECRET=\"0123456789abcdef\""]);
    assert!(!ok, "loaded with WARPD_SECRET:\n{log}");
    assert!(log.contains("BENCH_JANSSONRPC_sends_no_secret"), "{log}");
}

/// Issue 20: `-A WITH_STIR` loads secsipid (package kamailio-secsipid-modules, installed by
/// scripts/provision-host.sh) and checks with the STIR routes, with the key file read per call
/// (`STIR_KEY_PER_CALL`) and with the HTTP dip only; `tests/e2e/e2e_sip/stir.rs` places signed
/// and verified calls through it.
#[test]
fn the_shipped_config_checks_with_stir() {
    require_tool("kamailio");
    let combos: &[&[&str]] = &[
        &["WITH_STIR"],
        &["WITH_STIR", "STIR_KEY_PER_CALL"],
        &["WITH_STIR", "WITHOUT_RESP_DIP", "WITHOUT_HTTP_ASYNC"],
    ];
    for defines in combos {
        let mut cmd = Command::new("kamailio");
        cmd.current_dir(repo())
            .args(["-c", "-f", "kamailio/kamailio.cfg"]);
        for d in *defines {
            cmd.args(["-A", d]);
        }
        let out = cmd.output().expect("running kamailio -c");
        let log = String::from_utf8_lossy(&out.stderr).into_owned()
            + &String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success() && log.contains("config file ok"),
            "kamailio -c {defines:?} failed ({}):\n{log}",
            out.status
        );
        for bad in ["ERROR", "CRITICAL"] {
            assert!(!log.contains(bad), "{bad} with {defines:?}:\n{log}");
        }
    }
}
