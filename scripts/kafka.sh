#!/usr/bin/env bash
# Build, start and stop a local single-node Apache Kafka 3.9.1 (KRaft) for tests.
#
# The node is the broker and controller in one JVM (process.roles=broker,controller), run
# from the Maven Central artifacts that the small Maven project in tools/kafka-node/ copies
# into its target/lib. No Docker, no ZooKeeper, no root needed.
#
#   scripts/kafka.sh build          build the classpath (mvn package + copy-dependencies)
#   scripts/kafka.sh start [PORT]   build if needed, start (or reuse) a node on PORT (default:
#                                   $KAFKA_PORT, else a free port); wait until it answers a
#                                   metadata request; the last stdout line is
#                                   KAFKA_BOOTSTRAP_SERVERS=127.0.0.1:PORT
#   scripts/kafka.sh stop           stop the node started by this script (SIGTERM: a clean
#                                   controlled shutdown; SIGKILL only after 60 s)
#   scripts/kafka.sh status         exit 0 and print the bootstrap line if our node answers
#   scripts/kafka.sh check SERVERS  exit 0 if the brokers in SERVERS (host:port,...) answer a
#                                   metadata request within 60 s (someone else's Kafka;
#                                   logs in with KAFKA_SASL_USERNAME/_PASSWORD/_MECHANISM if set)
#
# Every start is a fresh cluster: the data directory is wiped and formatted with a new
# cluster id (unless KAFKA_KEEP_DATA=1: a restart after a stop, for outage tests). Settings are for tests: one partition per new topic unless asked, replication 1
# (the offsets and transaction logs too, transaction log min ISR 1), no initial rebalance
# delay for consumer groups, and topics are NOT created automatically (tests create theirs).
#
# Environment:
#   KAFKA_WORKDIR           holds kafka.pid, kafka.port, node.log and node/ (server.properties,
#                           log4j.properties, data/: wiped on start)
#                           (default /var/tmp/cqrs-kafka)
#   KAFKA_PORT              the client (PLAINTEXT) port when start is given none
#   KAFKA_CONTROLLER_PORT   the KRaft controller port (default: a free port)
#   KAFKA_HEAP_OPTS         heap options (default "-Xms256m -Xmx512m")
#   KAFKA_START_TIMEOUT     seconds to wait for the node to answer (default 120)
#   KAFKA_KEEP_DATA=1       keep the node's data, cluster id and ports on start (a restart
#                           after a stop); without a node formatted before, a fresh start
#   KAFKA_SETTINGS          extra broker settings, space-separated key=value
#                           (e.g. "num.partitions=3 auto.create.topics.enable=true")
#   JAVA                    java binary (default: java on PATH)
#   MVN                     mvn binary (default: mvn on PATH)
set -euo pipefail

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$SCRIPT_DIR/.." && pwd)"
TOOL_DIR="$ROOT/tools/kafka-node"
TARGET="$TOOL_DIR/target"
JAR="$TARGET/kafka-node-0.1.0.jar"
STAMP="$TARGET/.built"
CLASSPATH_ARG="$JAR:$TARGET/lib/*"

WORKDIR="${KAFKA_WORKDIR:-/var/tmp/cqrs-kafka}"
PID_FILE="$WORKDIR/kafka.pid"
PORT_FILE="$WORKDIR/kafka.port"
LOG_FILE="$WORKDIR/node.log"
NODE_DIR="$WORKDIR/node" # server.properties, log4j.properties, data/; wiped on every start
HEAP_OPTS="${KAFKA_HEAP_OPTS:--Xms256m -Xmx512m}"
START_TIMEOUT="${KAFKA_START_TIMEOUT:-120}"
JAVA="${JAVA:-java}"
MVN="${MVN:-mvn}"
MAIN_CLASS="kafka.Kafka"
STORAGE_TOOL="kafka.tools.StorageTool"
READY_CLASS="cqrs.kafka.Ready"

log() { echo "kafka.sh: $*" >&2; }
die() {
    log "$*"
    exit 1
}

# shellcheck source=scripts/lib/ports.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib/ports.sh"

# shellcheck source=scripts/lib/pids.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib/pids.sh"

# Pid from the pid file if that process is alive and is our broker.
running_pid() { pid_of_ours " $MAIN_CLASS "; }

log_tail() { log_tail_of 60; }

# shellcheck source=scripts/lib/maven_tool.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib/maven_tool.sh"

# The brokers answer a metadata request (the admin client's describeCluster) within $2 seconds.
servers_answer() { # servers seconds
    local log_config="$NODE_DIR/log4j-tools.properties"
    [[ -f "$log_config" ]] || log_config="$WORKDIR/log4j-tools.properties"
    [[ -f "$log_config" ]] || { mkdir -p "$WORKDIR" && write_tools_log_config "$log_config"; }
    "$JAVA" -Xmx64m -XX:TieredStopAtLevel=1 -Dlog4j.configuration=file:"$log_config" \
        -cp "$CLASSPATH_ARG" "$READY_CLASS" "$1" "$2" >/dev/null
}

