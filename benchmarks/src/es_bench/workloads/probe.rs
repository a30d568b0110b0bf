//! Where a runner's time goes: wrappers that time each `apply`, each `make_visible`, each feed
//! read and each checkpoint save of a `ProjectionRunner`, around the real projector and store.
//! The runner reads ahead while it applies, and makes batches visible and saves their
//! checkpoints while it applies later ones, so only the applies follow one another.

use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use cqrs_core::projection::{
    DeadLetter, DeadLetterStore, Lease, LeaseStore, LetterTarget, Projection, ProjectionError,
    ProjectionStore, Redrive,
};
use cqrs_core::{
    BoxError, CheckpointStore, Error, EventFilter, FeedBatch, FencedSave, Position, ReadAll,
    ReadStream, RecordedEvent, StreamId, Version,
};
use cqrs_postgres::{PgEventStore, PgFeedSignal};

/// Timings of one kind of call: how many items each handled and how long it took.
#[derive(Clone, Default)]
pub(crate) struct Clock {
    calls: Arc<Mutex<Vec<(usize, Duration)>>>,
}

impl Clock {
    fn record(&self, items: usize, took: Duration) {
        self.calls
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push((items, took));
    }

    /// Forgets what was recorded (after a warm-up).
    pub(crate) fn reset(&self) {
        self.calls
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clear();
    }

    /// What was recorded so far, for a report: `what` names the call.
    pub(crate) fn summary(&self, what: &'static str) -> Summary {
        let calls = self
            .calls
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        let mut times: Vec<Duration> = calls.iter().map(|(_, took)| *took).collect();
        times.sort_unstable();
        Summary {
            what,
            calls: calls.len(),
            items: calls.iter().map(|(items, _)| items).sum(),
            total: times.iter().sum(),
            p50: times.get(times.len() / 2).copied().unwrap_or_default(),
            max: times.last().copied().unwrap_or_default(),
        }
    }
}

/// A [`Clock`]'s figures.
pub(crate) struct Summary {
    what: &'static str,
    calls: usize,
    items: usize,
    total: Duration,
    p50: Duration,
    max: Duration,
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ms = |d: Duration| d.as_secs_f64() * 1000.0;
        write!(f, "{} {}x", self.what, self.calls)?;
        if self.items != self.calls {
            let mean = self.items as f64 / self.calls.max(1) as f64;
            write!(f, " of {mean:.1} events")?;
        }
        write!(
            f,
            ": {:.2} s in all, p50 {:.1} ms, max {:.0} ms",
            self.total.as_secs_f64(),
            ms(self.p50),
            ms(self.max)
        )
    }
}

/// A projection whose `apply` and `make_visible` calls are timed.
pub(crate) struct TimedProjection<P> {
    inner: P,
    applies: Clock,
    visible: Clock,
}

impl<P> TimedProjection<P> {
    /// Times `inner`'s applies on `applies`, its `make_visible` calls on `visible`.
    pub(crate) fn new(inner: P, applies: Clock, visible: Clock) -> Self {
        Self {
            inner,
            applies,
            visible,
        }
    }
}

#[async_trait]
impl<P: Projection> Projection for TimedProjection<P> {
    fn name(&self) -> &str {
        self.inner.name()
    }

    fn filter(&self) -> EventFilter {
        self.inner.filter()
    }

    fn key(&self, event: &RecordedEvent) -> Option<String> {
        self.inner.key(event)
    }

    async fn apply(&self, events: &[RecordedEvent]) -> Result<(), ProjectionError> {
        let started = Instant::now();
        let outcome = self.inner.apply(events).await;
        self.applies.record(events.len(), started.elapsed());
        outcome
    }

    async fn make_visible(&self) -> Result<(), BoxError> {
        let started = Instant::now();
        let outcome = self.inner.make_visible().await;
        self.visible.record(1, started.elapsed());
        outcome
    }
}

/// The store, with its feed reads and checkpoint saves timed.
#[derive(Clone)]
pub(crate) struct TimedStore {
    inner: PgEventStore,
    /// Feed reads.
    pub(crate) reads: Clock,
    /// Checkpoint saves.
    pub(crate) saves: Clock,
}

