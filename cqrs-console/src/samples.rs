//! The lag samples behind the projections page's charts: taken every few seconds by a task
//! the console starts, kept in memory for the last minutes.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, Weak};

use cqrs_admin::inspect::Overview;
use cqrs_core::projection::ProjectionStatus;
use time::OffsetDateTime;

use crate::web::Console;

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

/// Each reader's lag in events: its live status's when this process leads it (fresher), else
/// the overview's, read from the store (events past the checkpoint, any type). A standby's
/// own count is reset to zero while the leader, in another process, may be far behind.
pub(crate) fn lags(overview: &Overview, live: &[ProjectionStatus]) -> Vec<(String, u64)> {
    overview
        .subscribers
        .iter()
        .map(|s| {
            let lag = live
                .iter()
                .find(|l| l.name == s.name && l.state.is_leading())
                .map_or(s.lag_events, |l| l.lag_events);
            (s.name.clone(), lag)
        })
        .collect()
}

/// The live statuses, when the service gave a source.
pub(crate) async fn live(console: &Console) -> Vec<ProjectionStatus> {
    match &console.config.live {
        Some(live) => live.statuses().await,
        None => Vec::new(),
    }
}

/// Starts the sampler when a Tokio runtime runs: it ends once the console is dropped.
pub(crate) fn start(console: &Arc<Console>) {
    let Ok(runtime) = tokio::runtime::Handle::try_current() else {
        return;
    };
    let weak: Weak<Console> = Arc::downgrade(console);
    let every = console.config.sample_every;
    runtime.spawn(async move {
        let mut ticks = tokio::time::interval(every);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticks.tick().await;
            let Some(console) = weak.upgrade() else {
                return;
            };
            let overview = match console.inspector.overview().await {
                Ok(overview) => overview,
                Err(error) => {
                    tracing::debug!(%error, "console: no lag sample");
                    continue;
                }
            };
            let live = live(&console).await;
            for (name, lag_events) in lags(&overview, &live) {
                console.samples.push(
                    &name,
                    Sample {
                        at: overview.taken_at,
                        lag_events,
                    },
                );
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

    #[test]
    fn a_worker_that_does_not_lead_shows_the_stored_lag_not_its_own() {
        use cqrs_core::projection::ProjectionState;
        use cqrs_core::testing::status;

        let mut overview: Overview = serde_json::from_value(serde_json::json!({
            "taken_at": "2026-12-07T00:00:00Z",
            "head": "0/0",
            "subscribers": [],
        }))
        .expect("an overview");
        let stored = |name: &str| {
            serde_json::from_value(serde_json::json!({
                "name": name, "kind": "projection", "checkpoint": null,
                "checkpoint_updated_at": null, "lag_events": 500,
                "oldest_unapplied_at": null, "lag_seconds": 0.0, "lease": null,
                "leader": "leading", "dead_letters": 0, "breaker": null,
            }))
            .expect("a subscriber")
        };
        overview.subscribers = ["standby", "leader", "failed", "elsewhere"]
            .into_iter()
            .map(stored)
            .collect();
        let live = |name: &str, state: ProjectionState, lag_events: u64| {
            let mut live = status(name, state);
            live.lag_events = lag_events;
            live
        };
        let lags = lags(
            &overview,
            &[
                // A standby's count is reset to 0; the leader elsewhere is 500 behind.
                live("standby", ProjectionState::Standby, 0),
                live("leader", ProjectionState::CatchingUp, 7),
                live("failed", ProjectionState::Failed, 0),
            ],
        );
        assert_eq!(
            lags,
            [
                ("standby".to_owned(), 500),
                ("leader".to_owned(), 7),
                ("failed".to_owned(), 500),
                ("elsewhere".to_owned(), 500),
            ]
        );
    }
}
