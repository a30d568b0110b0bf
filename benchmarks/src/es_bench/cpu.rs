//! Where the CPU went during a timed phase: the whole machine (`/proc/stat`), this process
//! (`/proc/self/stat`), the PostgreSQL backends serving this workload's database (processes
//! whose title names it, when the server runs on this machine) and the search node (`/proc`
//! when it runs here, else its own process stats, which it refreshes once a second). The rest
//! is other work on the machine: PostgreSQL's background processes, and anything else
//! running. Linux only; elsewhere only the node's share is shown.

use std::collections::HashMap;
use std::fmt;
use std::time::Instant;

use anyhow::Result;

use crate::node::Node;

/// Clock ticks per second of `/proc` (`USER_HZ`, 100 on every Linux platform in use).
const TICKS_PER_SECOND: f64 = 100.0;

/// Milliseconds per clock tick.
const MILLIS_PER_TICK: u64 = 10;

/// CPU clocks read at the start of a phase.
pub(crate) struct CpuMeter {
    started: Instant,
    database: String,
    machine: Option<MachineTicks>,
    own: Option<u64>,
    backends: HashMap<u32, u64>,
    node_millis: u64,
}

/// The node's CPU time in milliseconds: from `/proc` when it runs here, else as it reports it.
async fn node_millis(node: &Node) -> Result<u64> {
    let local = node
        .pid()
        .and_then(|pid| process_ticks(&pid.to_string()))
        .map(|ticks| ticks * MILLIS_PER_TICK);
    match local {
        Some(millis) => Ok(millis),
        None => node.cpu_millis().await,
    }
}

/// The CPU used during a phase, in cores (1.0 = one processor busy all the time).
pub(crate) struct CpuUse {
    cpus: usize,
    machine_busy: Option<f64>,
    own: Option<f64>,
    backends: f64,
    node: f64,
}

#[derive(Clone, Copy)]
struct MachineTicks {
    busy: u64,
    total: u64,
}

impl CpuMeter {
    /// Reads the clocks now; `database` is the workload's PostgreSQL database.
    pub(crate) async fn start(node: &Node, database: &str) -> Result<Self> {
        let node_millis = node_millis(node).await?;
        Ok(Self {
            started: Instant::now(),
            database: database.to_owned(),
            machine: machine_ticks(),
            own: own_ticks(),
            backends: backend_ticks(database),
            node_millis,
        })
    }

    /// What was used since [`start`](Self::start).
    pub(crate) async fn stop(self, node: &Node) -> Result<CpuUse> {
        let wall = self.started.elapsed().as_secs_f64().max(1e-9);
        let cores = |ticks: u64| ticks as f64 / TICKS_PER_SECOND / wall;
        let own = own_ticks()
            .zip(self.own)
            .map(|(now, then)| cores(now.saturating_sub(then)));
        let machine_busy = machine_ticks().zip(self.machine).and_then(|(now, then)| {
            let total = now.total.saturating_sub(then.total);
            (total > 0).then(|| now.busy.saturating_sub(then.busy) as f64 / total as f64)
        });
        // Backends that started meanwhile count whole; those that ended meanwhile are lost.
        let backends: u64 = backend_ticks(&self.database)
            .iter()
            .map(|(pid, now)| now.saturating_sub(self.backends.get(pid).copied().unwrap_or(0)))
            .sum();
        let node_millis = node_millis(node).await?;
        Ok(CpuUse {
            cpus: std::thread::available_parallelism().map_or(1, usize::from),
            machine_busy,
            own,
            backends: cores(backends),
            node: node_millis.saturating_sub(self.node_millis) as f64 / 1000.0 / wall,
        })
    }
}

impl fmt::Display for CpuUse {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Some(busy) = self.machine_busy else {
            return write!(f, "cpu: node {:.2} cores", self.node);
        };
        let cores = busy * self.cpus as f64;
        let own = self.own.unwrap_or(0.0);
        let other = (cores - own - self.backends - self.node).max(0.0);
        write!(
            f,
            "cpu {:.0}% of {}: bench {own:.2}, pg {:.2}, node {:.2}, other {other:.2} cores",
            busy * 100.0,
            self.cpus,
            self.backends,
            self.node
        )
    }
}

/// The load average over the last minute, from `/proc/loadavg`.
pub(crate) fn load_average() -> Option<String> {
    let text = std::fs::read_to_string("/proc/loadavg").ok()?;
    text.split_whitespace().next().map(str::to_owned)
}

/// Busy and total ticks of all processors, from the first line of `/proc/stat`.
fn machine_ticks() -> Option<MachineTicks> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let line = stat.lines().next()?.strip_prefix("cpu ")?;
    let fields: Vec<u64> = line
        .split_whitespace()
        .filter_map(|f| f.parse().ok())
        .collect();
    // user nice system idle iowait irq softirq steal (guest time is inside user).
    let [user, nice, system, idle, iowait, irq, softirq, steal, ..] = fields[..] else {
        return None;
    };
    let busy = user + nice + system + irq + softirq + steal;
    Some(MachineTicks {
        busy,
        total: busy + idle + iowait,
    })
}

/// This process's user and system ticks.
fn own_ticks() -> Option<u64> {
    process_ticks("self")
}

/// The ticks of every PostgreSQL backend whose process title names `database`
/// (`postgres: user database host(port) state`), by pid.
fn backend_ticks(database: &str) -> HashMap<u32, u64> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return HashMap::new();
    };
    let needle = format!(" {database} ");
    entries
        .filter_map(|entry| {
            let name = entry.ok()?.file_name();
            let pid: u32 = name.to_str()?.parse().ok()?;
            let title = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
            let title = String::from_utf8_lossy(&title).replace('\0', " ");
            if !(title.starts_with("postgres: ") && title.contains(&needle)) {
                return None;
            }
            Some((pid, process_ticks(&pid.to_string())?))
        })
        .collect()
}

/// User and system ticks of process `pid` (or `self`), from `/proc/{pid}/stat`.
fn process_ticks(pid: &str) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name, in parentheses, may hold spaces: count fields after its end. Field 3
    // (state) comes first, so utime (14) and stime (15) are the 12th and 13th.
    let (_, after) = stat.rsplit_once(')')?;
    let fields: Vec<&str> = after.split_whitespace().collect();
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some(utime + stime)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proc_files_parse_on_linux() {
        if cfg!(target_os = "linux") {
            assert!(machine_ticks().is_some_and(|t| t.total >= t.busy));
            assert!(own_ticks().is_some());
            assert!(load_average().is_some());
        }
    }

    #[test]
    fn other_is_what_neither_bench_nor_pg_nor_node_used() {
        let used = CpuUse {
            cpus: 2,
            machine_busy: Some(0.75),
            own: Some(0.25),
            backends: 0.5,
            node: 0.5,
        };
        assert_eq!(
            used.to_string(),
            "cpu 75% of 2: bench 0.25, pg 0.50, node 0.50, other 0.25 cores"
        );
    }
}
