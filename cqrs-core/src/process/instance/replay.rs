//! Loading an instance: the newest usable snapshot, then the journal's tail folded event by
//! event with the same bookkeeping code a fresh decision uses. Decisions are read back, never
//! recomputed: `decide` does not run here.

use serde::{Deserialize, Serialize};

use super::{Bookkeeping, Instance};
use crate::process::journal::{InputReceived, ReceivedKind, INPUT_RECEIVED};
use crate::process::manager::{EventRef, Input, ProcessManager, Route};
use crate::{
    Error, EventStore, NewEvent, RecordedEvent, Snapshot, SnapshotStore, StreamId, Upcasters,
};

/// How many journal events one read fetches while loading.
const PAGE: usize = 512;

/// What a snapshot stores: the state and the bookkeeping, at the bookkeeping's version.
#[derive(Serialize, Deserialize)]
struct Saved<P> {
    state: P,
    books: Bookkeeping,
}

#[derive(Serialize)]
struct SavedRef<'a, P> {
    state: &'a P,
    books: &'a Bookkeeping,
}

impl<P: ProcessManager> Instance<P> {
    /// Loads the instance in `stream`: the newest snapshot of `P::SNAPSHOT_VERSION` (one of
    /// another version, or one that does not decode, is ignored), then the journal after it.
    pub(crate) async fn load<S>(
        store: &S,
        stream: &StreamId,
        upcasters: &Upcasters,
    ) -> Result<Self, Error>
    where
        S: EventStore + SnapshotStore + ?Sized,
    {
        let mut instance = match store.load_snapshot(stream).await? {
            Some(snapshot) if snapshot.schema_version == P::SNAPSHOT_VERSION => {
                match serde_json::from_value::<Saved<P>>(snapshot.state) {
                    Ok(saved) if saved.books.version == snapshot.version => {
                        Self::from_parts(saved.state, saved.books)
                    }
                    _ => Self::default(),
                }
            }
            _ => Self::default(),
        };
        loop {
            let from = instance.books.version.next();
            let page = store.read_stream(stream, from, PAGE).await?;
            let full = page.len() == PAGE;
            instance.replay(&page, upcasters)?;
            if !full {
                return Ok(instance);
            }
        }
    }

    /// Folds journal events (in version order) into the instance.
    pub(crate) fn replay(
        &mut self,
        events: &[RecordedEvent],
        upcasters: &Upcasters,
    ) -> Result<(), Error> {
        for event in events {
            self.replay_event(event, upcasters)?;
        }
        Ok(())
    }

    /// Folds one journal event: applies the recorded input and folds the recorded decision.
    pub(crate) fn replay_event(
        &mut self,
        event: &RecordedEvent,
        upcasters: &Upcasters,
    ) -> Result<(), Error> {
        let received: InputReceived = decode(event, INPUT_RECEIVED)?;
        let input = input_of::<P>(&received.kind, &self.books, upcasters, event)?;
        self.books.receive(&received);
        if let Some(input) = input {
            self.state.apply(&input);
        }
        self.books.decide(
            received.input,
            &received.actions,
            received.at,
            event.version,
        );
        Ok(())
    }

    /// The snapshot of this instance, at its version.
    pub(crate) fn snapshot(&self, stream: &StreamId) -> Result<Snapshot, Error> {
        let state = serde_json::to_value(SavedRef {
            state: &self.state,
            books: &self.books,
        })
        .map_err(|source| Error::Snapshot {
            stream_id: stream.clone(),
            source,
        })?;
        Ok(Snapshot::new(
            stream.clone(),
            self.books.version,
            P::SNAPSHOT_VERSION,
            state,
        ))
    }
}

fn decode<T: serde::de::DeserializeOwned>(
    event: &RecordedEvent,
    expected: &str,
) -> Result<T, Error> {
    if event.event_type != expected {
        return Err(Error::process(
            "journal",
            format!(
                "{}@{} holds {}, where {expected} was expected",
                event.stream_id, event.version, event.event_type
            ),
        ));
    }
    serde::Deserialize::deserialize(&event.payload).map_err(|source| Error::Decode {
        stream_id: Some(event.stream_id.clone()),
        version: Some(event.version),
        event_type: event.event_type.clone(),
        source,
    })
}

/// The typed input a journal entry recorded, given the bookkeeping before it (which holds the
/// commands outcomes answer). A recorded event is upcast and routed again, so the user's
/// upcasters and decoding apply to it; one that `route` now ignores is not applied (its
/// recorded decision still is folded). `at` names the journal event, for errors.
pub(crate) fn input_of<P: ProcessManager>(
    kind: &ReceivedKind,
    books: &Bookkeeping,
    upcasters: &Upcasters,
    at: &RecordedEvent,
) -> Result<Option<Input<P>>, Error> {
    let data = |what: &str, source: serde_json::Error| Error::Decode {
        stream_id: Some(at.stream_id.clone()),
        version: Some(at.version),
        event_type: format!("{INPUT_RECEIVED} ({what})"),
        source,
    };
    let command = |step: &crate::process::manager::Step| {
        let pending = books.pending_command(step).ok_or_else(|| {
            Error::process(
                P::TYPE,
                format!(
                    "{}@{} records the outcome of command {}, which is not pending",
                    at.stream_id, at.version, step.command_id
                ),
            )
        })?;
        serde_json::from_value::<P::Command>(pending.command.clone())
            .map_err(|e| data("command", e))
    };
    Ok(match kind {
        ReceivedKind::Event {
            source,
            event_type,
            schema_version,
            payload,
            metadata,
        } => {
            let event = RecordedEvent::new(
                source.stream.clone(),
                source.version,
                source.position,
                NewEvent::from_parts(
                    event_type.clone(),
                    *schema_version,
                    payload.clone(),
                    metadata.clone(),
                ),
                at.recorded_at,
            );
            let event = upcasters.upcast(event)?;
            match P::route(&event)? {
                Route::Start { trigger, .. } | Route::Continue { trigger, .. } => {
                    Some(Input::Event {
                        trigger,
                        source: EventRef::of(&event),
                    })
                }
                Route::Ignore => None,
            }
        }
        ReceivedKind::Timeout {
            key,
            due_at,
            payload,
            ..
        } => Some(Input::Timeout {
            key: key.clone(),
            payload: serde::Deserialize::deserialize(payload).map_err(|e| data("timeout", e))?,
            due_at: *due_at,
        }),
        ReceivedKind::Accepted { step } => Some(Input::Accepted {
            step: *step,
            command: command(step)?,
        }),
        ReceivedKind::Rejected { step, error } => Some(Input::Rejected {
            step: *step,
            command: command(step)?,
            error: serde::Deserialize::deserialize(error).map_err(|e| data("rejection", e))?,
        }),
    })
}
