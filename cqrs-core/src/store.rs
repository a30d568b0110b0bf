//! The store role traits: appending, reading one stream, reading the global feed, snapshots and
//! checkpoints. They name no database type and are object-safe.

use async_trait::async_trait;
use serde_json::Value;

use crate::projection::{BreakerRecord, Lease, StreamPartition};
use crate::{
    CommandId, ExpectedVersion, NewEvent, Position, RecordedEvent, Result, StreamEvent, StreamId,
    Version,
};

/// What a successful append did.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct AppendOutcome {
    /// The stream appended to.
    pub stream_id: StreamId,
    /// The version of the first event appended.
    pub first_version: Version,
    /// The stream's version after the append: the version of the last event appended.
    pub last_version: Version,
    /// The feed position of the last event appended: wait for a read model to reach it to read
    /// your own write.
    pub position: Position,
    /// `true` when these events (by command id or event ids) had been appended before and this
    /// call wrote nothing: the outcome is the first one.
    pub duplicate: bool,
}

impl AppendOutcome {
    /// An outcome, for store implementations.
    pub fn new(
        stream_id: StreamId,
        first_version: Version,
        last_version: Version,
        position: Position,
        duplicate: bool,
    ) -> Self {
        Self {
            stream_id,
            first_version,
            last_version,
            position,
            duplicate,
        }
    }
}

/// Appends events to a stream under optimistic concurrency.
///
/// ```
/// use cqrs_core::{AppendEvents, Error, ExpectedVersion, InMemoryEventStore, NewEvent, StreamId, Version};
/// use serde_json::json;
///
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// let store = InMemoryEventStore::new();
/// let stream = StreamId::new("account-7")?;
/// let opened = NewEvent::new("Opened", 1, json!({ "owner": "ada" }));
/// let outcome = store.append(&stream, ExpectedVersion::NoStream, vec![opened]).await?;
/// assert_eq!(outcome.last_version, Version::new(1));
///
/// // A second writer that still believes the stream is new loses, with a typed conflict.
/// let late = NewEvent::new("Opened", 1, json!({ "owner": "bob" }));
/// match store.append(&stream, ExpectedVersion::NoStream, vec![late]).await {
///     Err(Error::Conflict { actual, .. }) => assert_eq!(actual, Version::new(1)),
///     other => panic!("expected a conflict, got {other:?}"),
/// }
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// # }).unwrap();
/// ```
#[async_trait]
pub trait AppendEvents: Send + Sync {
    /// Appends `events` to `stream_id` atomically: all of them or none.
    ///
    /// Fails with [`Error::Conflict`](crate::Error::Conflict) when the stream is not at
    /// `expected`. When the events' command id (or their event ids) were appended before, nothing
    /// is written and the first outcome comes back with `duplicate` set, whatever `expected` says.
    async fn append(
        &self,
        stream_id: &StreamId,
        expected: ExpectedVersion,
        events: Vec<NewEvent>,
    ) -> Result<AppendOutcome>;

    /// The outcome of the append that recorded `command_id`, if any.
    async fn command_outcome(&self, command_id: CommandId) -> Result<Option<AppendOutcome>>;
}

/// Reads one stream in version order.
#[async_trait]
pub trait ReadStream: Send + Sync {
    /// Up to `limit` events of `stream_id` with version `from` or later, in version order. An
    /// absent stream reads as empty.
    async fn read_stream(
        &self,
        stream_id: &StreamId,
        from: Version,
        limit: usize,
    ) -> Result<Vec<RecordedEvent>>;

    /// Calls `each` with up to `limit` events of `stream_id` with version `from` or later, in
    /// version order, as a replay folds them ([`StreamEvent`]: no metadata, position or time);
    /// returns how many. Stops at the first error of `each` and returns it.
    ///
    /// The default reads [`read_stream`](Self::read_stream). A store that can read less for a
    /// replay overrides it: PostgreSQL's reads four columns and hands the payload over as the
    /// JSON text it received.
    async fn replay(
        &self,
        stream_id: &StreamId,
        from: Version,
        limit: usize,
        each: &mut (dyn for<'e> FnMut(StreamEvent<'e>) -> Result<()> + Send),
    ) -> Result<usize> {
        let events = self.read_stream(stream_id, from, limit).await?;
        for event in &events {
            each(StreamEvent::from(event))?;
        }
        Ok(events.len())
    }
}

