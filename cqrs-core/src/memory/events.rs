//! The in-memory store's events: append, stream reads and the feed.

use async_trait::async_trait;
use time::OffsetDateTime;

use crate::store::{AppendEvents, ReadAll, ReadStream};
use crate::validate::{check_batch, BatchCheck};
use crate::{
    AppendOutcome, CommandId, Error, EventFilter, EventId, ExpectedVersion, FeedBatch, NewEvent,
    Position, RecordedEvent, Result, StreamEvent, StreamId, Version,
};

use super::{InMemoryEventStore, State};

impl InMemoryEventStore {
    /// The checks an append (or a process record) passes before anything is written: the
    /// batch's ([`check_batch`]), then the whole append's size; its command id, if any.
    pub(super) fn check_append(&self, events: &[NewEvent]) -> Result<Option<CommandId>> {
        let BatchCheck {
            command_id,
            payloads,
            ..
        } = check_batch(events, self.max_payload_bytes())?;
        check_append_bytes(events, payloads.bytes(), self.max_append_bytes())?;
        Ok(command_id)
    }
}

/// Refuses an append over `limit` bytes: `payload_bytes`, and each event's metadata as stored
/// (its JSON without the event id), as PostgreSQL's store counts them.
fn check_append_bytes(events: &[NewEvent], payload_bytes: usize, limit: usize) -> Result<()> {
    let mut bytes = payload_bytes;
    for event in events {
        let metadata =
            crate::backend::metadata_json_without_event_id(&event.metadata).map_err(|source| {
                Error::Encode {
                    event_type: event.event_type.clone(),
                    source,
                }
            })?;
        bytes = bytes.saturating_add(metadata.len());
        if bytes > limit {
            return Err(Error::AppendTooLarge {
                events: events.len(),
                bytes,
                limit,
            });
        }
    }
    Ok(())
}

#[async_trait]
impl AppendEvents for InMemoryEventStore {
    async fn append(
        &self,
        stream_id: &StreamId,
        expected: ExpectedVersion,
        events: Vec<NewEvent>,
    ) -> Result<AppendOutcome> {
        let command_id = self.check_append(&events)?;
        let outcome = self
            .write()
            .append_checked(stream_id, expected, events, command_id)?;
        if !outcome.duplicate {
            self.notify_appended();
        }
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
        Ok(state.stream(stream_id, from, limit).cloned().collect())
    }

    /// Folds the events in place under the read lock, without copying them (the closure only
    /// decodes and applies; it cannot reach the store).
    async fn replay(
        &self,
        stream_id: &StreamId,
        from: Version,
        limit: usize,
        each: &mut (dyn for<'e> FnMut(StreamEvent<'e>) -> Result<()> + Send),
    ) -> Result<usize> {
        let state = self.read();
        let mut replayed = 0;
        for event in state.stream(stream_id, from, limit) {
            each(StreamEvent::from(event))?;
            replayed += 1;
        }
        Ok(replayed)
    }
}

impl State {
    /// Up to `limit` events of `stream_id` from version `from` on, in version order.
    pub(super) fn stream(
        &self,
        stream_id: &StreamId,
        from: Version,
        limit: usize,
    ) -> impl Iterator<Item = &RecordedEvent> {
        let skip = usize::try_from(from.get().saturating_sub(1)).unwrap_or(usize::MAX);
        (self.streams.get(stream_id).into_iter().flatten())
            .skip(skip)
            .take(limit)
            .map(|&i| &self.log[i])
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

impl State {
    /// Appends a batch [`check_batch`] passed, under the write lock the caller holds: a
    /// repeated command id or repeated event ids return the first outcome (`duplicate`) and
    /// write nothing; otherwise `expected` is enforced. The caller notifies the feed when the
    /// outcome is not a duplicate, after it dropped the lock.
    pub(super) fn append_checked(
        &mut self,
        stream_id: &StreamId,
        expected: ExpectedVersion,
        events: Vec<NewEvent>,
        command_id: Option<CommandId>,
    ) -> Result<AppendOutcome> {
        if let Some((command_id, outcome)) =
            command_id.and_then(|c| self.commands.get(&c).map(|o| (c, o)))
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
        if let Some(outcome) = self.earlier_append(stream_id, &ids)? {
            return Ok(outcome);
        }
        let actual = self.version_of(stream_id);
        if !expected.admits(actual) {
            return Err(Error::Conflict {
                stream_id: stream_id.clone(),
                expected,
                actual,
            });
        }
        let now = OffsetDateTime::now_utc();
        let mut version = actual;
        let start = self.log.len();
        for (offset, event) in events.into_iter().enumerate() {
            version = version.next();
            let index = start + offset;
            self.event_ids.insert(event.metadata.event_id, index);
            let recorded =
                RecordedEvent::new(stream_id.clone(), version, position_of(index), event, now);
            self.log.push(recorded);
        }
        let end = self.log.len();
        self.streams
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
            self.commands.insert(command_id, outcome.clone());
        }
        Ok(outcome)
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
