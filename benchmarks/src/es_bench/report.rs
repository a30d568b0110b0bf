//! The printed figures: the machine, then the workloads' tables. Rate tables are the shared
//! [`Table`]; latency tables, with percentiles, are here.

use std::time::Duration;

use cqrs_benchmarks::db::ServerInfo;
use cqrs_benchmarks::machine::Machine;
use cqrs_benchmarks::table::Table;

use crate::args::{Args, Sizes};
use crate::node::NodeInfo;

/// What a workload prints.
pub(crate) enum Output {
    /// Rates, with ratios.
    Rates(Table),
    /// Latency percentiles, with ratios.
    Latencies(LatencyTable),
}

impl Output {
    /// Prints it.
    pub(crate) fn print(&self) {
        match self {
            Output::Rates(table) => table.print(),
            Output::Latencies(table) => table.print(),
        }
    }
}

/// Prints what the figures were measured on.
pub(crate) fn print_machine(pg: &ServerInfo, node: &NodeInfo, args: &Args, sizes: &Sizes) {
    println!(
        "es-bench: {} run",
        if args.quick { "quick" } else { "full" }
    );
    println!("machine: {}", Machine::detect());
    println!(
        "load:    {} (1-minute load average at start; others may share the machine: see the \
         cpu notes)",
        crate::cpu::load_average().unwrap_or_else(|| "?".into())
    );
    println!("events:  {}", pg.version);
    let settings: Vec<String> = pg
        .settings
        .iter()
        .map(|(name, value)| format!("{name}={value}"))
        .collect();
    println!("         {}", settings.join(", "));
    println!(
        "node:    {} (lucene {}), heap {} MiB, 1 shard, 0 replicas per index",
        node.version, node.lucene, node.heap_mib
    );
    println!("clients: {} (filling the store only)", args.clients);
    println!("sizes:   {sizes:?}");
}

/// One system's latencies.
struct Latencies {
    system: String,
    sorted: Vec<Duration>,
    note: String,
}

impl Latencies {
    /// The `per_mille`-th percentile, nearest rank.
    fn percentile(&self, per_mille: usize) -> Duration {
        cqrs_benchmarks::latency::percentile(&self.sorted, per_mille)
    }

    fn mean(&self) -> Duration {
        let total: Duration = self.sorted.iter().sum();
        total / u32::try_from(self.sorted.len().max(1)).unwrap_or(u32::MAX)
    }
}

/// A workload's latency table: a row per system, and ratio columns against one baseline row.
pub(crate) struct LatencyTable {
    title: String,
    baseline: &'static str,
    rows: Vec<Latencies>,
    footnotes: Vec<String>,
}

impl LatencyTable {
    /// A table whose ratios divide by the latencies of row `baseline`.
    pub(crate) fn new(title: impl Into<String>, baseline: &'static str) -> Self {
        Self {
            title: title.into(),
            baseline,
            rows: Vec::new(),
            footnotes: Vec::new(),
        }
    }

    /// Adds a line printed under the table.
    pub(crate) fn footnote(&mut self, line: String) {
        self.footnotes.push(line);
    }

    /// Adds a row of `samples`, with a free-form `note`.
    pub(crate) fn push(
        &mut self,
        system: impl Into<String>,
        mut samples: Vec<Duration>,
        note: String,
    ) {
        samples.sort_unstable();
        self.rows.push(Latencies {
            system: system.into(),
            sorted: samples,
            note,
        });
    }

    /// Prints the table.
    pub(crate) fn print(&self) {
        println!("\n== {} ==", self.title);
        println!(
            "{:<44} {:>7} {:>8} {:>8} {:>8} {:>8} {:>8} {:>9} {:>9}  notes",
            "system",
            "samples",
            "p50 ms",
            "p90 ms",
            "p99 ms",
            "max ms",
            "mean ms",
            "p50 vs",
            "p99 vs"
        );
        let base = self.rows.iter().find(|r| r.system == self.baseline);
        let ms = |d: Duration| d.as_secs_f64() * 1000.0;
        for row in &self.rows {
            let ratio = |per_mille| {
                base.map_or_else(
                    || "-".to_owned(),
                    |base| {
                        let of = ms(base.percentile(per_mille)).max(1e-9);
                        format!("{:.2}x", ms(row.percentile(per_mille)) / of)
                    },
                )
            };
            println!(
                "{:<44} {:>7} {:>8.2} {:>8.2} {:>8.2} {:>8.2} {:>8.2} {:>9} {:>9}  {}",
                row.system,
                row.sorted.len(),
                ms(row.percentile(500)),
                ms(row.percentile(900)),
                ms(row.percentile(990)),
                ms(row.sorted.last().copied().unwrap_or_default()),
                ms(row.mean()),
                ratio(500),
                ratio(990),
                row.note
            );
        }
        println!(
            "  p50 vs / p99 vs: the percentile / the same percentile of \"{}\" (below 1 is faster)",
            self.baseline
        );
        for line in &self.footnotes {
            println!("  {line}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_are_nearest_rank() {
        let mut table = LatencyTable::new("t", "a");
        let samples = (1..=100).map(Duration::from_millis).collect();
        table.push("a", samples, String::new());
        let row = &table.rows[0];
        assert_eq!(row.percentile(500), Duration::from_millis(50));
        assert_eq!(row.percentile(990), Duration::from_millis(99));
        assert_eq!(row.percentile(1000), Duration::from_millis(100));
        assert_eq!(row.mean(), Duration::from_micros(50_500));
    }
}