/// Which events a feed read returns. The default passes everything.
///
/// ```
/// use cqrs_core::EventFilter;
///
/// let filter = EventFilter::all().category("order").event_types(["OrderPlaced", "OrderShipped"]);
/// assert!(filter.matches("order-1", "OrderPlaced"));
/// assert!(!filter.matches("payment-1", "OrderPlaced"));
/// assert!(!filter.matches("order-1", "ItemAdded"));
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct EventFilter {
    /// Stream categories to pass (see [`StreamId::category`]); empty passes all.
    pub categories: Vec<String>,
    /// Event types to pass; empty passes all.
    pub event_types: Vec<String>,
    /// Only the streams of this partition (by a hash of the stream id every store computes
    /// alike, see [`StreamPartition`]); `None` passes all.
    pub partition: Option<StreamPartition>,
}

impl EventFilter {
    /// A filter passing every event.
    pub fn all() -> Self {
        Self::default()
    }

    /// Also passes streams of `category`.
    #[must_use]
    pub fn category(mut self, category: impl Into<String>) -> Self {
        self.categories.push(category.into());
        self
    }

    /// Also passes these event types.
    #[must_use]
    pub fn event_types<I, T>(mut self, types: I) -> Self
    where
        I: IntoIterator<Item = T>,
        T: Into<String>,
    {
        self.event_types.extend(types.into_iter().map(Into::into));
        self
    }

    /// Passes only the streams of `partition` (and what the rest of the filter passes).
    #[must_use]
    pub fn partition(mut self, partition: StreamPartition) -> Self {
        self.partition = Some(partition);
        self
    }

    /// Whether the filter passes everything.
    pub fn is_all(&self) -> bool {
        self.categories.is_empty() && self.event_types.is_empty() && self.partition.is_none()
    }

    /// Whether an event of `event_type` in `stream_id` passes.
    pub fn matches(&self, stream_id: &str, event_type: &str) -> bool {
        let category = stream_id.split_once('-').map_or(stream_id, |(c, _)| c);
        (self.categories.is_empty() || self.categories.iter().any(|c| c == category))
            && (self.event_types.is_empty() || self.event_types.iter().any(|t| t == event_type))
            && self.partition.is_none_or(|p| p.contains(stream_id))
    }
}

/// One batch of the global feed.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct FeedBatch {
    /// The events, in the store's total order.
    pub events: Vec<RecordedEvent>,
    /// Where to read on from. It can be past the last event returned when the store scanned
    /// further events that the filter dropped, so a filtered reader moves on too.
    pub next: Position,
    /// The store stopped early: it bounds how many events one read examines, and it examined
    /// that many (dropping those the filter did not want) before the batch filled. More events
    /// may be ready now: read again at once rather than wait. A batch that is neither full nor
    /// `more` means the reader is at the head of the feed.
    pub more: bool,
}

impl FeedBatch {
    /// A batch, for store implementations.
    pub fn new(events: Vec<RecordedEvent>, next: Position) -> Self {
        Self {
            events,
            next,
            more: false,
        }
    }

    /// The same batch, saying whether the store stopped early (see [`FeedBatch::more`]).
    #[must_use]
    pub fn with_more(mut self, more: bool) -> Self {
        self.more = more;
        self
    }
}

