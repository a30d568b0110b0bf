//! [`RunnerWatch`]: what a test saw of a runner's status while faults were on: the errors it
//! retried, whether its breaker opened, and no panic or failure.

use std::collections::BTreeSet;
use std::time::Duration;

use cqrs_core::projection::{BreakerState, ProjectionHandle, ProjectionState};
use tokio::time::Instant;

/// The runner's troubles, as sampled from its status.
#[derive(Debug, Default)]
pub struct RunnerWatch {
    /// Distinct errors the runner reported (each a retried failure), by when it happened.
    pub retries: BTreeSet<String>,
    /// Whether it was ever seen `Retrying`.
    pub retrying_seen: bool,
    /// Whether its breaker was ever seen open.
    pub breaker_opened: bool,
    /// One error text, for the log.
    pub sample_error: Option<String>,
}

impl RunnerWatch {
    /// Samples `handle`'s status now; panics if the runner failed or stopped.
    pub fn sample(&mut self, handle: &ProjectionHandle) {
        let status = handle.status();
        assert!(
            !matches!(
                status.state,
                ProjectionState::Failed | ProjectionState::Stopped
            ),
            "the runner gave up under faults: {status:?}"
        );
        if status.state == ProjectionState::Retrying {
            self.retrying_seen = true;
        }
        if status.breaker != BreakerState::Closed {
            self.breaker_opened = true;
        }
        if let (Some(error), Some(at)) = (&status.last_error, status.last_error_at) {
            self.retries.insert(format!("{at} {error}"));
            self.sample_error.get_or_insert_with(|| error.clone());
        }
    }

    /// Samples `handle`'s status every 25 ms for `time` (while a fault is held on).
    pub async fn watch_for(&mut self, handle: &ProjectionHandle, time: Duration) {
        let until = Instant::now() + time;
        while Instant::now() < until {
            self.sample(handle);
            // Sampling pace while a fault is held on, not a wait for a condition.
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        self.sample(handle);
    }
}
