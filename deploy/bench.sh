#!/usr/bin/env bash
# Pipeline benchmark (never part of CI): three figures in one run, printed by
# target/release/bench_pipeline (tests/src/bin/bench_pipeline.rs):
#   1. accepted jobs/s (202 = the broker's acknowledgement: JetStream's PubAck, or RabbitMQ's
#      publisher confirm with BENCH_QUEUE=rabbitmq), 64 closed-loop clients, then the backlog's drain
#   2. end-to-end nearest latency at a fixed 1,000 jobs/s, open loop, Prefer: wait=5
#   3. raw PostGIS KNN query rate (the worker's query, no HTTP, no queue)
#
#   ./deploy/bench.sh
#
# What it does: deploy/services.sh up; cargo build --release --bins; drops and
# re-creates the database gad_bench and seeds it with the bench profile
# (100,000 efectivos + 100,000 tareas); starts gad-workers, gad-ingress and
# gad-broadcaster with their own ports (18070/18080/18090, metrics 19180-19182),
# stream prefix BENCH_, subject prefix bench and log filter warn (logs under
# .local/bench/), so a running dev system is untouched; runs the benchmark;
# on exit stops the three and deletes the BENCH_ streams and buckets (and, with
# BENCH_QUEUE=rabbitmq, the BENCH_GAD_JOBS* RabbitMQ queues and exchanges).
#
# Options (environment):
#   BENCH_TOOL=bench_pipeline  the load: bench_pipeline (issue 2/4/6 figures, phases below) or
#                              bench_domain (issue 3: 1 emergency dispatches/s at
#                              BENCH_EMERGENCY_CLIENTS=32, 2 mixed workload at BENCH_MIXED_RATES;
#                              workers [geo,tasks,emergency]; reseed (no BENCH_SKIP_SEED) before it) or
#                              bench_fanout (issue 5, tests/src/bin/bench_fanout.rs: 3 memory per idle
#                              connection, run first, 1 WebSocket fan-out rate at saturation, 2 latency at
#                              a fixed rate; workers []; BENCH_DURATION_S defaults to 10; the broadcaster's
#                              connection limit and new-connection rate are raised, ulimit -n to the hard limit)
#   BENCH_FANOUT_CLIENTS=1000  bench_fanout phases 1-2: subscribed clients (nivel >= 2 usuarios)
#   BENCH_FANOUT_RATE=200      bench_fanout phase 2: events/s (each delivered to every client)
#   BENCH_IDLE_CONNECTIONS=10000  bench_fanout phase 3 (BENCH_IDLE_PER_USER=2 per nivel-1 usuario)
#   BENCH_WS_NEW_CONNECTIONS_PER_SECOND=1000000  bench_fanout: the broadcaster's new-connection rate
#                              (and burst); clients retry a 1013 with backoff
#   BENCH_QUEUE=jetstream      the broker carrying the jobs (queue.backend of the three services):
#                              jetstream, or rabbitmq (RabbitMQ at $AMQP_URL from .local/services.env,
#                              else amqp://guest:guest@127.0.0.1:5672/%2f; quorum queues BENCH_GAD_JOBS.<group>,
#                              deleted at the start and the end). bench_pipeline's phases 1, 2 and 5 run the
#                              same on either (the drain reads the lane's depth and the jobs rows on RabbitMQ);
#                              phase 4 adds the raw RabbitMQ confirmed-publish rate. Events, the status bucket
#                              and the DLQ stay on NATS. Run it twice, once per value, to compare
#   BENCH_PROFILE=release      cargo profile of the binaries: release, or debug (target/debug,
#                              `cargo build --bins`) to try a tool out quickly; never for figures
#   BENCH_DURATION_S=20        measured seconds of phases 1 and 2
#   BENCH_SKIP_SEED=1          reuse an already seeded gad_bench (its jobs table is emptied)
#   BENCH_SKIP_BUILD=1         use the binaries (of BENCH_PROFILE) as they are
#   BENCH_PHASES=1,2,3         phases to run; also 4 (raw JetStream async publish, the
#                              ceiling phase 1 is read against) and 5 (overload: 2× ingress'
#                              hard limit of clients; accepted/s, p99, 503 share, ingress RSS)
#   BENCH_OVERLOAD_CLIENTS=2000 phase 5 clients
#   BENCH_CLIENTS=64           phase 1 clients
#   BENCH_RATE=1000            phase 2 requests/s
#   BENCH_WAIT_S=5             phase 2 Prefer: wait
#   BENCH_KNN_DURATION_S=10    phase 3 seconds
#   BENCH_DRAIN_TIMEOUT_S=600  wait for the phase-1 backlog at most this long, then purge it
#   BENCH_GEO_CONCURRENCY=64   geo jobs run at once by the worker process
#   BENCH_GEO_MAX_ACK_PENDING=1024
#   BENCH_POOL_SIZE=10         PostgreSQL pool size of each service pool
#   BENCH_WORKER_GROUPS=[geo]  worker groups started (no spaces: [geo,tasks]); [] with
#                              BENCH_NO_PROBE=true BENCH_PHASES=1 BENCH_DRAIN_TIMEOUT_S=1 measures ingress alone
#   BENCH_RATE_LIMITS=false    ingress rate limits (§6.4) on or off
#   BENCH_USERS=1              bench_pipeline: distinct callers, used in turn (rate limits are per
#                              usuario); above 505 (the seed's nivel >= 2), supervisors
#                              bench-sup-<n>@bench.invalid are added to gad_bench first
#   BENCH_DB=gad_bench         database name (dropped and re-created unless BENCH_SKIP_SEED=1)
#   BENCH_KEEP_RUNNING=1       leave the services running after the benchmark (until Ctrl-C)
#   BENCH_QUIET_MAX_PCT=15     before starting, wait until at most this share of all cores is busy
#   BENCH_QUIET_WAIT_S=300     ... for at most this long (then run anyway, with a warning)
#   BENCH_NICE=0               nice level of the three services and the load generator; on a
#                              shared machine -10 (root) keeps other builds from skewing them
#                              (PostgreSQL and NATS keep theirs: they are not ours to renice)
#   BENCH_OWN_NATS=1           run a private NATS on 127.0.0.1:14223 (store under .local/bench,
#                              removed at the end; niced like the services) instead of the
#                              shared one that concurrent test runs also load
#   BENCH_NATS_STORE=dir       its JetStream store (default .local/bench/nats-store; deleted at
#                              the end); /dev/shm/... takes the disk out of the picture
#   BENCH_NATS_SYNC=always     with BENCH_OWN_NATS=1: the node fsyncs before each acknowledgement
#                              (JetStream's sync_interval; default: the OS flushes every 2 min)
#   BENCH_NATS_CLUSTER=1       instead, a private three-node JetStream cluster as deploy/k8s/nats.yaml
#                              runs it: sync_interval always, every stream and bucket with 3 replicas
#                              (GAD_NATS__REPLICAS=3), clients on 127.0.0.1:14223-14225 (the services
#                              get all three), routes 16223-16225, monitoring 18223-18225, stores under
#                              .local/bench/nats-cluster (removed at the end). deploy/bench_cluster.sh
#                              runs both and prints them side by side
#   BENCH_PG_SYNC_COMMIT=off   experiment: ALTER DATABASE gad_bench SET synchronous_commit
#                              (default: leave the server's setting; reset when empty)
# Result: printed, and kept in .local/bench/result-<time>.txt.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)"
LOCAL="$REPO/.local"
BENCH_DIR="$LOCAL/bench"
BENCH_PROFILE="${BENCH_PROFILE:-release}"
case "$BENCH_PROFILE" in
    release) BUILD_ARGS=(--release --bins) ;;
    debug) BUILD_ARGS=(--bins) ;;
    *) printf 'BENCH_PROFILE=%s: release or debug\n' "$BENCH_PROFILE" >&2; exit 2 ;;
