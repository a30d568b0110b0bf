//! The printed tables: a row per system, with rates and ratios against chosen baselines. A row
//! may stand for several runs of its system: then it shows the median run, and the slowest and
//! fastest rates beside it, so that no figure is one run's luck.

use std::time::Duration;

/// One system's figures in a table.
pub struct Row {
    system: String,
    ops: u64,
    elapsed: Duration,
    note: String,
    /// The lowest and highest rate of the runs the row is the median of.
    spread: Option<(f64, f64)>,
}

impl Row {
    /// `ops` operations done in `elapsed`, with a free-form `note`.
    pub fn new(system: impl Into<String>, ops: u64, elapsed: Duration, note: String) -> Self {
        Self {
            system: system.into(),
            ops,
            elapsed,
            note,
            spread: None,
        }
    }

    /// The median of `runs` (rows of one system), by rate, showing the lowest and highest rates
    /// beside it and how many runs it is the median of. With an even count, the slower of the
    /// two middle runs. `None` without runs.
    pub fn median(mut runs: Vec<Row>) -> Option<Self> {
        runs.sort_by(|a, b| a.rate().total_cmp(&b.rate()));
        let count = runs.len();
        let (low, high) = (runs.first()?.rate(), runs.last()?.rate());
        let mut row = runs.swap_remove((count - 1) / 2);
        row.spread = Some((low, high));
        row.note = format!("median of {count} runs; {}", row.note);
        Some(row)
    }

    /// Puts `text` before the row's note.
    pub fn prefix_note(&mut self, text: &str) {
        self.note = format!("{text}; {}", self.note);
    }

    fn rate(&self) -> f64 {
        per_second(self.ops, self.elapsed)
    }
}

/// `units` done in `elapsed`, per second: the one rate every table and footnote prints.
///
/// ```
/// use std::time::Duration;
/// use cqrs_benchmarks::table::per_second;
///
/// assert_eq!(per_second(500, Duration::from_millis(250)), 2_000.0);
/// assert!(per_second(1, Duration::ZERO).is_finite());
/// ```
pub fn per_second(units: u64, elapsed: Duration) -> f64 {
    // u64 to f64 is exact below 2^53, far beyond any count here.
    units as f64 / elapsed.as_secs_f64().max(f64::MIN_POSITIVE)
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
        let spread = self.rows.iter().any(|row| row.spread.is_some());
        if spread {
            header.push_str(&format!(" {:>17}", "min / max"));
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
            if spread {
                let range = row.spread.map_or_else(
                    || "-".to_owned(),
                    |(low, high)| format!("{low:.0} / {high:.0}"),
                );
                line.push_str(&format!(" {range:>17}"));
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
        if spread {
            println!(
                "  {}: the median run's; min / max: the slowest and fastest run's {}",
                self.unit, self.unit
            );
        }
        for (header, baseline) in &self.baselines {
            println!("  {header}: rate / rate of \"{baseline}\" (above 1 is faster)");
        }
        for line in &self.footnotes {
            println!("  {line}");
        }
    }
}

/// The order in which round `round` (from 0) runs `systems` systems: each round starts one
/// system further on, so over `systems` rounds each system runs first once, and none always
/// comes right after the same other one's leftovers (dirty pages, autovacuum, a warm cache).
pub fn rotation(round: usize, systems: usize) -> impl Iterator<Item = usize> {
    (0..systems).map(move |turn| (round + turn) % systems.max(1))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(seconds: u64) -> Row {
        Row::new("a", 100, Duration::from_secs(seconds), "ok".into())
    }

    #[test]
    fn a_row_of_several_runs_shows_the_median_run_and_the_slowest_and_fastest_rates() {
        let row = Row::median(vec![run(4), run(1), run(2)]).expect("three runs");
        assert_eq!(row.elapsed, Duration::from_secs(2));
        assert_eq!(row.spread, Some((25.0, 100.0)));
        assert_eq!(row.note, "median of 3 runs; ok");
        assert!(Row::median(Vec::new()).is_none());
    }

    #[test]
    fn over_as_many_rounds_as_systems_each_system_runs_first_once_and_every_round_runs_all() {
        let systems = 4;
        let firsts: Vec<usize> = (0..systems)
            .filter_map(|round| rotation(round, systems).next())
            .collect();
        assert_eq!(firsts, vec![0, 1, 2, 3]);
        for round in 0..systems {
            let mut order: Vec<usize> = rotation(round, systems).collect();
            order.sort_unstable();
            assert_eq!(order, vec![0, 1, 2, 3]);
        }
    }
}
