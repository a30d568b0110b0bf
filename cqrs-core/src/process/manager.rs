//! What users write: the [`ProcessManager`] trait and the values it reads and returns.

use std::collections::BTreeMap;
use std::fmt::{self, Debug};
use std::time::Duration;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use uuid::Uuid;

use super::ids::InputId;
use super::life::LiveTimeout;
use crate::{CommandId, Error, EventFilter, EventId, Position, RecordedEvent, StreamId, Version};

/// A long-running process (a saga): it reacts to events, sends commands, schedules timeouts,
/// and hears back whether each command was accepted or rejected.
///
/// Its state is folded by [`apply`](Self::apply) from the inputs the instance received, and
/// [`decide`](Self::decide) reads that state (with the new input already applied) to say what
/// to do. Both are pure: the framework records each input with the actions decided for it in
/// the instance's own stream, and never decides an input twice.
pub trait ProcessManager: Default + Serialize + DeserializeOwned + Send + Sync + 'static {
    /// The process's stable name. It names the instance streams (`"{TYPE}-{instance}"`), the
    /// timer streams (`"{TYPE}_timer-{timeout id}"`) and, as `"process:{TYPE}"`, the
    /// checkpoint, the lease and the dead letters. It must be a valid stream category, and
    /// one of its own: an aggregate of the same name would share its streams.
    const TYPE: &'static str;

    /// The version of the state's serialized form in snapshots: bump it when the state's
    /// shape changes, and older snapshots are ignored (the journal is replayed instead).
    const SNAPSHOT_VERSION: u32 = 1;

    /// A subscribed event, decoded by [`route`](Self::route) (usually the domain event enums).
    type Trigger: Clone + Debug + Send + Sync + 'static;

    /// What the process sends: which aggregate, and the command. It is recorded in the
    /// journal, so it is serde.
    type Command: Serialize + DeserializeOwned + Clone + Debug + Send + Sync + 'static;

    /// Why a command was refused: the aggregates' typed errors, recorded in the journal.
    type Rejection: Serialize + DeserializeOwned + Clone + Debug + Send + Sync + 'static;

    /// What a timeout brings back when it fires (often `()`).
    type Timeout: Serialize + DeserializeOwned + Clone + Debug + Send + Sync + 'static;

    /// The events the process listens to, pushed into the feed query.
    fn subscriptions() -> EventFilter;

    /// Which instance `event` starts or continues, with the decoded trigger. An `Err` is
    /// poison: the event is parked as a dead letter under its instance.
    fn route(event: &RecordedEvent) -> Result<Route<Self::Trigger>, Error>;

    /// Folds one received input into the state. It cannot fail and is the only way the state
    /// changes; replaying the journal calls it again for every recorded input.
    fn apply(&mut self, input: &Input<Self>);

    /// What to do now that `input` has been applied. Pure: it reads `self`, `input` and
    /// `context`, and its result is recorded, never recomputed.
    fn decide(&self, input: &Input<Self>, context: &Context<'_>) -> Vec<Action<Self>>;
}

/// Where an event goes: which instance it starts or continues, if any.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Route<T> {
    /// Starts the instance (or continues it, if it already exists).
    Start {
        /// The instance id: the order id, a correlation id...
        instance: String,
        /// The decoded event.
        trigger: T,
    },
    /// Continues the instance; ignored when the instance has not started.
    Continue {
        /// The instance id.
        instance: String,
        /// The decoded event.
        trigger: T,
    },
    /// The event is of no interest to this process.
    Ignore,
}

impl<T> Route<T> {
    /// Starts (or continues) `instance` with `trigger`.
    pub fn start(instance: impl Into<String>, trigger: T) -> Self {
        Route::Start {
            instance: instance.into(),
            trigger,
        }
    }

    /// Continues `instance` with `trigger`, if it has started.
    pub fn continue_with(instance: impl Into<String>, trigger: T) -> Self {
        Route::Continue {
            instance: instance.into(),
            trigger,
        }
    }

    /// Starts the instance named by the event's correlation id.
    pub fn start_by_correlation(event: &RecordedEvent, trigger: T) -> Result<Self, Error> {
        Ok(Self::start(correlation(event)?, trigger))
    }

    /// Continues the instance named by the event's correlation id.
    pub fn continue_by_correlation(event: &RecordedEvent, trigger: T) -> Result<Self, Error> {
        Ok(Self::continue_with(correlation(event)?, trigger))
    }