answers() { # port seconds
    servers_answer "127.0.0.1:$1" "$2"
}

wait_ready() { # pid port
    local pid="$1" port="$2" deadline=$((SECONDS + START_TIMEOUT))
    # Wait for the listener first (cheap), then for a metadata answer (one JVM that polls).
    while ! port_answers "$port"; do
        kill -0 "$pid" 2>/dev/null || {
            log "node process $pid exited during startup"
            return 1
        }
        ((SECONDS < deadline)) || {
            log "node not listening on port $port after ${START_TIMEOUT}s"
            return 1
        }
        sleep 0.2
    done
    local left=$((deadline - SECONDS))
    ((left > 5)) || left=5
    if ! answers "$port" "$left"; then
        log "node on port $port does not answer a metadata request"
        return 1
    fi
}

write_config() { # port controller_port
    local port="$1" controller_port="$2"
    cat >"$NODE_DIR/server.properties" <<PROPS
# Written by scripts/kafka.sh: one node, broker and controller, settings for tests.
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:$controller_port
listeners=PLAINTEXT://127.0.0.1:$port,CONTROLLER://127.0.0.1:$controller_port
advertised.listeners=PLAINTEXT://127.0.0.1:$port
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT
log.dirs=$NODE_DIR/data
num.partitions=1
default.replication.factor=1
min.insync.replicas=1
offsets.topic.replication.factor=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
group.initial.rebalance.delay.ms=0
auto.create.topics.enable=false
delete.topic.enable=true
PROPS
    if [[ -n "${KAFKA_SETTINGS:-}" ]]; then
        local setting
        for setting in $KAFKA_SETTINGS; do
            [[ "$setting" == *=* ]] || die "KAFKA_SETTINGS: not key=value: $setting"
            echo "$setting" >>"$NODE_DIR/server.properties"
        done
    fi
    # The broker logs to stdout (node.log); the kafka.* request and state-change chatter at WARN.
    cat >"$NODE_DIR/log4j.properties" <<'PROPS'
log4j.rootLogger=INFO, stdout
log4j.appender.stdout=org.apache.log4j.ConsoleAppender
log4j.appender.stdout.layout=org.apache.log4j.PatternLayout
log4j.appender.stdout.layout.ConversionPattern=[%d] %p %m (%c)%n
log4j.logger.kafka.request.logger=WARN
log4j.logger.state.change.logger=WARN
log4j.logger.org.apache.kafka.clients=WARN
PROPS
    write_tools_log_config "$NODE_DIR/log4j-tools.properties"
}

# Logging for the storage tool and the health check: errors only, on stderr.
write_tools_log_config() { # path
    cat >"$1" <<'PROPS'
log4j.rootLogger=ERROR, stderr
log4j.appender.stderr=org.apache.log4j.ConsoleAppender
log4j.appender.stderr.Target=System.err
log4j.appender.stderr.layout=org.apache.log4j.PatternLayout
log4j.appender.stderr.layout.ConversionPattern=%p %m (%c)%n
PROPS
}

# A new cluster id: 16 random bytes, URL-safe base64 without padding (Kafka's Uuid form),
# not starting with '-' (the storage tool would read it as an option).
cluster_id() {
    local id="-"
    while [[ "$id" == -* ]]; do
        id="$(head -c 16 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=\n')"
    done
    echo "$id"
}

