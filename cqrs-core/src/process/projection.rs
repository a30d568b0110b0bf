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
use super::store::ProcessManagerStore;
use crate::projection::{Projection, ProjectionError, ProjectionRunner, RunnerOptions};
use crate::{EventFilter, RecordedEvent, Upcasters};

/// Runs process manager `P` over store `S`, sending its commands through dispatcher `D`.
///
/// ```ignore
/// let handle = ProcessManagerProjection::<OrderFulfilment, _, _>::new(store.clone(), shop, ProcessOptions::default())
///     .runner()
///     .spawn();
/// ```
///
/// Its name (the checkpoint, the lease, the dead letters) is `"process:{TYPE}"`. An event
/// that cannot be handled (a `route` error, a command the dispatcher fails on for good) is
/// parked under its instance's stream id, holding back that instance's later events only.
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
    /// ([`ProjectionRunner::for_store`]), upcasting with the projection's upcasters. Options
    /// set on it later with [`ProjectionRunner::with_options`] replace these: pass the same
    /// upcasters to [`RunnerOptions::upcasters`] there.
    pub fn runner(self) -> ProjectionRunner {
        let store = self.driver.store.clone();
        let options = RunnerOptions::new().upcasters(self.upcasters.clone());
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

    /// The process's subscriptions plus its fired timeouts. A filter is categories AND types,
    /// each empty list passing all: the timer category joins a list of categories, and the
    /// fired event's type a list of types, so neither hides the user's events.
    fn filter(&self) -> EventFilter {
        let mut filter = P::subscriptions();
        if !filter.categories.is_empty() {
            filter = filter.category(format!("{}_timer", P::TYPE));
        }
        if !filter.event_types.is_empty() {
            filter = filter.event_types([TIMEOUT_FIRED]);
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
