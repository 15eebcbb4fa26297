#!/usr/bin/env bash
# The whole test suite: installs dependencies, checks formatting and lints, fuzzes the parsers
# briefly, runs every test (unit, PostgreSQL integration tests on throwaway clusters, HTTP tests
# on 127.0.0.1).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
cargo fmt --all -- --check
cargo fmt --manifest-path tests/fuzz/Cargo.toml -- --check
cargo clippy --workspace --all-targets --locked -- -D warnings
# the parsers of outside input under libFuzzer, 15 s each from real seeds (scripts/fuzz.sh)
scripts/fuzz.sh 15
cargo test --workspace --locked
