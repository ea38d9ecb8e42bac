#!/usr/bin/env bash
# Import throughput (issue 8; never part of CI): target/release/bench_import
# (tests/src/bin/bench_import.rs) generates a 1,000,000-row location-update
# file for 10,000 units of its own (scratch database gad_bench_import), then
# prints: the raw JetStream async-publish rate of the same messages, the rows/s
# `gad import`'s publisher gets acknowledged (and its share of raw, target
# >= 60 %), and the rows/s end to end until every row is applied by the
# workers' import lane (run in the benchmark's process).
#
#   ./deploy/bench_import.sh
#   BENCH_IMPORT_ROWS=200000 ./deploy/bench_import.sh
#
# Options (environment): BENCH_IMPORT_ROWS, BENCH_IMPORT_UNITS, BENCH_IMPORT_IN_FLIGHT,
# BENCH_IMPORT_CONCURRENCY (import lane), BENCH_IMPORT_DB, BENCH_IMPORT_TIMEOUT_S,
# BENCH_SKIP_BUILD=1, BENCH_NICE=0. Streams BENCHI_* are created and deleted;
# run it on a quiet machine (the services share its cores).
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)"
BIN="${CARGO_TARGET_DIR:-$REPO/target}/release"

"$REPO/deploy/services.sh" up >&2
# shellcheck disable=SC1091
source "$REPO/.local/services.env"
if [ "${BENCH_SKIP_BUILD:-0}" != 1 ]; then
    cargo build --release -p gad-e2e --bin bench_import
fi
exec nice -n "${BENCH_NICE:-0}" "$BIN/bench_import" "$@"