esac
BIN="${CARGO_TARGET_DIR:-$REPO/target}/$BENCH_PROFILE"
NAMES=(gad-workers gad-ingress gad-broadcaster)

if [ "${BENCH_TOOL:-}" = bench_fanout ]; then BENCH_DURATION_S="${BENCH_DURATION_S:-10}"; fi
BENCH_DURATION_S="${BENCH_DURATION_S:-20}"
BENCH_SKIP_SEED="${BENCH_SKIP_SEED:-0}"
BENCH_SKIP_BUILD="${BENCH_SKIP_BUILD:-0}"
BENCH_DB="${BENCH_DB:-gad_bench}"
BENCH_SEED_PASSWORD="${BENCH_SEED_PASSWORD:-bench-only-password-1}"
BENCH_GEO_CONCURRENCY="${BENCH_GEO_CONCURRENCY:-64}"
BENCH_GEO_MAX_ACK_PENDING="${BENCH_GEO_MAX_ACK_PENDING:-1024}"
BENCH_POOL_SIZE="${BENCH_POOL_SIZE:-10}"
BENCH_TOOL="${BENCH_TOOL:-bench_pipeline}"
BENCH_QUEUE="${BENCH_QUEUE:-jetstream}"
case "$BENCH_QUEUE" in
    jetstream | rabbitmq) ;;
    *) printf 'BENCH_QUEUE=%s: jetstream or rabbitmq\n' "$BENCH_QUEUE" >&2; exit 2 ;;
esac
case "$BENCH_TOOL" in
    bench_pipeline) BENCH_WORKER_GROUPS="${BENCH_WORKER_GROUPS:-[geo]}" ;;
    bench_domain) BENCH_WORKER_GROUPS="${BENCH_WORKER_GROUPS:-[geo,tasks,emergency]}" ;;
    bench_fanout) BENCH_WORKER_GROUPS="${BENCH_WORKER_GROUPS:-[]}" ;;
    *) printf 'BENCH_TOOL=%s: bench_pipeline, bench_domain or bench_fanout\n' "$BENCH_TOOL" >&2; exit 2 ;;
