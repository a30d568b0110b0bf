//! [`ProcessManagerProjection`]: a process manager run as a projection on the one engine.
//!
//! Checkpoints, the fenced lease, dead letters, the breaker and backoff, upcasting, status
//! and `catch_up` are the [`ProjectionRunner`]'s, unchanged. This adds what a process needs:
//! its filter and key, `apply` = drive the batch's instances until quiescent, and the timer
//! pump while this worker leads.

use std::sync::{Arc, Mutex, PoisonError};

use async_trait::async_trait;

use super::dispatch::CommandDispatcher;
use super::drive::Driver;
use super::journal::TIMEOUT_FIRED;
use super::manager::ProcessManager;
use super::options::ProcessOptions;
use super::pump::Pump;
use super::reply::{reply_category, COMMAND_REPLIED};
use super::store::ProcessManagerStore;
use crate::projection::{Projection, ProjectionError, ProjectionRunner, RunnerOptions};
use crate::{EventFilter, RecordedEvent, Upcasters};

/// Runs process manager `P` over store `S`, sending its commands through dispatcher `D`.
///
/// Its name (the checkpoint, the lease, the dead letters) is `"process:{TYPE}"`. An event
/// that cannot be handled (a `route` error, a command the dispatcher fails on for good) is
/// parked under its instance's stream id, holding back that instance's later events only.
/// The checkpoint passes a trigger only once every command it led to has been sent and its
/// outcome recorded, so a reader waiting for the trigger sees the whole step.
///
/// ```
/// use std::time::Duration;
/// use async_trait::async_trait;
/// use cqrs_core::process::{
///     Action, CommandDispatcher, Context, DispatchError, Dispatched, Input, ProcessManager,
///     ProcessManagerProjection, ProcessOptions, Route,
/// };
/// use cqrs_core::testing::{Tally, TallyCommand, TallyError, TallyEvent};
/// use cqrs_core::{CommandContext, Error, EventFilter, InMemoryEventStore, RecordedEvent, Repository};
/// use serde::{Deserialize, Serialize};
///
/// /// Adds to tally "b" whatever is added to tally "a".
/// #[derive(Default, Serialize, Deserialize)]
/// struct Mirror {
///     mirrored: u64,
/// }
///
/// #[derive(Clone, Debug, Serialize, Deserialize)]
/// struct Refused(String);
///
/// impl From<TallyError> for Refused {
///     fn from(error: TallyError) -> Self {
///         Refused(error.to_string())
///     }
/// }
///
/// impl ProcessManager for Mirror {
///     const TYPE: &'static str = "mirror";
///     type Trigger = u64; // the amount added to "a"
///     type Command = (String, u64); // which tally, how much
///     type Rejection = Refused;
///     type Timeout = ();
///
///     fn subscriptions() -> EventFilter {
///         EventFilter::all().category("tally")
///     }
///
///     fn route(event: &RecordedEvent) -> Result<Route<u64>, Error> {
///         match event.decode::<TallyEvent>()? {
///             TallyEvent::Added { amount } if event.stream_id.instance() == "a" => {
///                 Ok(Route::start("a", amount))
///             }
///             _ => Ok(Route::Ignore),
///         }
///     }
///
///     fn apply(&mut self, input: &Input<Self>) {
///         if let Input::Accepted { command: (_, amount), .. } = input {
///             self.mirrored += amount;
///         }
///     }
///
///     fn decide(&self, input: &Input<Self>, _: &Context<'_>) -> Vec<Action<Self>> {
///         match input {
///             Input::Event { trigger, .. } => vec![Action::send(("b".to_owned(), *trigger))],
///             _ => vec![],
///         }
///     }
/// }
///
/// /// Delivers the commands, each with the id the engine derived for its step.
/// struct Tallies(Repository<Tally, InMemoryEventStore>);
///
/// #[async_trait]
/// impl CommandDispatcher<(String, u64)> for Tallies {
///     type Rejection = Refused;
///
///     async fn dispatch(
///         &self,
///         (tally, amount): &(String, u64),
///         context: CommandContext,
///     ) -> Result<Dispatched, DispatchError<Refused>> {
///         self.0.dispatch(tally, &TallyCommand::Add(vec![*amount]), context).await
///     }
/// }
///
/// # tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap().block_on(async {
/// let store = InMemoryEventStore::new();
/// let tallies = Repository::<Tally, _>::new(store.clone());
/// let dispatcher = Tallies(Repository::new(store.clone()));
/// let handle = ProcessManagerProjection::<Mirror, _, _>::new(store.clone(), dispatcher, ProcessOptions::default())
///     .runner()
///     .spawn();
///
/// let added = tallies.execute("a", &TallyCommand::Add(vec![5])).await?;
/// let position = added.position.expect("an event was recorded");
/// handle.wait_for(position, Duration::from_secs(5)).await?;
/// assert_eq!(tallies.load("b").await?.0.total, 5);
/// handle.shutdown().await;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// # }).unwrap();
/// ```
pub struct ProcessManagerProjection<P, S, D> {
    driver: Arc<Driver<P, S, D>>,
    name: String,
    upcasters: Upcasters,
    pump: Mutex<Option<Pump>>,
}

