#!/usr/bin/env bash
# No-op job throughput through the workers (issue 4; never part of CI):
# target/release/bench_workers (tests/src/bin/bench_workers.rs) runs the
# workers in its own process with only the `import` group, fills the queue
# with import.noop jobs and times the drain, at each concurrency.
#
#   ./deploy/bench_workers.sh                 # 100,000 jobs at 32, 64 and 128
#   BENCH_JOBS=200000 BENCH_CONCURRENCY=64 ./deploy/bench_workers.sh
#
# Options (environment): BENCH_JOBS, BENCH_CONCURRENCY (comma list),
# BENCH_MAX_ACK_PENDING (0 = 8 x concurrency), BENCH_WORKERS_DB (scratch
# database, default gad_bench_workers), BENCH_SKIP_BUILD=1, BENCH_NICE=0.
# Streams BENCHW<round>_* are created and deleted per round; run it on a quiet
# machine (the services share its cores).
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)"
BIN="${CARGO_TARGET_DIR:-$REPO/target}/release"

"$REPO/deploy/services.sh" up >&2
# shellcheck disable=SC1091
source "$REPO/.local/services.env"
if [ "${BENCH_SKIP_BUILD:-0}" != 1 ]; then
    cargo build --release -p gad-e2e --bin bench_workers
fi
exec nice -n "${BENCH_NICE:-0}" "$BIN/bench_workers" "$@"
