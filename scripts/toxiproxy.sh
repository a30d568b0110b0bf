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
NAME=toxiproxy
GO_PACKAGE=github.com/Shopify/toxiproxy/v2/cmd/server
# shellcheck source=scripts/lib/go_tool.sh
. "$SCRIPT_DIR/lib/go_tool.sh"

# The port of the running Toxiproxy (as written at its start), else the environment's.
load_port() {
    if [[ -f "$PORT_FILE" ]]; then
        PORT="$(cat "$PORT_FILE")"
    fi
}

is_healthy() {
    curl -fsS --max-time 3 -o /dev/null "http://127.0.0.1:$PORT/version" 2>/dev/null
}

print_url() {
    echo "TOXIPROXY_URL=http://127.0.0.1:$PORT"
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
    if port_answers "$PORT"; then
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
    wait_healthy "$pid" || abandon_start "$pid" 15 "$PID_FILE" "$PORT_FILE"
    print_url
}

do_stop() {
    stop_ours 15 "$PID_FILE" "$PORT_FILE"
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