/// Reads all streams in the store's total order: the global feed that projections follow.
///
/// The order never skips: once a reader has been handed position `p`, no event can later appear
/// before `p`. Each stream's events come in version order.
///
/// A reader keeps the `next` position of each batch (its checkpoint) and asks again from there:
///
/// ```
/// use cqrs_core::{AppendEvents, EventFilter, ExpectedVersion, InMemoryEventStore, NewEvent, Position, ReadAll, StreamId};
/// use serde_json::json;
///
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// let store = InMemoryEventStore::new();
/// for (stream, kind) in [("order-1", "Placed"), ("payment-1", "Authorized"), ("order-1", "Shipped")] {
///     let stream = StreamId::new(stream)?;
///     store.append(&stream, ExpectedVersion::Any, vec![NewEvent::new(kind, 1, json!({}))]).await?;
/// }
/// let orders = EventFilter::all().category("order");
/// let mut checkpoint = Position::START;
/// let mut seen = Vec::new();
/// loop {
///     let batch = store.read_all(checkpoint, 100, &orders).await?;
///     if batch.events.is_empty() { break; }
///     seen.extend(batch.events.iter().map(|e| e.event_type.clone()));
///     checkpoint = batch.next;
/// }
/// assert_eq!(seen, ["Placed", "Shipped"]);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// # }).unwrap();
/// ```
#[async_trait]
pub trait ReadAll: Send + Sync {
    /// Up to `limit` events after `after` that pass `filter`.
    async fn read_all(
        &self,
        after: Position,
        limit: usize,
        filter: &EventFilter,
    ) -> Result<FeedBatch>;

    /// The position of the last event a reader can see now ([`Position::START`] when none).
    async fn head(&self) -> Result<Position>;
}

/// An event store: appends, stream reads and the global feed.
pub trait EventStore: AppendEvents + ReadStream + ReadAll {}

impl<T: AppendEvents + ReadStream + ReadAll + ?Sized> EventStore for T {}

/// A saved aggregate state.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct Snapshot {
    /// The aggregate's stream.
    pub stream_id: StreamId,
    /// The stream version the state includes.
    pub version: Version,
    /// The state's schema version; a snapshot of another schema is ignored on load.
    pub schema_version: u32,
    /// The serialized state.
    pub state: Value,
}

impl Snapshot {
    /// A snapshot from its parts.
    pub fn new(stream_id: StreamId, version: Version, schema_version: u32, state: Value) -> Self {
        Self {
            stream_id,
            version,
            schema_version,
            state,
        }
    }
}

/// Saves and loads aggregate snapshots: one, the newest, per stream.
#[async_trait]
pub trait SnapshotStore: Send + Sync {
    /// Saves `snapshot`, unless the stream already has one at the same or a later version.
    /// A store first refuses a state it could not read back with
    /// [`backend::check_snapshot`](crate::backend::check_snapshot)
    /// ([`Error::SnapshotUnreadable`](crate::Error::SnapshotUnreadable)): loads read the
    /// snapshot first, so every later load of the stream would fail on it. The conformance
    /// suite checks it.
    async fn save_snapshot(&self, snapshot: Snapshot) -> Result<()>;

    /// The newest snapshot of `stream_id`, if any.
    async fn load_snapshot(&self, stream_id: &StreamId) -> Result<Option<Snapshot>>;

    /// Reads the newest snapshot of `stream_id` and up to `limit` of the events after it in one
    /// round trip, for a store that can: `each` gets the snapshot first, if the stream has one,
    /// then the events after its version in version order (all from version 1 without one).
    /// Returns how many events it handed over; stops at the first error of `each` and returns
    /// it.
    ///
    /// `Ok(None)`, the default, says the store reads them apart: a
    /// [`Repository`](crate::Repository) then calls [`load_snapshot`](Self::load_snapshot) and
    /// [`ReadStream::replay`]. PostgreSQL's reads both with one statement, which saves a load
    /// behind a snapshot one of its two round trips.
    async fn replay_from_snapshot(
        &self,
        stream_id: &StreamId,
        limit: usize,
        each: &mut (dyn for<'e> FnMut(SnapshotReplay<'e>) -> Result<()> + Send),
    ) -> Result<Option<usize>> {
        let _ = (stream_id, limit, each);
        Ok(None)
    }
}

