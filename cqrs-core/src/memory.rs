//! [`InMemoryEventStore`]: a complete store in process memory.

use std::collections::HashMap;
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};

use std::time::Duration;

use async_trait::async_trait;
use time::OffsetDateTime;
use tokio::sync::watch;
// The lease clock: tokio's, so tests with a paused clock control expiry too.
use tokio::time::Instant;

use crate::projection::{
    DeadLetter, DeadLetterStore, FeedSignal, FeedWaiter, Lease, LeaseStore, LetterTarget, Redrive,
};
use crate::store::{AppendEvents, CheckpointStore, FencedSave, ReadAll, ReadStream, SnapshotStore};
use crate::validate::{check_batch, BatchCheck};
use crate::{
    AppendOutcome, CommandId, Error, EventFilter, EventId, ExpectedVersion, FeedBatch, NewEvent,
    Position, RecordedEvent, Result, Snapshot, StreamId, Version,
};

/// An event store in memory: concurrency-safe, with the same semantics and ordering guarantees
/// as the PostgreSQL store (it passes the same conformance suite). For unit tests, examples and
/// prototypes; everything is lost when the process ends. Clones share the same store.
///
/// Positions are `(0, n)` for the `n`-th event appended, so the feed order is the append order.
/// Leases expire by tokio's clock, so a test on a paused clock moves them too.
#[derive(Clone, Debug, Default)]
pub struct InMemoryEventStore {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    state: RwLock<State>,
    max_payload_bytes: Option<usize>,
    /// Bumped on every append, for [`FeedSignal`] subscribers.
    appended: watch::Sender<u64>,
}

impl Default for Inner {
    fn default() -> Self {
        Self {
            state: RwLock::default(),
            max_payload_bytes: None,
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
    dead_letters: Vec<DeadLetter>,
    leases: HashMap<String, LeaseRow>,
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
            inner: Arc::new(Inner {
                max_payload_bytes: Some(bytes),
                ..Inner::default()
            }),
        }
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

    fn max_payload_bytes(&self) -> usize {
        self.inner
            .max_payload_bytes
            .unwrap_or(crate::backend::DEFAULT_MAX_PAYLOAD_BYTES)
    }
}

fn position_of(index: usize) -> Position {
    Position::from_parts(0, index as u64 + 1)
}

fn index_after(position: Position) -> usize {
    match position.parts() {
        (0, n) => usize::try_from(n).unwrap_or(usize::MAX),
        // A position from another store: nothing of ours comes after it.
        _ => usize::MAX,
    }
}

impl State {
    fn version_of(&self, stream_id: &StreamId) -> Version {
        self.streams
            .get(stream_id)
            .map_or(Version::ZERO, |indices| Version::new(indices.len() as u64))
    }

    /// The first outcome of an append whose events are `ids`, if they were all appended together.
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
        let same_append = first_event.stream_id == *stream_id
            && ids.iter().enumerate().all(|(offset, id)| {
                self.log
                    .get(first + offset)
                    .is_some_and(|e| e.metadata.event_id == *id && e.stream_id == *stream_id)
            });
        if !same_append {
            return Err(Error::EventIdReused { event_id: ids[0] });
        }
        let last = &self.log[first + ids.len() - 1];
        Ok(Some(AppendOutcome::new(
            stream_id.clone(),
            first_event.version,
            last.version,
            last.position,
            true,
        )))
    }
}

#[async_trait]
impl AppendEvents for InMemoryEventStore {
    async fn append(
        &self,
        stream_id: &StreamId,
        expected: ExpectedVersion,
        events: Vec<NewEvent>,
    ) -> Result<AppendOutcome> {
        let BatchCheck { command_id, .. } = check_batch(&events, self.max_payload_bytes())?;
        let mut state = self.write();
        if let Some((command_id, outcome)) =
            command_id.and_then(|c| state.commands.get(&c).map(|o| (c, o)))
        {
            if outcome.stream_id != *stream_id {
                return Err(Error::CommandIdReused {
                    command_id,
                    stream_id: outcome.stream_id.clone(),
                });
            }
            let mut outcome = outcome.clone();
            outcome.duplicate = true;
            return Ok(outcome);
        }
        let ids: Vec<EventId> = events.iter().map(|e| e.metadata.event_id).collect();
        if let Some(outcome) = state.earlier_append(stream_id, &ids)? {
            return Ok(outcome);
        }
        let actual = state.version_of(stream_id);
        if !expected.admits(actual) {
            return Err(Error::Conflict {
                stream_id: stream_id.clone(),
                expected,
                actual,
            });
        }
        let now = OffsetDateTime::now_utc();
        let mut version = actual;
        let start = state.log.len();
        for (offset, event) in events.into_iter().enumerate() {
            version = version.next();
            let index = start + offset;
            state.event_ids.insert(event.metadata.event_id, index);
            let recorded =
                RecordedEvent::new(stream_id.clone(), version, position_of(index), event, now);
            state.log.push(recorded);
        }
        let end = state.log.len();
        state
            .streams
            .entry(stream_id.clone())
            .or_default()
            .extend(start..end);
        let outcome = AppendOutcome::new(
            stream_id.clone(),
            actual.next(),
            version,
            position_of(end - 1),
            false,
        );
        if let Some(command_id) = command_id {
            state.commands.insert(command_id, outcome.clone());
        }
        drop(state);
        self.inner.appended.send_modify(|n| *n += 1);
        Ok(outcome)
    }

