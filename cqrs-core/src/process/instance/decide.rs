//! [`Instance`] and [`Instance::decide_input`]: the pure step from one input to what to record
//! and send. The engine's `drive` and the fixture both call it, so tests cannot drift from
//! production.

use std::borrow::Borrow;
use std::collections::BTreeMap;

use serde_json::Value;
use time::OffsetDateTime;

use super::Bookkeeping;
use crate::process::ids::{self, InputId};
use crate::process::journal::{
    DecidedAction, InputReceived, ReceivedKind, RecordedAction, INPUT_RECEIVED,
};
use crate::process::manager::{Action, Context, Due, Input, ProcessManager, Step};
use crate::process::store::{InstanceRow, ProcessRecord, TimeoutChange};
use crate::{Error, ExpectedVersion, Metadata, NewEvent, StreamId, Version};

/// One instance in memory: the user's state and the framework's bookkeeping.
#[derive(Debug, Default)]
pub(crate) struct Instance<P> {
    /// The user's state, folded by [`ProcessManager::apply`].
    pub(crate) state: P,
    /// Version, pending commands, live timeouts, recent inputs, life cycle.
    pub(crate) books: Bookkeeping,
}

/// What deciding one input produced: the journal event to append at `expected`, the netted
/// timeout changes and the status row to write with it, and the commands to send.
#[derive(Debug)]
pub(crate) struct Decision<P: ProcessManager> {
    /// The journal's version the event must be appended at.
    pub(crate) expected: Version,
    /// The one `ProcessInputReceived` (the input and its actions), with a derived event id.
    pub(crate) events: Vec<NewEvent>,
    /// The actions as recorded (`Due::After` resolved, ids derived).
    pub(crate) actions: Vec<DecidedAction>,
    /// At most one change per key.
    pub(crate) timeouts: Vec<TimeoutChange>,
    /// The instance's status after the input.
    pub(crate) status: InstanceRow,
    /// The commands this decision sends, typed, with their steps.
    pub(crate) commands: Vec<(Step, P::Command)>,
}

impl<P: ProcessManager> Decision<P> {
    /// The atomic write of this decision to the instance's stream.
    pub(crate) fn into_record(self, stream: StreamId) -> ProcessRecord {
        ProcessRecord::new(
            stream,
            ExpectedVersion::Exact(self.expected),
            self.events,
            self.timeouts,
            self.status,
        )
    }
}

impl<P: ProcessManager> Instance<P> {
    /// An instance from its parts (a snapshot, the fixture's given state).
    pub(crate) fn from_parts(state: P, books: Bookkeeping) -> Self {
        Self { state, books }
    }

    /// The instance's stream, `"{TYPE}-{instance}"`.
    pub(crate) fn stream(instance: &str) -> Result<StreamId, Error> {
        Ok(StreamId::with_category(P::TYPE, instance)?)
    }

    /// Decides `input` (whose id is `id` and whose journal form is `kind`) at `now`: receives
    /// it into the bookkeeping, applies it to the state, asks `decide` (unless the instance has
    /// ended: an ended instance still folds the outcomes of commands it had decided, but
    /// decides nothing), resolves `Due::After`, derives the command and timeout ids, and folds
    /// the decision. Pure: no store, no clock but `now`.
    ///
    /// The instance is changed in place; if recording the decision fails, the caller drops it
    /// and loads the instance again.
    pub(crate) fn decide_input(
        &mut self,
        instance: &str,
        input: Input<P>,
        id: InputId,
        kind: ReceivedKind,
        now: OffsetDateTime,
    ) -> Result<Decision<P>, Error> {
        self.decide_inputs(instance, [Received { input, id, kind }], now)
    }

    /// Decides `inputs` one after the other, as [`decide_input`](Self::decide_input) would
    /// each, into one decision written in one record: a journal event per input, in order; the
    /// timeout changes netted from before the first input to after the last; the status after
    /// the last. The journal is the same as recording each alone, so replay cannot tell.
    ///
    /// The inputs may be borrowed: the engine keeps them to decide again after a conflict.
    pub(crate) fn decide_inputs<I>(
        &mut self,
        instance: &str,
        inputs: I,
        now: OffsetDateTime,
    ) -> Result<Decision<P>, Error>
    where
        I: IntoIterator,
        I::Item: Borrow<Received<P>>,
    {
        let expected = self.books.version;
        let was_final = self.books.state.is_final();
        let before = self.books.timeouts.clone();
        let mut draft = Draft {
            events: Vec::new(),
            actions: Vec::new(),
            commands: Vec::new(),
        };
        let mut last_input = String::new();
        for received in inputs {
            let received = received.borrow();
            last_input = describe(&received.kind, &self.books);
            self.decide_one(instance, received, now, &mut draft)?;
        }
        // The payloads scheduled, by key: a later schedule of a key replaces an earlier one.
        let scheduled: BTreeMap<&str, &Value> = (draft.actions.iter())
            .filter_map(|a| match &a.action {
                RecordedAction::Schedule { key, payload, .. } => Some((key.as_str(), payload)),
                _ => None,
            })
            .collect();
        let timeouts = self.books.timeout_changes(&before, was_final, &scheduled);
        Ok(Decision {
            expected,
            events: draft.events,
            actions: draft.actions,
            timeouts,
            status: self.books.status_row(instance, last_input),
            commands: draft.commands,
        })
    }

