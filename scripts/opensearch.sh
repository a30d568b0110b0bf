#!/usr/bin/env bash
# Build, start and stop a local single-node OpenSearch 2.19.6 for tests.
#
# The node is an embedded OpenSearch (Maven Central artifacts) launched by the
# small Maven project in tools/opensearch-node/. No Docker, no root needed.
#
#   scripts/opensearch.sh build          build the launcher (mvn package + copy-dependencies)
#   scripts/opensearch.sh start [PORT]   build if needed, start (or reuse) a node on PORT
#                                        (default 9200); last stdout line is
#                                        ELASTICSEARCH_URL=http://127.0.0.1:PORT
#   scripts/opensearch.sh stop           stop the node started by this script
#   scripts/opensearch.sh status         exit 0 and print the URL if our node is healthy
#
# Environment:
#   OPENSEARCH_WORKDIR        holds opensearch.pid, opensearch.port, node.log and node/
#                             (the node's home and data, wiped on start)
#                             (default /var/tmp/cqrs-opensearch)
#   OPENSEARCH_JAVA_OPTS      heap options (default "-Xms512m -Xmx1g")
#   OPENSEARCH_START_TIMEOUT  seconds to wait for the node to be healthy (default 180)
#   OPENSEARCH_PLUGINS        comma-separated plugin classes to load instead of the default set
#   OPENSEARCH_SETTINGS       extra node settings, space-separated key=value
#                             (e.g. "action.auto_create_index=false")
#   OPENSEARCH_KEEP_DATA=1    keep the node's data on start (a restart after a stop)
#   JAVA                      java binary (default: java on PATH)
#   MVN                       mvn binary (default: mvn on PATH)
set -euo pipefail

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$SCRIPT_DIR/.." && pwd)"
TOOL_DIR="$ROOT/tools/opensearch-node"
TARGET="$TOOL_DIR/target"
JAR="$TARGET/opensearch-node-0.1.0.jar"
STAMP="$TARGET/.built"

WORKDIR="${OPENSEARCH_WORKDIR:-/var/tmp/cqrs-opensearch}"
PID_FILE="$WORKDIR/opensearch.pid"
PORT_FILE="$WORKDIR/opensearch.port"
LOG_FILE="$WORKDIR/node.log"
NODE_DIR="$WORKDIR/node"   # home/, data/, logs/, tmp/ of the node; wiped on every start
JAVA_OPTS="${OPENSEARCH_JAVA_OPTS:--Xms512m -Xmx1g}"
START_TIMEOUT="${OPENSEARCH_START_TIMEOUT:-180}"
JAVA="${JAVA:-java}"
MVN="${MVN:-mvn}"
MAIN_CLASS="cqrs.opensearch.NodeLauncher"

log() { echo "opensearch.sh: $*" >&2; }
die() { log "$*"; exit 1; }

health_url() { echo "http://127.0.0.1:$1/_cluster/health?wait_for_status=yellow&timeout=5s"; }

is_healthy() {
    curl -fsS --max-time 10 -o /dev/null "$(health_url "$1")" 2>/dev/null
}

port_answers() {
    curl -sS --max-time 3 -o /dev/null "http://127.0.0.1:$1/" 2>/dev/null
}

# shellcheck source=scripts/lib/pids.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib/pids.sh"

# Pid from the pid file if that process is alive and is our launcher.
running_pid() { pid_of_ours "$MAIN_CLASS"; }

log_tail() { log_tail_of 60; }

# shellcheck source=scripts/lib/maven_tool.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib/maven_tool.sh"

wait_healthy() { # pid port
    local pid="$1" port="$2" deadline=$((SECONDS + START_TIMEOUT))
    while ((SECONDS < deadline)); do
        if ! kill -0 "$pid" 2>/dev/null; then
            log "node process $pid exited during startup"
            return 1
        fi
        if is_healthy "$port"; then
            return 0
        fi
        sleep 0.5
    done
    log "node not healthy on port $port after ${START_TIMEOUT}s"
    return 1
}

