#!/usr/bin/env bash
# Vagrant provisioner (runs as root inside the Debian 12 VM): Rust toolchain, then the repository's
# own host provisioning: scripts/provision-host.sh packages modules (same as CI and the README run
# command), cargo build --release, scripts/provision-host.sh system (warpd user, configs, systemd
# units + drop-ins, PostgreSQL role/database, migrate, demo network, enable + start).
# Idempotent: `vagrant provision` re-runs it safely.
set -euo pipefail
src=${1:-/warpd}
export DEBIAN_FRONTEND=noninteractive
apt-get -qq update
apt-get -qq install -y --no-install-recommends ca-certificates curl gcc libc6-dev pkg-config git
if ! command -v cargo >/dev/null && [ ! -x /root/.cargo/bin/cargo ]; then
  # Debian 12's cargo is older than the crate's rust-version: rustup's stable toolchain
  curl -sSf https://sh.rustup.rs | sh -s -- -y --profile minimal
fi
export PATH="/root/.cargo/bin:$PATH"
cd "$src"
scripts/provision-host.sh packages modules
cargo build --release --locked
scripts/provision-host.sh system
echo "warpd voice stack is up: curl -s localhost:8080/readyz (Kamailio listener), localhost:8081/metrics (admin listener); scripts/demo-calls.sh places calls"