    /// The instance this route names, if any.
    pub fn instance(&self) -> Option<&str> {
        match self {
            Route::Start { instance, .. } | Route::Continue { instance, .. } => Some(instance),
            Route::Ignore => None,
        }
    }
}

fn correlation(event: &RecordedEvent) -> Result<String, Error> {
    event
        .metadata
        .correlation_id
        .map(|id| id.to_string())
        .ok_or_else(|| {
            Error::process(
                "route",
                format!(
                    "event {} at {}@{} has no correlation id to route by",
                    event.event_type, event.stream_id, event.version
                ),
            )
        })
}

/// Which event a trigger came from.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventRef {
    /// Its stream.
    pub stream: StreamId,
    /// Its version in the stream.
    pub version: Version,
    /// Its feed position.
    pub position: Position,
    /// Its id.
    pub event_id: EventId,
}

impl EventRef {
    /// The reference to a recorded event.
    pub fn of(event: &RecordedEvent) -> Self {
        Self {
            stream: event.stream_id.clone(),
            version: event.version,
            position: event.position,
            event_id: event.metadata.event_id,
        }
    }
}

/// One command the process decided to send: the input that decided it, its index among that
/// input's actions, and the command id derived from both.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Step {
    /// The input whose decision sent the command.
    pub input: InputId,
    /// The action's index in that decision.
    pub index: u32,
    /// The command id the command was sent with.
    pub command_id: CommandId,
}

/// Something an instance received: what [`ProcessManager::apply`] folds and
/// [`ProcessManager::decide`] answers.
#[non_exhaustive]
pub enum Input<P: ProcessManager> {
    /// A subscribed event.
    Event {
        /// The decoded event.
        trigger: P::Trigger,
        /// Where it was recorded.
        source: EventRef,
    },
    /// A timeout scheduled under `key` fired.
    Timeout {
        /// The key it was scheduled under.
        key: String,
        /// What it was scheduled with.
        payload: P::Timeout,
        /// When it was due.
        due_at: OffsetDateTime,
    },
    /// A command the instance sent was accepted (its events are recorded).
    Accepted {
        /// Which step sent it.
        step: Step,
        /// The command.
        command: P::Command,
    },
    /// A command the instance sent was refused by its aggregate: compensate here.
    Rejected {
        /// Which step sent it.
        step: Step,
        /// The command.
        command: P::Command,
        /// The aggregate's typed error.
        error: P::Rejection,
    },
}

// Clone and Debug by hand: derived ones would ask `P` itself to be `Clone` and `Debug`.
impl<P: ProcessManager> Clone for Input<P> {
    fn clone(&self) -> Self {
        match self {
            Input::Event { trigger, source } => Input::Event {
                trigger: trigger.clone(),
                source: source.clone(),
            },
            Input::Timeout {
                key,
                payload,
                due_at,
            } => Input::Timeout {
                key: key.clone(),
                payload: payload.clone(),
                due_at: *due_at,
            },
            Input::Accepted { step, command } => Input::Accepted {
                step: *step,
                command: command.clone(),
            },
            Input::Rejected {
                step,
                command,
                error,
            } => Input::Rejected {
                step: *step,
                command: command.clone(),
                error: error.clone(),
            },
        }
    }
}

impl<P: ProcessManager> fmt::Debug for Input<P> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Input::Event { trigger, source } => f
                .debug_struct("Event")
                .field("trigger", trigger)
                .field("source", source)
                .finish(),
            Input::Timeout {
                key,
                payload,
                due_at,
            } => f
                .debug_struct("Timeout")
                .field("key", key)
                .field("payload", payload)
                .field("due_at", due_at)
                .finish(),
            Input::Accepted { step, command } => f
                .debug_struct("Accepted")
                .field("step", step)
                .field("command", command)
                .finish(),
            Input::Rejected {
                step,
                command,
                error,
            } => f
                .debug_struct("Rejected")
                .field("step", step)
                .field("command", command)
                .field("error", error)
                .finish(),
        }
    }
}

/// When a timeout is due.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Due {
    /// At an instant.
    At(OffsetDateTime),
    /// This long after the decision (by the process's clock).
    After(Duration),
}