do_start() {
    local port="${1:-${KAFKA_PORT:-}}"
    [[ -z "$port" || "$port" =~ ^[0-9]+$ ]] || die "bad port: $port"
    mkdir -p "$WORKDIR"

    local pid
    if pid="$(running_pid)"; then
        local old_port
        old_port="$(cat "$PORT_FILE" 2>/dev/null || echo "?")"
        if [[ -n "$port" && "$old_port" != "$port" ]]; then
            die "a node from this script (pid $pid) already runs on port $old_port; run '$0 stop' first"
        fi
        port="$old_port"
        log "reusing running node (pid $pid) on port $port"
        if ! wait_ready "$pid" "$port"; then
            log_tail
            exit 1
        fi
        echo "KAFKA_BOOTSTRAP_SERVERS=127.0.0.1:$port"
        return 0
    fi
    rm -f "$PID_FILE" "$PORT_FILE"

    # A restart after an outage (KAFKA_KEEP_DATA=1 and a node formatted before): the same
    # cluster, data and ports.
    local keep=""
    if [[ "${KAFKA_KEEP_DATA:-0}" == 1 && -f "$NODE_DIR/server.properties" && -f "$NODE_DIR/data/meta.properties" ]]; then
        keep=1
        local old_port
        old_port="$(sed -n 's/^advertised.listeners=PLAINTEXT:\/\/127.0.0.1:\([0-9]*\)$/\1/p' "$NODE_DIR/server.properties")"
        [[ "$old_port" =~ ^[0-9]+$ ]] || die "KAFKA_KEEP_DATA=1: no client port in $NODE_DIR/server.properties"
        if [[ -n "$port" && "$port" != "$old_port" ]]; then
            die "KAFKA_KEEP_DATA=1: the kept node listens on port $old_port, not $port"
        fi
        port="$old_port"
    fi

    if [[ -z "$port" ]]; then
        port="$(free_port)"
    elif port_answers "$port"; then
        die "port $port is already in use by another process"
    fi

    if needs_build; then
        do_build
    fi

    local id
    if [[ -n "$keep" ]]; then
        id="$(sed -n 's/^cluster.id=//p' "$NODE_DIR/data/meta.properties")"
        log "keeping the node's data and cluster $id (KAFKA_KEEP_DATA=1)"
        echo "---- restart $(date -u +%FT%TZ) ----" >>"$LOG_FILE"
    else
        local controller_port="${KAFKA_CONTROLLER_PORT:-}"
        if [[ -z "$controller_port" ]]; then
            controller_port="$(free_port)"
            while [[ "$controller_port" == "$port" ]]; do controller_port="$(free_port)"; done
        elif port_answers "$controller_port"; then
            die "controller port $controller_port is already in use by another process"
        fi
        [[ "$controller_port" != "$port" ]] || die "the controller port must differ from the client port"

        # A fresh cluster: wipe, write the config, format the storage with a new id.
        rm -rf "${NODE_DIR:?}"
        mkdir -p "$NODE_DIR/data"
        write_config "$port" "$controller_port"
        : >"$LOG_FILE"
        id="$(cluster_id)"
        if ! "$JAVA" -Xmx128m -Dlog4j.configuration=file:"$NODE_DIR/log4j-tools.properties" \
            -cp "$CLASSPATH_ARG" "$STORAGE_TOOL" format \
            -t "$id" -c "$NODE_DIR/server.properties" >>"$LOG_FILE" 2>&1; then
            log_tail
            die "formatting the storage failed"
        fi
    fi

    # JVM flags as the distribution's kafka-run-class.sh sets them, less GC logging and JMX.
    # shellcheck disable=SC2086
    "$JAVA" $HEAP_OPTS \
        -server -XX:+UseG1GC -XX:MaxGCPauseMillis=20 -XX:InitiatingHeapOccupancyPercent=35 \
        -XX:+ExplicitGCInvokesConcurrent \
        -Djava.awt.headless=true \
        -Djava.io.tmpdir="$NODE_DIR" \
        -Dlog4j.configuration=file:"$NODE_DIR/log4j.properties" \
        -Dkafka.logs.dir="$NODE_DIR" \
        -cp "$CLASSPATH_ARG" \
        "$MAIN_CLASS" "$NODE_DIR/server.properties" \
        </dev/null >>"$LOG_FILE" 2>&1 &
    pid=$!
    local launched=$SECONDS
    echo "$pid" >"$PID_FILE"
    echo "$port" >"$PORT_FILE"
    log "started node pid $pid on port $port, cluster $id (log: $LOG_FILE)"

    wait_ready "$pid" "$port" || abandon_start "$pid" 60 "$PID_FILE" "$PORT_FILE"
    log "node answers $((SECONDS - launched))s after launch"
    echo "KAFKA_BOOTSTRAP_SERVERS=127.0.0.1:$port"
}

do_stop() { stop_ours 60 "$PID_FILE" "$PORT_FILE"; }

do_status() {
    local pid port
    pid="$(running_pid)" || {
        log "not running"
        exit 1
    }
    port="$(cat "$PORT_FILE" 2>/dev/null || true)"
    [[ "$port" =~ ^[0-9]+$ ]] || {
        log "pid $pid running but $PORT_FILE is missing"
        exit 1
    }
    answers "$port" 10 || {
        log "pid $pid running but not answering on port $port"
        exit 1
    }
    echo "KAFKA_BOOTSTRAP_SERVERS=127.0.0.1:$port"
}

do_check() { # servers
    local servers="${1:-}"
    [[ -n "$servers" ]] || die "usage: $0 check HOST:PORT[,HOST:PORT...]"
    # Credentials go in KAFKA_SASL_USERNAME / KAFKA_SASL_PASSWORD, as the crate reads them; an
    # entry holding them is refused without printing it (nor passing it on a command line).
    [[ "$servers" != *@* ]] ||
        die "a bootstrap entry holds credentials (user:password@host:port); list host:port only and give them as KAFKA_SASL_USERNAME and KAFKA_SASL_PASSWORD"
    if needs_build; then
        do_build
    fi
    servers_answer "$servers" 60 || die "no broker in $servers answers a metadata request"
    log "$servers answers"
}

case "${1:-}" in
build) do_build ;;
check) do_check "${2:-}" ;;
start) do_start "${2:-}" ;;
stop) do_stop ;;
status) do_status ;;
*)
    echo "usage: $0 {build|start [PORT]|stop|status|check SERVERS}" >&2
    exit 2
    ;;
esac
