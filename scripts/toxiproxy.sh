#!/usr/bin/env bash
# Build, start and stop a local Toxiproxy (v2.5.0), the fault-injecting TCP proxy the chaos
# tests put between the framework and its servers (tests/tests/chaos_*.rs).
#
# The binary is built from the Go module proxy by the small module in tools/toxiproxy/ (its
# go.mod and go.sum pin every dependency). No Docker, no root needed.
#
#   scripts/toxiproxy.sh build     build the binary (once per go.mod / go.sum content)
#   scripts/toxiproxy.sh start     build if needed, start (or reuse) Toxiproxy; the last stdout
#                                  line is TOXIPROXY_URL=http://127.0.0.1:PORT
#   scripts/toxiproxy.sh stop      stop the Toxiproxy started by this script
#   scripts/toxiproxy.sh status    exit 0 and print the URL if our Toxiproxy is healthy
#
# A Toxiproxy of your own (docker compose's, say): set TOXIPROXY_URL and do not run this script;
# scripts/test.sh only checks that it answers.
#
# Environment:
#   TOXIPROXY_WORKDIR        holds bin/toxiproxy-server, toxiproxy.pid, port and toxiproxy.log
#                            (default /var/tmp/cqrs-toxiproxy)
#   TOXIPROXY_PORT           its HTTP API on 127.0.0.1 (default 8474)
#   TOXIPROXY_START_TIMEOUT  seconds to wait for it to answer (default 30)
#   GO                       go binary (default: go on PATH)
set -euo pipefail

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$SCRIPT_DIR/.." && pwd)"
TOOL_DIR="$ROOT/tools/toxiproxy"

WORKDIR="${TOXIPROXY_WORKDIR:-/var/tmp/cqrs-toxiproxy}"
BIN="$WORKDIR/bin/toxiproxy-server"
STAMP="$WORKDIR/bin/.built"
PID_FILE="$WORKDIR/toxiproxy.pid"
PORT_FILE="$WORKDIR/port"
LOG_FILE="$WORKDIR/toxiproxy.log"
START_TIMEOUT="${TOXIPROXY_START_TIMEOUT:-30}"
GO="${GO:-go}"
PORT="${TOXIPROXY_PORT:-8474}"

log() { echo "toxiproxy.sh: $*" >&2; }
die() { log "$*"; exit 1; }

# What the build depends on: the pinned module files and the Go version.
build_key() {
    { cat "$TOOL_DIR/go.mod" "$TOOL_DIR/go.sum"; "$GO" version; } | sha256sum | cut -d' ' -f1
}

ensure_go() {
    command -v "$GO" >/dev/null 2>&1 || [[ -x "$GO" ]] \
        || die "go not found (install Go 1.24+, or set GO=/path/to/go)"
}

do_build() {
    ensure_go
    mkdir -p "$WORKDIR/bin"
    log "building Toxiproxy from $TOOL_DIR"
    rm -f "$STAMP"
    (cd "$TOOL_DIR" && "$GO" build -o "$BIN" github.com/Shopify/toxiproxy/v2/cmd/server) >&2 \
        || die "go build failed"
    build_key > "$STAMP"
}

needs_build() {
    [[ -x "$BIN" && -f "$STAMP" ]] || return 0
    [[ "$(cat "$STAMP")" != "$(build_key)" ]]
}

running_pid() {
    [[ -f "$PID_FILE" ]] || return 1
    local pid
    pid="$(cat "$PID_FILE" 2>/dev/null || true)"
    [[ "$pid" =~ ^[0-9]+$ ]] || return 1
    kill -0 "$pid" 2>/dev/null || return 1
    tr '\0' ' ' < "/proc/$pid/cmdline" 2>/dev/null | grep -q "$BIN" || return 1
    echo "$pid"
}

# The port of the running Toxiproxy (as written at its start), else the environment's.
load_port() {
    if [[ -f "$PORT_FILE" ]]; then
        PORT="$(cat "$PORT_FILE")"
    fi
}

is_healthy() {
    curl -fsS --max-time 3 -o /dev/null "http://127.0.0.1:$PORT/version" 2>/dev/null
}

port_in_use() {
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

print_url() {
    echo "TOXIPROXY_URL=http://127.0.0.1:$PORT"
}

log_tail() {
    if [[ -f "$LOG_FILE" ]]; then
        log "---- last lines of $LOG_FILE ----"
        tail -n 40 "$LOG_FILE" >&2 || true
        log "----"
    fi
}

wait_healthy() { # pid
    local pid="$1" deadline=$((SECONDS + START_TIMEOUT))
    while ((SECONDS < deadline)); do
        kill -0 "$pid" 2>/dev/null || { log "toxiproxy $pid exited during startup"; return 1; }
        is_healthy && return 0
        sleep 0.2
    done
    log "toxiproxy not answering after ${START_TIMEOUT}s"
    return 1
}

do_start() {
    mkdir -p "$WORKDIR"
    local pid
    if pid="$(running_pid)"; then
        load_port
        log "reusing running toxiproxy (pid $pid)"
        wait_healthy "$pid" || { log_tail; exit 1; }
        print_url
        return 0
    fi
    rm -f "$PID_FILE" "$PORT_FILE"
    [[ "$PORT" =~ ^[0-9]+$ ]] || die "bad port: $PORT"
    if port_in_use "$PORT"; then
        die "port $PORT is already in use by another process (set TOXIPROXY_PORT)"
    fi
    if needs_build; then
        do_build
    fi
    : > "$LOG_FILE"
    "$BIN" -host 127.0.0.1 -port "$PORT" </dev/null >>"$LOG_FILE" 2>&1 &
    pid=$!
    echo "$pid" > "$PID_FILE"
    echo "$PORT" > "$PORT_FILE"
    log "started toxiproxy pid $pid (log: $LOG_FILE)"
    if ! wait_healthy "$pid"; then
        log_tail
        kill -TERM "$pid" 2>/dev/null || true
        rm -f "$PID_FILE" "$PORT_FILE"
        exit 1
    fi
    print_url
}

do_stop() {
    local pid deadline
    if pid="$(running_pid)"; then
        log "stopping toxiproxy pid $pid"
        kill -TERM "$pid" 2>/dev/null || true
        deadline=$((SECONDS + 15))
        while kill -0 "$pid" 2>/dev/null && ((SECONDS < deadline)); do sleep 0.2; done
        kill -KILL "$pid" 2>/dev/null || true
        log "stopped"
    else
        log "no running toxiproxy from this script"
    fi
    rm -f "$PID_FILE" "$PORT_FILE"
}

do_status() {
    local pid
    pid="$(running_pid)" || { log "not running"; exit 1; }
    load_port
    is_healthy || { log "pid $pid running but not answering"; exit 1; }
    print_url
}

case "${1:-}" in
    build) do_build ;;
    start) do_start ;;
    stop) do_stop ;;
    status) do_status ;;
    *)
        echo "usage: $0 {build|start|stop|status}" >&2
        exit 2
        ;;
esac