    async fn command_outcome(&self, command_id: CommandId) -> Result<Option<AppendOutcome>> {
        Ok(self.read().commands.get(&command_id).map(|outcome| {
            let mut outcome = outcome.clone();
            outcome.duplicate = true;
            outcome
        }))
    }
}

#[async_trait]
impl ReadStream for InMemoryEventStore {
    async fn read_stream(
        &self,
        stream_id: &StreamId,
        from: Version,
        limit: usize,
    ) -> Result<Vec<RecordedEvent>> {
        let state = self.read();
        let Some(indices) = state.streams.get(stream_id) else {
            return Ok(Vec::new());
        };
        let skip = usize::try_from(from.get().saturating_sub(1)).unwrap_or(usize::MAX);
        Ok(indices
            .iter()
            .skip(skip)
            .take(limit)
            .map(|&i| state.log[i].clone())
            .collect())
    }
}

#[async_trait]
impl ReadAll for InMemoryEventStore {
    async fn read_all(
        &self,
        after: Position,
        limit: usize,
        filter: &EventFilter,
    ) -> Result<FeedBatch> {
        let state = self.read();
        let mut events = Vec::new();
        let mut next = after;
        for event in state.log.iter().skip(index_after(after)) {
            if events.len() >= limit {
                break;
            }
            next = event.position;
            if filter.matches(event.stream_id.as_str(), &event.event_type) {
                events.push(event.clone());
            }
        }
        Ok(FeedBatch::new(events, next))
    }

    async fn head(&self) -> Result<Position> {
        let state = self.read();
        Ok(state.log.last().map_or(Position::START, |e| e.position))
    }
}

#[async_trait]
impl SnapshotStore for InMemoryEventStore {
    async fn save_snapshot(&self, snapshot: Snapshot) -> Result<()> {
        let mut state = self.write();
        let newer = state
            .snapshots
            .get(&snapshot.stream_id)
            .is_none_or(|existing| existing.version < snapshot.version);
        if newer {
            state.snapshots.insert(snapshot.stream_id.clone(), snapshot);
        }
        Ok(())
    }

    async fn load_snapshot(&self, stream_id: &StreamId) -> Result<Option<Snapshot>> {
        Ok(self.read().snapshots.get(stream_id).cloned())
    }
}

#[async_trait]
impl CheckpointStore for InMemoryEventStore {
    async fn load_checkpoint(&self, name: &str) -> Result<Option<Position>> {
        Ok(self.read().checkpoints.get(name).copied())
    }

    async fn save_checkpoint(&self, name: &str, position: Position) -> Result<()> {
        self.write().advance_checkpoint(name, position);
        Ok(())
    }

    async fn save_checkpoint_fenced(
        &self,
        name: &str,
        position: Position,
        lease: &Lease,
    ) -> Result<FencedSave> {
        let mut state = self.write();
        if lease.name != name || !state.holds(lease, Instant::now()) {
            return Ok(FencedSave::LeaseLost);
        }
        state.advance_checkpoint(name, position);
        Ok(FencedSave::Saved)
    }

    async fn reset_checkpoint(&self, name: &str) -> Result<()> {
        self.write().checkpoints.remove(name);
        Ok(())
    }
}

#[async_trait]
impl DeadLetterStore for InMemoryEventStore {
    async fn park(&self, letter: DeadLetter) -> Result<()> {
        let mut state = self.write();
        let known = state
            .dead_letters
            .iter()
            .any(|l| l.projection == letter.projection && l.position == letter.position);
        if !known {
            // Kept in feed order per projection, so pages and keys read in order.
            let at = state
                .dead_letters
                .partition_point(|l| l.position <= letter.position);
            state.dead_letters.insert(at, letter);
        }
        Ok(())
    }

