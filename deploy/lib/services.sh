# shellcheck shell=bash
#
# Shared helpers for deploy/dev: finding (or starting) Postgres and Redis for
# development, running child processes, and cleaning up after ourselves.
#
# Sourced by deploy/dev; not meant to be run on its own.  The caller must
# install the traps (see dev_install_traps) before starting anything.
#
# Knobs read from the environment (all optional):
#   DATABASE_URL, REDIS_URL        use these servers as given, start nothing
#   AUTOSOCIAL_DEV_PRIVATE=1       ignore servers on the standard local ports
#                                  and always start private throwaway ones
#   AUTOSOCIAL_DEV_PG_BINDIR       directory with initdb/pg_ctl/postgres
#                                  (default: newest /usr/lib/postgresql/*/bin,
#                                  then PATH)
#   AUTOSOCIAL_DEV_REDIS_SERVER    path of the redis-server binary
#   AUTOSOCIAL_DEV_PG_USER         user that runs a private postgres when we
#                                  are root (default: autosocial-dev)
#   AUTOSOCIAL_DEV_NO_INSTALL=1    never apt-get install missing servers
#   AUTOSOCIAL_DEV_INSTALL_DRY_RUN=1  only print what would be installed
#   AUTOSOCIAL_TEST_PG_BINDIR      pg_dump & co. for tests (default: found)
#   AUTOSOCIAL_DEV_STOP_TIMEOUT    seconds between TERM and KILL (default 5)

# ---------------------------------------------------------------------------
# State (everything cleanup needs to know about)

DEV_TMP=""              # private temp dir, created on first use
PG_BINDIR=""            # dir with initdb/pg_ctl/postgres (server binaries)
PG_RUN_AS=""            # user owning the private cluster when we are root
PG_PRIVATE_DIR=""       # set once we initdb'ed a private cluster
PG_PRIVATE_PID=""       # its postmaster pid
REDIS_SERVER=""         # redis-server binary
REDIS_PRIVATE_PID=""    # pid of a private redis-server we started
REDIS_PRIVATE_DIR=""
PG_TOOLS_DIR=""         # dir whose pg_dump/psql suit the server in use
CHILD_PIDS=()           # processes started by start_child / run_attached
CHILD_NAMES=()
CHILD_LOGS=()
POLICY_RC=/usr/sbin/policy-rc.d
POLICY_RC_BACKUP=/usr/sbin/policy-rc.d.autosocial-dev-backup
POLICY_RC_STATE=""      # "" | created | replaced
APT_UPDATED=0
DEAD_NAME=""            # set by find_dead_child
DEAD_STATUS=""
DEAD_LOG=""

# ---------------------------------------------------------------------------
# Messages.  Everything informational goes to stderr so that stdout stays
# clean for output meant for machines (deploy/dev services).

say()  { printf '[dev] %s\n' "$*" >&2; }
warn() { printf '[dev] warning: %s\n' "$*" >&2; }
die()  { printf '[dev] error: %s\n' "$*" >&2; exit 1; }
have() { command -v "$1" >/dev/null 2>&1; }

# Hide the password part of a URL (scheme://user:secret@host -> user:***@host).
redact_url() { sed -E 's#(://[^:/@]*):[^@/]*@#\1:***@#' <<<"$1"; }

