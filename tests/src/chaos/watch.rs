//! [`RunnerWatch`]: what a test saw of a runner's status while faults were on: the errors it
//! retried, whether its breaker opened, and no panic or failure.

use std::collections::BTreeSet;

use cqrs_core::projection::{BreakerState, ProjectionHandle, ProjectionState};

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
}