esac
BENCH_KEEP_RUNNING="${BENCH_KEEP_RUNNING:-0}"
BENCH_NICE="${BENCH_NICE:-0}"
BENCH_OWN_NATS="${BENCH_OWN_NATS:-0}"
BENCH_NATS_STORE="${BENCH_NATS_STORE:-$BENCH_DIR/nats-store}"
BENCH_NATS_SYNC="${BENCH_NATS_SYNC:-}"
BENCH_NATS_CLUSTER="${BENCH_NATS_CLUSTER:-0}"
NATS_CLUSTER_DIR="$BENCH_DIR/nats-cluster"
BENCH_PG_SYNC_COMMIT="${BENCH_PG_SYNC_COMMIT:-}"
BENCH_QUIET_WAIT_S="${BENCH_QUIET_WAIT_S:-300}"
BENCH_QUIET_MAX_PCT="${BENCH_QUIET_MAX_PCT:-15}"
READY_TIMEOUT="${BENCH_READY_TIMEOUT:-120}"
STOP_TIMEOUT=45

INGRESS_ADDR=127.0.0.1:18080
BROADCASTER_ADDR=127.0.0.1:18090
WORKERS_HEALTH_ADDR=127.0.0.1:18070

cd "$REPO"
if [ "$BENCH_NATS_CLUSTER" = 1 ] && [ "$BENCH_OWN_NATS" = 1 ]; then
    printf 'BENCH_NATS_CLUSTER=1 and BENCH_OWN_NATS=1: choose one\n' >&2; exit 2
fi
case "$BENCH_NATS_SYNC" in "" | always) ;; *) printf 'BENCH_NATS_SYNC=%s: always or empty\n' "$BENCH_NATS_SYNC" >&2; exit 2 ;; esac
case "$BENCH_NATS_STORE" in "" | / | "$HOME" | "$REPO") printf 'BENCH_NATS_STORE=%s is not a scratch directory\n' "$BENCH_NATS_STORE" >&2; exit 2 ;; esac

banner() { printf '\n==> %s\n' "$*" >&2; }
log() { printf '[bench] %s\n' "$*" >&2; }
die() { printf '[bench] ERROR: %s\n' "$*" >&2; exit 1; }

tail_file() {
    if [ -r "$1" ]; then
        printf -- '----- last lines of %s -----\n' "$1" >&2
        tail -n 30 "$1" >&2 || true
        printf -- '-----\n' >&2
    fi
}

close_fds() { # closes every fd above 2: call only inside a subshell that then execs
    local f n
    for f in "/proc/$BASHPID/fd/"*; do
        n="${f##*/}"
        if [ "$n" -gt 2 ]; then eval "exec $n>&-"; fi
    done
}

port_open() { timeout 2 bash -c "exec 3<>/dev/tcp/127.0.0.1/$1" 2>/dev/null; }