# Replace the database name in a postgres URL, keeping any ?query part.
db_url_with_name() { # URL NAME
    local url=$1 name=$2 base query scheme rest authority
    base=${url%%\?*}
    query=${url#"$base"}
    scheme=${base%%://*}
    rest=${base#*://}
    authority=${rest%%/*}
    printf '%s://%s/%s%s\n' "$scheme" "$authority" "$name" "$query"
}

# ---------------------------------------------------------------------------
# Cleanup and signals

dev_install_traps() {
    trap dev_cleanup EXIT
    trap 'dev_on_signal INT 130' INT
    trap 'dev_on_signal TERM 143' TERM
    trap 'dev_on_signal HUP 129' HUP
}

dev_on_signal() { # NAME EXIT_STATUS
    say "caught SIG$1, stopping everything this script started ..."
    exit "$2"   # runs dev_cleanup via the EXIT trap
}

dev_cleanup() {
    local rc=$?
    trap '' INT TERM HUP      # a second Ctrl-C must not interrupt cleanup
    set +e
    stop_children
    stop_private_redis
    stop_private_postgres
    restore_policy_rc
    if [[ -n $DEV_TMP ]]; then
        rm -rf -- "$DEV_TMP"
    fi
    exit "$rc"
}

dev_tmp() { # create the private temp dir (sets DEV_TMP); call directly, not in $(...)
    [[ -z $DEV_TMP ]] || return 0
    if ((EUID == 0)); then
        # The private postgres runs as another user, which must be able to
        # reach the directory: keep it under /tmp rather than $TMPDIR.
        DEV_TMP=$(mktemp -d /tmp/autosocial-dev.XXXXXX)
        chmod 755 "$DEV_TMP"
    else
        DEV_TMP=$(mktemp -d "${TMPDIR:-/tmp}/autosocial-dev.XXXXXX")
    fi
}

# ---------------------------------------------------------------------------
# Processes

# Send a signal to a child's process group (children are started in their
# own session when setsid exists), falling back to the single pid.
signal_child() { # SIGNAL PID
    kill -s "$1" -- "-$2" 2>/dev/null || kill -s "$1" "$2" 2>/dev/null || true
}

child_alive() { # PID: true while the child or anything in its group runs
    kill -0 -- "-$1" 2>/dev/null || kill -0 "$1" 2>/dev/null
}

# Start NAME in the background with output to LOG, stdin from /dev/null, in
# its own session so that it and everything it spawns can be stopped.  LOG "-"
# (or /dev/stderr, /dev/stdout) shares our own stderr (stdout) instead of
# opening it again: opening /dev/stderr when it is a file truncates the file,
# and with `deploy/dev demo > demo.log 2>&1` that erased everything printed
# before, the owner's one-time password included.
start_child() { # NAME LOG CMD...
    local name=$1 log=$2
    shift 2
    local setsid=()
    have setsid && setsid=(setsid)
    case $log in
        - | /dev/stderr | /proc/self/fd/2 | /dev/fd/2)
            "${setsid[@]}" "$@" </dev/null >&2 &
            log=""
            ;;
        /dev/stdout | /proc/self/fd/1 | /dev/fd/1)
            "${setsid[@]}" "$@" </dev/null 2>&1 &
            log=""
            ;;
        *)
            "${setsid[@]}" "$@" </dev/null >"$log" 2>&1 &
            ;;
    esac
    CHILD_PIDS+=("$!")
    CHILD_NAMES+=("$name")
    CHILD_LOGS+=("$log")
}

# Run CMD attached to our stdin/stdout/stderr and return its exit status.
# It runs in the background in its own session and we wait for it, so that a
# TERM sent to this script is handled at once (stopping CMD and everything it
# spawned) instead of only after CMD finishes.  Ctrl-C reaches us, and we
# stop CMD the same way.
run_attached() { # CMD...
    if have setsid; then
        setsid "$@" <&0 &
    else
        "$@" <&0 &
    fi
    local pid=$! rc=0
    CHILD_PIDS+=("$pid")
    CHILD_NAMES+=("$1")
    CHILD_LOGS+=("")
    wait "$pid" || rc=$?
    return "$rc"
}

stop_children() {
    local pid i deadline any
    ((${#CHILD_PIDS[@]} > 0)) || return 0
    for pid in "${CHILD_PIDS[@]}"; do
        signal_child TERM "$pid"
    done
    deadline=$((SECONDS + ${AUTOSOCIAL_DEV_STOP_TIMEOUT:-5}))
    while ((SECONDS < deadline)); do
        any=0
        for pid in "${CHILD_PIDS[@]}"; do
            if child_alive "$pid"; then any=1; fi
        done
        ((any)) || break
        sleep 0.2
    done
    for i in "${!CHILD_PIDS[@]}"; do
        pid=${CHILD_PIDS[$i]}
        if child_alive "$pid"; then
            say "${CHILD_NAMES[$i]} (pid $pid) did not stop after TERM, sending KILL"
            signal_child KILL "$pid"
        fi
        wait "$pid" 2>/dev/null || true
    done
    CHILD_PIDS=()
    CHILD_NAMES=()
    CHILD_LOGS=()
}

# Return 0 when a child or a private server has died, setting DEAD_NAME,
# DEAD_STATUS and DEAD_LOG (for the caller to report).
# shellcheck disable=SC2034 # DEAD_* are read by deploy/dev
find_dead_child() {
    local i pid
    for i in "${!CHILD_PIDS[@]}"; do
        pid=${CHILD_PIDS[$i]}
        if ! kill -0 "$pid" 2>/dev/null; then
            DEAD_NAME=${CHILD_NAMES[$i]}
            DEAD_STATUS=0
            wait "$pid" 2>/dev/null || DEAD_STATUS=$?
            DEAD_LOG=${CHILD_LOGS[$i]}
            return 0
        fi
    done
    if [[ -n $REDIS_PRIVATE_PID ]] && ! kill -0 "$REDIS_PRIVATE_PID" 2>/dev/null; then
        DEAD_NAME="private redis-server"
        DEAD_STATUS=0
        wait "$REDIS_PRIVATE_PID" 2>/dev/null || DEAD_STATUS=$?
        DEAD_LOG=$REDIS_PRIVATE_DIR/redis.log
        REDIS_PRIVATE_PID=""
        return 0
    fi
    if [[ -n $PG_PRIVATE_PID ]] && ! kill -0 "$PG_PRIVATE_PID" 2>/dev/null; then
        DEAD_NAME="private postgres"
        DEAD_STATUS="?"
        DEAD_LOG=$PG_PRIVATE_DIR/postgres.log
        return 0
    fi
    return 1
}

show_log_tail() { # LOG [LINES]
    [[ -n $1 && -f $1 ]] || return 0
    printf -- '----- last %s lines of %s -----\n' "${2:-40}" "$1" >&2
    tail -n "${2:-40}" "$1" >&2
    printf -- '-----\n' >&2
}

# ---------------------------------------------------------------------------
# Ports

port_open() { # HOST PORT: something accepts TCP connections there
    # shellcheck disable=SC2016 # expanded by the inner bash
    timeout 2 bash -c 'exec 3<>"/dev/tcp/$1/$2"' _ "$1" "$2" 2>/dev/null
}

port_in_use() { # PORT: on any local address (ss), else on 127.0.0.1
    if have ss; then
        [[ -n $(ss -Htln "sport = :$1" 2>/dev/null) ]] && return 0
    fi
    port_open 127.0.0.1 "$1"
}

free_port() { # print a currently unused port outside the ephemeral range
    local port _
    for _ in {1..100}; do
        port=$((20000 + RANDOM % 12000))
        if ! port_in_use "$port"; then
            echo "$port"
            return 0
        fi
    done
    echo "[dev] error: could not find a free TCP port" >&2
    return 1
}

# ---------------------------------------------------------------------------
# Installing missing servers (Debian/Ubuntu only)

as_root() { if ((EUID == 0)); then "$@"; else sudo -n "$@"; fi; }

can_install_packages() {
    [[ ${AUTOSOCIAL_DEV_NO_INSTALL:-} != 1 ]] || return 1
    have apt-get || return 1
    ((EUID == 0)) || { have sudo && sudo -n true 2>/dev/null; }
}

# Make sure package installs cannot start system services: Debian's
# maintainer scripts ask /usr/sbin/policy-rc.d, and exit code 101 means "no".
block_service_starts() {
    [[ -z $POLICY_RC_STATE ]] || return 0
    if [[ -e $POLICY_RC ]]; then
        local rc=0
        "$POLICY_RC" >/dev/null 2>&1 || rc=$?
        ((rc != 101)) || return 0          # already blocks everything
        as_root cp -p "$POLICY_RC" "$POLICY_RC_BACKUP"
        POLICY_RC_STATE=replaced
    else
        POLICY_RC_STATE=created
    fi
    printf '#!/bin/sh\n# temporary, written by autosocial deploy/dev\nexit 101\n' |
        as_root tee "$POLICY_RC" >/dev/null
    as_root chmod 755 "$POLICY_RC"
}

restore_policy_rc() {
    case $POLICY_RC_STATE in
        created) as_root rm -f "$POLICY_RC" ;;
        replaced) as_root mv -f "$POLICY_RC_BACKUP" "$POLICY_RC" ;;
    esac
    POLICY_RC_STATE=""
}

install_packages() { # PACKAGE...: returns non-zero when not possible or failed
    if ! can_install_packages; then
        return 1
    fi
    if [[ ${AUTOSOCIAL_DEV_INSTALL_DRY_RUN:-} == 1 ]]; then
        say "dry run: would block service starts with $POLICY_RC (exit 101), then run:"
        ((APT_UPDATED)) || say "dry run:   apt-get update"
        say "dry run:   DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends $*"
        return 1
    fi
    say "installing $* with apt-get (system services will not be started) ..."
    local rc=0
    block_service_starts
    if ((!APT_UPDATED)); then
        as_root env DEBIAN_FRONTEND=noninteractive apt-get update -q >&2 || rc=$?
        APT_UPDATED=1
    fi
    if ((rc == 0)); then
        as_root env DEBIAN_FRONTEND=noninteractive \
            apt-get install -y -q --no-install-recommends "$@" >&2 || rc=$?
    fi
    restore_policy_rc
    return "$rc"
}

# ---------------------------------------------------------------------------
# Postgres binaries

pg_server_bindir_ok() { [[ -x $1/initdb && -x $1/pg_ctl && -x $1/postgres ]]; }

# Candidate binary dirs, newest version first.
pg_candidate_dirs() {
    local dirs=() d
    shopt -s nullglob
    dirs=(/usr/lib/postgresql/*/bin /usr/pgsql-*/bin /usr/local/pgsql/bin)
    shopt -u nullglob
    ((${#dirs[@]} == 0)) || printf '%s\n' "${dirs[@]}" | sort -rV
    # Then whatever PATH has, following symlinks such as
    # /usr/local/bin/initdb -> /usr/lib/postgresql/15/bin/initdb.
    for d in pg_ctl pg_dump psql; do
        d=$(command -v "$d" 2>/dev/null) || continue
        dirname "$(readlink -f "$d")"
    done
}

first_number() { awk 'match($0, /[0-9]+/) { print substr($0, RSTART, RLENGTH); exit }'; }

find_pg_bindir() { # sets PG_BINDIR to the newest dir with server binaries
    PG_BINDIR=""
    if [[ -n ${AUTOSOCIAL_DEV_PG_BINDIR:-} ]]; then
        if pg_server_bindir_ok "$AUTOSOCIAL_DEV_PG_BINDIR"; then
            PG_BINDIR=$AUTOSOCIAL_DEV_PG_BINDIR
        fi
        return 0
    fi
    local d
    while IFS= read -r d; do
        if pg_server_bindir_ok "$d"; then
            PG_BINDIR=$d
            return 0
        fi
    done < <(pg_candidate_dirs)
}

need_pg_server_binaries() {
    find_pg_bindir
    [[ -z $PG_BINDIR ]] || return 0
    say "no PostgreSQL server binaries (initdb, pg_ctl, postgres) found${AUTOSOCIAL_DEV_PG_BINDIR:+ in AUTOSOCIAL_DEV_PG_BINDIR=$AUTOSOCIAL_DEV_PG_BINDIR}"
    if install_packages postgresql; then
        find_pg_bindir
    fi
    [[ -n $PG_BINDIR ]] ||
        die "PostgreSQL is needed. Install it (Debian/Ubuntu: 'sudo apt-get install postgresql'; other systems: the PostgreSQL server package providing initdb and pg_ctl), or set AUTOSOCIAL_DEV_PG_BINDIR to its bin directory, or point DATABASE_URL at a server."
}

# Print the path of a postgres client tool (psql, pg_dump, ...): from the
# selected dirs first, then the newest installed, then PATH.
pg_tool() { # NAME
    local d
    for d in "$PG_TOOLS_DIR" "$PG_BINDIR"; do
        if [[ -n $d && -x $d/$1 ]]; then
            echo "$d/$1"
            return 0
        fi
    done
    while IFS= read -r d; do
        if [[ -x $d/$1 ]]; then
            echo "$d/$1"
            return 0
        fi
    done < <(pg_candidate_dirs)
    command -v "$1"
}

need_psql() { # sets PSQL
    PSQL=$(pg_tool psql) && return 0
    say "psql not found"
    if install_packages postgresql-client; then
        PSQL=$(pg_tool psql) && return 0
    fi
    die "psql is needed. Install it (Debian/Ubuntu: 'sudo apt-get install postgresql-client')."
}

psql_url() { # URL ARGS...: psql without prompts, rc, or pager
    local url=$1
    shift
    PGCONNECT_TIMEOUT=${PGCONNECT_TIMEOUT:-5} "$PSQL" -X -w -q -v ON_ERROR_STOP=1 "$@" "$url"
}

server_major() { # URL -> major version of the server, empty if unknown
    local num
    num=$(psql_url "$1" -Atc 'show server_version_num' 2>/dev/null) || return 0
    [[ $num =~ ^[0-9]+$ ]] && echo $((num / 10000))
}

# ---------------------------------------------------------------------------
# Postgres

ensure_postgres() {
    if [[ -n ${DATABASE_URL:-} ]]; then
        say "postgres: $(redact_url "$DATABASE_URL") (from DATABASE_URL)"
        return 0
    fi
    if [[ ${AUTOSOCIAL_DEV_PRIVATE:-} != 1 ]] && port_open 127.0.0.1 5432; then
        local url=postgres://postgres@127.0.0.1:5432/postgres ok=""
        if PSQL=$(pg_tool psql); then
            ok=$(psql_url "$url" -Atc \
                "select rolsuper or rolcreatedb from pg_roles where rolname = current_user" \
                2>/dev/null || true)
        else
            warn "psql not found; assuming the server on 127.0.0.1:5432 trusts role postgres"
            ok=t
        fi
        if [[ $ok == t ]]; then
            export DATABASE_URL=$url
            say "postgres: 127.0.0.1:5432 (already running)"
            return 0
        fi
        say "postgres on 127.0.0.1:5432 does not let role postgres in without a password (or it may not create databases); starting a private one instead"
    fi
    start_private_postgres
}

ensure_pg_run_as_user() {
    local user=${AUTOSOCIAL_DEV_PG_USER:-autosocial-dev}
    if ! id -u "$user" >/dev/null 2>&1; then
        say "creating system user '$user' to run private postgres servers (initdb refuses to run as root)"
        have useradd || die "cannot create user '$user': useradd not found; create a non-root user and set AUTOSOCIAL_DEV_PG_USER"
        useradd --system --no-create-home --home-dir /nonexistent \
            --shell /usr/sbin/nologin "$user" ||
            die "could not create user '$user'"
    fi
    PG_RUN_AS=$user
}

pg_as_owner() { # CMD...: run a postgres command as the cluster owner
    if [[ -z $PG_RUN_AS ]]; then
        "$@"
    elif have runuser; then
        (cd "$DEV_TMP" && runuser -u "$PG_RUN_AS" -- "$@")
    else
        (cd "$DEV_TMP" && su -s /bin/bash "$PG_RUN_AS" -c "$(printf '%q ' "$@")")
    fi
}

start_private_postgres() {
    need_pg_server_binaries
    dev_tmp
    local dir=$DEV_TMP/postgres major locale=C attempt port=""
    major=$("$PG_BINDIR/postgres" --version | first_number)
    mkdir -p "$dir"
    if ((EUID == 0)); then
        ensure_pg_run_as_user
        chown "$PG_RUN_AS:" "$dir"
    fi
    # Same collation as Debian's default cluster when available; plain C otherwise.
    if grep -qiE '^c\.utf-?8$' <<<"$(locale -a 2>/dev/null || true)"; then
        locale=C.UTF-8
    fi
    PG_PRIVATE_DIR=$dir
    if ! pg_as_owner "$PG_BINDIR/initdb" -D "$dir/data" -U postgres --auth=trust \
        -E UTF8 --locale="$locale" --no-sync >"$DEV_TMP/initdb.log" 2>&1; then
        show_log_tail "$DEV_TMP/initdb.log"
        die "initdb failed (binaries: $PG_BINDIR)"
    fi
    for attempt in 1 2 3; do
        port=$(free_port) || die "could not find a free port"
        if pg_as_owner "$PG_BINDIR/pg_ctl" -D "$dir/data" -l "$dir/postgres.log" -w -t 60 \
            -o "-c listen_addresses=127.0.0.1 -p $port -k '$dir' -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200" \
            start >/dev/null 2>&1; then
            break
        fi
        # Most likely someone grabbed the port between our check and start.
        ((attempt < 3)) || { show_log_tail "$dir/postgres.log"; die "could not start private postgres"; }
        say "private postgres did not start on port $port, retrying on another port"
        pg_as_owner "$PG_BINDIR/pg_ctl" -D "$dir/data" -m immediate stop >/dev/null 2>&1 || true
    done
    PG_PRIVATE_PID=$(head -n 1 "$dir/data/postmaster.pid" 2>/dev/null || true)
    export DATABASE_URL=postgres://postgres@127.0.0.1:$port/postgres
    PG_TOOLS_DIR=$PG_BINDIR
    say "postgres: private $major on 127.0.0.1:$port (will stop on exit)"
}

stop_private_postgres() {
    [[ -n $PG_PRIVATE_DIR ]] || return 0
    if [[ -f $PG_PRIVATE_DIR/data/postmaster.pid ]]; then
        pg_as_owner "$PG_BINDIR/pg_ctl" -D "$PG_PRIVATE_DIR/data" -m immediate -w -t 10 stop \
            >/dev/null 2>&1 || true
    fi
    # Belt and braces: if the postmaster is somehow still there, kill it.
    if [[ $PG_PRIVATE_PID =~ ^[0-9]+$ ]] && kill -0 "$PG_PRIVATE_PID" 2>/dev/null &&
        [[ $(ps -o comm= -p "$PG_PRIVATE_PID" 2>/dev/null) == postgres* ]]; then
        kill -KILL "$PG_PRIVATE_PID" 2>/dev/null || true
    fi
    PG_PRIVATE_DIR=""
    PG_PRIVATE_PID=""
}

# Choose the directory whose pg_dump is the newest (it must be at least the
# server's major version to dump it), export it for tests and put it first on
# PATH.  Call after ensure_postgres.
select_pg_tools() {
    if [[ -n ${AUTOSOCIAL_TEST_PG_BINDIR:-} ]]; then
        PG_TOOLS_DIR=$AUTOSOCIAL_TEST_PG_BINDIR
    elif [[ -z $PG_TOOLS_DIR ]]; then
        local d v best="" best_v=-1
        while IFS= read -r d; do
            [[ -x $d/pg_dump ]] || continue
            v=$("$d/pg_dump" --version 2>/dev/null | first_number)
            if [[ -n $v ]] && ((v > best_v)); then
                best=$d
                best_v=$v
            fi
        done < <(pg_candidate_dirs)
        PG_TOOLS_DIR=$best
        local need=""
        if PSQL=$(pg_tool psql); then
            need=$(server_major "$DATABASE_URL")
        fi
        if [[ -z $best ]]; then
            warn "pg_dump not found; tests that need it will fail (Debian/Ubuntu: apt-get install postgresql-client)"
        elif [[ -n $need ]] && ((best_v < need)); then
            warn "newest pg_dump is version $best_v but the server is $need; tests that need pg_dump will fail (install postgresql-client-$need)"
        fi
    fi
    if [[ -n $PG_TOOLS_DIR ]]; then
        export AUTOSOCIAL_TEST_PG_BINDIR=$PG_TOOLS_DIR
        export PATH=$PG_TOOLS_DIR:$PATH
    fi
}

# ---------------------------------------------------------------------------
# Redis

redis_ping() { # HOST PORT: answers PING with PONG (no password needed)
    # shellcheck disable=SC2016 # expanded by the inner bash
    timeout 3 bash -c '
        exec 3<>"/dev/tcp/$1/$2" || exit 1
        printf "PING\r\n" >&3
        IFS= read -r line <&3
        [[ $line == "+PONG"* ]]' _ "$1" "$2" 2>/dev/null
}

ensure_redis() {
    if [[ -n ${REDIS_URL:-} ]]; then
        say "redis: $(redact_url "$REDIS_URL") (from REDIS_URL)"
        return 0
    fi
    if [[ ${AUTOSOCIAL_DEV_PRIVATE:-} != 1 ]] && port_open 127.0.0.1 6379; then
        if redis_ping 127.0.0.1 6379; then
            export REDIS_URL=redis://127.0.0.1:6379/
            say "redis: 127.0.0.1:6379 (already running)"
            return 0
        fi
        say "redis on 127.0.0.1:6379 does not answer PING without a password; starting a private one instead"
    fi
    start_private_redis
}

find_redis_server() {
    REDIS_SERVER=${AUTOSOCIAL_DEV_REDIS_SERVER:-$(command -v redis-server 2>/dev/null || true)}
    [[ -n $REDIS_SERVER && -x $REDIS_SERVER ]]
}

need_redis_server() {
    find_redis_server && return 0
    say "redis-server not found${AUTOSOCIAL_DEV_REDIS_SERVER:+ at AUTOSOCIAL_DEV_REDIS_SERVER=$AUTOSOCIAL_DEV_REDIS_SERVER}"
    if install_packages redis-server && find_redis_server; then
        return 0
    fi
    die "Redis is needed. Install it (Debian/Ubuntu: 'sudo apt-get install redis-server'; other systems: the package providing redis-server), or set AUTOSOCIAL_DEV_REDIS_SERVER, or point REDIS_URL at a server."
}

start_private_redis() {
    need_redis_server
    dev_tmp
    local dir=$DEV_TMP/redis attempt port="" deadline version
    mkdir -p "$dir"
    REDIS_PRIVATE_DIR=$dir
    version=$("$REDIS_SERVER" --version | sed -n 's/.* v=\([0-9.]*\).*/\1/p')
    for attempt in 1 2 3; do
        port=$(free_port) || die "could not find a free port"
        "$REDIS_SERVER" --port "$port" --bind 127.0.0.1 --save '' --appendonly no \
            --daemonize no --dir "$dir" </dev/null >"$dir/redis.log" 2>&1 &
        REDIS_PRIVATE_PID=$!
        deadline=$((SECONDS + 20))
        while kill -0 "$REDIS_PRIVATE_PID" 2>/dev/null && ((SECONDS < deadline)); do
            if redis_ping 127.0.0.1 "$port"; then
                export REDIS_URL=redis://127.0.0.1:$port/
                say "redis: private ${version:-?} on 127.0.0.1:$port (will stop on exit)"
                return 0
            fi
            sleep 0.1
        done
        stop_private_redis
        ((attempt < 3)) || { show_log_tail "$dir/redis.log"; die "could not start private redis-server"; }
        say "private redis did not start on port $port, retrying on another port"
    done
}

stop_private_redis() {
    [[ -n $REDIS_PRIVATE_PID ]] || return 0
    local pid=$REDIS_PRIVATE_PID deadline=$((SECONDS + 5))
    kill -TERM "$pid" 2>/dev/null || true
    while kill -0 "$pid" 2>/dev/null && ((SECONDS < deadline)); do
        sleep 0.1
    done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    REDIS_PRIVATE_PID=""
}

# ---------------------------------------------------------------------------

ensure_services() {
    ensure_postgres
    ensure_redis
}

started_private_servers() { [[ -n $PG_PRIVATE_DIR || -n $REDIS_PRIVATE_PID ]]; }
