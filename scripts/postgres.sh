#!/usr/bin/env bash
# Private PostgreSQL server for the test suite and the benchmarks.
#
#   scripts/postgres.sh start    # prints DATABASE_URL=... as the last stdout line
#   scripts/postgres.sh stop     # stops the server started by this script (if any)
#   scripts/postgres.sh status   # exit 0 if our server is running and ready
#   scripts/postgres.sh restart  # fast shutdown (pg_ctl -m fast) and start again, same data
#
# `start`:
#   * If DATABASE_URL is set, it is only checked (psql / pg_isready) and echoed back without
#     its password (keep your DATABASE_URL, or export PGPASSWORD, which libpq and sqlx read).
#     A password is never printed and never put on a command line: psql gets it in PGPASSWORD.
#   * Otherwise a dedicated cluster (NOT the Debian system cluster) is created with
#     initdb in $PG_WORKDIR/data and started with pg_ctl; an existing running server
#     from this script is reused. A `cqrs` superuser role and `cqrs` database are
#     created (trust auth, no password).
#
# Environment:
#   DATABASE_URL   use this server instead of starting one
#   PG_WORKDIR     work dir (default /var/tmp/cqrs-postgres): data/, postgres.log, socket
#   PG_PORT        TCP port on 127.0.0.1 (default 54329)
#   PG_FAST=1      fsync=off, synchronous_commit=off, full_page_writes=off
#   PG_FRESH=1     wipe the data dir and initdb again on start
#   PG_BINDIR      directory with initdb/pg_ctl/postgres (default: newest of
#                  /usr/lib/postgresql/15/bin, then /usr/lib/postgresql/*/bin)
#   PG_WAIT_SECS   readiness deadline in seconds (default 60)
#
# All progress goes to stderr; stdout carries only the DATABASE_URL line.
set -euo pipefail
# shellcheck source=url.sh
. "$(dirname "${BASH_SOURCE[0]}")/url.sh"

PG_WORKDIR="${PG_WORKDIR:-/var/tmp/cqrs-postgres}"
PG_PORT="${PG_PORT:-54329}"
PG_FAST="${PG_FAST:-0}"
PG_FRESH="${PG_FRESH:-0}"
PG_WAIT_SECS="${PG_WAIT_SECS:-60}"
DB_NAME=cqrs
DB_USER=cqrs
SUPERUSER=postgres # bootstrap superuser created by initdb (-U)

log() { printf 'postgres.sh: %s\n' "$*" >&2; }
die() {
  printf 'postgres.sh: error: %s\n' "$*" >&2
  exit 1
}

usage() {
  cat >&2 <<'EOF'
usage: scripts/postgres.sh start|stop|status|restart
  start   start (or reuse) a private PostgreSQL server, print DATABASE_URL=... last on stdout
  stop    stop the server started by this script
  status  exit 0 if that server is running and accepting connections
  restart stop that server with a fast shutdown (sessions cut, transactions rolled back) and
          start it again on the same data
EOF
  exit 2
}

is_root() { [ "$(id -u)" -eq 0 ]; }

# ----------------------------------------------------------------------------
# DATABASE_URL given: only check it.
# ----------------------------------------------------------------------------
check_database_url() {
  local full="$1" url deadline=$((SECONDS + PG_WAIT_SECS)) err=""
  url=$(url_without_password "$full")
  while :; do
    if command -v psql >/dev/null 2>&1; then
      if err=$(PGCONNECT_TIMEOUT=5 with_url_password "$full" psql "$url" -qAtX -v ON_ERROR_STOP=1 -c 'select 1' 2>&1 >/dev/null); then
        return 0
      fi
    elif command -v pg_isready >/dev/null 2>&1; then
      if err=$(with_url_password "$full" pg_isready -q -t 5 -d "$url" 2>&1); then
        return 0
      fi
      err="pg_isready: server at DATABASE_URL is not accepting connections"
    else
      log "neither psql nor pg_isready found; not checking DATABASE_URL"
      return 0
    fi
    if [ "$SECONDS" -ge "$deadline" ]; then
      die "DATABASE_URL does not answer after ${PG_WAIT_SECS}s: ${err:-unknown error}"
    fi
    sleep 0.5
  done
}