live_pid() { # $1 = name; prints the pid from .local/bench/<name>.pid if that process runs the binary
    local file="$BENCH_DIR/$1.pid" pid cmd
    [ -f "$file" ] || return 1
    pid="$(head -n 1 "$file" | tr -dc '0-9')"
    [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null || return 1
    cmd="$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null)" || return 1
    [[ $cmd == *"$1"* ]] || return 1
    printf '%s\n' "$pid"
}

stop_services() { # the three started by this script (pid files), TERM then KILL
    local name pid pids=() deadline
    for name in "${NAMES[@]}"; do
        if pid="$(live_pid "$name")"; then
            log "stopping $name (pid $pid)"
            kill -TERM "$pid" 2>/dev/null || true
            pids+=("$pid")
        fi
    done
    deadline=$((SECONDS + STOP_TIMEOUT))
    for pid in ${pids[@]+"${pids[@]}"}; do
        while kill -0 "$pid" 2>/dev/null; do
            if [ "$SECONDS" -ge "$deadline" ]; then
                log "pid $pid still running after ${STOP_TIMEOUT} s: SIGKILL"
                kill -KILL "$pid" 2>/dev/null || true
                break
            fi
            sleep 0.2
        done
    done
    for name in "${NAMES[@]}"; do rm -f "$BENCH_DIR/$name.pid"; done
}

delete_streams() {
    if [ -x "$BIN/bench_pipeline" ] && [ -n "${GAD_NATS__URL:-}" ]; then
        "$BIN/bench_pipeline" --cleanup --nats-url "$GAD_NATS__URL" \
            --stream-prefix "$GAD_NATS__STREAM_PREFIX" --subject-prefix "$GAD_NATS__SUBJECT_PREFIX" >&2 \
            || log "could not delete the ${GAD_NATS__STREAM_PREFIX}* streams and buckets"
    fi
}

delete_rabbitmq() { # the BENCH_ names on RabbitMQ (nothing there with BENCH_QUEUE=jetstream)
    [ "$BENCH_QUEUE" = rabbitmq ] || return 0
    [ -x "$BIN/bench_pipeline" ] || return 0
    "$BIN/bench_pipeline" --cleanup-rabbitmq --amqp-url "$GAD_QUEUE__RABBITMQ__URL" \
        --stream-prefix "$GAD_NATS__STREAM_PREFIX" --subject-prefix "$GAD_NATS__SUBJECT_PREFIX" >&2
}

OWN_NATS_PORT=14223
start_own_nats() { # a private NATS (same binary as deploy/services.sh's) with its own store
    local nats_bin="$LOCAL/venv/bin/nats-server" deadline
    [ -x "$nats_bin" ] || die "BENCH_OWN_NATS=1 needs $nats_bin (deploy/services.sh installs it)"
    if port_open "$OWN_NATS_PORT"; then die "127.0.0.1:$OWN_NATS_PORT is in use"; fi
    rm -rf "$BENCH_NATS_STORE"
    # sync_interval has no command-line flag: a configuration file holds it.
    local conf=()
    if [ -n "$BENCH_NATS_SYNC" ]; then
        printf 'jetstream { sync_interval: %s }\n' "$BENCH_NATS_SYNC" >"$BENCH_DIR/nats-server.conf"
        conf=(-c "$BENCH_DIR/nats-server.conf")
    fi
    (close_fds && exec nice -n "$BENCH_NICE" setsid "$nats_bin" ${conf[@]+"${conf[@]}"} -a 127.0.0.1 -p "$OWN_NATS_PORT" \
        -js -sd "$BENCH_NATS_STORE" -l "$BENCH_DIR/nats-server.log" </dev/null >/dev/null 2>&1) &
    printf '%s\n' "$!" >"$BENCH_DIR/nats-server.pid"
    disown 2>/dev/null || true
    deadline=$((SECONDS + 10))
    until port_open "$OWN_NATS_PORT"; do
        [ "$SECONDS" -lt "$deadline" ] || die "own NATS did not listen on $OWN_NATS_PORT within 10 s"
        sleep 0.2
    done
    export GAD_NATS__URL="nats://127.0.0.1:$OWN_NATS_PORT"
    log "started own NATS $("$nats_bin" --version) on $GAD_NATS__URL (pid $(cat "$BENCH_DIR/nats-server.pid"))"
}

terminate() { # $1 = pid: TERM, then KILL if it still runs after 20 s
    local deadline=$((SECONDS + 20))
    kill -TERM "$1" 2>/dev/null || true
    while kill -0 "$1" 2>/dev/null; do
        if [ "$SECONDS" -ge "$deadline" ]; then kill -KILL "$1" 2>/dev/null || true; break; fi
        sleep 0.2
    done
}

stop_own_nats() {
    local pid
    if pid="$(live_pid nats-server)"; then
        log "stopping own NATS (pid $pid)"
        terminate "$pid"
    fi
    rm -f "$BENCH_DIR/nats-server.pid"
    rm -rf "$BENCH_NATS_STORE"
}

# The production cluster's configuration (deploy/k8s/nats.yaml) on loopback:
# node i listens for clients on OWN_NATS_PORT+i, for routes on 16223+i.
start_nats_cluster() {
    local nats_bin="$LOCAL/venv/bin/nats-server" i j port routes="" deadline
    [ -x "$nats_bin" ] || die "BENCH_NATS_CLUSTER=1 needs $nats_bin (deploy/services.sh installs it)"
    for i in 0 1 2; do
        for port in $((OWN_NATS_PORT + i)) $((16223 + i)) $((18223 + i)); do
            if port_open "$port"; then die "127.0.0.1:$port is in use"; fi
        done
    done
    rm -rf "$NATS_CLUSTER_DIR"
    mkdir -p "$NATS_CLUSTER_DIR"
    for j in 0 1 2; do routes="$routes${routes:+, }\"nats://127.0.0.1:$((16223 + j))\""; done
    for i in 0 1 2; do
        # The file name is in the command line, which live_pid matches.
        {
            printf 'server_name: n%s\n' "$i"
            printf 'listen: 127.0.0.1:%s\n' "$((OWN_NATS_PORT + i))"
            printf 'http: 127.0.0.1:%s\n' "$((18223 + i))"
            printf 'jetstream { store_dir: "%s", sync_interval: always }\n' "$NATS_CLUSTER_DIR/n$i"
            printf 'cluster { name: gad-bench, listen: 127.0.0.1:%s, routes: [ %s ] }\n' "$((16223 + i))" "$routes"
        } >"$NATS_CLUSTER_DIR/nats-server-$i.conf"
        "$nats_bin" -c "$NATS_CLUSTER_DIR/nats-server-$i.conf" -t >&2 || die "nats-server -t refused the configuration of n$i"
        (close_fds && exec nice -n "$BENCH_NICE" setsid "$nats_bin" -c "$NATS_CLUSTER_DIR/nats-server-$i.conf" \
            -l "$BENCH_DIR/nats-server-$i.log" </dev/null >>"$BENCH_DIR/nats-server-$i.log" 2>&1) &
        printf '%s\n' "$!" >"$BENCH_DIR/nats-server-$i.pid"
        disown 2>/dev/null || true
    done
    # /healthz answers 200 once JetStream has its meta leader and is current.
    deadline=$((SECONDS + 30))
    for i in 0 1 2; do
        until curl -fsS --max-time 2 "http://127.0.0.1:$((18223 + i))/healthz" >/dev/null 2>&1; do
            [ "$SECONDS" -lt "$deadline" ] || die "NATS node n$i not healthy within 30 s (log $BENCH_DIR/nats-server-$i.log)"
            sleep 0.3
        done
    done
    export GAD_NATS__URL="nats://127.0.0.1:$OWN_NATS_PORT,nats://127.0.0.1:$((OWN_NATS_PORT + 1)),nats://127.0.0.1:$((OWN_NATS_PORT + 2))"
    export GAD_NATS__REPLICAS=3
    log "started a three-node NATS cluster $("$nats_bin" --version) (sync_interval always, R3) on $GAD_NATS__URL"
}

stop_nats_cluster() {
    local i pid
    for i in 0 1 2; do
        if pid="$(live_pid "nats-server-$i")"; then
            log "stopping NATS cluster node n$i (pid $pid)"
            terminate "$pid"
        fi
        rm -f "$BENCH_DIR/nats-server-$i.pid"
    done
    rm -rf "$NATS_CLUSTER_DIR"
}

CLEANUP_ARMED=0
# shellcheck disable=SC2317  # invoked by the EXIT trap
on_exit() {
    local rc=$?
    [ "$CLEANUP_ARMED" -eq 1 ] || exit "$rc"
    CLEANUP_ARMED=0
    banner "cleanup: stopping the bench services, deleting ${GAD_NATS__STREAM_PREFIX:-BENCH_}* streams"
    stop_services
    delete_rabbitmq || log "could not delete the ${GAD_NATS__STREAM_PREFIX}GAD_JOBS* RabbitMQ queues and exchanges"
    if [ "$BENCH_OWN_NATS" = 1 ]; then
        stop_own_nats
    elif [ "$BENCH_NATS_CLUSTER" = 1 ]; then
        stop_nats_cluster
    else
        delete_streams
    fi
    exit "$rc"
}
trap on_exit EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

start_one() { # $1 = binary name; the previous run's log becomes <name>.log.prev
    local name=$1
    if [ -f "$BENCH_DIR/$name.log" ]; then mv -f "$BENCH_DIR/$name.log" "$BENCH_DIR/$name.log.prev"; fi
    printf '=== %s: start %s\n' "$(date '+%F %T')" "$name" >>"$BENCH_DIR/$name.log"
    local vars
    read -r -a vars <<<"${SERVICE_ENV[$name]}"
    printf '    %s\n' "${vars[@]}" >>"$BENCH_DIR/$name.log"
    (close_fds && exec nice -n "$BENCH_NICE" env "${vars[@]}" setsid "$BIN/$name" </dev/null >>"$BENCH_DIR/$name.log" 2>&1) &
    printf '%s\n' "$!" >"$BENCH_DIR/$name.pid"
    disown 2>/dev/null || true
    log "started $name (pid $!, log $BENCH_DIR/$name.log)"
}

check_alive() {
    local name
    for name in "${NAMES[@]}"; do
        if ! live_pid "$name" >/dev/null; then
            tail_file "$BENCH_DIR/$name.log"
            die "$name exited (log $BENCH_DIR/$name.log)"
        fi
    done
}

ready() { # $1 = base URL; ready and not degraded
    local body
    body="$(curl -fsS --max-time 2 "$1/health/ready" 2>/dev/null)" || return 1
    [[ $body != *'"degraded"'* ]]
}

machine_busy() { # prints the share of all cores busy over 2 s, in %
    local a b
    read -r -a a < <(head -n 1 /proc/stat)
    sleep 2
    read -r -a b < <(head -n 1 /proc/stat)
    awk -v a="${a[*]:1:8}" -v b="${b[*]:1:8}" 'BEGIN {
        n = split(a, x, " "); split(b, y, " "); all = 0
        for (i = 1; i <= n; i++) all += y[i] - x[i]
        idle = (y[4] - x[4]) + (y[5] - x[5])
        printf "%d", (all > 0 ? 100 * (all - idle) / all : 0)
    }'
}

