//! [`ProjectionRunner`]: follows the feed for one projection, in its own task.
//!
//! How the parts fit:
//! - `options`: what a runner is told ([`RunnerOptions`], [`PoisonPolicy`]);
//! - `handle`: what the caller keeps ([`ProjectionHandle`]), and the supervisor that
//!   reports a worker's panic;
//! - `worker`: the worker's loop: hold the lease (`leadership`, `term`), then lead: take
//!   batches from the `reader` (the read-ahead bulkhead), `apply` them (upcasting through
//!   `upcast`, retrying behind the breaker, whose changes `health` records in the store,
//!   dealing with `poison`), hand them to the
//!   `settle`ment (made visible, checkpoint saved, then the status updated by `report`), and
//!   between batches carry out operators' requests on dead letters (`redrive`);
//! - `stop`: pausing for a backoff unless asked to stop.

mod apply;
mod handle;
mod health;
mod leadership;
mod options;
mod outcome;
mod poison;
mod reader;
mod redrive;
mod report;
mod settle;
mod span;
mod stop;
mod term;
pub(crate) mod upcast;
mod worker;

use std::sync::Arc;

use tokio::sync::watch;
use tracing::Instrument;

use crate::{CheckpointStore, Error, Position, ReadAll, ReadStream};

use super::{
    DeadLetterStore, FeedSignal, LeaseStore, Projection, ProjectionState, ProjectionStatus,
    ProjectionStore,
};

pub(crate) use handle::panic_message;
use handle::AbortOnDrop;
pub(crate) use stop::Stop;
use worker::Worker;

pub use handle::{ProjectionHandle, WaitError};
pub use options::{PoisonPolicy, RunnerOptions};

/// Runs one [`Projection`]: reads the feed from its checkpoint in batches, applies them, and
/// moves the checkpoint only after `apply` returned. Transient failures are retried with backoff
/// behind a circuit breaker; poison events follow the [`PoisonPolicy`]; with a
/// [`LeaseStore`], only one worker per projection is active and a standby takes over when it
/// dies. The lease is renewed beside the work, a worker stops leading as soon as it cannot
/// confirm its lease before it expires, and its checkpoint saves carry the lease's epoch, so
/// the store refuses them once the lease has passed on
/// ([`CheckpointStore::save_checkpoint_fenced`]).
///
/// A store that plays every role ([`ProjectionStore`]: the in-memory store, PostgreSQL)
/// wires a runner in one call, [`for_store`](Self::for_store); [`new`](Self::new) and the
/// `with_*` methods wire it role by role, for backends that share the roles out.
///
/// ```
/// use async_trait::async_trait;
/// use cqrs_core::projection::{Projection, ProjectionError, ProjectionRunner};
/// use cqrs_core::{AppendEvents, ExpectedVersion, InMemoryEventStore, NewEvent, RecordedEvent, StreamId};
/// use std::sync::{Arc, Mutex};
/// use std::time::Duration;
///
/// struct CountPerStream(Arc<Mutex<std::collections::HashMap<String, u64>>>);
///
/// #[async_trait]
/// impl Projection for CountPerStream {
///     fn name(&self) -> &str { "count-per-stream" }
///     async fn apply(&self, events: &[RecordedEvent]) -> Result<(), ProjectionError> {
///         let mut counts = self.0.lock().unwrap();
///         for event in events {
///             // Idempotent: the stream's version is the count, so a replay changes nothing.
///             counts.insert(event.stream_id.to_string(), event.version.get());
///         }
///         Ok(())
///     }
/// }
///
/// # tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap().block_on(async {
/// let store = InMemoryEventStore::new();
/// let counts = Arc::new(Mutex::new(Default::default()));
/// // Feed, checkpoint, lease, dead letters and wake-ups, all in `store`.
/// let handle = ProjectionRunner::for_store(CountPerStream(counts.clone()), &store).spawn();
/// let stream = StreamId::new("order-1")?;
/// let outcome = store
///     .append(&stream, ExpectedVersion::Any, vec![NewEvent::new("Placed", 1, serde_json::json!({}))])
///     .await?;
/// // Read-your-writes: waits until the projection has applied the append (or says why not).
/// handle.wait_for(outcome.position, Duration::from_secs(5)).await?;
/// assert_eq!(counts.lock().unwrap()["order-1"], 1);
/// handle.shutdown().await;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// # }).unwrap();
/// ```
pub struct ProjectionRunner {
    projection: Arc<dyn Projection>,
    feed: Arc<dyn ReadAll>,
    checkpoints: Arc<dyn CheckpointStore>,
    dead_letters: Option<Arc<dyn DeadLetterStore>>,
    /// Where parked events are read again when an operator retries them.
    parked_events: Option<Arc<dyn ReadStream>>,
    leases: Option<Arc<dyn LeaseStore>>,
    signal: Option<Arc<dyn FeedSignal>>,
    options: RunnerOptions,
}