impl TimedStore {
    /// Times `inner`.
    pub(crate) fn new(inner: PgEventStore) -> Self {
        Self {
            inner,
            reads: Clock::default(),
            saves: Clock::default(),
        }
    }
}

#[async_trait]
impl ReadAll for TimedStore {
    async fn read_all(
        &self,
        after: Position,
        limit: usize,
        filter: &EventFilter,
    ) -> Result<FeedBatch, Error> {
        let started = Instant::now();
        let batch = self.inner.read_all(after, limit, filter).await?;
        self.reads.record(batch.events.len(), started.elapsed());
        Ok(batch)
    }

    async fn head(&self) -> Result<Position, Error> {
        self.inner.head().await
    }
}

#[async_trait]
impl CheckpointStore for TimedStore {
    async fn load_checkpoint(&self, name: &str) -> Result<Option<Position>, Error> {
        self.inner.load_checkpoint(name).await
    }

    async fn save_checkpoint(&self, name: &str, position: Position) -> Result<(), Error> {
        let started = Instant::now();
        self.inner.save_checkpoint(name, position).await?;
        self.saves.record(1, started.elapsed());
        Ok(())
    }

    /// The save a runner with a lease makes (every `for_store` runner): timed like the others.
    async fn save_checkpoint_fenced(
        &self,
        name: &str,
        position: Position,
        lease: &Lease,
    ) -> Result<FencedSave, Error> {
        let started = Instant::now();
        let saved = self
            .inner
            .save_checkpoint_fenced(name, position, lease)
            .await?;
        self.saves.record(1, started.elapsed());
        Ok(saved)
    }

    async fn reset_checkpoint(&self, name: &str) -> Result<(), Error> {
        self.inner.reset_checkpoint(name).await
    }
}

/// The other roles pass through untimed, so a benchmark wires its runner the way a service
/// does: `ProjectionRunner::for_store` (lease, dead letters, `LISTEN` wake-ups).
impl ProjectionStore for TimedStore {
    type Signal = PgFeedSignal;

    fn signal(&self) -> PgFeedSignal {
        self.inner.feed_signal()
    }
}

#[async_trait]
impl ReadStream for TimedStore {
    async fn read_stream(
        &self,
        stream_id: &StreamId,
        from: Version,
        limit: usize,
    ) -> Result<Vec<RecordedEvent>, Error> {
        self.inner.read_stream(stream_id, from, limit).await
    }
}

#[async_trait]
impl LeaseStore for TimedStore {
    async fn try_acquire(
        &self,
        name: &str,
        owner: &str,
        ttl: Duration,
    ) -> Result<Option<Lease>, Error> {
        self.inner.try_acquire(name, owner, ttl).await
    }

    async fn release(&self, lease: &Lease) -> Result<(), Error> {
        self.inner.release(lease).await
    }
}

#[async_trait]
impl DeadLetterStore for TimedStore {
    async fn park(&self, letter: DeadLetter) -> Result<(), Error> {
        self.inner.park(letter).await
    }

    async fn dead_letters(
        &self,
        projection: &str,
        after: Position,
        limit: usize,
    ) -> Result<Vec<DeadLetter>, Error> {
        self.inner.dead_letters(projection, after, limit).await
    }

    async fn parked_keys(&self, projection: &str) -> Result<Vec<String>, Error> {
        self.inner.parked_keys(projection).await
    }

    async fn key_letters(
        &self,
        projection: &str,
        key: &str,
        limit: usize,
    ) -> Result<Vec<DeadLetter>, Error> {
        self.inner.key_letters(projection, key, limit).await
    }

    async fn request(
        &self,
        projection: &str,
        target: &LetterTarget,
        request: Option<Redrive>,
    ) -> Result<u64, Error> {
        self.inner.request(projection, target, request).await
    }

    async fn requested(&self, projection: &str, limit: usize) -> Result<Vec<DeadLetter>, Error> {
        self.inner.requested(projection, limit).await
    }

    async fn remove(&self, projection: &str, positions: &[Position]) -> Result<u64, Error> {
        self.inner.remove(projection, positions).await
    }

    async fn redrive_failed(
        &self,
        projection: &str,
        position: Position,
        error: &str,
    ) -> Result<(), Error> {
        self.inner.redrive_failed(projection, position, error).await
    }
}
