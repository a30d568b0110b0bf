//! Driving a batch: each event becomes an input of one instance (or nothing); the batch is
//! grouped by instance, up to `concurrency` instances are driven at once, and each one takes
//! its inputs in feed order (`run.rs`): load (from the `cache`, or a snapshot and the journal),
//! skip what is recorded or stale, record the input with its decision, send what is pending
//! and record the round's outcomes in one write, until nothing is left to send. The batch is
//! done (and the runner may save the checkpoint) only once every instance in it is quiescent.

mod cache;
mod run;
mod span;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use tokio::task::JoinSet;
use tracing::Instrument;

use super::alarm::Alarm;
use super::dispatch::CommandDispatcher;
use super::ids::InputId;
use super::instance::Received;
use super::journal::{ReceivedKind, TimeoutFired, INPUT_RECEIVED, TIMEOUT_FIRED};
use super::manager::{EventRef, Input, ProcessManager, Route};
use super::options::ProcessOptions;
use super::reply::{reply_category, CommandReplied, COMMAND_REPLIED};
use super::store::ProcessManagerStore;
use crate::projection::{ProjectionError, Rejected};
use crate::{Error, Position, RecordedEvent, Upcasters};

use cache::Cache;

/// What drives process manager `P`: the store, the dispatcher, the options, and the instances
/// kept loaded. Shared by the projection and the timer pump.
pub(crate) struct Driver<P, S, D> {
    pub(crate) store: S,
    dispatcher: D,
    pub(crate) options: ProcessOptions,
    pub(crate) upcasters: Upcasters,
    cache: Mutex<Cache<P>>,
    /// Wakes the timer pump when a record schedules a timeout due before its sleep ends.
    pub(crate) alarm: Alarm,
    timer_category: String,
    reply_category: String,
}

/// One input on its way to an instance.
pub(super) struct Arrival<P: ProcessManager> {
    /// The feed position of the event that brought it (where poison is parked).
    position: Position,
    /// Whether it may start the instance (`Route::Start`).
    starts: bool,
    body: Body<P>,
}

/// What an arrival brings.
pub(super) enum Body<P: ProcessManager> {
    /// An input known without the instance: an event, a fired timeout.
    Input(Received<P>),
    /// The reply to a forwarded command: which step it answers, and the command, are read
    /// from the loaded instance's pending commands (`run.rs`).
    Reply(CommandReplied),
}

/// Why driving an instance stopped short.
pub(super) enum Halt {
    /// A retry may cure it: the whole batch is retried.
    Transient(Error),
    /// It never will: the trigger is parked under the instance's key.
    Poison(String),
}

impl Halt {
    /// A store or dispatch error, by its kind.
    fn of(error: Error) -> Self {
        if error.is_transient() || error.is_conflict() {
            Halt::Transient(error)
        } else {
            Halt::Poison(error.to_string())
        }
    }
}

