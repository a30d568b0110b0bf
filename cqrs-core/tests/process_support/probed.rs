//! [`Probed`]: the in-memory store with a [`Probe`] after each `record` and before each
//! checkpoint save. An armed probe stops the caller for good at its n-th pass of a point and
//! says so, for the test to abort the worker right there, as a crash would.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use cqrs_core::process::{
    FiredTimeout, InstanceCounts, InstanceQuery, InstanceRow, ProcessRecord, ProcessStore,
    ScheduledTimeout,
};
use cqrs_core::projection::{
    DeadLetter, DeadLetterStore, Lease, LeaseStore, LetterTarget, ProjectionStore, Redrive,
};
use cqrs_core::{
    AppendEvents, AppendOutcome, CheckpointStore, CommandId, Error, EventFilter, ExpectedVersion,
    FeedBatch, FencedSave, InMemoryEventStore, NewEvent, Position, ReadAll, ReadStream,
    RecordedEvent, Result, Snapshot, SnapshotStore, StreamId, Version,
};
use time::OffsetDateTime;
use tokio::sync::Notify;

/// Where a probe looks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum Point {
    /// `ProcessStore::record` returned.
    AfterRecord,
    /// A dispatch returned.
    AfterDispatch,
    /// A checkpoint save is about to start.
    BeforeCheckpoint,
}

/// Counts passes per point; armed, it stops the `n`-th pass of one point forever.
#[derive(Default)]
pub(crate) struct Probe {
    passes: Mutex<HashMap<Point, u64>>,
    armed: Mutex<Option<(Point, u64)>>,
    tripped: AtomicBool,
    trip: Notify,
    /// Refuse the next record of a round (more than one journal event), see
    /// [`Probe::refuse_next_round`].
    refuse_round: AtomicBool,
    /// Panic in the next `fire_due`, see [`Probe::panic_next_fire`].
    panic_fire: AtomicBool,
}

impl Probe {
    /// Stops the `n`-th pass (1 for the first) of `point`.
    pub(crate) fn arm(&self, point: Point, n: u64) {
        *self.armed.lock().expect("probe") = Some((point, n));
    }

    /// The next record of a round (more than one journal event) is refused, unwritten, with
    /// [`Error::EventIdReused`]: what a worker gets when an overlapping one (a leader paused
    /// past its lease) recorded part of the same round first.
    pub(crate) fn refuse_next_round(&self) {
        self.refuse_round.store(true, Ordering::SeqCst);
    }

    /// The next `fire_due` panics, as a store or clock of a user's own might.
    pub(crate) fn panic_next_fire(&self) {
        self.panic_fire.store(true, Ordering::SeqCst);
    }

    /// Whether the armed panic of `fire_due` is still to come.
    pub(crate) fn fire_panic_pending(&self) -> bool {
        self.panic_fire.load(Ordering::SeqCst)
    }

    /// Whether `record` is refused (once).
    fn refuses(&self, record: &ProcessRecord) -> Option<Error> {
        let first = record.events.first()?;
        (record.events.len() > 1 && self.refuse_round.swap(false, Ordering::SeqCst)).then(|| {
            Error::EventIdReused {
                event_id: first.metadata.event_id,
            }
        })
    }

    /// Stops nothing from now on.
    pub(crate) fn disarm(&self) {
        *self.armed.lock().expect("probe") = None;
    }

    /// Counts a pass; the armed one never returns.
    pub(crate) async fn pass(&self, point: Point) {
        let n = {
            let mut passes = self.passes.lock().expect("probe");
            let n = passes.entry(point).or_default();
            *n += 1;
            *n
        };
        let stop = *self.armed.lock().expect("probe") == Some((point, n));
        if stop {
            self.tripped.store(true, Ordering::SeqCst);
            self.trip.notify_waiters();
            std::future::pending::<()>().await;
        }
    }

    /// How many times `point` was passed.
    pub(crate) fn passes(&self, point: Point) -> u64 {
        self.passes
            .lock()
            .expect("probe")
            .get(&point)
            .copied()
            .unwrap_or(0)
    }

    /// Whether the armed pass happened.
    pub(crate) fn tripped(&self) -> bool {
        self.tripped.load(Ordering::SeqCst)
    }

    /// Waits up to `within` for the armed pass; whether it happened.
    pub(crate) async fn wait_tripped(&self, within: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let notified = self.trip.notified();
            if self.tripped() {
                return true;
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return self.tripped();
            }
        }
    }
}

/// The in-memory store, probed.
#[derive(Clone)]
pub(crate) struct Probed {
    pub(crate) inner: InMemoryEventStore,
    pub(crate) probe: Arc<Probe>,
}