/// What [`SnapshotStore::replay_from_snapshot`] hands over, in order: the stream's newest
/// snapshot, if it has one, then the events after it.
#[derive(Debug)]
pub enum SnapshotReplay<'e> {
    /// The newest snapshot; it comes first, at most once.
    Snapshot(Snapshot),
    /// An event after the snapshot's version, as a replay folds it.
    Event(StreamEvent<'e>),
}

/// Saves and loads projection checkpoints: how far along the feed each projection is.
///
/// A checkpoint only moves forward: a save at or before the stored position changes nothing
/// (a late save from a worker that was overtaken cannot undo later progress). The one way back
/// is [`reset_checkpoint`](CheckpointStore::reset_checkpoint).
#[async_trait]
pub trait CheckpointStore: Send + Sync {
    /// The checkpoint of projection `name`, if it has one.
    async fn load_checkpoint(&self, name: &str) -> Result<Option<Position>>;

    /// Records that projection `name` has durably handled everything up to `position`, unless
    /// its checkpoint is already there or further.
    async fn save_checkpoint(&self, name: &str, position: Position) -> Result<()>;

    /// Like [`save_checkpoint`](CheckpointStore::save_checkpoint), but only while `lease`
    /// (named like the checkpoint) is held: in its epoch and unexpired by the store's clock,
    /// checked atomically with the write. Otherwise nothing is written and the outcome is
    /// [`FencedSave::LeaseLost`]: the caller's work may already be redone by the next holder.
    ///
    /// Stores that keep leases beside checkpoints implement it; the default refuses with
    /// [`Error::Unsupported`](crate::Error::Unsupported), so a projection runner with leases
    /// fails at once instead of saving unfenced.
    async fn save_checkpoint_fenced(
        &self,
        name: &str,
        position: Position,
        lease: &Lease,
    ) -> Result<FencedSave> {
        let _ = (name, position, lease);
        Err(crate::Error::Unsupported {
            operation: "fenced checkpoint saves",
        })
    }

    /// Starts projection `name` over, from the beginning of the feed (a replay, or a rebuild
    /// into a fresh index): forgets its checkpoint, the one way a checkpoint moves back.
    ///
    /// Stores that keep leases and dead letters beside checkpoints also, atomically with it:
    /// - end the term of whoever holds the lease of the same name (its epoch grows, so its
    ///   fenced saves are refused and renewing starts a new term): a runner leading the
    ///   projection stops going on from the position it holds in memory, and whoever leads
    ///   next loads no checkpoint and replays;
    /// - drop the projection's dead letters: they belong to the run that is forgotten (a
    ///   parked key would hold back the key's earlier events in the replay, a retry would
    ///   apply an event the replay applies too); an event that still fails is parked again.
    ///
    /// A runner without a lease cannot be fenced: stop it first.
    /// The default refuses with [`Error::Unsupported`](crate::Error::Unsupported).
    async fn reset_checkpoint(&self, name: &str) -> Result<()> {
        let _ = name;
        Err(crate::Error::Unsupported {
            operation: "checkpoint resets",
        })
    }

    /// Records where projection `name`'s circuit breaker is, as its runner sees it, so
    /// operators see a failing sink from outside the runner's process (`cqrs status`, the web
    /// console). Runners call it when the state changes (and once when they start applying);
    /// a failure to record is logged, never fatal. While the breaker is not closed, a record
    /// without an error keeps the error recorded before.
    ///
    /// The default keeps nothing: the runner's [`ProjectionStatus`](crate::projection::ProjectionStatus)
    /// still shows the breaker in its own process.
    async fn record_breaker(&self, name: &str, breaker: &BreakerRecord) -> Result<()> {
        let _ = (name, breaker);
        Ok(())
    }
}

/// What a [`CheckpointStore::save_checkpoint_fenced`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum FencedSave {
    /// The lease held: the checkpoint is at the position now, or was already further.
    Saved,
    /// The lease has expired or passed to another epoch: nothing was written.
    LeaseLost,
}
