#!/usr/bin/env bash
# Installs what warpd needs to build and test on Debian 12 from Debian packages: a C toolchain,
# pkg-config, PostgreSQL server binaries (tests start their own throwaway clusters), wrk for load
# runs, rtpengine-daemon (media tests run it in userspace on 127.0.0.1), Chromium and ChromeDriver
# (the console's browser tests). The Rust toolchain
# itself comes from rustup (cargo), crates from crates.io.
set -euo pipefail
need=()
command -v cc >/dev/null || need+=(gcc libc6-dev)
command -v c++ >/dev/null || need+=(g++)   # libFuzzer (fuzz/, scripts/fuzz.sh) is C++
command -v pkg-config >/dev/null || need+=(pkg-config)
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || need+=(postgresql)
command -v runuser >/dev/null || need+=(util-linux)
command -v wrk >/dev/null || need+=(wrk)
# media tests start their own userspace rtpengine daemons on 127.0.0.1 (ports 30000-30999)
rtpengine_new=0
command -v rtpengine >/dev/null || { need+=(rtpengine-daemon); rtpengine_new=1; }
command -v systemd-analyze >/dev/null || need+=(systemd)   # tests/integration/systemd_units.rs verifies the units
# tests/integration/vagrant.rs runs `vagrant validate` on vagrant/Vagrantfile (libvirt provider from Debian)
command -v vagrant >/dev/null || need+=(vagrant)
dpkg -s vagrant-libvirt >/dev/null 2>&1 || need+=(vagrant-libvirt)
# tests/integration/console/ drive the ops console in a real browser: Debian's Chromium and its
# ChromeDriver (/usr/bin/chromium, /usr/bin/chromedriver), started headless by the test harness
command -v chromium >/dev/null || need+=(chromium)
command -v chromedriver >/dev/null || need+=(chromium-driver)
if [ ${#need[@]} -gt 0 ]; then
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}"
  # the package's own service (if the host starts services on install) would hold RTP ports the
  # tests use: stop it, the tests start their own daemons
  if [ "$rtpengine_new" -eq 1 ] && command -v systemctl >/dev/null && [ -d /run/systemd/system ]; then
    $SUDO systemctl disable --now rtpengine-daemon >/dev/null 2>&1 || true
  fi
fi
# The voice stack for the end-to-end tests (Kamailio, RTPEngine, SIPp) and Kamailio's
# http_async_client module built from Debian's source package (cached in target/kamailio-modules).
"$(dirname "$0")/provision-host.sh" packages modules
if ! command -v cargo >/dev/null; then
  echo "cargo not found: install Rust with rustup (https://rustup.rs) or Debian's cargo package" >&2
  exit 1
fi
