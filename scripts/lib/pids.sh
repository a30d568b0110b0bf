# The server a script started, found again through its pid file and log. Sourced, not run;
# uses the caller's `log`, `PID_FILE` and `LOG_FILE`.

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
