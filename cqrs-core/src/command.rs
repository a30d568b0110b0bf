//! What goes into and comes out of the command pipeline: [`CommandContext`], [`CommandOutcome`]
//! and [`CommandError`].

use std::collections::BTreeMap;

use uuid::Uuid;

use crate::{CommandId, Error, EventId, Metadata, Position, Version};

/// Tracing and idempotency data a caller sends along with a command.
///
/// ```
/// use cqrs_core::{CommandContext, CommandId};
/// use uuid::Uuid;
///
/// let request = Uuid::now_v7();
/// let context = CommandContext::new()
///     .command_id(CommandId::new())
///     .correlation_id(request)
///     .header("user", "alice");
/// # let _ = context;
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[must_use]
pub struct CommandContext {
    pub(crate) command_id: Option<CommandId>,
    pub(crate) correlation_id: Option<Uuid>,
    pub(crate) causation_id: Option<Uuid>,
    pub(crate) headers: BTreeMap<String, String>,
    pub(crate) first_delivery: bool,
    pub(crate) new_stream: bool,
}

/// The ids a [`CommandContext`] carries, as [`CommandContext::ids`] reads them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ContextIds {
    /// The command id the command is recorded under, if set.
    pub command_id: Option<CommandId>,
    /// The correlation id, if set.
    pub correlation_id: Option<Uuid>,
    /// The causation id, if set.
    pub causation_id: Option<Uuid>,
}

impl CommandContext {
    /// No command id, a fresh correlation id per command, no causation.
    pub fn new() -> Self {
        Self::default()
    }

    /// Makes the command idempotent: the store records `id` with the events, and the same id sent
    /// again gets the first outcome back instead of a second append.
    pub fn command_id(mut self, id: CommandId) -> Self {
        self.command_id = Some(id);
        self
    }

    /// The correlation id to record (default: a new one per command).
    pub fn correlation_id(mut self, id: Uuid) -> Self {
        self.correlation_id = Some(id);
        self
    }

    /// The causation id to record (default: the command id, if any).
    pub fn causation_id(mut self, id: Uuid) -> Self {
        self.causation_id = Some(id);
        self
    }

    /// Tells the repository that this command id has never been sent before, so it skips
    /// looking up a first outcome (one round trip) and runs the command at once. A wrong claim
    /// costs nothing but that lookup: the append refuses to record the id twice (answering
    /// with the first outcome), and a refusal under the claim is checked against the first
    /// outcome before it is returned. Process managers claim it for a step they have just
    /// recorded (a second worker whose term overlapped may still have sent it); after a
    /// crash they send without it.
    pub fn first_delivery(mut self) -> Self {
        self.first_delivery = true;
        self
    }

    /// Whether the sender claimed [`first_delivery`](Self::first_delivery).
    pub fn is_first_delivery(&self) -> bool {
        self.first_delivery
    }

    /// Tells the repository that the aggregate is new (its id was just made, as a fresh UUID
    /// is), so it decides on the initial state without loading the stream (one round trip
    /// saved) and appends expecting no events. If the stream has events after all, that append
    /// conflicts and writes nothing, and the command is loaded and run again at once, as after
    /// any conflict but without counting as a retry: a wrong claim costs a failed append, never
    /// a wrong event. A refusal, or a decision to record nothing, is never answered from the
    /// guessed state: the stream is loaded and the command decided again on its own state.
    /// [`Aggregate::handle`](crate::Aggregate::handle) may so run twice, once on the initial
    /// state, as it may after a conflict. A state the repository's cache holds wins over the
    /// claim.
    ///
    /// ```
    /// use cqrs_core::CommandContext;
    ///
    /// let context = CommandContext::new().new_stream();
    /// assert!(context.is_new_stream());
    /// assert!(!CommandContext::new().is_new_stream());
    /// ```
    pub fn new_stream(mut self) -> Self {
        self.new_stream = true;
        self
    }

    /// Whether the sender claimed [`new_stream`](Self::new_stream).
    pub fn is_new_stream(&self) -> bool {
        self.new_stream
    }

