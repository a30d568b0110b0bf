//! `free_port` (scripts/lib/ports.sh) hands the server scripts a port for a listener. A port in
//! the kernel's ephemeral range can be taken as the local end of any outgoing connection between
//! the check and the server's bind (a Kafka controller once failed to start on one: "Address
//! already in use"), so the ports it picks lie outside that range.

use std::path::Path;
use std::process::Command;

/// The kernel's ephemeral port range, from `/proc`.
fn ephemeral_range() -> (u32, u32) {
    let text = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .expect("the ephemeral port range");
    let mut bounds = text
        .split_whitespace()
        .map(|n| n.parse::<u32>().expect("a port number"));
    let low = bounds.next().expect("a low bound");
    let high = bounds.next().expect("a high bound");
    (low, high)
}

#[test]
fn free_ports_lie_outside_the_kernels_ephemeral_range() {
    let repository = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the repository root");
    let output = Command::new("bash")
        .current_dir(repository)
        .arg("-c")
        .arg("die() { echo \"$*\" >&2; exit 1; }; . scripts/lib/ports.sh && for _ in $(seq 200); do free_port; done")
        .output()
        .expect("run bash");
    assert!(
        output.status.success(),
        "free_port failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let (low, high) = ephemeral_range();
    let ports: Vec<u32> = String::from_utf8(output.stdout)
        .expect("UTF-8")
        .lines()
        .map(|line| line.parse().expect("a port number"))
        .collect();
    assert_eq!(ports.len(), 200);
    for port in ports {
        assert!(
            (1024..=65535).contains(&port) && !(low..=high).contains(&port),
            "port {port} is in the ephemeral range {low}-{high}"
        );
    }
}