do_start() {
    local port="${1:-9200}"
    [[ "$port" =~ ^[0-9]+$ ]] || die "bad port: $port"
    mkdir -p "$WORKDIR"

    local pid
    if pid="$(running_pid)"; then
        local old_port
        old_port="$(cat "$PORT_FILE" 2>/dev/null || echo "?")"
        if [[ "$old_port" != "$port" ]]; then
            die "a node from this script (pid $pid) already runs on port $old_port; run '$0 stop' first"
        fi
        log "reusing running node (pid $pid) on port $port"
        if ! wait_healthy "$pid" "$port"; then
            log_tail
            exit 1
        fi
        echo "ELASTICSEARCH_URL=http://127.0.0.1:$port"
        return 0
    fi
    rm -f "$PID_FILE" "$PORT_FILE"

    if port_answers "$port"; then
        die "port $port is already in use by another process"
    fi

    if needs_build; then
        do_build
    fi

    # Fresh node state every start, unless OPENSEARCH_KEEP_DATA=1 (a restart after an outage).
    if [[ "${OPENSEARCH_KEEP_DATA:-0}" != 1 ]]; then
        rm -rf "${NODE_DIR:?}"
    fi
    mkdir -p "$NODE_DIR/home" "$NODE_DIR/data" "$NODE_DIR/logs" "$NODE_DIR/tmp"
    : > "$LOG_FILE"

    local extra_settings=()
    if [[ -n "${OPENSEARCH_SETTINGS:-}" ]]; then
        read -r -a extra_settings <<< "$OPENSEARCH_SETTINGS"
    fi

    local plugin_opt=()
    if [[ -n "${OPENSEARCH_PLUGINS+x}" ]]; then
        plugin_opt=("-Dcqrs.opensearch.plugins=$OPENSEARCH_PLUGINS")
    fi

    # JVM flags mirror the ones the OpenSearch distribution always sets.
    # shellcheck disable=SC2086
    "$JAVA" $JAVA_OPTS \
        -XX:+UseG1GC \
        -XX:-OmitStackTraceInFastThrow \
        -XX:+ShowCodeDetailsInExceptionMessages \
        -Dfile.encoding=UTF-8 \
        -Djava.locale.providers=SPI,COMPAT \
        -Djava.io.tmpdir="$NODE_DIR/tmp" \
        -Djna.nosys=true \
        -Dio.netty.noUnsafe=true \
        -Dio.netty.noKeySetOptimization=true \
        -Dio.netty.recycler.maxCapacityPerThread=0 \
        -Dlog4j.shutdownHookEnabled=false \
        -Dlog4j2.disable.jmx=true \
        "${plugin_opt[@]}" \
        -cp "$JAR:$TARGET/lib/*" \
        "$MAIN_CLASS" \
        "path.home=$NODE_DIR/home" \
        "path.data=$NODE_DIR/data" \
        "path.logs=$NODE_DIR/logs" \
        "http.port=$port" \
        "transport.port=$((port + 100))-$((port + 199))" \
        "${extra_settings[@]}" \
        </dev/null >>"$LOG_FILE" 2>&1 &
    pid=$!
    local launched=$SECONDS
    echo "$pid" > "$PID_FILE"
    echo "$port" > "$PORT_FILE"
    log "started node pid $pid on port $port (log: $LOG_FILE)"

    wait_healthy "$pid" "$port" || abandon_start "$pid" 60 "$PID_FILE" "$PORT_FILE"
    log "node healthy $((SECONDS - launched))s after launch"
    echo "ELASTICSEARCH_URL=http://127.0.0.1:$port"
}

do_stop() { stop_ours 60 "$PID_FILE" "$PORT_FILE"; }

do_status() {
    local pid port
    pid="$(running_pid)" || { log "not running"; exit 1; }
    port="$(cat "$PORT_FILE" 2>/dev/null || echo 9200)"
    is_healthy "$port" || { log "pid $pid running but not healthy on port $port"; exit 1; }
    echo "ELASTICSEARCH_URL=http://127.0.0.1:$port"
}

case "${1:-}" in
    build) do_build ;;
    start) do_start "${2:-9200}" ;;
    stop) do_stop ;;
    status) do_status ;;
    *)
        echo "usage: $0 {build|start [PORT]|stop|status}" >&2
        exit 2
        ;;
esac
