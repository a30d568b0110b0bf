//! The printed figures: the machine, then one table per workload.

use std::time::Duration;

use crate::args::{Args, Sizes};
use crate::db::ServerInfo;

/// One system's figures in a table.
pub(crate) struct Row {
    system: String,
    ops: u64,
    elapsed: Duration,
    note: String,
}

impl Row {
    /// `ops` operations done in `elapsed`, with a free-form `note`.
    pub(crate) fn new(
        system: impl Into<String>,
        ops: u64,
        elapsed: Duration,
        note: String,
    ) -> Self {
        Self {
            system: system.into(),
            ops,
            elapsed,
            note,
        }
    }

    fn rate(&self) -> f64 {
        // u64 to f64 is exact below 2^53, far beyond any count here.
        self.ops as f64 / self.elapsed.as_secs_f64().max(f64::MIN_POSITIVE)
    }
}

/// A workload's table: a row per system, and ratio columns against chosen baseline rows.
pub(crate) struct Table {
    title: String,
    unit: &'static str,
    latency: bool,
    baselines: Vec<(&'static str, &'static str)>,
    rows: Vec<Row>,
}

impl Table {
    /// A table of `unit` rates (e.g. `"commands/s"`).
    pub(crate) fn new(title: impl Into<String>, unit: &'static str) -> Self {
        Self {
            title: title.into(),
            unit,
            latency: false,
            baselines: Vec::new(),
            rows: Vec::new(),
        }
    }

    /// Adds a column `header` with each row's rate divided by the rate of row `system`.
    #[must_use]
    pub(crate) fn versus(mut self, header: &'static str, system: &'static str) -> Self {
        self.baselines.push((header, system));
        self
    }

    /// Also prints the mean time per operation (for sequential operations only).
    #[must_use]
    pub(crate) fn with_latency(mut self) -> Self {
        self.latency = true;
        self
    }

    /// Adds a row.
    pub(crate) fn push(&mut self, row: Row) {
        self.rows.push(row);
    }

    /// Prints the table.
    pub(crate) fn print(&self) {
        println!("\n== {} ==", self.title);
        let mut header = format!(
            "{:<40} {:>9} {:>8} {:>12}",
            "system", "ops", "seconds", self.unit
        );
        if self.latency {
            header.push_str(&format!(" {:>9}", "ms/op"));
        }
        for (name, _) in &self.baselines {
            header.push_str(&format!(" {name:>12}"));
        }
        println!("{header}  notes");
        for row in &self.rows {
            let mut line = format!(
                "{:<40} {:>9} {:>8.3} {:>12.0}",
                row.system,
                row.ops,
                row.elapsed.as_secs_f64(),
                row.rate()
            );
            if self.latency {
                let ms = row.elapsed.as_secs_f64() * 1000.0 / row.ops.max(1) as f64;
                line.push_str(&format!(" {ms:>9.3}"));
            }
            for (_, baseline) in &self.baselines {
                let ratio = self
                    .rows
                    .iter()
                    .find(|r| r.system == *baseline)
                    .map(|base| format!("{:.2}x", row.rate() / base.rate()));
                line.push_str(&format!(" {:>12}", ratio.unwrap_or_else(|| "-".into())));
            }
            println!("{line}  {}", row.note);
        }
        for (header, baseline) in &self.baselines {
            println!("  {header}: rate / rate of \"{baseline}\" (above 1 is faster)");
        }
    }
}

/// Prints what the figures were measured on.
pub(crate) fn print_machine(info: &ServerInfo, args: &Args, sizes: &Sizes) {
    let cpus = std::thread::available_parallelism().map_or(0, usize::from);
    let model = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|info| {
            info.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, m)| m.trim().to_owned())
        })
        .unwrap_or_else(|| "unknown".into());
    println!(
        "pg-bench: {} run",
        if args.quick { "quick" } else { "full" }
    );
    println!("machine: nproc {cpus}, cpu {model}");
    println!("server:  {}", info.version);
    let settings: Vec<String> = info
        .settings
        .iter()
        .map(|(name, value)| format!("{name}={value}"))
        .collect();
    println!("         {}", settings.join(", "));
    println!(
        "clients: {} (pool size of every system: {})",
        args.clients, args.clients
    );
    println!("sizes:   {sizes:?}");
}
