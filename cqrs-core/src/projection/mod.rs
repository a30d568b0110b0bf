//! Projections: read models fed from the global feed, with checkpoints, retries, a circuit
//! breaker, dead letters, leases and status.
//!
//! A [`Projection`] says what it wants and applies batches; a [`ProjectionRunner`] reads the
//! store's gap-safe feed from the projection's checkpoint and moves the checkpoint only after
//! `apply` returned, i.e. after the effect is durable (and [`Projection::make_visible`]
//! returned): at-least-once delivery, which idempotent projections turn into an exactly-once
//! effect.

pub(crate) mod breaker;
mod dead_letter;
mod lease;
pub mod partition;
pub(crate) mod runner;
mod signal;
mod status;
mod store;

use async_trait::async_trait;

use crate::{BoxError, EventFilter, Position, RecordedEvent};

pub(crate) use breaker::CircuitBreaker;
pub use breaker::{BreakerRecord, BreakerState};
pub use dead_letter::{DeadLetter, DeadLetterStore, LetterTarget, Redrive};
pub use lease::{Lease, LeaseStore};
pub use partition::{
    PartitionBy, PartitionReport, PartitionedHandle, PartitionedRunner, PartitionedStatus,
    Partitions, StreamPartition,
};
pub use runner::{PoisonPolicy, ProjectionHandle, ProjectionRunner, RunnerOptions, WaitError};
pub use signal::{FeedSignal, FeedWaiter};
pub use status::{ProjectionState, ProjectionStatus};
pub use store::ProjectionStore;

/// A read model fed by the global feed.
///
/// `apply` must be idempotent: after a crash the runner delivers again from the last checkpoint,
/// so a suffix of the feed can arrive twice. It must return only once its effect is durable.
#[async_trait]
pub trait Projection: Send + Sync {
    /// The projection's stable name: it keys the checkpoint, the lease and the dead letters.
    fn name(&self) -> &str;

    /// Which events it wants (pushed into the store's feed query). Default: all.
    fn filter(&self) -> EventFilter {
        EventFilter::all()
    }

    /// The key of the document (or partition) an event changes. When an event is parked as a
    /// dead letter, later events with the same key are parked too, so each document sees its
    /// events in order or not at all. Default: no key.
    fn key(&self, _event: &RecordedEvent) -> Option<String> {
        None
    }

    /// Applies a batch, in feed order, durably.
    async fn apply(&self, events: &[RecordedEvent]) -> Result<(), ProjectionError>;

    /// Applies a batch as [`apply`](Self::apply) does, under `lease`: the lease (name and
    /// epoch, a fencing token) this worker leads by, `None` for a runner without leases. The
    /// runner calls this one; the default ignores the lease and calls `apply`.
    ///
    /// A sink that can check the lease in its own write (a PostgreSQL read model checking
    /// the lease row in its transaction) overrides it, so a worker whose lease passed on
    /// while it was paused cannot write any more: it refuses with
    /// [`ProjectionError::LeaseLost`], which ends the worker's term.
    async fn apply_fenced(
        &self,
        events: &[RecordedEvent],
        lease: Option<&Lease>,
    ) -> Result<(), ProjectionError> {
        let _ = lease;
        self.apply(events).await
    }

    /// Makes everything applied before the call visible to readers, for sinks where a write
    /// is durable before readers see it (a search index's refresh). The runner calls it after
    /// each `apply`, off the apply path: later batches are applied meanwhile, and several calls
    /// may be in flight. The checkpoint, and so a reader waiting on it, moves past a batch
    /// only once a call made after its `apply` returned. An error is retried with backoff.
    /// Default: nothing to do (`apply` made its effect visible).
    async fn make_visible(&self) -> Result<(), BoxError> {
        Ok(())
    }

    /// Told by the runner when this worker starts leading the projection (`true`: it is
    /// about to read the feed from the checkpoint and apply batches) and when leading ends
    /// (`false`: stopped, failed, or the lease was lost or could not be confirmed). While it
    /// did not lead, another worker may have applied events, so anything the projection
    /// remembers of the sink's state (documents it wrote, say) may be stale: drop it on
    /// both. Called once per change, never concurrently with `apply`. Default: nothing.
    async fn leadership_changed(&self, _leading: bool) {}
}

/// Why a batch was not (wholly) applied.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ProjectionError {
    /// A failure a retry may cure: the sink is down, overloaded or timed out. The runner retries
    /// the whole batch with backoff, behind its circuit breaker.
    #[error("transient projection failure: {0}")]
    Transient(#[source] BoxError),
    /// Some events can never be applied (undecodable payload, document the sink rejects). Every
    /// other event of the batch was applied durably. A projection with keys must not apply the
    /// events that follow a rejected one with the same key in the batch, and lists them here too,
    /// so each key keeps its order. The runner's [`PoisonPolicy`] decides what happens next.
    #[error("{} event(s) cannot be applied", .0.len())]
    Poison(Vec<Rejected>),
    /// The sink refused the write because the lease it was made under has expired or passed
    /// on (see [`Projection::apply_fenced`]): nothing of the batch was applied, and the
    /// worker's term ends at once (it stands by; the new holder applies the batch).
    #[error("the lease passed on: {0}")]
    LeaseLost(#[source] BoxError),
}

/// One event a projection cannot apply, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Rejected {
    /// The event's feed position.
    pub position: Position,
    /// Why, as text (it is stored with the dead letter).
    pub error: String,
}

impl Rejected {
    /// The event at `position` was rejected because of `error`.
    pub fn new(position: Position, error: impl std::fmt::Display) -> Self {
        Self {
            position,
            error: error.to_string(),
        }
    }
}
