//! `vagrant/Vagrantfile` is a valid Vagrant configuration: `vagrant validate` (Debian's `vagrant`
//! with the `vagrant-libvirt` provider, both installed by scripts/install-deps.sh; VirtualBox is
//! not in Debian, so its provider block is checked by `--ignore-provider` only), run on a copy so
//! no `.vagrant/` state lands in the repository. A broken copy is refused, so the check is real.
//! Booting the box needs a hypervisor this machine does not have: the provisioning script the box
//! runs (scripts/provision-host.sh) is exercised by every CI run instead: its `packages` and
//! `modules` steps through scripts/install-deps.sh (scripts/test.sh), whose Kamailio module and
//! packages tests/e2e/e2e_sip.rs then uses; its `system` step (users, units, enable) needs systemd as
//! PID 1 and runs only inside the box.

use crate::support;

use std::path::Path;
use std::process::Command;

/// Runs `vagrant validate ARGS` in a copy of vagrant/ whose Vagrantfile is `vagrantfile`.
fn validate(vagrantfile: &str, args: &[&str]) -> (bool, String) {
    let tmp = tempfile::tempdir().expect("temp dir");
    let dir = tmp.path().join("vagrant");
    std::fs::create_dir_all(&dir).expect("mkdir");
    std::fs::write(dir.join("Vagrantfile"), vagrantfile).expect("write Vagrantfile");
    std::fs::copy(
        support::repo().join("vagrant/provision.sh"),
        dir.join("provision.sh"),
    )
    .expect("copy provision.sh");
    let out = Command::new("vagrant")
        .arg("validate")
        .args(args)
        .current_dir(&dir)
        .env("VAGRANT_HOME", tmp.path().join("home"))
        .env("VAGRANT_DEFAULT_PROVIDER", "libvirt")
        .env("VAGRANT_CHECKPOINT_DISABLE", "1")
        .output()
        .expect("run vagrant (scripts/install-deps.sh installs it)");
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    (out.status.success(), text)
}

fn vagrantfile() -> String {
    std::fs::read_to_string(support::repo().join("vagrant/Vagrantfile")).expect("read Vagrantfile")
}

#[test]
fn vagrantfile_validates_with_libvirt_and_without_provider() {
    let (ok, text) = validate(&vagrantfile(), &[]);
    assert!(ok && text.contains("validated successfully"), "{text}");
    let (ok, text) = validate(&vagrantfile(), &["--ignore-provider"]);
    assert!(ok && text.contains("validated successfully"), "{text}");
    // the provisioner the box runs is the repository's script
    assert!(Path::new(&support::repo().join("vagrant/provision.sh")).exists());
}

#[test]
fn a_broken_vagrantfile_is_refused() {
    let broken = vagrantfile().replace("config.vm.hostname", "config.vm.hostnme");
    let (ok, text) = validate(&broken, &[]);
    assert!(!ok, "a misspelt key must fail validation: {text}");
    assert!(text.contains("hostnme"), "{text}");
}
