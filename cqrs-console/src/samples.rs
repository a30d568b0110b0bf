//! The lag samples behind the projections page's charts: taken every few seconds by a task
//! the console starts, kept in memory for the last minutes.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, Weak};

use cqrs_core::{EventFilter, Position};
use time::OffsetDateTime;

use crate::store::ConsoleStore;
use crate::web::Console;

/// How many events past its checkpoint the console counts for a projection whose lag it must
/// read from the feed (no live status): more shows as this many.
pub(crate) const COUNT_CAP: usize = 1000;

/// One projection's lag at one time.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct Sample {
    pub(crate) at: OffsetDateTime,
    pub(crate) lag_events: u64,
}

/// The samples per projection, oldest first, at most `kept` each.
pub(crate) struct Samples {
    kept: usize,
    series: Mutex<HashMap<String, VecDeque<Sample>>>,
}

impl Samples {
    pub(crate) fn new(kept: usize) -> Self {
        Self {
            kept,
            series: Mutex::new(HashMap::new()),
        }
    }

    pub(crate) fn push(&self, projection: &str, sample: Sample) {
        let mut series = self.series.lock().unwrap_or_else(|e| e.into_inner());
        let one = series.entry(projection.to_owned()).or_default();
        one.push_back(sample);
        while one.len() > self.kept {
            one.pop_front();
        }
    }

    pub(crate) fn of(&self, projection: &str) -> Vec<Sample> {
        let series = self.series.lock().unwrap_or_else(|e| e.into_inner());
        series
            .get(projection)
            .map(|s| s.iter().copied().collect())
            .unwrap_or_default()
    }
}

/// Events after `checkpoint` in the feed (any type), up to [`COUNT_CAP`].
pub(crate) async fn events_after<S: ConsoleStore>(
    store: &S,
    checkpoint: Position,
) -> cqrs_core::Result<u64> {
    let batch = store
        .read_all(checkpoint, COUNT_CAP, &EventFilter::all())
        .await?;
    Ok(u64::try_from(batch.events.len()).unwrap_or(u64::MAX))
}

/// Every configured projection's lag now: the live status's when there is one, else the
/// events after its checkpoint.
pub(crate) async fn lags<S: ConsoleStore>(console: &Console<S>) -> Vec<(String, u64)> {
    let live = match &console.config.live {
        Some(live) => live.statuses().await,
        None => Vec::new(),
    };
    let mut lags = Vec::new();
    for name in &console.config.projections {
        if let Some(status) = live.iter().find(|s| &s.name == name) {
            lags.push((name.clone(), status.lag_events));
            continue;
        }
        let checkpoint = match console.store.load_checkpoint(name).await {
            Ok(checkpoint) => checkpoint.unwrap_or(Position::START),
            Err(error) => {
                tracing::debug!(%error, projection = %name, "console: no lag sample");
                continue;
            }
        };
        match events_after(&console.store, checkpoint).await {
            Ok(n) => lags.push((name.clone(), n)),
            Err(error) => tracing::debug!(%error, projection = %name, "console: no lag sample"),
        }
    }
    lags
}

/// Starts the sampler when a Tokio runtime runs: it ends once the console is dropped.
pub(crate) fn start<S: ConsoleStore>(console: &Arc<Console<S>>) {
    let Ok(runtime) = tokio::runtime::Handle::try_current() else {
        return;
    };
    let weak: Weak<Console<S>> = Arc::downgrade(console);
    let every = console.config.sample_every;
    runtime.spawn(async move {
        let mut ticks = tokio::time::interval(every);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticks.tick().await;
            let Some(console) = weak.upgrade() else {
                return;
            };
            let at = OffsetDateTime::now_utc();
            for (name, lag_events) in lags(&console).await {
                console.samples.push(&name, Sample { at, lag_events });
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn samples_keep_only_the_newest() {
        let samples = Samples::new(3);
        for n in 0..5 {
            samples.push(
                "p",
                Sample {
                    at: OffsetDateTime::UNIX_EPOCH,
                    lag_events: n,
                },
            );
        }
        let kept: Vec<u64> = samples.of("p").iter().map(|s| s.lag_events).collect();
        assert_eq!(kept, [2, 3, 4]);
        assert!(samples.of("q").is_empty());
    }
}
