#!/usr/bin/env bash
# Runs GAD locally:
#   ./deploy/run.sh [start]  services up, release build, migrate, seed (dev profile), start
#                            gad-workers, gad-ingress (127.0.0.1:8080) and gad-broadcaster
#                            (127.0.0.1:8090) in the background, wait for /health, print
#                            an admin token and example requests, exit 0
#                            Without GAD_TELEGRAM__BOT_TOKEN it also starts the fake Telegram
#                            Bot API (127.0.0.1:8091) and points the broadcaster's bot at it
#   ./deploy/run.sh stop     stop those (databases and NATS keep running;
#                            ./deploy/services.sh down stops what it started)
#   ./deploy/run.sh status   which of the three run, and their health
# Logs: .local/logs/<name>.log; pid files: .local/run/<name>.pid.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)"
LOCAL="$REPO/.local"
LOGS="$LOCAL/logs"
RUN="$LOCAL/run"
BIN="${CARGO_TARGET_DIR:-$REPO/target}/release"
SECRET_FILE="$LOCAL/jwt_secret"
# The seeded usuarios' password, kept so the board's logins stay the same
# across runs (GAD_SEED_PASSWORD overrides it).
SEED_PASSWORD_FILE="$LOCAL/seed_password"
NAMES=(gad-workers gad-ingress gad-broadcaster)
# Started before the broadcaster when no real bot token is configured.
FAKE_TELEGRAM=fake_telegram
FAKE_TELEGRAM_URL=http://127.0.0.1:8091
INGRESS=http://127.0.0.1:8080
BROADCASTER=http://127.0.0.1:8090
HEALTH_TIMEOUT="${GAD_RUN_HEALTH_TIMEOUT:-90}"
STOP_TIMEOUT=45  # longer than the broadcaster's 35 s grace period

cd "$REPO"

banner() { printf '\n==> %s\n' "$*"; }
log() { printf '[run] %s\n' "$*" >&2; }
die() { printf '[run] ERROR: %s\n' "$*" >&2; exit 1; }

