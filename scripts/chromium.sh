#!/usr/bin/env bash
# Headless Chromium behind a WebDriver server, for the web console's browser tests.
#
#   scripts/chromium.sh start    # install when missing, start (or reuse) chromedriver; the last
#                                # stdout line is WEBDRIVER_URL=http://127.0.0.1:PORT
#   scripts/chromium.sh stop     # stop the chromedriver started by this script
#   scripts/chromium.sh status   # exit 0 and print the URL if our chromedriver answers
#   scripts/chromium.sh check URL  # exit 0 if the WebDriver server at URL says it is ready
#
# Debian's `chromium` and `chromium-driver` are installed with apt-get when missing and we are
# root (as scripts/postgres.sh installs PostgreSQL). chromedriver listens on 127.0.0.1 only and
# accepts connections from the loopback only. The browser's own flags (headless, no sandbox,
# no network chatter, a fresh profile) are set by the tests in each session's capabilities,
# since a WebDriver server starts one browser per session.
#
# Environment:
#   CHROMIUM_WORKDIR        holds chromedriver.pid, chromedriver.port and chromedriver.log
#                           (default /var/tmp/cqrs-chromium)
#   CHROMEDRIVER_PORT       the port (default: a free one)
#   CHROMIUM_START_TIMEOUT  seconds to wait for it to be ready (default 30)
set -euo pipefail

WORKDIR="${CHROMIUM_WORKDIR:-/var/tmp/cqrs-chromium}"
PID_FILE="$WORKDIR/chromedriver.pid"
PORT_FILE="$WORKDIR/chromedriver.port"
LOG_FILE="$WORKDIR/chromedriver.log"
START_TIMEOUT="${CHROMIUM_START_TIMEOUT:-30}"

log() { echo "chromium.sh: $*" >&2; }
die() {
    log "$*"
    exit 1
}

# shellcheck source=scripts/lib/ports.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib/ports.sh"
# shellcheck source=scripts/url.sh
. "$(dirname "${BASH_SOURCE[0]}")/url.sh"

# The server at $1 answers /status with "ready": true.
ready() {
    local body
    # Through curl_url: a hosted grid's URL may hold a user and key, which a command line
    # would show to every user (`ps`).
    body="$(curl_url "$1/status" -fsS --max-time 5 2>/dev/null)" || return 1
    grep -q '"ready"[[:space:]]*:[[:space:]]*true' <<<"$body"
}

ensure_installed() {
    if command -v chromedriver >/dev/null 2>&1 && command -v chromium >/dev/null 2>&1; then
        return 0
    fi
    [ "$(id -u)" -eq 0 ] || die "chromium and chromedriver are missing and we are not root: install Debian's chromium and chromium-driver, or set WEBDRIVER_URL"
    command -v apt-get >/dev/null 2>&1 || die "chromium is missing and apt-get is unavailable; set WEBDRIVER_URL"
    log "installing Debian's chromium and chromium-driver with apt-get..."
    {
        DEBIAN_FRONTEND=noninteractive apt-get update -q &&
            DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends chromium chromium-driver
    } >&2 || die "apt-get install chromium chromium-driver failed"
}

# shellcheck source=scripts/lib/pids.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib/pids.sh"

running_pid() { pid_of_ours chromedriver; }

start() {
    ensure_installed
    mkdir -p "$WORKDIR"
    if running_pid >/dev/null && [[ -f "$PORT_FILE" ]] && ready "http://127.0.0.1:$(cat "$PORT_FILE")"; then
        log "reusing chromedriver on port $(cat "$PORT_FILE")"
        echo "WEBDRIVER_URL=http://127.0.0.1:$(cat "$PORT_FILE")"
        return 0
    fi
    local port="${CHROMEDRIVER_PORT:-$(free_port)}"
    # Another WebDriver on a chosen port would answer "ready" for ours, which failed to bind.
    if port_answers "$port"; then
        die "port $port is already in use by another process (set CHROMEDRIVER_PORT to a free one)"
    fi
    log "starting chromedriver ($(chromedriver --version 2>/dev/null | head -n 1)) on 127.0.0.1:$port"
    setsid chromedriver --port="$port" --allowed-ips=127.0.0.1 --log-path="$LOG_FILE" \
        </dev/null >>"$LOG_FILE" 2>&1 &
    local pid=$!
    echo "$pid" >"$PID_FILE"
    echo "$port" >"$PORT_FILE"
    local deadline=$((SECONDS + START_TIMEOUT))
    until kill -0 "$pid" 2>/dev/null && ready "http://127.0.0.1:$port"; do
        kill -0 "$pid" 2>/dev/null || die "chromedriver exited; see $LOG_FILE"
        [ "$SECONDS" -lt "$deadline" ] || die "chromedriver not ready after ${START_TIMEOUT}s; see $LOG_FILE"
        sleep 0.2
    done
    echo "WEBDRIVER_URL=http://127.0.0.1:$port"
}

stop() { stop_ours 10 "$PID_FILE" "$PORT_FILE"; }

case "${1:-}" in
start) start ;;
stop) stop ;;
status)
    running_pid >/dev/null && [[ -f "$PORT_FILE" ]] && ready "http://127.0.0.1:$(cat "$PORT_FILE")" ||
        exit 1
    echo "WEBDRIVER_URL=http://127.0.0.1:$(cat "$PORT_FILE")"
    ;;
check) ready "${2:-${WEBDRIVER_URL:?usage: scripts/chromium.sh check [URL], or WEBDRIVER_URL set}}" ;;
*)
    echo "usage: scripts/chromium.sh start|stop|status|check [URL]" >&2
    exit 2
    ;;
esac
