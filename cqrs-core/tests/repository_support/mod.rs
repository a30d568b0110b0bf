//! What the repository's tests share: the in-memory store, counting what the repository asked
//! of it.

#![allow(dead_code, unreachable_pub)]

use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering};
use std::sync::Arc;

use async_trait::async_trait;
use cqrs_core::{
    AppendEvents, AppendOutcome, CommandId, EventFilter, ExpectedVersion, FeedBatch,
    InMemoryEventStore, NewEvent, Position, ReadAll, ReadStream, RecordedEvent, Result, Snapshot,
    SnapshotStore, StreamEvent, StreamId, Version,
};

/// What the repository asked of the store.
#[derive(Default)]
pub struct Calls {
    reads: AtomicU32,
    appends: AtomicU32,
    refused: AtomicU32,
    folded: AtomicUsize,
    swap_versions: std::sync::atomic::AtomicBool,
}

impl Calls {
    /// Stream reads and replays.
    pub fn reads(&self) -> u32 {
        self.reads.load(Ordering::SeqCst)
    }
    /// Appends asked for.
    pub fn appends(&self) -> u32 {
        self.appends.load(Ordering::SeqCst)
    }
    /// Appends that failed.
    pub fn refused(&self) -> u32 {
        self.refused.load(Ordering::SeqCst)
    }
    /// Events handed to a replay's fold.
    pub fn folded(&self) -> usize {
        self.folded.load(Ordering::SeqCst)
    }
    /// From here on, the command outcomes the store returns have their first and last
    /// versions swapped, as a corrupt `commands` row would have them.
    pub fn swap_command_versions(&self) {
        self.swap_versions.store(true, Ordering::SeqCst);
    }
    /// Counts the events folded from here on.
    pub fn reset_folded(&self) {
        self.folded.store(0, Ordering::SeqCst);
    }
}

/// The in-memory store, counting stream reads, folded events and appends.
#[derive(Clone, Default)]
pub struct Counted {
    pub inner: InMemoryEventStore,
    pub calls: Arc<Calls>,
}

#[async_trait]
impl AppendEvents for Counted {
    async fn append(
        &self,
        stream_id: &StreamId,
        expected: ExpectedVersion,
        events: Vec<NewEvent>,
    ) -> Result<AppendOutcome> {
        self.calls.appends.fetch_add(1, Ordering::SeqCst);
        let outcome = self.inner.append(stream_id, expected, events).await;
        if outcome.is_err() {
            self.calls.refused.fetch_add(1, Ordering::SeqCst);
        }
        outcome
    }
    async fn command_outcome(&self, command_id: CommandId) -> Result<Option<AppendOutcome>> {
        let outcome = self.inner.command_outcome(command_id).await?;
        if !self.calls.swap_versions.load(Ordering::SeqCst) {
            return Ok(outcome);
        }
        Ok(outcome.map(|o| {
            AppendOutcome::new(
                o.stream_id,
                o.last_version,
                o.first_version,
                o.position,
                true,
            )
        }))
    }
}

#[async_trait]
impl ReadStream for Counted {
    async fn read_stream(
        &self,
        stream_id: &StreamId,
        from: Version,
        max: usize,
    ) -> Result<Vec<RecordedEvent>> {
        self.calls.reads.fetch_add(1, Ordering::SeqCst);
        self.inner.read_stream(stream_id, from, max).await
    }
    async fn replay(
        &self,
        stream_id: &StreamId,
        from: Version,
        max: usize,
        each: &mut (dyn for<'e> FnMut(StreamEvent<'e>) -> Result<()> + Send),
    ) -> Result<usize> {
        self.calls.reads.fetch_add(1, Ordering::SeqCst);
        let folded = &self.calls.folded;
        let mut counting = |event: StreamEvent<'_>| {
            folded.fetch_add(1, Ordering::SeqCst);
            each(event)
        };
        self.inner.replay(stream_id, from, max, &mut counting).await
    }
}

#[async_trait]
impl ReadAll for Counted {
    async fn read_all(
        &self,
        after: Position,
        max: usize,
        filter: &EventFilter,
    ) -> Result<FeedBatch> {
        self.inner.read_all(after, max, filter).await
    }
    async fn head(&self) -> Result<Position> {
        self.inner.head().await
    }
}

#[async_trait]
impl SnapshotStore for Counted {
    async fn save_snapshot(&self, snapshot: Snapshot) -> Result<()> {
        self.inner.save_snapshot(snapshot).await
    }
    async fn load_snapshot(&self, stream_id: &StreamId) -> Result<Option<Snapshot>> {
        self.inner.load_snapshot(stream_id).await
    }
}