/// What an instance decided to do.
#[non_exhaustive]
pub enum Action<P: ProcessManager> {
    /// Sends a command through the dispatcher, with a command id derived from (instance,
    /// input, action index). Its outcome comes back as [`Input::Accepted`] or
    /// [`Input::Rejected`].
    Send(P::Command),
    /// Schedules a timeout under `key`, replacing any live one under the same key.
    Schedule {
        /// The key: at most one live timeout per key and instance.
        key: String,
        /// When it is due.
        due: Due,
        /// What comes back in [`Input::Timeout`].
        payload: P::Timeout,
    },
    /// Cancels the timeout under `key`, if any: it will not fire.
    Cancel {
        /// The key.
        key: String,
    },
    /// Ends the instance once no command it sent is waiting for its outcome; later inputs are
    /// ignored and its live timeouts are cancelled.
    Complete,
    /// Ends the instance as failed, for operators to look at. Commands already decided still
    /// go out.
    Fail {
        /// Why, for operators.
        reason: String,
    },
}

impl<P: ProcessManager> Clone for Action<P> {
    fn clone(&self) -> Self {
        match self {
            Action::Send(command) => Action::Send(command.clone()),
            Action::Schedule { key, due, payload } => Action::Schedule {
                key: key.clone(),
                due: *due,
                payload: payload.clone(),
            },
            Action::Cancel { key } => Action::Cancel { key: key.clone() },
            Action::Complete => Action::Complete,
            Action::Fail { reason } => Action::Fail {
                reason: reason.clone(),
            },
        }
    }
}

impl<P: ProcessManager> fmt::Debug for Action<P> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Action::Send(command) => f.debug_tuple("Send").field(command).finish(),
            Action::Schedule { key, due, payload } => f
                .debug_struct("Schedule")
                .field("key", key)
                .field("due", due)
                .field("payload", payload)
                .finish(),
            Action::Cancel { key } => f.debug_struct("Cancel").field("key", key).finish(),
            Action::Complete => f.write_str("Complete"),
            Action::Fail { reason } => f.debug_struct("Fail").field("reason", reason).finish(),
        }
    }
}

impl<P: ProcessManager> Action<P> {
    /// Sends `command`.
    pub fn send(command: P::Command) -> Self {
        Action::Send(command)
    }

    /// Schedules the timeout `key` to fire `after` the decision.
    pub fn after(key: impl Into<String>, after: Duration, payload: P::Timeout) -> Self {
        Action::Schedule {
            key: key.into(),
            due: Due::After(after),
            payload,
        }
    }

    /// Schedules the timeout `key` to fire at `at`.
    pub fn at(key: impl Into<String>, at: OffsetDateTime, payload: P::Timeout) -> Self {
        Action::Schedule {
            key: key.into(),
            due: Due::At(at),
            payload,
        }
    }

    /// Cancels the timeout `key`.
    pub fn cancel(key: impl Into<String>) -> Self {
        Action::Cancel { key: key.into() }
    }

    /// Fails the instance with `reason`.
    pub fn fail(reason: impl Into<String>) -> Self {
        Action::Fail {
            reason: reason.into(),
        }
    }
}

/// What [`ProcessManager::decide`] may read besides the state and the input.
#[derive(Clone, Debug)]
pub struct Context<'a> {
    /// The process clock's time of the decision.
    pub now: OffsetDateTime,
    /// The instance id.
    pub instance: &'a str,
    /// The instance's correlation id (from the event that started it), if any.
    pub correlation_id: Option<Uuid>,
    timeouts: &'a BTreeMap<String, LiveTimeout>,
    pending: usize,
}

impl<'a> Context<'a> {
    /// A context, for the engine and the fixture.
    pub(crate) fn new(
        now: OffsetDateTime,
        instance: &'a str,
        correlation_id: Option<Uuid>,
        timeouts: &'a BTreeMap<String, LiveTimeout>,
        pending: usize,
    ) -> Self {
        Self {
            now,
            instance,
            correlation_id,
            timeouts,
            pending,
        }
    }

    /// When the live timeout under `key` is due, if one is scheduled.
    pub fn timeout(&self, key: &str) -> Option<OffsetDateTime> {
        self.timeouts.get(key).map(|t| t.due_at)
    }

    /// How many commands the instance sent whose outcome has not come back yet.
    pub fn pending_commands(&self) -> usize {
        self.pending
    }
}