#[async_trait]
impl ProcessStore for Probed {
    async fn record(&self, process: &str, record: ProcessRecord) -> Result<AppendOutcome> {
        if let Some(refused) = self.probe.refuses(&record) {
            return Err(refused);
        }
        let outcome = self.inner.record(process, record).await;
        self.probe.pass(Point::AfterRecord).await;
        outcome
    }
    async fn fire_due(
        &self,
        process: &str,
        now: OffsetDateTime,
        limit: usize,
    ) -> Result<Vec<FiredTimeout>> {
        if self.probe.panic_fire.swap(false, Ordering::SeqCst) {
            panic!("the probe's store panicked while firing timeouts");
        }
        self.inner.fire_due(process, now, limit).await
    }
    async fn next_due(&self, process: &str) -> Result<Option<OffsetDateTime>> {
        self.inner.next_due(process).await
    }
    async fn instance_timeouts(
        &self,
        process: &str,
        instance: &str,
    ) -> Result<Vec<ScheduledTimeout>> {
        self.inner.instance_timeouts(process, instance).await
    }
    async fn instances(&self, process: &str, query: &InstanceQuery) -> Result<Vec<InstanceRow>> {
        self.inner.instances(process, query).await
    }
    async fn instance(&self, process: &str, instance: &str) -> Result<Option<InstanceRow>> {
        self.inner.instance(process, instance).await
    }
    async fn instance_counts(
        &self,
        process: &str,
        now: OffsetDateTime,
        stuck_after: Duration,
    ) -> Result<InstanceCounts> {
        self.inner.instance_counts(process, now, stuck_after).await
    }
}

#[async_trait]
impl CheckpointStore for Probed {
    async fn load_checkpoint(&self, name: &str) -> Result<Option<Position>> {
        self.inner.load_checkpoint(name).await
    }
    async fn save_checkpoint(&self, name: &str, position: Position) -> Result<()> {
        self.probe.pass(Point::BeforeCheckpoint).await;
        self.inner.save_checkpoint(name, position).await
    }
    async fn save_checkpoint_fenced(
        &self,
        name: &str,
        position: Position,
        lease: &Lease,
    ) -> Result<FencedSave> {
        self.probe.pass(Point::BeforeCheckpoint).await;
        self.inner
            .save_checkpoint_fenced(name, position, lease)
            .await
    }
    async fn reset_checkpoint(&self, name: &str) -> Result<()> {
        self.inner.reset_checkpoint(name).await
    }
}

#[async_trait]
impl AppendEvents for Probed {
    async fn append(
        &self,
        stream_id: &StreamId,
        expected: ExpectedVersion,
        events: Vec<NewEvent>,
    ) -> Result<AppendOutcome> {
        self.inner.append(stream_id, expected, events).await
    }
    async fn command_outcome(&self, command_id: CommandId) -> Result<Option<AppendOutcome>> {
        self.inner.command_outcome(command_id).await
    }
}

#[async_trait]
impl ReadStream for Probed {
    async fn read_stream(
        &self,
        stream_id: &StreamId,
        from: Version,
        limit: usize,
    ) -> Result<Vec<RecordedEvent>> {
        self.inner.read_stream(stream_id, from, limit).await
    }
}

#[async_trait]
impl ReadAll for Probed {
    async fn read_all(
        &self,
        after: Position,
        limit: usize,
        filter: &EventFilter,
    ) -> Result<FeedBatch> {
        self.inner.read_all(after, limit, filter).await
    }
    async fn head(&self) -> Result<Position> {
        self.inner.head().await
    }
}

#[async_trait]
impl SnapshotStore for Probed {
    async fn save_snapshot(&self, snapshot: Snapshot) -> Result<()> {
        self.inner.save_snapshot(snapshot).await
    }
    async fn load_snapshot(&self, stream_id: &StreamId) -> Result<Option<Snapshot>> {
        self.inner.load_snapshot(stream_id).await
    }
}

#[async_trait]
impl LeaseStore for Probed {
    async fn try_acquire(&self, name: &str, owner: &str, ttl: Duration) -> Result<Option<Lease>> {
        self.inner.try_acquire(name, owner, ttl).await
    }
    async fn release(&self, lease: &Lease) -> Result<()> {
        self.inner.release(lease).await
    }
}

#[async_trait]
impl DeadLetterStore for Probed {
    async fn park(&self, letter: DeadLetter) -> Result<()> {
        self.inner.park(letter).await
    }
    async fn dead_letters(
        &self,
        projection: &str,
        after: Position,
        limit: usize,
    ) -> Result<Vec<DeadLetter>> {
        self.inner.dead_letters(projection, after, limit).await
    }
    async fn parked_keys(&self, projection: &str) -> Result<Vec<String>> {
        self.inner.parked_keys(projection).await
    }
    async fn key_letters(
        &self,
        projection: &str,
        key: &str,
        limit: usize,
    ) -> Result<Vec<DeadLetter>> {
        self.inner.key_letters(projection, key, limit).await
    }
    async fn request(
        &self,
        projection: &str,
        target: &LetterTarget,
        request: Option<Redrive>,
    ) -> Result<u64> {
        self.inner.request(projection, target, request).await
    }
    async fn requested(&self, projection: &str, limit: usize) -> Result<Vec<DeadLetter>> {
        self.inner.requested(projection, limit).await
    }
    async fn remove(&self, projection: &str, positions: &[Position]) -> Result<u64> {
        self.inner.remove(projection, positions).await
    }
    async fn redrive_failed(
        &self,
        projection: &str,
        position: Position,
        error: &str,
    ) -> Result<()> {
        self.inner.redrive_failed(projection, position, error).await
    }
}

impl ProjectionStore for Probed {
    type Signal = InMemoryEventStore;

    fn signal(&self) -> Self::Signal {
        self.inner.clone()
    }
}