    /// One input of [`decide_inputs`](Self::decide_inputs), added to `draft`.
    fn decide_one(
        &mut self,
        instance: &str,
        Received { input, id, kind }: &Received<P>,
        now: OffsetDateTime,
        draft: &mut Draft<P>,
    ) -> Result<(), Error> {
        let id = *id;
        let expected = self.books.version;
        let was_final = self.books.state.is_final();
        let mut received = InputReceived {
            input: id,
            at: now,
            kind: kind.clone(),
            actions: Vec::new(),
        };
        self.books.receive(&received);
        self.state.apply(input);
        let actions = if was_final {
            Vec::new()
        } else {
            let context = Context::new(
                now,
                instance,
                self.books.correlation_id,
                &self.books.timeouts,
                self.books.pending.len(),
            );
            self.state.decide(input, &context)
        };

        let mut recorded = Vec::with_capacity(actions.len());
        for (index, action) in actions.into_iter().enumerate() {
            let index = u32::try_from(index)
                .map_err(|_| Error::process(P::TYPE, "decide returned too many actions"))?;
            let action = match action {
                Action::Send(command) => {
                    let command_id = ids::command_id(P::TYPE, instance, id, index);
                    let json = encode(&command)?;
                    draft.commands.push((
                        Step {
                            input: id,
                            index,
                            command_id,
                        },
                        command,
                    ));
                    RecordedAction::Send {
                        command: json,
                        command_id,
                    }
                }
                Action::Schedule { key, due, payload } => RecordedAction::Schedule {
                    key,
                    timeout_id: ids::timeout_id(P::TYPE, instance, id, index),
                    due_at: match due {
                        Due::At(at) => at,
                        // Checked: a duration past the calendar (`Duration::MAX` for "never")
                        // is the process's error, not a panic of the runner.
                        Due::After(after) => time::Duration::try_from(after)
                            .ok()
                            .and_then(|after| now.checked_add(after))
                            .ok_or_else(|| {
                                Error::process(
                                    P::TYPE,
                                    format!("a timeout {after:?} from now is past the calendar"),
                                )
                            })?,
                    },
                    payload: encode(&payload)?,
                },
                Action::Cancel { key } => RecordedAction::Cancel { key },
                Action::Complete => RecordedAction::Complete,
                Action::Fail { reason } => RecordedAction::Fail { reason },
            };
            recorded.push(DecidedAction { index, action });
        }
        self.books.decide(id, &recorded, now, expected.next());
        received.actions.clone_from(&recorded);
        draft.events.push(journal_event(
            INPUT_RECEIVED,
            &received,
            ids::received_event_id(P::TYPE, instance, id),
            id,
            &self.books,
        )?);
        draft.actions.extend(recorded);
        Ok(())
    }
}

/// What the inputs of one decision produced so far.
struct Draft<P: ProcessManager> {
    events: Vec<NewEvent>,
    actions: Vec<DecidedAction>,
    commands: Vec<(Step, P::Command)>,
}

/// One input to decide: what [`ProcessManager::apply`] and [`ProcessManager::decide`] see, its
/// id, and its journal form.
pub(crate) struct Received<P: ProcessManager> {
    /// The input.
    pub(crate) input: Input<P>,
    /// Its id (the trigger's event id, a fired timeout's id, an outcome's command id).
    pub(crate) id: InputId,
    /// How the journal records it.
    pub(crate) kind: ReceivedKind,
}

// By hand: a derived `Clone` would ask `P` itself to be `Clone`.
impl<P: ProcessManager> Clone for Received<P> {
    fn clone(&self) -> Self {
        Self {
            input: self.input.clone(),
            id: self.id,
            kind: self.kind.clone(),
        }
    }
}

fn encode<T: serde::Serialize>(value: &T) -> Result<Value, Error> {
    serde_json::to_value(value).map_err(|source| Error::Encode {
        event_type: INPUT_RECEIVED.to_owned(),
        source,
    })
}

fn journal_event<T: serde::Serialize>(
    event_type: &str,
    payload: &T,
    event_id: crate::EventId,
    input: InputId,
    books: &Bookkeeping,
) -> Result<NewEvent, Error> {
    let payload = serde_json::to_value(payload).map_err(|source| Error::Encode {
        event_type: event_type.to_owned(),
        source,
    })?;
    let mut metadata = Metadata::new(event_id).with_causation_id(input.as_uuid());
    if let Some(correlation) = books.correlation_id {
        metadata = metadata.with_correlation_id(correlation);
    }
    Ok(NewEvent::new(event_type, 1, payload).with_metadata(metadata))
}

/// The status row's `last_input`, for people: `"event OrderPlaced"`, `"timeout shipping"`,
/// `"accepted Stock"`, `"rejected Payment"`.
fn describe(kind: &ReceivedKind, books: &Bookkeeping) -> String {
    let command = |step: &Step| {
        books
            .pending_command(step)
            .map_or_else(|| "command".to_owned(), |p| command_label(&p.command))
    };
    match kind {
        ReceivedKind::Event { event_type, .. } => format!("event {event_type}"),
        ReceivedKind::Timeout { key, .. } => format!("timeout {key}"),
        ReceivedKind::Accepted { step } => format!("accepted {}", command(step)),
        ReceivedKind::Rejected { step, .. } => format!("rejected {}", command(step)),
    }
}

/// A command's name from its JSON: an externally tagged enum's variant, an internally tagged
/// one's `type`, or a unit variant's string.
pub(crate) fn command_label(command: &Value) -> String {
    match command {
        Value::String(name) => name.clone(),
        Value::Object(map) => match map.get("type") {
            Some(Value::String(tag)) => tag.clone(),
            _ if map.len() == 1 => map.keys().next().cloned().unwrap_or_default(),
            _ => "command".to_owned(),
        },
        _ => "command".to_owned(),
    }
}
