//! [`ProjectionStatus`]: what a running projection is doing, as data for health checks.

use std::time::Duration;

use time::OffsetDateTime;

use crate::Position;

use super::BreakerState;

/// What a projection is doing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ProjectionState {
    /// Starting up: loading its checkpoint.
    Starting,
    /// Waiting for the lease another worker holds; the position is the checkpoint that worker
    /// saved, as last read.
    Standby,
    /// Behind the feed's head, applying batches.
    CatchingUp,
    /// At the head, waiting for new events.
    Running,
    /// A transient failure: retrying with backoff (the circuit breaker may be open).
    Retrying,
    /// Shut down on request.
    Stopped,
    /// Stopped by a poison event under [`PoisonPolicy::Stop`](super::PoisonPolicy::Stop), or
    /// by an error it cannot retry.
    Failed,
}

impl std::fmt::Display for ProjectionState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.pad(match self {
            ProjectionState::Starting => "starting",
            ProjectionState::Standby => "standby",
            ProjectionState::CatchingUp => "catching up",
            ProjectionState::Running => "running",
            ProjectionState::Retrying => "retrying",
            ProjectionState::Stopped => "stopped",
            ProjectionState::Failed => "failed",
        })
    }
}

impl ProjectionState {
    /// Whether a worker in this state leads: it holds the lease and reads the feed, so its
    /// position and lag are live. A standby's, a starting, stopped or failed worker's are not
    /// (a standby's lag is reset to zero while the leader, elsewhere, may be far behind).
    ///
    /// ```
    /// use cqrs_core::projection::ProjectionState;
    ///
    /// assert!(ProjectionState::Retrying.is_leading());
    /// assert!(!ProjectionState::Standby.is_leading());
    /// ```
    pub fn is_leading(self) -> bool {
        matches!(
            self,
            ProjectionState::CatchingUp | ProjectionState::Running | ProjectionState::Retrying
        )
    }
}

/// A projection's status, ready for a health endpoint.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct ProjectionStatus {
    /// The projection's run: its checkpoint name (the projection's name unless
    /// [`RunnerOptions::checkpoint_name`](super::RunnerOptions::checkpoint_name) gave another).
    pub name: String,
    /// What it is doing.
    pub state: ProjectionState,
    /// Its checkpoint: everything up to here is applied durably.
    pub position: Position,
    /// Events known to be in the feed after the checkpoint (exact for the in-memory store,
    /// approximate where positions pack more than a sequence number): counted while catching
    /// up (at most once a second), and while retrying a sink that is down; zero once at the
    /// head.
    pub lag_events: u64,
    /// How old the last applied event was when it was applied (zero when idle at the head).
    pub lag: Duration,
    /// When the oldest event this projection has not applied yet was recorded: the first
    /// event of the batch in hand while it is applied or retried (a stalled sink keeps it;
    /// so does one that cannot make a batch visible, or a checkpoint that cannot be saved),
    /// the last applied event's while catching up between batches (the next one is no
    /// older), `None` at the head. [`unapplied_age`](Self::unapplied_age) turns it into the
    /// lag in seconds.
    pub oldest_unapplied_at: Option<OffsetDateTime>,
    /// Events applied since start.
    pub applied: u64,
    /// Events parked as dead letters since start.
    pub parked: u64,
    /// The circuit breaker in front of the sink.
    pub breaker: BreakerState,
    /// The last error, if any, as text. It stays after the projection recovered: compare
    /// [`last_error_at`](Self::last_error_at) with the time of the state you see.
    pub last_error: Option<String>,
    /// When the last error happened (UTC).
    pub last_error_at: Option<OffsetDateTime>,
}

impl ProjectionStatus {
    pub(crate) fn new(name: &str) -> Self {
        Self {
            name: name.to_owned(),
            state: ProjectionState::Starting,
            position: Position::START,
            lag_events: 0,
            lag: Duration::ZERO,
            oldest_unapplied_at: None,
            applied: 0,
            parked: 0,
            breaker: BreakerState::Closed,
            last_error: None,
            last_error_at: None,
        }
    }

    /// Standing by while another worker leads: this one applies nothing and calls no sink, so
    /// what a lost term left (its lag, its breaker) says nothing now. The leader, elsewhere,
    /// reports its own.
    pub(crate) fn stand_by(&mut self) {
        self.state = ProjectionState::Standby;
        self.lag_events = 0;
        self.oldest_unapplied_at = None;
        self.breaker = BreakerState::Closed;
    }

    /// Records `error` as the last error, happening now.
    pub(crate) fn error(&mut self, error: impl Into<String>) {
        self.last_error = Some(error.into());
        self.last_error_at = Some(OffsetDateTime::now_utc());
    }

    /// How old the oldest event not applied yet is at `now` (from
    /// [`oldest_unapplied_at`](Self::oldest_unapplied_at)): zero at the head. This is the lag
    /// in seconds a health check or the metrics compare with a threshold.
    pub fn unapplied_age(&self, now: OffsetDateTime) -> Duration {
        self.oldest_unapplied_at
            .map(|at| (now - at).try_into().unwrap_or(Duration::ZERO))
            .unwrap_or(Duration::ZERO)
    }

    /// Live: not failed (for a liveness probe).
    pub fn is_live(&self) -> bool {
        self.state != ProjectionState::Failed
    }

    /// Ready: running at the head, or catching up with the breaker closed, or standing by
    /// while another worker leads (for readiness: a replica that does not lead serves the
    /// same read model, and the leader's own readiness tells its health).
    pub fn is_ready(&self) -> bool {
        match self.state {
            ProjectionState::Running | ProjectionState::CatchingUp => {
                self.breaker == BreakerState::Closed
            }
            ProjectionState::Standby => true,
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_unapplied_age_is_zero_at_the_head_and_never_negative() {
        let now = OffsetDateTime::now_utc();
        let mut status = ProjectionStatus::new("p");
        assert_eq!(status.unapplied_age(now), Duration::ZERO);
        status.oldest_unapplied_at = Some(now - time::Duration::seconds(90));
        assert_eq!(status.unapplied_age(now), Duration::from_secs(90));
        // A clock behind the store's: no lag rather than a negative one.
        status.oldest_unapplied_at = Some(now + time::Duration::seconds(5));
        assert_eq!(status.unapplied_age(now), Duration::ZERO);
    }
}
