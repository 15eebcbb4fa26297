#!/usr/bin/env bash
# The whole test suite: installs dependencies, checks formatting and lints, runs every test
# (unit, PostgreSQL integration tests on throwaway clusters, HTTP tests on 127.0.0.1).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
cargo fmt --all -- --check
cargo clippy --all-targets --locked -- -D warnings
cargo test --locked