tail_file() {
    if [ -r "$1" ]; then
        printf -- '----- last lines of %s -----\n' "$1" >&2
        tail -n 40 "$1" >&2 || true
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

live_pid() { # $1 = name; prints the pid if the process of that pid file runs that binary
    local file="$RUN/$1.pid" pid cmd
    [ -f "$file" ] || return 1
    pid="$(head -n 1 "$file" | tr -dc '0-9')"
    [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null || return 1
    cmd="$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null)" || return 1
    [[ $cmd == *"$1"* ]] || return 1
    printf '%s\n' "$pid"
}

port_open() { timeout 2 bash -c "exec 3<>/dev/tcp/127.0.0.1/$1" 2>/dev/null; }

healthy() { curl -fsS --max-time 2 -o /dev/null "$1/health" 2>/dev/null; }

ensure_curl() {
    command -v curl >/dev/null 2>&1 && return 0
    local sudo=()
    [ "$(id -u)" -eq 0 ] || sudo=(sudo -n)
    log "installing curl (apt-get)"
    "${sudo[@]}" apt-get -q -o DPkg::Lock::Timeout=120 update >&2 || die "apt-get update failed"
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
        -o DPkg::Lock::Timeout=120 curl </dev/null >&2 || die "apt-get install curl failed"
}

STOPPED=0
stop_all() { # stops the three and the fake Bot API (pid files); sets STOPPED to how many were running
    local name pid pids=() deadline
    for name in "${NAMES[@]}" "$FAKE_TELEGRAM"; do
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
    for name in "${NAMES[@]}" "$FAKE_TELEGRAM"; do rm -f "$RUN/$name.pid"; done
    STOPPED=${#pids[@]}
}

cmd_stop() {
    stop_all
    [ "$STOPPED" -gt 0 ] || log "none of ${NAMES[*]} was running"
    log "stopped; databases and NATS keep running (./deploy/services.sh down stops what it started)"
}

cmd_status() {
    local name pid
    for name in "${NAMES[@]}"; do
        if pid="$(live_pid "$name")"; then echo "$name: running (pid $pid, log $LOGS/$name.log)"
        else echo "$name: not running"; fi
    done
    if pid="$(live_pid "$FAKE_TELEGRAM")"; then
        echo "$FAKE_TELEGRAM: running (pid $pid, $FAKE_TELEGRAM_URL, log $LOGS/$FAKE_TELEGRAM.log)"
    fi
    if command -v curl >/dev/null 2>&1; then
        if healthy "$INGRESS"; then echo "ingress     $INGRESS/health: ok"; else echo "ingress     $INGRESS/health: not answering"; fi
        if healthy "$BROADCASTER"; then echo "broadcaster $BROADCASTER/health: ok"; else echo "broadcaster $BROADCASTER/health: not answering"; fi
    fi
}

start_one() { # $1 = binary name
    local name=$1
    printf '=== %s: start %s\n' "$(date '+%F %T')" "$name" >>"$LOGS/$name.log"
    (close_fds && exec setsid "$BIN/$name" </dev/null >>"$LOGS/$name.log" 2>&1) &
    printf '%s\n' "$!" >"$RUN/$name.pid"
    disown 2>/dev/null || true
    log "started $name (pid $!, log $LOGS/$name.log)"
}

start_fake_telegram() {
    printf '=== %s: start %s\n' "$(date '+%F %T')" "$FAKE_TELEGRAM" >>"$LOGS/$FAKE_TELEGRAM.log"
    (close_fds && exec setsid "$BIN/$FAKE_TELEGRAM" --bind 127.0.0.1:8091 </dev/null >>"$LOGS/$FAKE_TELEGRAM.log" 2>&1) &
    printf '%s\n' "$!" >"$RUN/$FAKE_TELEGRAM.pid"
    disown 2>/dev/null || true
    log "started $FAKE_TELEGRAM (pid $!, $FAKE_TELEGRAM_URL, log $LOGS/$FAKE_TELEGRAM.log)"
    local deadline=$((SECONDS + 10))
    until port_open 8091; do
        live_pid "$FAKE_TELEGRAM" >/dev/null || { tail_file "$LOGS/$FAKE_TELEGRAM.log"; die "$FAKE_TELEGRAM exited"; }
        [ "$SECONDS" -lt "$deadline" ] || die "$FAKE_TELEGRAM did not listen on 8091 within 10 s"
        sleep 0.2
    done
}

check_alive() { # fails loudly if one of the three has exited
    local name
    for name in "${NAMES[@]}"; do
        if ! live_pid "$name" >/dev/null; then
            tail_file "$LOGS/$name.log"
            stop_all
            die "$name exited (log $LOGS/$name.log); stopped the others"
        fi
    done
}

cmd_start() {
    banner "services (deploy/services.sh up)"
    ./deploy/services.sh up
    # shellcheck source=/dev/null
    source "$LOCAL/services.env"
    mkdir -p "$LOGS" "$RUN"

    if [ -z "${GAD_AUTH__JWT_SECRET:-}" ]; then
        if [ ! -s "$SECRET_FILE" ]; then
            (umask 077 && head -c 48 /dev/urandom | base64 -w 0 >"$SECRET_FILE")
            log "generated a JWT secret in $SECRET_FILE"
        fi
        GAD_AUTH__JWT_SECRET="$(cat "$SECRET_FILE")"
    fi
    export GAD_AUTH__JWT_SECRET
    local seed_password="${GAD_SEED_PASSWORD:-}"
    if [ -z "$seed_password" ]; then
        if [ ! -s "$SEED_PASSWORD_FILE" ]; then
            (umask 077 && head -c 64 /dev/urandom | base64 -w 0 | tr -dc 'A-Za-z0-9' | head -c 16 >"$SEED_PASSWORD_FILE")
            log "generated the seed password in $SEED_PASSWORD_FILE"
        fi
        seed_password="$(cat "$SEED_PASSWORD_FILE")"
    fi
    # Legacy publishers may send jobs to RabbitMQ's `gad.jobs` exchange.
    export GAD_WORKERS__AMQP_BRIDGE__URL="${GAD_WORKERS__AMQP_BRIDGE__URL:-${AMQP_URL:-}}"
    [ -n "$GAD_WORKERS__AMQP_BRIDGE__URL" ] || unset GAD_WORKERS__AMQP_BRIDGE__URL

    banner "cargo build --release --bins"
    cargo build --release --bins
    local name
    for name in gad "${NAMES[@]}" "$FAKE_TELEGRAM"; do
        [ -x "$BIN/$name" ] || die "$BIN/$name was not built"
    done

    # a previous ./deploy/run.sh: replace its processes with the new build
    stop_all
    local port fake=0
    [ -n "${GAD_TELEGRAM__BOT_TOKEN:-}" ] || fake=1
    for port in 8080 8090 $([ "$fake" -eq 0 ] || echo 8091); do
        if port_open "$port"; then die "127.0.0.1:$port is already in use by another process"; fi
    done

    banner "gad migrate"
    "$BIN/gad" migrate
    banner "gad seed --profile dev"
    "$BIN/gad" seed --profile dev --password "$seed_password"

    banner "starting ${NAMES[*]}"
    ensure_curl
    if [ "$fake" -eq 1 ]; then
        # No real bot: the broadcaster's bot and notifications talk to the
        # fake Bot API, which scripts updates (POST /_fake/updates) and
        # records every call (GET /_fake/calls).
        start_fake_telegram
        export GAD_TELEGRAM__BOT_TOKEN=1000000:local-fake-token
        export GAD_TELEGRAM__API_URL="$FAKE_TELEGRAM_URL"
    fi
    for name in "${NAMES[@]}"; do start_one "$name"; done

    local deadline=$((SECONDS + HEALTH_TIMEOUT)) url
    for url in "$INGRESS" "$BROADCASTER"; do
        until healthy "$url"; do
            check_alive
            if [ "$SECONDS" -ge "$deadline" ]; then
                for name in "${NAMES[@]}"; do tail_file "$LOGS/$name.log"; done
                stop_all
                die "$url/health did not answer within ${HEALTH_TIMEOUT} s; stopped ${NAMES[*]}"
            fi
            sleep 0.5
        done
        log "$url/health ok"
    done

    local token
    token="$("$BIN/gad" token --email admin1@seed.invalid)" \
        || die "gad token --email admin1@seed.invalid failed (the services keep running; ./deploy/run.sh stop)"
    token="$(printf '%s' "$token" | tr -d '[:space:]')"

    banner "GAD is running"
    cat <<EOF
Operations board: $INGRESS/board
  log in as supervisor1@seed.invalid (dispatch) or admin1@seed.invalid (also the operators' view),
  password: $seed_password

Admin token (admin1@seed.invalid):
  export TOKEN='$token'

Nearest units (asynchronous job, waits up to 5 s for the answer):
  curl -sS -H "Authorization: Bearer \$TOKEN" -H 'Prefer: wait=5' 'http://127.0.0.1:8080/api/v1/geo/nearest?lat=-34.6&lng=-58.4&k=5'

WebSocket:
  ws://127.0.0.1:8090/ws/connect?token=\$TOKEN
  ws://127.0.0.1:8090/ws/connect?token=$token

$(telegram_help "$fake")

Logs: $LOGS/<name>.log    pids: $RUN/<name>.pid
Stop: ./deploy/run.sh stop   (PostgreSQL, Redis and NATS keep running; ./deploy/services.sh down stops the ones it started)
EOF
}

telegram_help() { # $1 = 1 when the fake Bot API runs
    if [ "$1" -eq 1 ]; then
        cat <<EOF
Telegram: no GAD_TELEGRAM__BOT_TOKEN, so the bot talks to the fake Bot API on $FAKE_TELEGRAM_URL.
  Link a chat: POST /api/v1/telegram/link-code (with \$TOKEN) gives a code; send it as chat 42:
  curl -sS $FAKE_TELEGRAM_URL/_fake/updates -H 'Content-Type: application/json' \\
    -d '{"message":{"message_id":1,"date":'"\$(date +%s)"',"chat":{"id":42,"type":"private","first_name":"yo"},"from":{"id":42,"is_bot":false,"first_name":"yo"},"text":"/start CODE"}}'
  What the bot answered: curl -sS $FAKE_TELEGRAM_URL/_fake/calls
EOF
    else
        echo "Telegram: the bot uses the configured GAD_TELEGRAM__BOT_TOKEN."
    fi
}

case "${1:-start}" in
    start | up) cmd_start ;;
    stop) cmd_stop ;;
    status) cmd_status ;;
    -h | --help | help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0" ;;
    *) die "unknown command '$1' (use: start | stop | status)" ;;
esac