wait_quiet() { # other work on the shared cores distorts every figure: wait for a quiet machine
    local busy deadline=$((SECONDS + BENCH_QUIET_WAIT_S))
    while true; do
        busy="$(machine_busy)"
        if [ "$busy" -le "$BENCH_QUIET_MAX_PCT" ]; then
            log "machine is quiet enough: ${busy}% of all cores busy"
            break
        fi
        if [ "$SECONDS" -ge "$deadline" ]; then
            log "warning: machine still ${busy}% busy after ${BENCH_QUIET_WAIT_S} s; running anyway"
            break
        fi
        log "machine ${busy}% busy (other work; want <= ${BENCH_QUIET_MAX_PCT}%): waiting"
        sleep 5
    done
    QUIET_BUSY=$busy
}

psql_url() { # $1 = URL, $2 = SQL
    PGCONNECT_TIMEOUT=5 psql -w -X -q -A -t -v ON_ERROR_STOP=1 "$1" -c "$2" </dev/null
}

# ---------------------------------------------------------------- one run at a time

# Two runs would share ports, pid files, the database and the streams.
mkdir -p "$BENCH_DIR"
exec 9>"$BENCH_DIR/lock"
if ! flock -n 9; then
    log "another deploy/bench.sh is running (lock $BENCH_DIR/lock): waiting for it (at most 1 h)"
    flock -w 3600 9 || die "the other deploy/bench.sh still runs after 1 h"