impl<P, S, D> Driver<P, S, D>
where
    P: ProcessManager,
    S: ProcessManagerStore,
    D: CommandDispatcher<P::Command, Rejection = P::Rejection> + 'static,
{
    pub(crate) fn new(store: S, dispatcher: D, mut options: ProcessOptions) -> Self {
        // The builder's floors, for fields set directly (they are public).
        options.concurrency = options.concurrency.max(1);
        options.timer_batch = options.timer_batch.max(1);
        Self {
            store,
            dispatcher,
            cache: Mutex::new(Cache::new(options.cache)),
            options,
            upcasters: Upcasters::new(),
            alarm: Alarm::default(),
            timer_category: format!("{}_timer", P::TYPE),
            reply_category: reply_category(P::TYPE),
        }
    }

    /// Forgets every loaded instance.
    pub(crate) fn clear_cache(&self) {
        self.cache
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clear();
    }

    /// Whether `event` is one of this process's fired timeouts.
    fn is_timer(&self, event: &RecordedEvent) -> bool {
        event.event_type == TIMEOUT_FIRED && event.stream_id.category() == self.timer_category
    }

    /// Whether `event` is a reply to one of this process's forwarded commands.
    fn is_reply(&self, event: &RecordedEvent) -> bool {
        event.event_type == COMMAND_REPLIED && event.stream_id.category() == self.reply_category
    }

    /// Whether `event` is in this process's own journal (never an input).
    fn is_journal(event: &RecordedEvent) -> bool {
        event.stream_id.category() == P::TYPE && event.event_type == INPUT_RECEIVED
    }

    /// The instance an event goes to, without decoding more than that: the projection's key.
    pub(crate) fn instance_of(&self, event: &RecordedEvent) -> Option<String> {
        if Self::is_journal(event) {
            None
        } else if self.is_timer(event) {
            <TimeoutFired as serde::Deserialize>::deserialize(&event.payload)
                .ok()
                .map(|fired| fired.instance)
        } else if self.is_reply(event) {
            <CommandReplied as serde::Deserialize>::deserialize(&event.payload)
                .ok()
                .map(|reply| reply.instance)
        } else {
            P::route(event).ok()?.instance().map(str::to_owned)
        }
    }

    /// The input `event` brings, and to which instance; `None` when it is not for this process.
    fn arrival(&self, event: &RecordedEvent) -> Result<Option<(String, Arrival<P>)>, Error> {
        if Self::is_journal(event) {
            return Ok(None);
        }
        if self.is_timer(event) {
            let fired: TimeoutFired =
                serde::Deserialize::deserialize(&event.payload).map_err(|source| {
                    Error::Decode {
                        stream_id: Some(event.stream_id.clone()),
                        version: Some(event.version),
                        event_type: event.event_type.clone(),
                        source,
                    }
                })?;
            let payload = serde::Deserialize::deserialize(&fired.payload).map_err(|source| {
                Error::Decode {
                    stream_id: Some(event.stream_id.clone()),
                    version: Some(event.version),
                    event_type: format!("{} (timeout payload)", event.event_type),
                    source,
                }
            })?;
            let arrival = Arrival {
                position: event.position,
                starts: false,
                body: Body::Input(Received {
                    input: Input::Timeout {
                        key: fired.key.clone(),
                        payload,
                        due_at: fired.due_at,
                    },
                    id: InputId::of_timeout(fired.timeout_id),
                    kind: ReceivedKind::of_timeout(&fired),
                }),
            };
            return Ok(Some((fired.instance, arrival)));
        }
        if self.is_reply(event) {
            let reply: CommandReplied =
                serde::Deserialize::deserialize(&event.payload).map_err(|source| {
                    Error::Decode {
                        stream_id: Some(event.stream_id.clone()),
                        version: Some(event.version),
                        event_type: event.event_type.clone(),
                        source,
                    }
                })?;
            let arrival = Arrival {
                position: event.position,
                starts: false,
                body: Body::Reply(reply.clone()),
            };
            return Ok(Some((reply.instance, arrival)));
        }
        let (instance, trigger, starts) = match P::route(event)? {
            Route::Start { instance, trigger } => (instance, trigger, true),
            Route::Continue { instance, trigger } => (instance, trigger, false),
            Route::Ignore => return Ok(None),
        };
        let arrival = Arrival {
            position: event.position,
            starts,
            body: Body::Input(Received {
                input: Input::Event {
                    trigger,
                    source: EventRef::of(event),
                },
                id: InputId::of_event(event.metadata.event_id),
                kind: ReceivedKind::of_event(event),
            }),
        };
        Ok(Some((instance, arrival)))
    }

    /// Drives a batch: `Ok` once every instance in it is quiescent; `Poison` lists the events
    /// that cannot be handled and the later events of their instances; `Transient` when a retry
    /// of the whole batch may succeed (what was done is found recorded then).
    pub(crate) async fn apply(
        self: &Arc<Self>,
        events: &[RecordedEvent],
    ) -> Result<(), ProjectionError> {
        let mut poison = Vec::new();
        let mut order: Vec<String> = Vec::new();
        let mut groups: HashMap<String, Vec<Arrival<P>>> = HashMap::new();
        for event in events {
            match self.arrival(event) {
                Ok(Some((instance, arrival))) => {
                    let group = groups.entry(instance.clone()).or_insert_with(|| {
                        order.push(instance);
                        Vec::new()
                    });
                    group.push(arrival);
                }
                Ok(None) => {}
                // A trigger a newer release wrote: the whole batch waits for that release
                // (nothing is driven yet).
                Err(error) if error.is_transient() => {
                    return Err(ProjectionError::Transient(Box::new(error)));
                }
                Err(error) => poison.push(Rejected::new(event.position, error)),
            }
        }

        let mut transient = None;
        let mut running = JoinSet::new();
        let mut queue = order.into_iter();
        loop {
            while running.len() < self.options.concurrency {
                let Some(instance) = queue.next() else { break };
                let arrivals = groups.remove(&instance).unwrap_or_default();
                running.spawn(run::drive(self.clone(), instance, arrivals).in_current_span());
            }
            let Some(joined) = running.join_next().await else {
                break;
            };
            match joined {
                Ok(Ok(())) => {}
                Ok(Err((positions, Halt::Poison(error)))) => poison.extend(
                    positions
                        .into_iter()
                        .map(|position| Rejected::new(position, &error)),
                ),
                Ok(Err((_, Halt::Transient(error)))) => {
                    transient.get_or_insert(error);
                }
                // A panic in `apply`, `decide` or a dispatcher is the worker's panic: the
                // runner's supervisor reports it (the other drives are aborted with the set).
                Err(join) if join.is_panic() => std::panic::resume_unwind(join.into_panic()),
                Err(join) => {
                    transient.get_or_insert(Error::process(
                        P::TYPE,
                        format!("driving an instance was cancelled: {join}"),
                    ));
                }
            }
        }
        if let Some(error) = transient {
            return Err(ProjectionError::Transient(Box::new(error)));
        }
        if poison.is_empty() {
            Ok(())
        } else {
            Err(ProjectionError::Poison(poison))
        }
    }
}
