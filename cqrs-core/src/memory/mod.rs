//! [`InMemoryEventStore`]: a complete store in process memory.
//!
//! The store's state and its helpers live here; each role trait is implemented in its own
//! file: `events` (append, stream reads and the feed), `snapshots` (snapshots and
//! checkpoints), `leases`, `dead_letters`, `bus_letters` (bus consumers' parked messages),
//! `process` (process managers' timeouts and status rows), and `signal` (the feed's wake-ups).

mod bus_letters;
mod dead_letters;
mod events;
mod leases;
mod process;
mod signal;
mod snapshots;

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};

use tokio::sync::watch;
// The lease clock: tokio's, so tests with a paused clock control expiry too.
use tokio::time::Instant;

use crate::process::InstanceRow;
use crate::projection::{DeadLetter, Lease};
use crate::{
    AppendOutcome, CommandId, Error, EventId, Position, RecordedEvent, Result, Snapshot, StreamId,
    Version,
};

/// An event store in memory: concurrency-safe, with the same semantics and ordering guarantees
/// as the PostgreSQL store (it passes the same conformance suite). For unit tests, examples and
/// prototypes; everything is lost when the process ends. Clones share the same store.
///
/// It is a [`ProcessStore`](crate::process::ProcessStore) too: process managers' timeouts and
/// status rows live beside the events, and `record` and `fire_due` each take the one write lock,
/// so each is atomic.
///
/// Positions are `(0, n)` for the `n`-th event appended, so the feed order is the append order.
/// Leases expire by tokio's clock, so a test on a paused clock moves them too.
#[derive(Clone, Debug, Default)]
pub struct InMemoryEventStore {
    inner: Arc<Inner>,
    limits: Limits,
}

/// What the store refuses: `None` for the default.
#[derive(Clone, Copy, Debug, Default)]
struct Limits {
    payload_bytes: Option<usize>,
    append_bytes: Option<usize>,
}

#[derive(Debug)]
struct Inner {
    state: RwLock<State>,
    /// Bumped on every append, for [`FeedSignal`](crate::projection::FeedSignal) subscribers.
    appended: watch::Sender<u64>,
}

impl Default for Inner {
    fn default() -> Self {
        Self {
            state: RwLock::default(),
            appended: watch::channel(0).0,
        }
    }
}

#[derive(Debug, Default)]
struct State {
    log: Vec<RecordedEvent>,
    streams: HashMap<StreamId, Vec<usize>>,
    event_ids: HashMap<EventId, usize>,
    commands: HashMap<CommandId, AppendOutcome>,
    snapshots: HashMap<StreamId, Snapshot>,
    checkpoints: HashMap<String, Position>,
    /// Runners' circuit breakers as they recorded them, by projection.
    breakers: HashMap<String, crate::projection::BreakerRecord>,
    dead_letters: Vec<DeadLetter>,
    /// Bus consumers' dead letters by (consumer, message): ordered, for paging.
    bus_letters: BTreeMap<(String, crate::bus::MessageId), crate::bus::BusLetter>,
    leases: HashMap<String, LeaseRow>,
    /// Live process timeouts by (process, instance, key).
    timeouts: BTreeMap<(String, String, String), process::TimeoutRow>,
    /// Process instances' status rows by (process, instance): ordered, for paging.
    instances: BTreeMap<(String, String), InstanceRow>,
}

/// A lease's row: kept after release or expiry, so the next holder's epoch is higher.
#[derive(Debug)]
struct LeaseRow {
    owner: String,
    epoch: u64,
    expires: Instant,
}

impl State {
    /// Whether `lease` is held now: the row is in its epoch, its owner's, and unexpired.
    fn holds(&self, lease: &Lease, now: Instant) -> bool {
        self.leases.get(&lease.name).is_some_and(|row| {
            row.epoch == lease.epoch && row.owner == lease.owner && row.expires > now
        })
    }

    /// Moves checkpoint `name` forward to `position` (never back).
    fn advance_checkpoint(&mut self, name: &str, position: Position) {
        let checkpoint = self.checkpoints.entry(name.to_owned()).or_insert(position);
        *checkpoint = (*checkpoint).max(position);
    }
}