# ----------------------------------------------------------------------------
# Local server helpers
# ----------------------------------------------------------------------------
find_bindir() {
  if [ -n "${PG_BINDIR:-}" ]; then
    [ -x "$PG_BINDIR/postgres" ] || die "PG_BINDIR=$PG_BINDIR has no postgres binary"
    echo "$PG_BINDIR"
    return 0
  fi
  if [ -x /usr/lib/postgresql/15/bin/postgres ]; then
    echo /usr/lib/postgresql/15/bin
    return 0
  fi
  local d
  d=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)
  if [ -n "$d" ] && [ -x "$d/postgres" ]; then
    echo "$d"
    return 0
  fi
  return 1
}

explain_missing_server() {
  cat >&2 <<EOF
postgres.sh: error: PostgreSQL server binaries not found (/usr/lib/postgresql/*/bin/postgres)
and we are not root, so they cannot be installed automatically. Either:
  * install PostgreSQL (Debian/Ubuntu: sudo apt-get install -y postgresql), then re-run; or
  * point the tests at an existing server:
      export DATABASE_URL=postgres://USER:PASSWORD@HOST:PORT/DB   (role needs CREATEDB/superuser); or
  * use the shipped compose file (from the repository root):
      docker compose up -d postgres
      export DATABASE_URL=postgres://cqrs:cqrs@127.0.0.1:5432/cqrs
EOF
  exit 1
}

ensure_server_binaries() {
  if BINDIR=$(find_bindir); then
    return 0
  fi
  if ! is_root; then
    explain_missing_server
  fi
  command -v apt-get >/dev/null 2>&1 ||
    die "PostgreSQL server binaries not found and apt-get is unavailable; install PostgreSQL 15 or set DATABASE_URL"
  log "PostgreSQL server binaries not found; installing with apt-get (postgresql)..."
  # Debian's postinst may create and try to start the system cluster (port 5432);
  # we do not use it. Output goes to stderr to keep stdout clean.
  {
    DEBIAN_FRONTEND=noninteractive apt-get update -q &&
      DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends postgresql
  } >&2 || die "apt-get install postgresql failed"
  BINDIR=$(find_bindir) || die "postgresql installed but no /usr/lib/postgresql/*/bin/postgres found"
  # Stop the system cluster the package may have started, and keep it from starting at boot:
  # it would hold port 5432 (docker compose's) for a server nothing here uses.
  if command -v pg_lsclusters >/dev/null 2>&1; then
    local version name _
    while read -r version name _; do
      log "stopping Debian's cluster $version/$name, which the package started; it stays installed"
      pg_ctlcluster "$version" "$name" stop >&2 2>&1 || true
      if [ -f "/etc/postgresql/$version/$name/start.conf" ]; then
        echo manual >"/etc/postgresql/$version/$name/start.conf"
      fi
    done < <(pg_lsclusters --no-header 2>/dev/null | awk '$4 == "online" { print $1, $2 }')
  fi
}

# Run a command as the server's OS user (postgres when we are root).
as_pg() {
  if is_root; then
    if command -v runuser >/dev/null 2>&1; then
      (cd "$WORKDIR" && runuser -u postgres -- "$@")
    else
      (cd "$WORKDIR" && su postgres -s /bin/sh -c "$(printf '%q ' "$@")")
    fi
  else
    (cd "$WORKDIR" && "$@")
  fi
}

setup_paths() {
  case "$PG_WORKDIR" in
    /*) ;;
    *) PG_WORKDIR="$(pwd)/$PG_WORKDIR" ;;
  esac
  WORKDIR="${PG_WORKDIR%/}"
  [ -n "$WORKDIR" ] && [ "$WORKDIR" != "/" ] || die "refusing PG_WORKDIR=/"
  case "$PG_PORT" in
    '' | *[!0-9]*) die "PG_PORT must be a number, got '$PG_PORT'" ;;
  esac
  DATA="$WORKDIR/data"
  LOGFILE="$WORKDIR/postgres.log"
  MARKER="$WORKDIR/.cqrs-postgres"
  INITDONE="$WORKDIR/.initdb-done"
  CONF_NAME="cqrs-test.conf"
  # Unix socket path limit is ~107 bytes.
  [ ${#WORKDIR} -le 80 ] || die "PG_WORKDIR path too long for a unix socket: $WORKDIR"
}

# Create the work dir (owned by the server user) and take the script lock.
prepare_workdir() {
  if [ -d "$WORKDIR" ] && [ ! -e "$MARKER" ] && [ -n "$(ls -A "$WORKDIR" 2>/dev/null)" ]; then
    die "PG_WORKDIR=$WORKDIR exists, is not empty and was not created by this script; choose another PG_WORKDIR"
  fi
  mkdir -p "$WORKDIR"
  if ! is_root && [ "$(stat -c %u "$WORKDIR")" != "$(id -u)" ]; then
    die "PG_WORKDIR=$WORKDIR belongs to another user (created by a root run?); choose another PG_WORKDIR"
  fi
  touch "$MARKER"
  if is_root; then
    id postgres >/dev/null 2>&1 || die "OS user 'postgres' does not exist (install the postgresql package)"
    chown postgres: "$WORKDIR" "$MARKER"
    chmod 0755 "$WORKDIR"
    # The postgres user must be able to reach the work dir.
    runuser -u postgres -- test -x "$WORKDIR" 2>/dev/null ||
      su postgres -s /bin/sh -c "test -x '$WORKDIR'" 2>/dev/null ||
      die "user postgres cannot access $WORKDIR (a parent directory is not traversable); choose another PG_WORKDIR"
  fi
}

take_lock() {
  if command -v flock >/dev/null 2>&1; then
    exec 9>>"$WORKDIR/.script.lock"
    flock -w 300 9 || die "timed out waiting for another postgres.sh in $WORKDIR"
  fi
}

# pid of the postmaster recorded in postmaster.pid, if that process really is our
# postmaster (alive, a postgres process, and its cwd is our data dir).
live_postmaster_pid() {
  local pidfile="$DATA/postmaster.pid" pid comm cwd real
  [ -f "$pidfile" ] || return 1
  pid=$(head -n 1 "$pidfile" 2>/dev/null || true)
  case "$pid" in '' | *[!0-9]*) return 1 ;; esac
  [ -d "/proc/$pid" ] || return 1
  comm=$(cat "/proc/$pid/comm" 2>/dev/null || true)
  case "$comm" in postgres | postmaster) ;; *) return 1 ;; esac
  cwd=$(readlink "/proc/$pid/cwd" 2>/dev/null || true)
  real=$(readlink -f "$DATA")
  [ "$cwd" = "$real" ] || return 1
  echo "$pid"
}

# Leftover server processes of our cluster (e.g. backends orphaned after the
# postmaster was killed with SIGKILL): postgres processes whose cwd is our data dir.
cluster_processes() {
  local real p comm cwd
  real=$(readlink -f "$DATA" 2>/dev/null || true)
  [ -n "$real" ] || return 0
  for p in /proc/[0-9]*; do
    comm=$(cat "$p/comm" 2>/dev/null || true)
    case "$comm" in postgres | postmaster) ;; *) continue ;; esac
    cwd=$(readlink "$p/cwd" 2>/dev/null || true)
    [ "$cwd" = "$real" ] && echo "${p#/proc/}"
  done
  return 0
}

# Postmasters of an earlier cluster of ours whose data dir was deleted while it
# was running (cwd shows "<data dir> (deleted)"); they still hold our port.
orphaned_postmasters() {
  local p comm cwd ppid want
  want="$(readlink -f "$WORKDIR")/data (deleted)"
  for p in /proc/[0-9]*; do
    comm=$(cat "$p/comm" 2>/dev/null || true)
    case "$comm" in postgres | postmaster) ;; *) continue ;; esac
    cwd=$(readlink "$p/cwd" 2>/dev/null || true)
    [ "$cwd" = "$want" ] || continue
    # only the postmaster (its parent is not a postgres process)
    ppid=$(awk '/^PPid:/ {print $2}' "$p/status" 2>/dev/null || true)
    case "$(cat "/proc/$ppid/comm" 2>/dev/null || true)" in postgres | postmaster) continue ;; esac
    echo "${p#/proc/}"
  done
  return 0
}

# Called when no live postmaster owns the data dir: wait for orphaned children
# to exit (they notice postmaster death quickly), kill them after a deadline,
# and drop a stale postmaster.pid.
cleanup_stale() {
  local pids deadline=$((SECONDS + 10)) pidfile="$DATA/postmaster.pid" old
  old=$(orphaned_postmasters)
  if [ -n "$old" ]; then
    log "stopping a server whose data dir $DATA was deleted while running: $(echo $old)"
    kill -INT $old 2>/dev/null || true
    while [ -n "$old" ] && [ "$SECONDS" -lt "$deadline" ]; do
      sleep 0.2
      old=$(orphaned_postmasters)
    done
    if [ -n "$old" ]; then
      kill -9 $old 2>/dev/null || true
      sleep 0.5
    fi
  fi
  deadline=$((SECONDS + 10))
  pids=$(cluster_processes)
  if [ -n "$pids" ]; then
    log "waiting for leftover server processes to exit: $(echo $pids)"
    while [ -n "$pids" ] && [ "$SECONDS" -lt "$deadline" ]; do
      sleep 0.2
      pids=$(cluster_processes)
    done
    if [ -n "$pids" ]; then
      log "killing leftover server processes: $(echo $pids)"
      kill -9 $pids 2>/dev/null || true
      sleep 0.5
    fi
  fi
  if [ -f "$pidfile" ]; then
    log "removing stale $pidfile"
    rm -f "$pidfile"
  fi
  # Stale socket lock files are handled by postgres itself, but remove ours if
  # nobody listens (harmless either way).
  rm -f "$WORKDIR/.s.PGSQL.$PG_PORT.lock" 2>/dev/null || true
}

ready() {
  "$BINDIR/pg_isready" -q -h "$WORKDIR" -p "$1" -U "$SUPERUSER" -d postgres -t 2 >/dev/null 2>&1
}

running_port() {
  sed -n '4p' "$DATA/postmaster.pid" 2>/dev/null || true
}

wait_ready() {
  local port="$1" pid="${2:-}" deadline=$((SECONDS + PG_WAIT_SECS))
  until ready "$port"; do
    if [ -n "$pid" ] && ! kill -0 "$pid" 2>/dev/null; then
      log_tail
      die "server process $pid exited while waiting for it to become ready"
    fi
    if [ "$SECONDS" -ge "$deadline" ]; then
      log_tail
      die "server did not become ready within ${PG_WAIT_SECS}s (see $LOGFILE)"
    fi
    sleep 0.2
  done
}

log_tail() {
  if [ -f "$LOGFILE" ]; then
    log "last lines of $LOGFILE:"
    tail -n 25 "$LOGFILE" >&2 || true
  fi
}

desired_conf() {
  cat <<EOF
# Written by scripts/postgres.sh on every (re)start; edits are overwritten.
listen_addresses = '127.0.0.1'
port = $PG_PORT
unix_socket_directories = '$WORKDIR'
max_connections = 300
shared_buffers = 256MB
# The feed-horizon tests hold the horizon with a real PREPARE TRANSACTION.
max_prepared_transactions = 10
EOF
  if [ "$PG_FAST" = "1" ]; then
    cat <<'EOF'
fsync = off
synchronous_commit = off
full_page_writes = off
EOF
  fi
  cat <<'EOF'
log_min_messages = warning
log_line_prefix = '%m [%p] %q%u@%d '
EOF
}

write_conf() {
  local tmp="$WORKDIR/.$CONF_NAME.tmp"
  desired_conf >"$tmp"
  is_root && chown postgres: "$tmp"
  chmod 0644 "$tmp"
  mv -f "$tmp" "$DATA/$CONF_NAME"
}

server_major() {
  "$BINDIR/postgres" --version | sed -E 's/.* ([0-9]+)(\.[0-9]+)?.*/\1/'
}

init_cluster() {
  local major
  major=$(server_major)
  if [ "$PG_FRESH" != "1" ] && [ -f "$INITDONE" ] && [ -f "$DATA/PG_VERSION" ] &&
    [ "$(cat "$DATA/PG_VERSION")" = "$major" ]; then
    return 0
  fi
  log "initializing a new cluster (PostgreSQL $major) in $DATA"
  rm -f "$INITDONE"
  rm -rf -- "$DATA"
  as_pg "$BINDIR/initdb" -D "$DATA" -U "$SUPERUSER" --auth=trust \
    --encoding=UTF8 --locale=C >"$WORKDIR/initdb.log" 2>&1 || {
    cat "$WORKDIR/initdb.log" >&2 || true
    die "initdb failed"
  }
  echo "include_if_exists = '$CONF_NAME'" >>"$DATA/postgresql.conf"
  touch "$INITDONE"
}

start_server() {
  local pid
  write_conf
  log "starting PostgreSQL on 127.0.0.1:$PG_PORT (data: $DATA, log: $LOGFILE)"
  # 9>&- : the postmaster must not inherit our lock fd.
  if ! as_pg "$BINDIR/pg_ctl" -D "$DATA" -l "$LOGFILE" -w -t "$PG_WAIT_SECS" start >/dev/null 2>"$WORKDIR/pg_ctl.err" 9>&-; then
    cat "$WORKDIR/pg_ctl.err" >&2 || true
    log_tail
    die "pg_ctl start failed"
  fi
  pid=$(live_postmaster_pid) || {
    log_tail
    die "server started but postmaster.pid is not valid"
  }
  wait_ready "$PG_PORT" "$pid"
}

stop_server() {
  local pid
  if pid=$(live_postmaster_pid); then
    log "stopping PostgreSQL (pid $pid)"
    as_pg "$BINDIR/pg_ctl" -D "$DATA" -m fast -w -t "$PG_WAIT_SECS" stop >/dev/null 2>"$WORKDIR/pg_ctl.err" 9>&- || {
      cat "$WORKDIR/pg_ctl.err" >&2 || true
      die "pg_ctl stop failed"
    }
  fi
  cleanup_stale
}

psql_super() {
  "$BINDIR/psql" -h "$WORKDIR" -p "$PG_PORT" -U "$SUPERUSER" -d postgres -qAtX -v ON_ERROR_STOP=1 "$@"
}

ensure_role_and_db() {
  psql_super >/dev/null <<SQL || die "could not create role/database $DB_USER/$DB_NAME"
DO \$\$
BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '$DB_USER') THEN
    CREATE ROLE $DB_USER LOGIN SUPERUSER CREATEDB;
  ELSE
    ALTER ROLE $DB_USER LOGIN SUPERUSER CREATEDB;
  END IF;
END
\$\$;
SQL
  if [ "$(psql_super -c "SELECT 1 FROM pg_database WHERE datname = '$DB_NAME'")" != "1" ]; then
    psql_super -c "CREATE DATABASE $DB_NAME OWNER $DB_USER" >/dev/null ||
      die "could not create database $DB_NAME"
  fi
}

