//! The printed tables: a row per system, with rates and ratios against chosen baselines.

use std::time::Duration;

/// One system's figures in a table.
pub struct Row {
    system: String,
    ops: u64,
    elapsed: Duration,
    note: String,
}

impl Row {
    /// `ops` operations done in `elapsed`, with a free-form `note`.
    pub fn new(system: impl Into<String>, ops: u64, elapsed: Duration, note: String) -> Self {
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
pub struct Table {
    title: String,
    unit: &'static str,
    latency: bool,
    baselines: Vec<(&'static str, &'static str)>,
    rows: Vec<Row>,
    footnotes: Vec<String>,
}

impl Table {
    /// A table of `unit` rates (e.g. `"commands/s"`).
    pub fn new(title: impl Into<String>, unit: &'static str) -> Self {
        Self {
            title: title.into(),
            unit,
            latency: false,
            baselines: Vec::new(),
            rows: Vec::new(),
            footnotes: Vec::new(),
        }
    }

    /// Adds a column `header` with each row's rate divided by the rate of row `system`.
    #[must_use]
    pub fn versus(mut self, header: &'static str, system: &'static str) -> Self {
        self.baselines.push((header, system));
        self
    }

    /// Also prints the mean time per operation (for sequential operations only).
    #[must_use]
    pub fn with_latency(mut self) -> Self {
        self.latency = true;
        self
    }

    /// Adds a row.
    pub fn push(&mut self, row: Row) {
        self.rows.push(row);
    }

    /// Adds a line printed under the table.
    pub fn footnote(&mut self, line: String) {
        self.footnotes.push(line);
    }

    /// Prints the table.
    pub fn print(&self) {
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
        for line in &self.footnotes {
            println!("  {line}");
        }
    }
}
