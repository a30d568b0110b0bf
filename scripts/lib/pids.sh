# The server a script started, found again through its pid file and log, and stopped. Sourced,
# not run; uses the caller's `log`, `PID_FILE`, `LOG_FILE`, and `running_pid` (for `stop_ours`)
# and `log_tail` (for `abandon_start`).

# The pid in $PID_FILE if that process still runs and its command line contains $1 (the
# server's binary or main class): a dead server's pid, reused since by another process, is not
# taken for ours.
pid_of_ours() { # marker
    [[ -f "$PID_FILE" ]] || return 1
    local pid
    pid="$(cat "$PID_FILE" 2>/dev/null || true)"
    [[ "$pid" =~ ^[0-9]+$ ]] || return 1
    kill -0 "$pid" 2>/dev/null || return 1
    tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF -- "$1" || return 1
    echo "$pid"
}

# The last $1 lines of $LOG_FILE on stderr, framed, if there is a log.
log_tail_of() { # lines
    if [[ -f "$LOG_FILE" ]]; then
        log "---- last lines of $LOG_FILE ----"
        tail -n "$1" "$LOG_FILE" >&2 || true
        log "----"
    fi
}

# Stops process $1: SIGTERM, up to $2 seconds to exit, then SIGKILL; returns once it is gone, so
# its ports are free for the next start.
stop_pid() { # pid grace
    local pid="$1" grace="$2" deadline
    kill -TERM "$pid" 2>/dev/null || return 0
    deadline=$((SECONDS + grace))
    while kill -0 "$pid" 2>/dev/null && ((SECONDS < deadline)); do
        sleep 0.2
    done
    if kill -0 "$pid" 2>/dev/null; then
        log "pid $pid did not stop in ${grace}s; killing"
        kill -KILL "$pid" 2>/dev/null || true
        while kill -0 "$pid" 2>/dev/null; do sleep 0.2; done
    fi
}

# Stops the server `running_pid` finds (`stop_pid` with `grace` seconds), then removes the
# files given (its pid and port files).
stop_ours() { # grace files...
    local grace="$1" pid
    shift
    if pid="$(running_pid)"; then
        log "stopping pid $pid"
        stop_pid "$pid" "$grace"
        log "stopped"
    else
        log "no running server from this script"
    fi
    rm -f "$@"
}

# A start that failed: shows the log's tail, stops process $1 (`stop_pid` with $2 seconds, so
# its ports are free for the next try), removes the files given and exits 1.
abandon_start() { # pid grace files...
    local pid="$1" grace="$2"
    shift 2
    log_tail
    stop_pid "$pid" "$grace" || true
    rm -f "$@"
    exit 1
}
