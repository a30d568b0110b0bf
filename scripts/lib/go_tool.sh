# Shared by the scripts that build a server from a pinned Go module in tools/<name>/ and run it
# in the background (scripts/jaeger.sh, scripts/toxiproxy.sh). Sourced, not run.
#
# The caller sets, before sourcing:
#   NAME           the server's name, for messages ("jaeger")
#   TOOL_DIR       the Go module that pins it (go.mod, go.sum)
#   GO_PACKAGE     the package to build ("github.com/.../cmd/server")
#   WORKDIR BIN STAMP PID_FILE LOG_FILE START_TIMEOUT GO
# and defines is_healthy (exit 0 when the server answers).

# shellcheck source=scripts/lib/ports.sh
. "$(dirname "${BASH_SOURCE[0]}")/ports.sh"

log() { echo "$NAME.sh: $*" >&2; }
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
    log "building $NAME from $TOOL_DIR${BUILD_NOTE:+ ($BUILD_NOTE)}"
    rm -f "$STAMP"
    (cd "$TOOL_DIR" && "$GO" build -o "$BIN" "$GO_PACKAGE") >&2 || die "go build failed"
    build_key > "$STAMP"
}

needs_build() {
    [[ -x "$BIN" && -f "$STAMP" ]] || return 0
    [[ "$(cat "$STAMP")" != "$(build_key)" ]]
}

# shellcheck source=scripts/lib/pids.sh
. "$(dirname "${BASH_SOURCE[0]}")/pids.sh"

# The pid of the server this script started, if it still runs (and is still our binary).
running_pid() { pid_of_ours "$BIN"; }

log_tail() { log_tail_of 40; }

wait_healthy() { # pid
    local pid="$1" deadline=$((SECONDS + START_TIMEOUT))
    while ((SECONDS < deadline)); do
        kill -0 "$pid" 2>/dev/null || { log "$NAME $pid exited during startup"; return 1; }
        is_healthy && return 0
        sleep 0.2
    done
    log "$NAME not healthy after ${START_TIMEOUT}s"
    return 1
}

