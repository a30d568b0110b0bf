//! [`AckMemo`]: the events of a batch the broker already acknowledged, so a batch the runner
//! retries after a partial failure does not send them again.

use std::collections::HashSet;

use cqrs_core::{Position, RecordedEvent};

/// Positions acknowledged in the batch being retried. It is kept only between an attempt
/// that failed transiently and the next attempt at the same batch (the runner retries the
/// very same events); any other outcome, a different batch or a change of leadership
/// clears it.
#[derive(Debug, Default)]
pub(crate) struct AckMemo {
    /// First and last position and length of the batch the acknowledgements belong to.
    batch: Option<(Position, Position, usize)>,
    acked: HashSet<Position>,
}

impl AckMemo {
    /// Starts an attempt at `events`: what was remembered of another batch is dropped.
    pub(crate) fn begin(&mut self, events: &[RecordedEvent]) {
        let batch = match (events.first(), events.last()) {
            (Some(first), Some(last)) => Some((first.position, last.position, events.len())),
            _ => None,
        };
        if batch != self.batch {
            self.acked.clear();
            self.batch = batch;
        }
    }

    /// Whether the event at `position` was acknowledged in an earlier attempt.
    pub(crate) fn is_acked(&self, position: Position) -> bool {
        self.acked.contains(&position)
    }

    /// The event at `position` is acknowledged.
    pub(crate) fn ack(&mut self, position: Position) {
        self.acked.insert(position);
    }

    /// How many acknowledgements are remembered.
    pub(crate) fn len(&self) -> usize {
        self.acked.len()
    }

    /// Forgets everything.
    pub(crate) fn clear(&mut self) {
        self.acked.clear();
        self.batch = None;
    }
}