fi

# ---------------------------------------------------------------- services and build

banner "services (deploy/services.sh up)"
./deploy/services.sh up >/dev/null
# shellcheck source=/dev/null
source "$LOCAL/services.env"
: "${GAD_POSTGRES__URL:?services.env has no GAD_POSTGRES__URL}"
: "${GAD_NATS__URL:?services.env has no GAD_NATS__URL}"
: "${GAD_REDIS__URL:?services.env has no GAD_REDIS__URL}"
command -v curl >/dev/null 2>&1 || die "curl is required"
command -v psql >/dev/null 2>&1 || die "psql is required (deploy/services.sh installs postgresql-client)"
mkdir -p "$BENCH_DIR"

if [ "$BENCH_SKIP_BUILD" = 1 ]; then
    log "BENCH_SKIP_BUILD=1: using the $BENCH_PROFILE binaries as they are"
else
    banner "cargo build ${BUILD_ARGS[*]}"
    build_start=$SECONDS
    cargo build "${BUILD_ARGS[@]}"
    log "$BENCH_PROFILE build: $((SECONDS - build_start)) s"
fi
if [ "$BENCH_PROFILE" != release ]; then log "warning: $BENCH_PROFILE binaries: the figures say nothing about release"; fi
for name in gad bench_pipeline "$BENCH_TOOL" "${NAMES[@]}"; do
    [ -x "$BIN/$name" ] || die "$BIN/$name was not built"
done

# ---------------------------------------------------------------- configuration of the bench services

unset GAD_CONFIG
pg_base="${GAD_POSTGRES__URL%%\?*}"
pg_base="${pg_base%/*}"
ADMIN_URL="$pg_base/postgres"
BENCH_DATABASE_URL="$pg_base/$BENCH_DB"

export GAD_POSTGRES__URL="$BENCH_DATABASE_URL"
export GAD_POSTGRES__POOL_SIZE="$BENCH_POOL_SIZE"
export GAD_NATS__STREAM_PREFIX=BENCH_
export GAD_NATS__SUBJECT_PREFIX=bench
export GAD_TELEMETRY__LOG_FILTER=warn
# The jobs queue, for the three services and bench_pipeline alike.
export GAD_QUEUE__BACKEND="$BENCH_QUEUE"
export GAD_QUEUE__RABBITMQ__URL="${AMQP_URL:-${GAD_QUEUE__RABBITMQ__URL:-amqp://guest:guest@127.0.0.1:5672/%2f}}"
export GAD_AUTH__JWT_SECRET
GAD_AUTH__JWT_SECRET="$(head -c 48 /dev/urandom | base64 -w 0)"
# Each binary gets only the variables of sections it has (env(1) arguments):
# settings::load rejects other services' sections when they are upper case
# (GAD_BROADCASTER__BIND seen by gad-workers is "unknown field broadcaster").
for var in $(compgen -e); do
    case "$var" in GAD_INGRESS__* | GAD_WORKERS__* | GAD_BROADCASTER__*) unset "$var" ;; esac
done
declare -A SERVICE_ENV=(
    [gad-ingress]="GAD_INGRESS__BIND=$INGRESS_ADDR GAD_INGRESS__METRICS_BIND=127.0.0.1:19180 GAD_INGRESS__RATE_LIMIT__ENABLED=${BENCH_RATE_LIMITS:-false}"
    [gad-workers]="GAD_WORKERS__HEALTH_BIND=$WORKERS_HEALTH_ADDR GAD_WORKERS__METRICS_BIND=127.0.0.1:19181 \
GAD_WORKERS__GROUPS=$BENCH_WORKER_GROUPS GAD_WORKERS__GROUP__GEO__CONCURRENCY=$BENCH_GEO_CONCURRENCY \
GAD_WORKERS__GROUP__GEO__MAX_ACK_PENDING=$BENCH_GEO_MAX_ACK_PENDING"
    [gad-broadcaster]="GAD_BROADCASTER__BIND=$BROADCASTER_ADDR GAD_BROADCASTER__METRICS_BIND=127.0.0.1:19182"
)
if [ "$BENCH_TOOL" = bench_fanout ]; then
    # Phase 3's idle connections plus phases 1-2's clients (closed in between,
    # but the margin costs nothing), and no new-connection rate limit: the
    # figures are delivery and memory, not how fast a node takes reconnects.
    fanout_conns=$((${BENCH_IDLE_CONNECTIONS:-10000} + ${BENCH_FANOUT_CLIENTS:-1000}))
    SERVICE_ENV[gad-broadcaster]+=" GAD_BROADCASTER__MAX_CONNECTIONS=$((fanout_conns + 100))"
    rate="${BENCH_WS_NEW_CONNECTIONS_PER_SECOND:-1000000}"
    SERVICE_ENV[gad-broadcaster]+=" GAD_BROADCASTER__NEW_CONNECTIONS_PER_SECOND=$rate GAD_BROADCASTER__NEW_CONNECTIONS_BURST=$rate"
    # Both the broadcaster and bench_fanout hold one descriptor per connection.
    ulimit -n "$(ulimit -Hn)" || true
    if [ "$(ulimit -n)" != unlimited ] && [ "$(ulimit -n)" -lt $((fanout_conns + 1024)) ]; then
        die "ulimit -n is $(ulimit -n) (hard limit $(ulimit -Hn)); bench_fanout needs $((fanout_conns + 1024)): lower BENCH_IDLE_CONNECTIONS or raise the limit"
    fi
    log "bench_fanout: broadcaster max_connections $((fanout_conns + 100)), ulimit -n $(ulimit -n)"