impl InMemoryEventStore {
    /// An empty store refusing payloads over
    /// [`DEFAULT_MAX_PAYLOAD_BYTES`](crate::backend::DEFAULT_MAX_PAYLOAD_BYTES).
    pub fn new() -> Self {
        Self::default()
    }

    /// An empty store refusing payloads over `bytes` of JSON.
    pub fn with_max_payload_bytes(bytes: usize) -> Self {
        Self {
            limits: Limits {
                payload_bytes: Some(bytes),
                ..Limits::default()
            },
            ..Self::default()
        }
    }

    /// Refuses appends over `bytes` in all (default
    /// [`DEFAULT_MAX_APPEND_BYTES`](crate::backend::DEFAULT_MAX_APPEND_BYTES)): the JSON of every
    /// event's payload and metadata, headers included, counted as PostgreSQL's store counts it.
    /// Such an append fails with [`Error::AppendTooLarge`](crate::Error::AppendTooLarge) and
    /// writes nothing. Clones made before keep the limit they had.
    ///
    /// ```
    /// use cqrs_core::InMemoryEventStore;
    ///
    /// let store = InMemoryEventStore::with_max_payload_bytes(32 << 20).with_max_append_bytes(64 << 20);
    /// # let _ = store;
    /// ```
    #[must_use]
    pub fn with_max_append_bytes(mut self, bytes: usize) -> Self {
        self.limits.append_bytes = Some(bytes);
        self
    }

    /// How many events the store holds.
    pub fn len(&self) -> usize {
        self.read().log.len()
    }

    /// Whether the store holds no event.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn read(&self) -> RwLockReadGuard<'_, State> {
        // A panic while holding the lock cannot leave `State` half-written: every write checks
        // all its inputs before it changes anything.
        self.inner
            .state
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn write(&self) -> RwLockWriteGuard<'_, State> {
        self.inner
            .state
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Wakes the feed's subscribers: call after an append landed, with the lock dropped.
    fn notify_appended(&self) {
        self.inner.appended.send_modify(|n| *n += 1);
    }

    fn max_append_bytes(&self) -> usize {
        (self.limits.append_bytes).unwrap_or(crate::backend::DEFAULT_MAX_APPEND_BYTES)
    }

    fn max_payload_bytes(&self) -> usize {
        (self.limits.payload_bytes).unwrap_or(crate::backend::DEFAULT_MAX_PAYLOAD_BYTES)
    }
}

impl State {
    fn version_of(&self, stream_id: &StreamId) -> Version {
        self.streams
            .get(stream_id)
            .map_or(Version::ZERO, |indices| Version::new(indices.len() as u64))
    }

    /// The outcome of what landed, if the events `ids` are all in `stream_id`, in this order, at
    /// consecutive versions (PostgreSQL's rule: whichever appends wrote them).
    fn earlier_append(
        &self,
        stream_id: &StreamId,
        ids: &[EventId],
    ) -> Result<Option<AppendOutcome>> {
        let Some(&first) = ids.first().and_then(|id| self.event_ids.get(id)) else {
            if let Some(id) = ids.iter().find(|id| self.event_ids.contains_key(id)) {
                return Err(Error::EventIdReused { event_id: *id });
            }
            return Ok(None);
        };
        let first_event = &self.log[first];
        // Log indices of the stream's events from the first one's version on.
        let from =
            usize::try_from(first_event.version.get().saturating_sub(1)).unwrap_or(usize::MAX);
        let indices = self
            .streams
            .get(stream_id)
            .and_then(|indices| indices.get(from..))
            .unwrap_or_default();
        let landed = first_event.stream_id == *stream_id
            && indices.len() >= ids.len()
            && ids
                .iter()
                .zip(indices)
                .all(|(id, &index)| self.log[index].metadata.event_id == *id);
        if !landed {
            return Err(Error::EventIdReused { event_id: ids[0] });
        }
        let last = &self.log[indices[ids.len() - 1]];
        Ok(Some(AppendOutcome::new(
            stream_id.clone(),
            first_event.version,
            last.version,
            last.position,
            true,
        )))
    }
}