cmd_start() {
  if [ -n "${DATABASE_URL:-}" ]; then
    check_database_url "$DATABASE_URL"
    log "DATABASE_URL=$(redact_url "$DATABASE_URL") answers"
    if [ -n "$(url_password "$DATABASE_URL")" ]; then
      log "its password is not repeated below: keep your DATABASE_URL, or export PGPASSWORD"
    fi
    echo "DATABASE_URL=$(url_without_password "$DATABASE_URL")"
    return 0
  fi

  setup_paths
  ensure_server_binaries
  prepare_workdir
  take_lock

  local pid port
  if pid=$(live_postmaster_pid); then
    port=$(running_port)
    if [ "$PG_FRESH" = "1" ]; then
      log "PG_FRESH=1: restarting with a fresh cluster"
      stop_server
    elif [ "$port" != "$PG_PORT" ]; then
      log "running server uses port $port, PG_PORT=$PG_PORT: restarting"
      stop_server
    elif ! cmp -s <(desired_conf) "$DATA/$CONF_NAME"; then
      log "server settings changed (PG_FAST?): restarting"
      stop_server
    else
      wait_ready "$PG_PORT" "$pid"
      log "reusing running server (pid $pid) on port $PG_PORT"
    fi
  else
    cleanup_stale
  fi

  if ! live_postmaster_pid >/dev/null; then
    init_cluster
    start_server
  fi

  ensure_role_and_db
  echo "DATABASE_URL=postgres://$DB_USER@127.0.0.1:$PG_PORT/$DB_NAME"
}

cmd_stop() {
  setup_paths
  if [ ! -d "$DATA" ]; then
    return 0
  fi
  BINDIR=$(find_bindir) || {
    log "no PostgreSQL binaries found; nothing to stop"
    return 0
  }
  take_lock
  stop_server
}

cmd_restart() {
  setup_paths
  BINDIR=$(find_bindir) || die "no PostgreSQL binaries found"
  take_lock
  live_postmaster_pid >/dev/null || die "no server of this script runs in $WORKDIR"
  stop_server
  start_server
  log "restarted on port $PG_PORT"
}

cmd_status() {
  setup_paths
  BINDIR=$(find_bindir) || exit 1
  local pid
  if pid=$(live_postmaster_pid) && ready "$(running_port)"; then
    log "running (pid $pid, port $(running_port), data $DATA)"
    return 0
  fi
  log "not running"
  return 1
}

case "${1:-}" in
  start) cmd_start ;;
  stop) cmd_stop ;;
  status) cmd_status ;;
  restart) cmd_restart ;;
  *) usage ;;
esac
