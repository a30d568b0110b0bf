#!/usr/bin/env bash
# Build, start and stop a local Jaeger (v1.75.0, the v2 binary: an OpenTelemetry Collector
# distribution) that receives OTLP and answers trace queries, for the tests and for local use.
#
# The binary is built from the Go module proxy by the small module in tools/jaeger/ (its go.mod
# and go.sum pin every dependency; `go install ...@v1.75.0` refuses Jaeger's own go.mod, which
# carries replace directives). No Docker, no root needed.
#
#   scripts/jaeger.sh build     build the binary (once per go.mod / go.sum content)
#   scripts/jaeger.sh start     build if needed, start (or reuse) Jaeger; the last two stdout
#                               lines are JAEGER_QUERY_URL=http://127.0.0.1:PORT and
#                               OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:PORT
#   scripts/jaeger.sh stop      stop the Jaeger started by this script
#   scripts/jaeger.sh status    exit 0 and print the URLs if our Jaeger is healthy
#
# Environment:
#   JAEGER_WORKDIR          holds bin/jaeger, jaeger.pid, ports and jaeger.log
#                           (default /var/tmp/cqrs-jaeger)
#   JAEGER_QUERY_PORT       the query API and UI (default 16686)
#   JAEGER_OTLP_PORT        OTLP over HTTP/protobuf (default 4318)
#   JAEGER_OTLP_GRPC_PORT   OTLP over gRPC (default 4317)
#   JAEGER_QUERY_GRPC_PORT  the query API over gRPC (default 16685)
#   JAEGER_HEALTH_PORT      the health check (default 13133)
#   JAEGER_START_TIMEOUT    seconds to wait for it to be healthy (default 60)
#   GO                      go binary (default: go on PATH)
set -euo pipefail

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$SCRIPT_DIR/.." && pwd)"
TOOL_DIR="$ROOT/tools/jaeger"
CONFIG="$TOOL_DIR/config.yaml"

WORKDIR="${JAEGER_WORKDIR:-/var/tmp/cqrs-jaeger}"
BIN="$WORKDIR/bin/jaeger"
STAMP="$WORKDIR/bin/.built"
PID_FILE="$WORKDIR/jaeger.pid"
PORTS_FILE="$WORKDIR/ports"
LOG_FILE="$WORKDIR/jaeger.log"
START_TIMEOUT="${JAEGER_START_TIMEOUT:-60}"
GO="${GO:-go}"

export JAEGER_QUERY_PORT="${JAEGER_QUERY_PORT:-16686}"
export JAEGER_OTLP_PORT="${JAEGER_OTLP_PORT:-4318}"
export JAEGER_OTLP_GRPC_PORT="${JAEGER_OTLP_GRPC_PORT:-4317}"
export JAEGER_QUERY_GRPC_PORT="${JAEGER_QUERY_GRPC_PORT:-16685}"
export JAEGER_HEALTH_PORT="${JAEGER_HEALTH_PORT:-13133}"

NAME=jaeger
GO_PACKAGE=github.com/jaegertracing/jaeger/cmd/jaeger
BUILD_NOTE="a few minutes the first time"
# shellcheck source=scripts/lib/go_tool.sh
. "$SCRIPT_DIR/lib/go_tool.sh"

# The ports of the running Jaeger (as written at its start) or of the environment.
load_ports() {
    if [[ -f "$PORTS_FILE" ]]; then
        # shellcheck disable=SC1090
        . "$PORTS_FILE"
    fi
}

is_healthy() {
    curl -fsS --max-time 3 -o /dev/null "http://127.0.0.1:$JAEGER_HEALTH_PORT/status" 2>/dev/null \
        && curl -fsS --max-time 3 -o /dev/null "http://127.0.0.1:$JAEGER_QUERY_PORT/api/services" 2>/dev/null
}

print_urls() {
    echo "JAEGER_QUERY_URL=http://127.0.0.1:$JAEGER_QUERY_PORT"
    echo "OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:$JAEGER_OTLP_PORT"
}

do_start() {
    mkdir -p "$WORKDIR"
    local pid
    if pid="$(running_pid)"; then
        load_ports
        log "reusing running jaeger (pid $pid)"
        wait_healthy "$pid" || { log_tail; exit 1; }
        print_urls
        return 0
    fi
    rm -f "$PID_FILE" "$PORTS_FILE"
    local port
    for port in "$JAEGER_QUERY_PORT" "$JAEGER_OTLP_PORT" "$JAEGER_OTLP_GRPC_PORT" \
        "$JAEGER_QUERY_GRPC_PORT" "$JAEGER_HEALTH_PORT"; do
        [[ "$port" =~ ^[0-9]+$ ]] || die "bad port: $port"
        if port_answers "$port"; then
            die "port $port is already in use by another process (set the JAEGER_*_PORT variables)"
        fi
    done
    if needs_build; then
        do_build
    fi
    : > "$LOG_FILE"
    "$BIN" --config "$CONFIG" </dev/null >>"$LOG_FILE" 2>&1 &
    pid=$!
    echo "$pid" > "$PID_FILE"
    {
        echo "JAEGER_QUERY_PORT=$JAEGER_QUERY_PORT"
        echo "JAEGER_OTLP_PORT=$JAEGER_OTLP_PORT"
        echo "JAEGER_OTLP_GRPC_PORT=$JAEGER_OTLP_GRPC_PORT"
        echo "JAEGER_QUERY_GRPC_PORT=$JAEGER_QUERY_GRPC_PORT"
        echo "JAEGER_HEALTH_PORT=$JAEGER_HEALTH_PORT"
    } > "$PORTS_FILE"
    log "started jaeger pid $pid (log: $LOG_FILE)"
    wait_healthy "$pid" || abandon_start "$pid" 30 "$PID_FILE" "$PORTS_FILE"
    print_urls
}

do_stop() {
    stop_ours 30 "$PID_FILE" "$PORTS_FILE"
}

do_status() {
    local pid
    pid="$(running_pid)" || { log "not running"; exit 1; }
    load_ports
    is_healthy || { log "pid $pid running but not healthy"; exit 1; }
    print_urls
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
