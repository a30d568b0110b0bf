# Ports on 127.0.0.1, for the scripts that start servers. Sourced, not run; uses the caller's
# `die`.

# True when something accepts connections on 127.0.0.1:$1.
port_answers() {
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# The ports free_port picks from: outside the kernel's ephemeral range, from which any outgoing
# connection may take a port between our check and the server's bind ("Address already in use").
# Below that range (from 10000) when it leaves room there, else above it.
free_port_range() {
    local low=32768 high=60999
    if [[ -r /proc/sys/net/ipv4/ip_local_port_range ]]; then
        read -r low high </proc/sys/net/ipv4/ip_local_port_range
    fi
    if ((low > 11000)); then
        echo "10000 $((low - 1))"
    elif ((high < 64000)); then
        echo "$((high + 1)) 65535"
    else
        die "the ephemeral port range $low-$high leaves no room for servers"
    fi
}

# A port nothing listens on, outside the kernel's ephemeral range.
free_port() {
    local port tries=0 first last range
    range="$(free_port_range)" || die "no port range for servers"
    read -r first last <<<"$range"
    while ((tries < 200)); do
        port=$((first + (RANDOM * 32768 + RANDOM) % (last - first + 1)))
        if ! port_answers "$port"; then
            echo "$port"
            return 0
        fi
        tries=$((tries + 1))
    done
    die "found no free port"
}
