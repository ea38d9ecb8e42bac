#!/usr/bin/env bash
# The cost of durability (issue 9; never part of CI): deploy/bench.sh's ingress
# and nearest-job figures against one NATS node (JetStream's default: an
# acknowledgement before fsync, one copy) and against a three-node cluster
# with sync_interval: always and three replicas per stream (a PubAck only once
# two nodes have fsynced the job), side by side.
#
#   ./deploy/bench_cluster.sh
#
# Each run is a whole deploy/bench.sh (phases 1 and 2 by default: accepted
# jobs/s with 64 closed-loop clients, end-to-end nearest latency at a fixed
# rate) with its own NATS (BENCH_OWN_NATS=1, then BENCH_NATS_CLUSTER=1); the
# first run builds and seeds, the second reuses both. Every other BENCH_*
# variable of deploy/bench.sh applies to both runs. Options:
#   BENCH_PHASES=1,2             phases of each run
#   BENCH_CLUSTER_SINGLE_SYNC=1  a third run: one node with sync_interval: always
#                                (the fsync cost alone, without replication)
# Result: printed, and kept in .local/bench/cluster-<time>.txt; each run's own
# result file is beside it.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)"
BENCH_DIR="$REPO/.local/bench"
mkdir -p "$BENCH_DIR"
export BENCH_PHASES="${BENCH_PHASES:-1,2}"

labels=("one node, default (ack before fsync)" "three nodes, sync_interval always, R3")
settings=("BENCH_OWN_NATS=1" "BENCH_NATS_CLUSTER=1")
if [ "${BENCH_CLUSTER_SINGLE_SYNC:-0}" = 1 ]; then
    labels+=("one node, sync_interval always")
    settings+=("BENCH_OWN_NATS=1 BENCH_NATS_SYNC=always")
fi

# The summary figures of one run's output: accepted/s with its latencies,
# and the end-to-end nearest latencies with the rate achieved.
summary() {
    sed -n '/===== GAD pipeline bench: summary/,$p' "$1" | sed -nE \
        -e 's/^accepted jobs\/s[^:]*: ([0-9,.]+\/s +p50 [0-9.]+ ms p99 [0-9.]+ ms).*/  ingress: accepted \1/p' \
        -e 's/^e2e nearest latency[^:]*: (p50 [0-9.]+ p90 [0-9.]+ p99 [0-9.]+ max [0-9.]+ ms +achieved [0-9]+\/s).*/  nearest e2e: \1/p' \
        -e 's/^  backlog drain[^:]*: (.*)/  worker drain: \1/p'
}

out="$BENCH_DIR/cluster-$(date +%Y%m%d-%H%M%S).txt"
logs=()
for i in "${!labels[@]}"; do
    log="$BENCH_DIR/cluster-run-$i.log"
    logs+=("$log")
    first=$([ "$i" -eq 0 ] && echo 0 || echo 1)
    printf '\n==> run %s: %s (%s)\n' "$((i + 1))" "${labels[$i]}" "${settings[$i]}" >&2
    read -r -a vars <<<"${settings[$i]}"
    env "${vars[@]}" BENCH_SKIP_BUILD="${BENCH_SKIP_BUILD:-$first}" BENCH_SKIP_SEED="${BENCH_SKIP_SEED:-$first}" \
        "$REPO/deploy/bench.sh" 2>&1 | tee "$log"
done

{
    printf '\n===== cost of durability: %s, phases %s =====\n' "$(date '+%F %T')" "$BENCH_PHASES"
    for i in "${!labels[@]}"; do
        printf '%s:\n' "${labels[$i]}"
        summary "${logs[$i]}"
    done
} | tee "$out"
printf 'kept in %s\n' "$out" >&2