impl ProjectionRunner {
    /// A runner for `projection` with every role played by `store`: it reads the store's
    /// feed, keeps its checkpoint there, shares the projection with other workers by the
    /// store's leases, parks poison events in its dead letters (unless
    /// [`RunnerOptions::poison`] says otherwise), and wakes on its appends.
    ///
    /// The same as
    /// `ProjectionRunner::new(projection, store.clone(), store.clone())`
    /// `.with_signal(store.signal()).with_leases(store.clone()).with_dead_letters(store.clone())`.
    pub fn for_store<S: ProjectionStore>(projection: impl Projection + 'static, store: &S) -> Self {
        Self::new(projection, store.clone(), store.clone())
            .with_signal(store.signal())
            .with_leases(store.clone())
            .with_dead_letters(store.clone())
    }

    /// A runner for `projection`, reading `feed` and keeping its checkpoint in `checkpoints`,
    /// to be given its other roles one by one (`with_*`), for backends that share the roles
    /// out. A store that plays them all wires a runner in one call:
    /// [`for_store`](Self::for_store).
    pub fn new(
        projection: impl Projection + 'static,
        feed: impl ReadAll + 'static,
        checkpoints: impl CheckpointStore + 'static,
    ) -> Self {
        Self::from_arcs(Arc::new(projection), Arc::new(feed), Arc::new(checkpoints))
    }

    /// A runner from shared parts.
    fn from_arcs(
        projection: Arc<dyn Projection>,
        feed: Arc<dyn ReadAll>,
        checkpoints: Arc<dyn CheckpointStore>,
    ) -> Self {
        Self {
            projection,
            feed,
            checkpoints,
            dead_letters: None,
            parked_events: None,
            leases: None,
            signal: None,
            options: RunnerOptions::default(),
        }
    }

    /// Where poison events are parked (needed by [`PoisonPolicy::Park`], which becomes the
    /// default policy with it), and where they are read again (by stream and version) when an operator asks to retry them: while leading,
    /// the runner looks for requests ([`DeadLetterStore::retry`], [`DeadLetterStore::skip`])
    /// when it starts and then once per poll interval, between batches, and carries them out.
    #[must_use]
    pub fn with_dead_letters(mut self, store: impl DeadLetterStore + ReadStream + 'static) -> Self {
        let store = Arc::new(store);
        self.dead_letters = Some(store.clone());
        self.parked_events = Some(store);
        self
    }

    /// Shares the projection with other workers: one active at a time, by lease. `store`
    /// must keep the leases the checkpoint store checks fenced saves against (the same store,
    /// or a wrapper of it); a runner whose saves are refused under a lease `store` holds
    /// fails, saying so, rather than apply its batches again without end.
    #[must_use]
    pub fn with_leases(mut self, store: impl LeaseStore + 'static) -> Self {
        self.leases = Some(Arc::new(store));
        self
    }