impl<P, S, D> ProcessManagerProjection<P, S, D>
where
    P: ProcessManager,
    S: ProcessManagerStore,
    D: CommandDispatcher<P::Command, Rejection = P::Rejection> + 'static,
{
    /// The projection: its name is `"process:{TYPE}"`.
    pub fn new(store: S, dispatcher: D, options: ProcessOptions) -> Self {
        Self {
            driver: Arc::new(Driver::new(store, dispatcher, options)),
            name: format!("process:{}", P::TYPE),
            upcasters: Upcasters::new(),
            pump: Mutex::new(None),
        }
    }

    /// With the user's upcasters: the runner from [`runner`](Self::runner) upcasts feed
    /// events with them, and triggers stored in the journal are upcast with them on load, so
    /// `route` always sees current payloads.
    #[must_use]
    pub fn with_upcasters(mut self, upcasters: Upcasters) -> Self {
        // The driver is shared only once the projection leads, after this builder is spent.
        if let Some(driver) = Arc::get_mut(&mut self.driver) {
            driver.upcasters = upcasters.clone();
        }
        self.upcasters = upcasters;
        self
    }

    /// A runner for this projection with every role played by the store
    /// ([`ProjectionRunner::for_store`]), upcasting with the projection's upcasters.
    pub fn runner(self) -> ProjectionRunner {
        self.runner_with(RunnerOptions::new())
    }

    /// Like [`runner`](Self::runner), with these options (a lease's owner and time to live,
    /// batch size...); their upcasters are replaced by the projection's, so the feed and the
    /// journal are upcast alike.
    pub fn runner_with(self, options: RunnerOptions) -> ProjectionRunner {
        let store = self.driver.store.clone();
        let options = options.upcasters(self.upcasters.clone());
        ProjectionRunner::for_store(self, &store).with_options(options)
    }

    fn set_pump(&self, pump: Option<Pump>) {
        // Replacing the old pump drops it, which stops it.
        *self.pump.lock().unwrap_or_else(PoisonError::into_inner) = pump;
    }
}

#[async_trait]
impl<P, S, D> Projection for ProcessManagerProjection<P, S, D>
where
    P: ProcessManager,
    S: ProcessManagerStore,
    D: CommandDispatcher<P::Command, Rejection = P::Rejection> + 'static,
{
    fn name(&self) -> &str {
        &self.name
    }

    /// The process's subscriptions plus its fired timeouts and the replies to its forwarded
    /// commands ([`CommandReplied`](super::CommandReplied)). A filter is categories AND types,
    /// each empty list passing all: the timer category joins a list of categories, and the
    /// fired event's type a list of types, so neither hides the user's events.
    fn filter(&self) -> EventFilter {
        let mut filter = P::subscriptions();
        if !filter.categories.is_empty() {
            filter = filter
                .category(format!("{}_timer", P::TYPE))
                .category(reply_category(P::TYPE));
        }
        if !filter.event_types.is_empty() {
            filter = filter.event_types([TIMEOUT_FIRED, COMMAND_REPLIED]);
        }
        filter
    }

    /// The instance's stream id: poison parks one instance and holds back its later events.
    fn key(&self, event: &RecordedEvent) -> Option<String> {
        self.driver
            .instance_of(event)
            .map(|instance| format!("{}-{instance}", P::TYPE))
    }

    async fn apply(&self, events: &[RecordedEvent]) -> Result<(), ProjectionError> {
        self.driver.apply(events).await
    }

    /// Starting to lead: forget loaded instances (another worker may have moved them on) and
    /// start the timer pump. Ending: stop the pump.
    async fn leadership_changed(&self, leading: bool) {
        self.driver.clear_cache();
        self.set_pump(None);
        if leading {
            self.set_pump(Some(Pump::start(self.driver.clone())));
        }
    }
}
