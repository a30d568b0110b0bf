//! The CPU time this process used: what a client costs, beside the server it waits on. A rate
//! on a machine the server shares moves by a tenth between runs; the client's CPU per event
//! barely moves, so a change to client-side work shows there first.

use std::time::Duration;

/// The CPU time, user and system, all threads, this process has used so far; `None` where
/// `/proc/self/stat` is not (outside Linux) or does not parse.
pub fn process_cpu() -> Option<Duration> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    cpu_of_stat(&stat)
}

/// User plus system time from a `/proc/<pid>/stat` line (`proc(5)`: fields 14 and 15, in clock
/// ticks of 1/100 s on Linux, whatever the kernel's own tick).
///
/// ```
/// use std::time::Duration;
/// use cqrs_benchmarks::cpu::cpu_of_stat;
///
/// // The command name may hold spaces and parentheses: fields are counted after its last `)`.
/// let line = "4242 (pg (bench) x) S 1 4242 4242 0 -1 4194560 900 0 0 0 250 37 0 0 20 0 3 0";
/// assert_eq!(cpu_of_stat(line), Some(Duration::from_millis(2_870)));
/// assert_eq!(cpu_of_stat("4242 (short) S 1"), None);
/// ```
pub fn cpu_of_stat(stat: &str) -> Option<Duration> {
    let (_, after_name) = stat.rsplit_once(')')?;
    // Field 3 (the state) is the first after the name: utime is field 14, stime 15.
    let mut fields = after_name.split_whitespace().skip(11);
    let user: u64 = fields.next()?.parse().ok()?;
    let system: u64 = fields.next()?.parse().ok()?;
    Some(Duration::from_millis(
        user.saturating_add(system).saturating_mul(10),
    ))
}

/// Microseconds of this process's CPU per unit: `cpu` spent on `units`.
///
/// ```
/// use std::time::Duration;
/// use cqrs_benchmarks::cpu::micros_per_unit;
///
/// assert_eq!(micros_per_unit(Duration::from_millis(1_500), 500_000), 3.0);
/// assert_eq!(micros_per_unit(Duration::from_secs(1), 0), 0.0);
/// ```
pub fn micros_per_unit(cpu: Duration, units: u64) -> f64 {
    if units == 0 {
        return 0.0;
    }
    // u64 to f64 is exact below 2^53, far beyond any count here.
    cpu.as_secs_f64() * 1e6 / units as f64
}