    /// Shares the projection by `leases`, already shared (partitioned workers).
    pub(crate) fn with_shared_leases(mut self, leases: Arc<dyn LeaseStore>) -> Self {
        self.leases = Some(leases);
        self
    }

    /// Wakes on appends instead of waiting for the next poll.
    #[must_use]
    pub fn with_signal(mut self, signal: impl FeedSignal + 'static) -> Self {
        self.signal = Some(Arc::new(signal));
        self
    }

    /// Options.
    #[must_use]
    pub fn with_options(mut self, options: RunnerOptions) -> Self {
        self.options = options;
        self
    }

    /// The poison policy: the one set, or else `Park` with a dead-letter store and `Stop`
    /// without.
    fn poison(&self) -> PoisonPolicy {
        self.options.poison.unwrap_or(match self.dead_letters {
            Some(_) => PoisonPolicy::Park,
            None => PoisonPolicy::Stop,
        })
    }

    pub(super) fn checkpoint_name(&self) -> String {
        self.options
            .checkpoint_name
            .clone()
            .unwrap_or_else(|| self.projection.name().to_owned())
    }

    /// Starts the projection in its own task. Needs a tokio runtime.
    pub fn spawn(mut self) -> ProjectionHandle {
        self.options = self.options.instance();
        // Named as it is checkpointed: a replay or a rebuild's fill beside the live runner
        // has counters, gauges and a status of its own.
        let name = self.checkpoint_name();
        let (status_tx, status) = watch::channel(ProjectionStatus::new(&name));
        let (stop, stop_rx) = watch::channel(false);
        let span = tracing::info_span!("projection", name = name.as_str());
        let status_tx = Arc::new(status_tx);
        let worker = Worker::new(self, status_tx.clone(), Stop::new(stop_rx));
        let worker = tokio::spawn(worker.run().instrument(span));
        let task = tokio::spawn(handle::supervise(AbortOnDrop(worker), status_tx));
        ProjectionHandle { status, stop, task }
    }

    /// Applies everything the feed holds now, then returns the checkpoint saved when it stopped
    /// (at least the head read at the start; events that came in meanwhile may take it further)
    /// (for rebuilds, tests and one-off catch-ups). Poison follows the policy. A runner with
    /// leases takes the projection's lease like any worker; while another worker leads, it
    /// stands by and ends once that worker's checkpoint reaches the head.
    ///
    /// Dropping the returned future before it ends kills the run, as a crash would: the
    /// apply in flight is dropped and nothing more is saved (a caller that gives up on a
    /// catch-up, such as a cancelled rebuild, leaves nothing writing behind it).
    ///
    /// # Errors
    ///
    /// [`Error::ProjectionFailed`] with the status's last error when the projection failed
    /// first (a poison event under [`PoisonPolicy::Stop`], retries exhausted, a store error
    /// a retry cannot cure); the store's error when its head cannot be read.
    pub async fn catch_up(self) -> Result<Position, Error> {
        let head = self.feed.head().await?;
        let mut running = KillOnDrop(self.spawn());
        let reached = running
            .0
            .wait_until(|s| s.position >= head || s.state == ProjectionState::Failed)
            .await;
        running.0.stop_and_wait().await;
        // Taken after the stop: batches that came in after the head was read and settled
        // while stopping moved the checkpoint further, and the caller gets what was saved.
        let status = running.0.status();
        match reached {
            Some(s) if s.state != ProjectionState::Failed => Ok(status.position),
            _ => Err(Error::ProjectionFailed {
                projection: status.name,
                reason: status
                    .last_error
                    .unwrap_or_else(|| "it stopped before reaching the head".to_owned()),
            }),
        }
    }
}

/// A run killed when this is dropped before it ended: a catch-up whose caller went away.
struct KillOnDrop(ProjectionHandle);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        // Aborting the supervisor aborts the worker, and with it the reader and the
        // settling batches; a run that already ended is left as it is.
        self.0.task.abort();
    }
}