fi
# leftovers of an interrupted run: our own processes, then our streams
stop_services
stop_own_nats
stop_nats_cluster
for port in 18070 18080 18090 19180 19181 19182; do
    if port_open "$port"; then die "127.0.0.1:$port is in use by another process"; fi
done
CLEANUP_ARMED=1
if [ "$BENCH_OWN_NATS" = 1 ]; then start_own_nats; fi
if [ "$BENCH_NATS_CLUSTER" = 1 ]; then start_nats_cluster; fi
delete_streams
delete_rabbitmq || die "BENCH_QUEUE=rabbitmq: RabbitMQ at ${GAD_QUEUE__RABBITMQ__URL##*@} unreachable, or its BENCH_ names not deletable"

# ---------------------------------------------------------------- database

if [ "$BENCH_SKIP_SEED" = 1 ]; then
    banner "BENCH_SKIP_SEED=1: reusing database $BENCH_DB"
    n="$(psql_url "$BENCH_DATABASE_URL" 'SELECT count(*) FROM efectivos' 2>/dev/null)" \
        || die "database $BENCH_DB is missing or not seeded: run without BENCH_SKIP_SEED"
    log "$BENCH_DB has $n efectivos"
    [ "$n" -ge 100000 ] || log "warning: fewer efectivos than the bench profile's 100,000"
    "$BIN/gad" migrate >&2
    psql_url "$BENCH_DATABASE_URL" 'TRUNCATE jobs' >/dev/null
    log "emptied the jobs table of earlier runs"
else
    banner "database $BENCH_DB: drop, create, gad seed --profile bench"
    psql_url "$ADMIN_URL" "DROP DATABASE IF EXISTS $BENCH_DB WITH (FORCE)" >/dev/null
    psql_url "$ADMIN_URL" "CREATE DATABASE $BENCH_DB" >/dev/null
    seed_start="$(date +%s.%N)"
    "$BIN/gad" seed --profile bench --password "$BENCH_SEED_PASSWORD"
    seed_secs="$(awk -v a="$seed_start" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')"
    log "seed (migrations + bench profile): $seed_secs s wall"
    psql_url "$BENCH_DATABASE_URL" 'VACUUM ANALYZE' >/dev/null
fi

if [ -n "$BENCH_PG_SYNC_COMMIT" ]; then
    psql_url "$ADMIN_URL" "ALTER DATABASE $BENCH_DB SET synchronous_commit = '$BENCH_PG_SYNC_COMMIT'" >/dev/null
    log "experiment: synchronous_commit = $BENCH_PG_SYNC_COMMIT for database $BENCH_DB"
else
    psql_url "$ADMIN_URL" "ALTER DATABASE $BENCH_DB RESET synchronous_commit" >/dev/null
fi

# ---------------------------------------------------------------- the three services

banner "waiting for a quiet machine (<= ${BENCH_QUIET_MAX_PCT}% busy, at most ${BENCH_QUIET_WAIT_S} s)"
QUIET_BUSY=""
wait_quiet

banner "starting ${NAMES[*]} (BENCH_ prefix; ingress http://$INGRESS_ADDR)"
for name in "${NAMES[@]}"; do start_one "$name"; done
deadline=$((SECONDS + READY_TIMEOUT))
for url in "http://$WORKERS_HEALTH_ADDR" "http://$INGRESS_ADDR" "http://$BROADCASTER_ADDR"; do
    until ready "$url"; do
        check_alive
        if [ "$SECONDS" -ge "$deadline" ]; then
            for name in "${NAMES[@]}"; do tail_file "$BENCH_DIR/$name.log"; done
            die "$url/health/ready not ok within $READY_TIMEOUT s"
        fi
        sleep 0.5
    done
    log "$url/health/ready ok"
done

