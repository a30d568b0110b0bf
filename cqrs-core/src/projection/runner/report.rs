//! Reporting settled batches in the status: position, counts, lag, and whether the
//! projection is catching up.

use std::sync::Arc;
use std::time::{Duration, Instant};

use time::OffsetDateTime;
use tokio::sync::watch;

use crate::projection::{ProjectionState, ProjectionStatus};
use crate::telemetry::metrics;
use crate::{Position, ReadAll};

use super::outcome::Applied;

/// A batch applied: the position to save and what to report once it is saved.
pub(super) struct Done {
    pub(super) next: Position,
    /// A full batch: catching up.
    pub(super) full: bool,
    pub(super) applied: Applied,
    /// When its oldest event was recorded (`None` for progress past filtered-out events):
    /// how old what readers cannot see yet is, while it cannot settle.
    pub(super) oldest: Option<OffsetDateTime>,
    /// The batch's span: making it visible and saving its checkpoint show inside it. Batches
    /// reported as one keep the later one's, or the earlier one's when the later has none
    /// (progress past filtered-out events).
    pub(super) span: tracing::Span,
}

impl Done {
    /// This batch and the `later` one, reported as one.
    pub(super) fn then(self, later: Done) -> Done {
        Done {
            next: later.next,
            full: later.full,
            applied: Applied {
                count: self.applied.count + later.applied.count,
                parked: self.applied.parked + later.applied.parked,
                lag: later.applied.lag,
            },
            oldest: self.oldest.or(later.oldest),
            span: match later.span.is_disabled() {
                true => self.span,
                false => later.span,
            },
        }
    }
}

/// Reports settled batches.
pub(super) struct Reporter {
    status: Arc<watch::Sender<ProjectionStatus>>,
    /// The projection's name: the label of its counters.
    name: String,
    /// Asked for its head (the lag in events) at most once a second.
    feed: Arc<dyn ReadAll>,
    /// When the lag in events was last asked of the feed (`None`: not yet).
    last_head_check: Option<Instant>,
}

impl Reporter {
    pub(super) fn new(
        status: Arc<watch::Sender<ProjectionStatus>>,
        feed: Arc<dyn ReadAll>,
    ) -> Self {
        let name = status.borrow().name.clone();
        Self {
            name,
            status,
            feed,
            last_head_check: None,
        }
    }

    /// Reports a batch whose checkpoint is saved: position, counts, lag, and whether it is
    /// catching up (a full batch; the lag in events is asked of the feed at most once a
    /// second).
    pub(super) async fn report(&mut self, batch: &Done) {
        let Done {
            next,
            full,
            ref applied,
            ..
        } = *batch;
        let due = self
            .last_head_check
            .is_none_or(|at| at.elapsed() >= Duration::from_secs(1));
        let lag_events = if full && due {
            self.last_head_check = Some(Instant::now());
            self.feed
                .head()
                .await
                .ok()
                .map(|head| head.parts().1.saturating_sub(next.parts().1))
        } else {
            None
        };
        metrics::record::projection_settled(&self.name, applied.count, applied.parked);
        self.status.send_modify(|s| {
            s.state = if full {
                ProjectionState::CatchingUp
            } else {
                ProjectionState::Running
            };
            s.position = next;
            s.applied += applied.count;
            s.parked += applied.parked;
            s.lag = applied.lag;
            if let Some(lag_events) = lag_events {
                s.lag_events = lag_events;
            } else if !full {
                s.lag_events = 0;
            }
        });
    }
}
