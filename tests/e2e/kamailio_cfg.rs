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
