# Ports on 127.0.0.1, for the scripts that start servers. Sourced, not run; uses the caller's
# `die`.

# True when something accepts connections on 127.0.0.1:$1.
port_answers() {
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# A port nothing listens on, from 20000-59999.
free_port() {
    local port tries=0
    while ((tries < 200)); do
        port=$((20000 + RANDOM % 40000))
        if ! port_answers "$port"; then
            echo "$port"
            return 0
        fi
        tries=$((tries + 1))
    done
    die "found no free port"
}