    /// The ids this context carries: command id, correlation id, causation id (each as set;
    /// unset ones are `None`, and the repository fills them in as documented on the setters).
    ///
    /// ```
    /// use cqrs_core::{CommandContext, CommandId};
    /// use uuid::Uuid;
    ///
    /// let id = CommandId::new();
    /// let correlation = Uuid::now_v7();
    /// let context = CommandContext::new().command_id(id).correlation_id(correlation);
    /// let ids = context.ids();
    /// assert_eq!(ids.command_id, Some(id));
    /// assert_eq!(ids.correlation_id, Some(correlation));
    /// assert_eq!(ids.causation_id, None);
    /// ```
    pub fn ids(&self) -> ContextIds {
        ContextIds {
            command_id: self.command_id,
            correlation_id: self.correlation_id,
            causation_id: self.causation_id,
        }
    }

    /// The extension headers every event of the command records (`traceparent`, a process
    /// manager's `process` and `process_instance`...).
    pub fn headers(&self) -> &BTreeMap<String, String> {
        &self.headers
    }

    /// Adds an extension header to every event the command records.
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.insert(name.into(), value.into());
        self
    }

    /// The context for a command that an event caused (in a saga or process manager): same
    /// correlation, caused by that event, and a command id derived from the event's id so that
    /// handling the event twice issues the command once. When one event causes several
    /// commands, use [`caused_by_step`](Self::caused_by_step).
    pub fn caused_by(metadata: &Metadata) -> Self {
        Self {
            command_id: Some(CommandId::from_uuid(metadata.event_id.as_uuid())),
            correlation_id: metadata.correlation_id,
            causation_id: Some(metadata.event_id.as_uuid()),
            headers: BTreeMap::new(),
            first_delivery: false,
            new_stream: false,
        }
    }

    /// Like [`caused_by`](Self::caused_by), for one of several commands the same event causes:
    /// each `step` gets its own stable command id (a UUID v5 of the event id and the step), so
    /// each command lands once however often the event is handled.
    pub fn caused_by_step(metadata: &Metadata, step: &str) -> Self {
        let id = Uuid::new_v5(&metadata.event_id.as_uuid(), step.as_bytes());
        Self {
            command_id: Some(CommandId::from_uuid(id)),
            ..Self::caused_by(metadata)
        }
    }

    /// The metadata for each event of one command execution.
    pub(crate) fn metadata_factory(&self) -> impl Fn() -> Metadata + '_ {
        let correlation_id = self.correlation_id.unwrap_or_else(Uuid::now_v7);
        let causation_id = self
            .causation_id
            .or_else(|| self.command_id.map(|c| c.as_uuid()));
        move || Metadata {
            event_id: EventId::new(),
            correlation_id: Some(correlation_id),
            causation_id,
            command_id: self.command_id,
            headers: self.headers.clone(),
        }
    }
}

/// What a command did.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct CommandOutcome<E> {
    /// The events the command recorded (empty when it decided nothing needed to happen).
    pub events: Vec<E>,
    /// The stream's version after the command.
    pub version: Version,
    /// The feed position of the last event recorded, if any: a caller can wait until a read
    /// model has reached it to read its own write.
    pub position: Option<Position>,
    /// `true` when the command id had been handled before: these are the first run's events and
    /// nothing was written now.
    pub duplicate: bool,
    /// How many attempts the command took (more than one after concurrency conflicts).
    pub attempts: u32,
}

/// Why a command failed. Its message says why on its own: the aggregate's reason for a
/// rejection, the store's error otherwise.
///
/// ```
/// use cqrs_core::testing::{Tally, TallyCommand};
/// use cqrs_core::{InMemoryEventStore, Repository};
///
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// let tallies = Repository::<Tally, _>::new(InMemoryEventStore::new());
/// tallies.execute("1", &TallyCommand::Close).await?;
/// let refused = tallies.execute("1", &TallyCommand::Add(vec![5])).await.unwrap_err();
/// assert_eq!(refused.to_string(), "command rejected: the tally is closed");
/// assert!(refused.rejection().is_some());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// # }).unwrap();
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CommandError<E: std::error::Error + 'static> {
    /// The aggregate refused the command with its own error (the message ends with it).
    #[error("command rejected: {0}")]
    Rejected(#[source] E),
    /// The framework or the store failed; [`Error::Conflict`] when retries ran out.
    #[error(transparent)]
    Store(#[from] Error),
}

impl<E: std::error::Error + 'static> CommandError<E> {
    /// The aggregate's error, if the aggregate refused the command.
    pub fn rejection(&self) -> Option<&E> {
        match self {
            CommandError::Rejected(e) => Some(e),
            CommandError::Store(_) => None,
        }
    }
}
