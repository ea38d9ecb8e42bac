#!/usr/bin/env bash
# Runs every check and test of the workspace against local services:
#   ./deploy/test.sh [extra args for the test runner]
# Brings the services up (deploy/services.sh up), then: rustfmt check, clippy -D warnings,
# tests (cargo nextest when installed, else cargo test). Exits non-zero on any failure.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)"
cd "$REPO"

banner() { printf '\n==> %s\n' "$*"; }

banner "services (deploy/services.sh up)"
./deploy/services.sh up
# shellcheck source=/dev/null
source "$REPO/.local/services.env"

# A CI run once died linking with "No space left on device": say what there was.
banner "free disk"
df -h "$REPO" | tail -n 1

banner "cargo fmt --all -- --check"
cargo fmt --all -- --check

banner "cargo clippy --workspace --all-targets -- -D warnings"
cargo clippy --workspace --all-targets -- -D warnings

# The chaos tests run the service binaries as OS processes: build them here,
# once, rather than from inside a test while others wait on the build lock.
banner "cargo build --workspace --bins"
cargo build --workspace --bins

if cargo nextest --version >/dev/null 2>&1; then
    runner=(cargo nextest run --workspace --no-fail-fast "$@")
    banner "${runner[*]}"
else
    runner=(cargo test --workspace --no-fail-fast "$@")
    banner "${runner[*]}   (cargo-nextest is not installed)"
fi
"${runner[@]}"

banner "all checks passed"