    async fn dead_letters(
        &self,
        projection: &str,
        after: Position,
        limit: usize,
    ) -> Result<Vec<DeadLetter>> {
        Ok(self
            .read()
            .dead_letters
            .iter()
            .filter(|l| l.projection == projection && l.position > after)
            .take(limit)
            .cloned()
            .collect())
    }

    async fn parked_keys(&self, projection: &str) -> Result<Vec<String>> {
        let state = self.read();
        let keys: std::collections::BTreeSet<&str> = state
            .dead_letters
            .iter()
            .filter(|l| l.projection == projection)
            .filter_map(|l| l.key.as_deref())
            .collect();
        Ok(keys.into_iter().map(str::to_owned).collect())
    }

    async fn key_letters(
        &self,
        projection: &str,
        key: &str,
        limit: usize,
    ) -> Result<Vec<DeadLetter>> {
        Ok(self
            .read()
            .dead_letters
            .iter()
            .filter(|l| l.projection == projection && l.key.as_deref() == Some(key))
            .take(limit)
            .cloned()
            .collect())
    }

    async fn request(
        &self,
        projection: &str,
        target: &LetterTarget,
        request: Option<Redrive>,
    ) -> Result<u64> {
        let mut state = self.write();
        let mut marked = 0;
        for letter in state
            .dead_letters
            .iter_mut()
            .filter(|l| l.projection == projection && targets(target, l))
        {
            letter.request = request;
            marked += 1;
        }
        Ok(marked)
    }

    async fn requested(&self, projection: &str, limit: usize) -> Result<Vec<DeadLetter>> {
        Ok(self
            .read()
            .dead_letters
            .iter()
            .filter(|l| l.projection == projection && l.request.is_some())
            .take(limit)
            .cloned()
            .collect())
    }

    async fn remove(&self, projection: &str, positions: &[Position]) -> Result<u64> {
        let positions: std::collections::HashSet<&Position> = positions.iter().collect();
        let mut state = self.write();
        let before = state.dead_letters.len();
        state
            .dead_letters
            .retain(|l| l.projection != projection || !positions.contains(&l.position));
        Ok((before - state.dead_letters.len()) as u64)
    }

    async fn redrive_failed(
        &self,
        projection: &str,
        position: Position,
        error: &str,
    ) -> Result<()> {
        let mut state = self.write();
        if let Some(letter) = state
            .dead_letters
            .iter_mut()
            .find(|l| l.projection == projection && l.position == position)
        {
            error.clone_into(&mut letter.error);
            letter.request = None;
        }
        Ok(())
    }
}

/// Whether `target` names `letter`.
fn targets(target: &LetterTarget, letter: &DeadLetter) -> bool {
    match target {
        LetterTarget::Key(key) => letter.key.as_deref() == Some(key.as_str()),
        LetterTarget::Position(position) => letter.position == *position,
    }
}

#[async_trait]
impl LeaseStore for InMemoryEventStore {
    async fn try_acquire(&self, name: &str, owner: &str, ttl: Duration) -> Result<Option<Lease>> {
        let mut state = self.write();
        let now = Instant::now();
        let expires = now + ttl;
        let epoch = match state.leases.get_mut(name) {
            None => {
                state.leases.insert(
                    name.to_owned(),
                    LeaseRow {
                        owner: owner.to_owned(),
                        epoch: 1,
                        expires,
                    },
                );
                1
            }
            // A renewal: same holder, same epoch.
            Some(row) if row.owner == owner && row.expires > now => {
                row.expires = expires;
                row.epoch
            }
            // Expired or released: a new holder, a new epoch.
            Some(row) if row.expires <= now => {
                *row = LeaseRow {
                    owner: owner.to_owned(),
                    epoch: row.epoch + 1,
                    expires,
                };
                row.epoch
            }
            Some(_) => return Ok(None),
        };
        Ok(Some(Lease::new(name, owner, epoch, ttl)))
    }

    async fn release(&self, lease: &Lease) -> Result<()> {
        let mut state = self.write();
        let now = Instant::now();
        if state.holds(lease, now) {
            if let Some(row) = state.leases.get_mut(&lease.name) {
                row.expires = now;
            }
        }
        Ok(())
    }
}

impl FeedSignal for InMemoryEventStore {
    fn subscribe(&self) -> Box<dyn FeedWaiter> {
        Box::new(MemoryWaiter(self.inner.appended.subscribe()))
    }
}

struct MemoryWaiter(watch::Receiver<u64>);

#[async_trait]
impl FeedWaiter for MemoryWaiter {
    async fn wait(&mut self) {
        if self.0.changed().await.is_err() {
            // The store is gone: nothing will ever be appended again.
            std::future::pending::<()>().await;
        }
    }
}