BENCH_TOKEN="$("$BIN/gad" token --email supervisor1@seed.invalid | tr -d '[:space:]')"
[ -n "$BENCH_TOKEN" ] || die "gad token printed nothing"
export BENCH_TOKEN BENCH_DATABASE_URL BENCH_DURATION_S
BENCH_USERS="${BENCH_USERS:-1}"
if [ "$BENCH_USERS" -gt 1 ]; then
    # The nearest job needs nivel >= 2: top the seed's supervisors up to BENCH_USERS.
    psql_url "$BENCH_DATABASE_URL" "INSERT INTO usuarios (dni, nombre, apellido, email, hashed_password, verificado, nivel)
        SELECT 'BS' || lpad(g::text, 8, '0'), 'Bench', 'Supervisor', 'bench-sup-' || g || '@bench.invalid', 'x', true, 2
        FROM generate_series(1, $BENCH_USERS) g ON CONFLICT DO NOTHING" >/dev/null
    BENCH_TOKENS_FILE="$BENCH_DIR/tokens"
    (umask 077 && "$BIN/gad" token --supervisors "$BENCH_USERS" >"$BENCH_TOKENS_FILE") \
        || die "gad token --supervisors $BENCH_USERS failed"
    export BENCH_TOKENS_FILE
fi

cpu_args=()
for name in "${NAMES[@]}"; do
    cpu_args+=(--cpu-pid "${name#gad-}=$(live_pid "$name")")
done
if pid="$(live_pid nats-server)"; then cpu_args+=(--cpu-pid "nats (own)=$pid"); fi
for i in 0 1 2; do
    if pid="$(live_pid "nats-server-$i")"; then cpu_args+=(--cpu-pid "nats n$i=$pid"); fi
done

banner "$BENCH_TOOL"
result="$BENCH_DIR/result-$(date +%Y%m%d-%H%M%S).txt"
{
    printf 'GAD bench %s, commit %s%s, %s cores, %s\n' "$(date '+%F %T')" \
        "$(git rev-parse --short HEAD 2>/dev/null || echo '?')" \
        "$(git diff --quiet 2>/dev/null || echo ' (dirty)')" "$(nproc)" \
        "$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')"
    if [ -n "${seed_secs:-}" ]; then printf 'seed (bench profile, incl. migrations): %s s\n' "$seed_secs"; fi
    printf 'machine busy before the services started: %s%% of all cores; nice %s\n' "$QUIET_BUSY" "$BENCH_NICE"
    if [ "$BENCH_OWN_NATS" = 1 ]; then
        printf 'own NATS (one node%s), store %s\n' "${BENCH_NATS_SYNC:+, sync_interval $BENCH_NATS_SYNC}" "$BENCH_NATS_STORE"
    fi
    if [ "$BENCH_NATS_CLUSTER" = 1 ]; then printf 'NATS: three-node cluster, sync_interval always, 3 replicas per stream\n'; fi
    if [ -n "$BENCH_PG_SYNC_COMMIT" ]; then printf 'experiment: synchronous_commit = %s\n' "$BENCH_PG_SYNC_COMMIT"; fi
    if [ "$BENCH_QUEUE" = rabbitmq ]; then
        printf 'jobs queue: RabbitMQ %s at %s (BENCH_QUEUE=rabbitmq)\n' \
            "$(rabbitmqctl version 2>/dev/null || echo '?')" "${GAD_QUEUE__RABBITMQ__URL##*@}"
    else
        printf 'jobs queue: NATS JetStream (BENCH_QUEUE=jetstream)\n'
    fi
} | tee "$result"
bench_rc=0
case "$BENCH_TOOL" in
    bench_pipeline) tool_args=(--ingress-url "http://$INGRESS_ADDR" "${cpu_args[@]}") ;;
    bench_domain) tool_args=(--ingress-url "http://$INGRESS_ADDR") ;;
    bench_fanout) tool_args=(--broadcaster-addr "$BROADCASTER_ADDR" --broadcaster-pid "$(live_pid gad-broadcaster)") ;;
esac
nice -n "$BENCH_NICE" "$BIN/$BENCH_TOOL" "${tool_args[@]}" 2>&1 | tee -a "$result" || bench_rc=$?
for name in "${NAMES[@]}"; do
    n="$(grep -c -E 'WARN|ERROR' "$BENCH_DIR/$name.log" || true)"
    if [ "$n" -gt 0 ]; then
        {
            printf 'log: %s has %s WARN/ERROR lines (%s); most frequent:\n' "$name" "$n" "$BENCH_DIR/$name.log"
            grep -E 'WARN|ERROR' "$BENCH_DIR/$name.log" | sed -E 's/\x1b\[[0-9;]*m//g; s/^[0-9T:.Z-]+ +//; s/[0-9a-f]{8}-[0-9a-f-]{27}/<id>/g' \
                | cut -c1-160 | sort | uniq -c | sort -rn | head -n 3
        } | tee -a "$result"
    fi
done
log "result kept in $result"

if [ "$BENCH_KEEP_RUNNING" = 1 ]; then
    log "BENCH_KEEP_RUNNING=1: services stay up (ingress http://$INGRESS_ADDR, token in \$BENCH_TOKEN); Ctrl-C to stop"
    while true; do sleep 3600 & wait "$!"; done  # wait: a signal's trap runs at once
fi
exit "$bench_rc"
