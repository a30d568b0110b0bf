//! [`Progress`]: a progress line (events left, events/s, ETA) for long work, read from the
//! store's view of the work's checkpoint while the work runs.

use std::future::Future;
use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

use cqrs_core::Position;
use cqrs_postgres::PgSubscriber;

use crate::cli::render_duration;
use crate::Inspector;

/// How often the line is redrawn on a terminal.
const TICK: Duration = Duration::from_millis(500);
/// How often a line is printed when stderr is not a terminal (a log).
const LOG_EVERY: u32 = 10;

/// Which checkpoint shows the work's progress.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ProgressTarget {
    /// The checkpoint of this name.
    Exact(String),
    /// The most recently saved checkpoint whose name starts with this (a rebuild's
    /// `{name}@v{n}#{uuid}`).
    Prefix(String),
}

impl ProgressTarget {
    /// What every name it may pick starts with.
    fn prefix(&self) -> &str {
        match self {
            ProgressTarget::Exact(name) | ProgressTarget::Prefix(name) => name,
        }
    }

    fn pick<'a>(&self, rows: &'a [PgSubscriber]) -> Option<&'a PgSubscriber> {
        match self {
            ProgressTarget::Exact(name) => rows.iter().find(|r| &r.name == name),
            ProgressTarget::Prefix(prefix) => rows
                .iter()
                .filter(|r| r.name.starts_with(prefix.as_str()) && r.checkpoint.is_some())
                .max_by_key(|r| r.checkpoint_updated_at),
        }
    }
}

/// Draws `label: N events left, R events/s, ETA T` on stderr while a future runs: redrawn in
/// place on a terminal, a line every few seconds otherwise. The figures come from the
/// store (the work's checkpoint and the events past it), so they hold for any work that
/// saves a checkpoint as it goes.
pub struct Progress {
    inspector: Inspector,
    target: ProgressTarget,
    label: String,
}

impl Progress {
    /// Progress of `target`'s checkpoint, labelled `label`.
    pub fn new(inspector: Inspector, target: ProgressTarget, label: impl Into<String>) -> Self {
        Self {
            inspector,
            target,
            label: label.into(),
        }
    }

    /// Runs `work`, drawing the line until it ends; returns its output.
    pub async fn run<F: Future>(self, work: F) -> F::Output {
        let mut err = std::io::stderr();
        let terminal = err.is_terminal();
        let mut meter = Meter::default();
        let mut ticks = tokio::time::interval(TICK);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut count = 0u32;
        tokio::pin!(work);
        let output = loop {
            tokio::select! {
                output = &mut work => break output,
                _ = ticks.tick() => {
                    count += 1;
                    // A failed read only skips this redraw: the work decides the outcome.
                    let read = self.inspector.store().subscribers_starting_with(self.target.prefix());
                    let Ok(rows) = read.await else { continue };
                    let row = self.target.pick(&rows);
                    let line = match row {
                        Some(row) => meter.line(&self.label, row.lag_events, row.checkpoint, Instant::now()),
                        None => format!("{}: starting", self.label),
                    };
                    if terminal {
                        let _ = write!(err, "\r\x1b[2K{line}");
                        let _ = err.flush();
                    } else if count % LOG_EVERY == 1 {
                        let _ = writeln!(err, "{line}");
                    }
                }
            }
        };
        if terminal {
            let _ = write!(err, "\r\x1b[2K");
            let _ = err.flush();
        }
        output
    }
}

/// The rate, from successive readings of the events left.
#[derive(Default)]
struct Meter {
    last: Option<(Instant, u64)>,
    /// Events per second, smoothed.
    rate: Option<f64>,
}

impl Meter {
    /// The line for a reading at `now`: `left` events past the checkpoint at `position`.
    fn line(&mut self, label: &str, left: u64, position: Option<Position>, now: Instant) -> String {
        if let Some((at, before)) = self.last {
            let seconds = now.duration_since(at).as_secs_f64();
            if seconds > 0.0 {
                #[allow(clippy::cast_precision_loss)]
                let sample = before.saturating_sub(left) as f64 / seconds;
                self.rate = Some(match self.rate {
                    Some(rate) => 0.7 * rate + 0.3 * sample,
                    None => sample,
                });
            }
        }
        self.last = Some((now, left));
        let position = position
            .map(|p| p.to_string())
            .unwrap_or_else(|| "-".to_owned());
        match self.rate {
            Some(rate) if rate >= 1.0 => {
                #[allow(clippy::cast_precision_loss)]
                let eta = left as f64 / rate;
                format!(
                    "{label}: at {position}, {left} events left, {rate:.0} events/s, ETA {}",
                    render_duration(eta)
                )
            }
            _ => format!("{label}: at {position}, {left} events left"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_line_gives_the_rate_and_eta_from_successive_readings() {
        let mut meter = Meter::default();
        let start = Instant::now();
        let at = Some(Position::from_parts(7, 1));
        assert_eq!(
            meter.line("rebuilding orders", 10_000, at, start),
            "rebuilding orders: at 7/1, 10000 events left"
        );
        let line = meter.line(
            "rebuilding orders",
            8_000,
            at,
            start + Duration::from_secs(1),
        );
        assert_eq!(
            line,
            "rebuilding orders: at 7/1, 8000 events left, 2000 events/s, ETA 4.0s"
        );
    }
}
