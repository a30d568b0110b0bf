//! [`ProjectionRunner`]: follows the feed for one projection, in its own task.

mod redrive;

use std::collections::{HashSet, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use time::OffsetDateTime;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;
use tracing::Instrument;

use crate::{
    CheckpointStore, Error, EventFilter, FeedBatch, Position, ReadAll, ReadStream, RecordedEvent,
    RetryPolicy, Upcasters,
};

use super::term::{Fence, SaveError, Term};
use super::{
    CircuitBreaker, DeadLetter, DeadLetterStore, FeedSignal, FeedWaiter, LeaseStore, Projection,
    ProjectionError, ProjectionState, ProjectionStatus, Rejected,
};

/// What the runner does with an event the projection can never apply.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum PoisonPolicy {
    /// Stop the projection (state `Failed`) with the checkpoint just before the event, so an
    /// operator can fix the cause and restart.
    #[default]
    Stop,
    /// Park the event as a dead letter, park later events with the same key too (so each
    /// document keeps its order), and go on.
    Park,
}

/// How a [`ProjectionRunner`] reads, retries and shares work.
#[derive(Clone, Debug)]
#[must_use]
pub struct RunnerOptions {
    batch_size: usize,
    buffered_batches: usize,
    poll_interval: Duration,
    retry: RetryPolicy,
    breaker_threshold: u32,
    breaker_open_for: Duration,
    poison: PoisonPolicy,
    lease_ttl: Duration,
    owner: String,
    checkpoint_name: Option<String>,
    upcasters: Upcasters,
    checkpoint_interval: Duration,
}

impl Default for RunnerOptions {
    /// Batches of 500, two batches read ahead, a poll every second when idle, transient
    /// failures retried without end from 50 ms up to 10 s, a breaker opening for 5 s after 5
    /// failures in a row, poison stops the projection, leases of 10 s, a checkpoint at most
    /// every 250 ms while catching up.
    fn default() -> Self {
        Self {
            batch_size: 500,
            buffered_batches: 2,
            poll_interval: Duration::from_secs(1),
            retry: RetryPolicy::new(u32::MAX)
                .with_delays(Duration::from_millis(50), Duration::from_secs(10)),
            breaker_threshold: 5,
            breaker_open_for: Duration::from_secs(5),
            poison: PoisonPolicy::Stop,
            lease_ttl: Duration::from_secs(10),
            owner: format!("{}-{}", std::process::id(), uuid::Uuid::now_v7().simple()),
            checkpoint_name: None,
            upcasters: Upcasters::new(),
            checkpoint_interval: Duration::from_millis(250),
        }
    }
}

impl RunnerOptions {
    /// The defaults.
    pub fn new() -> Self {
        Self::default()
    }
    /// Events per feed read and per `apply` (small batches that queued up while the projection
    /// was busy are applied together, up to twice this many).
    pub fn batch_size(mut self, events: usize) -> Self {
        self.batch_size = events.max(1);
        self
    }
    /// How many batches the reader may fetch ahead of the projection (the bulkhead's buffer).
    pub fn buffered_batches(mut self, batches: usize) -> Self {
        self.buffered_batches = batches.max(1);
        self
    }
    /// How often to look for new events when no signal comes.
    pub fn poll_interval(mut self, interval: Duration) -> Self {
        self.poll_interval = interval;
        self
    }
    /// Backoff for transient failures.
    pub fn retry(mut self, retry: RetryPolicy) -> Self {
        self.retry = retry;
        self
    }
    /// The circuit breaker: opens after `threshold` failures in a row, for `open_for`.
    pub fn breaker(mut self, threshold: u32, open_for: Duration) -> Self {
        self.breaker_threshold = threshold;
        self.breaker_open_for = open_for;
        self
    }
    /// What to do with poison events.
    pub fn poison(mut self, policy: PoisonPolicy) -> Self {
        self.poison = policy;
        self
    }
    /// How long a lease lasts without renewal. A keeper task renews it every third of that,
    /// beside the work; a worker that cannot confirm its lease before it expires stops
    /// leading at once (its apply in flight is dropped, nothing more is saved).
    pub fn lease_ttl(mut self, ttl: Duration) -> Self {
        self.lease_ttl = ttl;
        self
    }
    /// This worker's name in leases (default: process id and a random suffix).
    pub fn owner(mut self, owner: impl Into<String>) -> Self {
        self.owner = owner.into();
        self
    }
    /// The checkpoint's name (default: the projection's name). A rebuild uses its own.
    pub fn checkpoint_name(mut self, name: impl Into<String>) -> Self {
        self.checkpoint_name = Some(name.into());
        self
    }
    /// Upcasts events before the projection sees them.
    pub fn upcasters(mut self, upcasters: Upcasters) -> Self {
        self.upcasters = upcasters;
        self
    }
    /// While catching up (full batches back to back), settle applied batches (make them
    /// visible, save the checkpoint) at most this often, as one: a catch-up of many batches
    /// then costs a few checkpoint commits, not one per batch. A batch that reaches the head
    /// of the feed settles at once, so a live projection's readers wait for nothing more, and
    /// none waits longer than this. A crash replays at most this much more (the projections
    /// the framework ships are idempotent). `Duration::ZERO` settles every batch.
    pub fn checkpoint_interval(mut self, interval: Duration) -> Self {
        self.checkpoint_interval = interval;
        self
    }
}

/// Runs one [`Projection`]: reads the feed from its checkpoint in batches, applies them, and
/// moves the checkpoint only after `apply` returned. Transient failures are retried with backoff
/// behind a circuit breaker; poison events follow the [`PoisonPolicy`]; with a
/// [`LeaseStore`], only one worker per projection is active and a standby takes over when it
/// dies. The lease is renewed beside the work, a worker stops leading as soon as it cannot
/// confirm its lease before it expires, and its checkpoint saves carry the lease's epoch, so
/// the store refuses them once the lease has passed on
/// ([`CheckpointStore::save_checkpoint_fenced`]).
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
/// let handle = ProjectionRunner::new(CountPerStream(counts.clone()), store.clone(), store.clone())
///     .with_signal(store.clone())
///     .spawn();
/// let stream = StreamId::new("order-1")?;
/// let outcome = store
///     .append(&stream, ExpectedVersion::Any, vec![NewEvent::new("Placed", 1, serde_json::json!({}))])
///     .await?;
/// assert!(handle.wait_for(outcome.position, Duration::from_secs(5)).await);
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

/// A running projection: its status, and how to stop it.
#[derive(Debug)]
pub struct ProjectionHandle {
    status: watch::Receiver<ProjectionStatus>,
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
}

impl ProjectionRunner {
    /// A runner for `projection`, reading `feed` and keeping its checkpoint in `checkpoints`
    /// (often the same store twice).
    pub fn new(
        projection: impl Projection + 'static,
        feed: impl ReadAll + 'static,
        checkpoints: impl CheckpointStore + 'static,
    ) -> Self {
        Self::from_arcs(Arc::new(projection), Arc::new(feed), Arc::new(checkpoints))
    }

    /// A runner from shared parts.
    pub fn from_arcs(
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

    /// Where poison events are parked (needed by [`PoisonPolicy::Park`]), and where they are
    /// read again (by stream and version) when an operator asks to retry them: while leading,
    /// the runner looks for requests ([`DeadLetterStore::retry`], [`DeadLetterStore::skip`])
    /// when it starts and then once per poll interval, between batches, and carries them out.
    #[must_use]
    pub fn with_dead_letters(mut self, store: impl DeadLetterStore + ReadStream + 'static) -> Self {
        let store = Arc::new(store);
        self.dead_letters = Some(store.clone());
        self.parked_events = Some(store);
        self
    }

    /// Shares the projection with other workers: one active at a time, by lease.
    #[must_use]
    pub fn with_leases(mut self, store: impl LeaseStore + 'static) -> Self {
        self.leases = Some(Arc::new(store));
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

    fn checkpoint_name(&self) -> String {
        self.options
            .checkpoint_name
            .clone()
            .unwrap_or_else(|| self.projection.name().to_owned())
    }

    /// Starts the projection in its own task. Needs a tokio runtime.
    pub fn spawn(self) -> ProjectionHandle {
        let (status_tx, status) = watch::channel(ProjectionStatus::new(self.projection.name()));
        let (stop, stop_rx) = watch::channel(false);
        let span = tracing::info_span!("projection", name = self.projection.name());
        let breaker = CircuitBreaker::new(
            self.options.breaker_threshold,
            self.options.breaker_open_for,
        );
        let status_tx = Arc::new(status_tx);
        let worker = tokio::spawn(
            Worker {
                runner: self,
                status: status_tx.clone(),
                stop: stop_rx,
                breaker,
                fence: Fence::unfenced(),
            }
            .run()
            .instrument(span),
        );
        let task = tokio::spawn(supervise(worker, status_tx));
        ProjectionHandle { status, stop, task }
    }

    /// Applies everything the feed holds now, then returns the checkpoint (for rebuilds, tests
    /// and one-off catch-ups). No lease is taken; poison follows the policy.
    pub async fn catch_up(self) -> Result<Position, Error> {
        let head = self.feed.head().await?;
        let handle = self.spawn();
        let reached = handle
            .wait_until(|s| s.position >= head || s.state == ProjectionState::Failed)
            .await;
        let status = handle.status();
        handle.shutdown().await;
        match reached {
            Some(s) if s.state != ProjectionState::Failed => Ok(status.position),
            _ => Err(Error::backend(ProjectionFailed(
                status.last_error.unwrap_or_default(),
            ))),
        }
    }
}

/// Waits for the worker task; a panic in it leaves the status `Failed` with the panic's
/// message (health checks see it), where it would otherwise stay at whatever it said last.
/// Aborting this task aborts the worker too.
async fn supervise(worker: JoinHandle<()>, status: Arc<watch::Sender<ProjectionStatus>>) {
    let mut worker = AbortOnDrop(worker);
    let Err(error) = (&mut worker.0).await else {
        return;
    };
    let Ok(panic) = error.try_into_panic() else {
        return; // Cancelled: only by an abort, which ends this task too.
    };
    let message = panic_message(&*panic);
    tracing::error!(panic = %message, "projection worker panicked");
    status.send_modify(|s| {
        s.state = ProjectionState::Failed;
        s.last_error = Some(format!("worker panicked: {message}"));
    });
}

/// The message a panic was raised with.
fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|m| (*m).to_owned())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic without a message".to_owned())
}

/// A projection stopped on an error it could not retry.
#[derive(Debug, thiserror::Error)]
#[error("projection failed: {0}")]
struct ProjectionFailed(String);

impl ProjectionHandle {
    /// The status now.
    pub fn status(&self) -> ProjectionStatus {
        self.status.borrow().clone()
    }

    /// Waits until the checkpoint reaches `position` (read-your-writes after a command), at
    /// most `timeout`. `false` on timeout or if the projection stopped first.
    pub async fn wait_for(&self, position: Position, timeout: Duration) -> bool {
        tokio::time::timeout(timeout, self.wait_until(|s| s.position >= position))
            .await
            .ok()
            .flatten()
            .is_some_and(|s| s.position >= position)
    }

    /// Waits until the status satisfies `condition`, or the projection task ends (then `None`).
    pub async fn wait_until(
        &self,
        condition: impl Fn(&ProjectionStatus) -> bool,
    ) -> Option<ProjectionStatus> {
        let mut status = self.status.clone();
        loop {
            {
                let now = status.borrow_and_update();
                if condition(&now) {
                    return Some(now.clone());
                }
                if matches!(
                    now.state,
                    ProjectionState::Stopped | ProjectionState::Failed
                ) {
                    return None;
                }
            }
            if status.changed().await.is_err() {
                let last = status.borrow().clone();
                return condition(&last).then_some(last);
            }
        }
    }

    /// Stops gracefully: the batch in hand is finished (or abandoned mid-retry, its checkpoint
    /// not moved), the lease released.
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        if let Err(error) = self.task.await {
            tracing::error!(%error, "projection task ended abnormally");
        }
    }

    /// Kills the task at once, as a crash would: no checkpoint saved, no lease released.
    pub fn abort(self) {
        self.task.abort();
    }
}

/// Why leading ended.
enum Lead {
    Stopped,
    LostLease,
    Failed(String),
    /// A poison event under [`PoisonPolicy::Stop`]; the batch's events before it (up to
    /// `before`) are applied.
    Poisoned {
        before: Option<Position>,
        error: String,
    },
}

struct Worker {
    runner: ProjectionRunner,
    /// Shared with the checkpoint save in flight, which reports its batch once saved.
    status: Arc<watch::Sender<ProjectionStatus>>,
    stop: watch::Receiver<bool>,
    breaker: CircuitBreaker,
    /// Checkpoint saves go through it: under the lease of the term leading now, if any.
    fence: Fence,
}

impl Worker {
    async fn run(mut self) {
        let name = self.runner.checkpoint_name();
        loop {
            let Some(term) = self.hold_lease(&name).await else {
                break self.set(|s| s.state = ProjectionState::Stopped);
            };
            self.fence = term.fence();
            // The term can end any time (the keeper could not renew, or a save was refused):
            // leading ends with it, dropping the apply in flight, saving nothing more.
            // What the projection remembers from an earlier term may be stale: another worker
            // may have led meanwhile. It is told here, around the race, so a lost term (which
            // drops `lead` midway) tells it too.
            self.runner.projection.leadership_changed(true).await;
            let lead = tokio::select! {
                biased;
                () = term.lost() => Lead::LostLease,
                lead = self.lead(&name) => lead,
            };
            self.runner.projection.leadership_changed(false).await;
            match lead {
                Lead::Stopped => {
                    self.release(&term).await;
                    break self.set(|s| s.state = ProjectionState::Stopped);
                }
                Lead::LostLease => {
                    tracing::warn!("lease lost; standing by");
                    self.set(|s| {
                        s.state = ProjectionState::Standby;
                        s.last_error = Some("the lease was lost; standing by".to_owned());
                    });
                    continue;
                }
                Lead::Failed(error) | Lead::Poisoned { error, .. } => {
                    tracing::error!(%error, "projection failed");
                    self.release(&term).await;
                    break self.set(|s| {
                        s.state = ProjectionState::Failed;
                        s.last_error = Some(error);
                    });
                }
            }
        }
    }

    fn stopping(&self) -> bool {
        *self.stop.borrow()
    }

    fn set(&self, change: impl FnOnce(&mut ProjectionStatus)) {
        self.status.send_modify(change);
    }

    /// Sleeps `duration` unless asked to stop first; `false` when stopping.
    async fn pause(&mut self, duration: Duration) -> bool {
        if self.stopping() {
            return false;
        }
        tokio::select! {
            _ = tokio::time::sleep(duration) => !self.stopping(),
            _ = self.stop.changed() => false,
        }
    }

    /// Waits until this worker holds the lease (at once without a lease store), and starts
    /// its term. `None` when asked to stop meanwhile.
    async fn hold_lease(&mut self, name: &str) -> Option<Term> {
        let Some(leases) = self.runner.leases.clone() else {
            return (!self.stopping()).then(Term::unfenced);
        };
        let ttl = self.runner.options.lease_ttl;
        loop {
            if self.stopping() {
                return None;
            }
            let asked_at = tokio::time::Instant::now();
            let acquired = tokio::select! {
                acquired = leases.try_acquire(name, &self.runner.options.owner, ttl) => acquired,
                // A store that does not answer must not hold up a shutdown.
                _ = self.stop.changed() => return None,
            };
            match acquired {
                Ok(Some(lease)) => {
                    let status = self.status.clone();
                    return Some(Term::start(leases, lease, asked_at, ttl, status));
                }
                Ok(None) => self.set(|s| s.state = ProjectionState::Standby),
                Err(error) => self.set(|s| s.last_error = Some(error.to_string())),
            }
            if !self.pause(ttl / 3).await {
                return None;
            }
        }
    }

    async fn release(&self, term: &Term) {
        if let (Some(leases), Some(lease)) = (&self.runner.leases, term.lease()) {
            // Bounded: a store that does not answer lets the lease expire instead.
            let ttl = self.runner.options.lease_ttl;
            match tokio::time::timeout(ttl, leases.release(lease)).await {
                Ok(Ok(())) => {}
                Ok(Err(error)) => tracing::warn!(%error, "could not release the lease"),
                Err(_) => tracing::warn!("releasing the lease did not answer; it will expire"),
            }
        }
    }

    /// Loads a value, retrying transient store errors; `None` when asked to stop.
    async fn load_checkpoint(&mut self, name: &str) -> Option<Position> {
        let mut attempt = 0;
        loop {
            match self.runner.checkpoints.load_checkpoint(name).await {
                Ok(position) => return Some(position.unwrap_or(Position::START)),
                Err(error) => {
                    attempt += 1;
                    self.set(|s| {
                        s.state = ProjectionState::Retrying;
                        s.last_error = Some(error.to_string());
                    });
                    let delay = self.runner.options.retry.delay(attempt);
                    if !self.pause(delay).await {
                        return None;
                    }
                }
            }
        }
    }

    /// Saves the checkpoint through this term's fence, retrying store failures. `Err` with
    /// why leading ends: asked to stop, the lease lost (a refused save is not retried), or a
    /// store that cannot fence.
    async fn save_checkpoint(&mut self, name: &str, position: Position) -> Result<(), Lead> {
        let mut attempt = 0;
        loop {
            let fence = self.fence.clone();
            match fence.save(&*self.runner.checkpoints, name, position).await {
                Ok(()) => return Ok(()),
                Err(SaveError::LeaseLost) => return Err(Lead::LostLease),
                Err(SaveError::Failed(error @ Error::Unsupported { .. })) => {
                    return Err(Lead::Failed(error.to_string()));
                }
                Err(SaveError::Failed(error)) => {
                    attempt += 1;
                    self.set(|s| s.last_error = Some(error.to_string()));
                    let delay = self.runner.options.retry.delay(attempt);
                    if !self.pause(delay).await {
                        return Err(Lead::Stopped);
                    }
                }
            }
        }
    }

    async fn parked_keys(&mut self) -> Option<HashSet<String>> {
        let Some(store) = self.runner.dead_letters.clone() else {
            return Some(HashSet::new());
        };
        let name = self.runner.projection.name().to_owned();
        let mut attempt = 0;
        loop {
            match store.parked_keys(&name).await {
                Ok(keys) => return Some(keys.into_iter().collect()),
                Err(error) => {
                    attempt += 1;
                    self.set(|s| s.last_error = Some(error.to_string()));
                    if !self.pause(self.runner.options.retry.delay(attempt)).await {
                        return None;
                    }
                }
            }
        }
    }

    async fn lead(&mut self, name: &str) -> Lead {
        self.set(|s| s.state = ProjectionState::Starting);
        let Some(checkpoint) = self.load_checkpoint(name).await else {
            return Lead::Stopped;
        };
        let mut progress = Progress {
            checkpoint,
            last_head_check: Instant::now() - Duration::from_secs(60),
            settling: VecDeque::new(),
            unsettled: None,
            chain: None,
            deferred: None,
            last_settle: None,
        };
        let lead = self.lead_from(name, &mut progress).await;
        // However leading ended, the applied batches' checkpoint saves are seen through;
        // unless the lease is lost: then nothing more is saved.
        if !matches!(lead, Lead::LostLease) {
            let _ = self.finish(name, &mut progress).await;
        }
        lead
    }

    async fn lead_from(&mut self, name: &str, progress: &mut Progress) -> Lead {
        let Some(mut parked) = self.parked_keys().await else {
            return Lead::Stopped;
        };
        let checkpoint = progress.checkpoint;
        self.set(|s| s.position = checkpoint);
        let (batches, mut incoming) = mpsc::channel(self.runner.options.buffered_batches);
        let reader = tokio::spawn(
            Reader {
                feed: self.runner.feed.clone(),
                filter: self.runner.projection.filter(),
                batch_size: self.runner.options.batch_size,
                poll_interval: self.runner.options.poll_interval,
                retry: self.runner.options.retry,
                waiter: self.runner.signal.as_ref().map(|s| s.subscribe()),
                after: checkpoint,
                out: batches,
            }
            .run()
            .in_current_span(),
        );
        let mut reader = AbortOnDrop(reader);
        let interval = self.runner.options.checkpoint_interval;
        // Operators' requests on dead letters are looked for at once, then once per poll.
        let mut redrive_at = tokio::time::Instant::now();
        loop {
            let settle_at =
                tokio::time::Instant::from_std(progress.settle_due(interval, Instant::now()));
            let deferred = progress.deferred.is_some();
            let settling = &mut progress.settling;
            let woke = tokio::select! {
                batch = incoming.recv() => Woke::Batch(batch),
                ended = oldest_settled(settling), if !settling.is_empty() => Woke::Settled(ended),
                _ = self.stop.changed() => return Lead::Stopped,
                _ = tokio::time::sleep_until(settle_at), if deferred => Woke::SettleDeferred,
                _ = tokio::time::sleep_until(redrive_at), if self.runner.dead_letters.is_some() => {
                    Woke::Redrive
                }
            };
            let batch = match woke {
                Woke::Batch(batch) => batch,
                Woke::Settled(ended) => {
                    self.take_settled(ended, progress).await;
                    if progress.settling.is_empty() {
                        if let Err(lead) = self.settle_in_line(name, progress).await {
                            return lead;
                        }
                    }
                    continue;
                }
                Woke::SettleDeferred => {
                    self.settle_deferred(name, progress).await;
                    continue;
                }
                Woke::Redrive => {
                    let more = self.redrive_requested(&mut parked).await;
                    let wait = if more {
                        Duration::ZERO
                    } else {
                        self.runner.options.poll_interval
                    };
                    redrive_at = tokio::time::Instant::now() + wait;
                    continue;
                }
            };
            let Some((mut batch, mut full)) = batch else {
                // The reader only ends by a panic: say which.
                let why = match (&mut reader.0).await {
                    Err(error) if error.is_panic() => {
                        format!(": {}", panic_message(&*error.into_panic()))
                    }
                    _ => String::new(),
                };
                return Lead::Failed(format!("the feed reader stopped{why}"));
            };
            // Batches that queued up while the last one was applied go in together: one apply
            // (one round trip to the sink, one checkpoint) rather than one each, so a live
            // projection keeps up when the sink is slower than the writers. Applies stay under
            // twice the batch size.
            while batch.events.len() < self.runner.options.batch_size {
                let Ok((queued, queued_full)) = incoming.try_recv() else {
                    break;
                };
                batch.events.extend(queued.events);
                batch.next = batch.next.max(queued.next);
                full = queued_full;
            }
            if self.stopping() {
                return Lead::Stopped;
            }
            let FeedBatch { events, next, .. } = batch;
            if events.is_empty() {
                self.skipped(name, next, progress).await;
                continue;
            }
            // Earlier batches settle (made visible, checkpoint saved) while this one is applied:
            // a save only ever follows its own batch's effect, and neither round trip sits
            // between two applies.
            let applied = {
                let (status, feed) = (self.status.clone(), self.runner.feed.clone());
                let mut apply = std::pin::pin!(self.apply(events, &mut parked));
                loop {
                    let settling = &mut progress.settling;
                    tokio::select! {
                        biased;
                        applied = &mut apply => break applied,
                        ended = oldest_settled(settling), if !settling.is_empty() => {
                            // Reported as soon as it settled, not when this apply ends (which
                            // may take long, retrying behind the breaker).
                            if let Some(batch) = progress.take_oldest(ended, &status) {
                                report(&status, &*feed, &mut progress.last_head_check, &batch)
                                    .await;
                            }
                        }
                    }
                }
            };
            let applied = match applied {
                Ok(applied) => applied,
                Err(Lead::Poisoned { before, error }) => {
                    // Keep what was applied before the poison event: saved only now, after
                    // the earlier batches' saves, so the checkpoint never moves back. One try
                    // at making it visible: the index's own refresh does it otherwise.
                    if let Some(before) = before {
                        if self.finish(name, progress).await.is_ok() {
                            if let Err(error) = self.runner.projection.make_visible().await {
                                tracing::warn!(error = %error_chain(&*error), "could not make the last applied events visible");
                            }
                            if self.save_checkpoint(name, before).await.is_ok() {
                                self.set(|s| s.position = before);
                            }
                        }
                    }
                    return Lead::Failed(error);
                }
                Err(lead) => return lead,
            };
            let done = Done {
                next,
                full,
                applied,
            };
            let done = match progress.deferred.take() {
                Some(earlier) => earlier.then(done),
                None => done,
            };
            progress.deferred = Some(done);
            // Catching up: more batches follow at once, so this one settles with a later one,
            // unless it is time.
            let now = Instant::now();
            if !full || now >= progress.settle_due(interval, now) {
                self.settle_deferred(name, progress).await;
            }
        }
    }

    /// A batch with nothing for us, up to `next`. Applied batches held back are at the head
    /// of the feed now: they settle at once, as a batch that is not full would. The feed may
    /// also have moved past events we filter out: worth a save, so readers waiting on the
    /// checkpoint (read-your-writes) see it, but under unrelated load every wake-up brings
    /// such a batch, so that save alone waits for the checkpoint interval (the reader sends
    /// these batches only when the feed moved, or once per idle stretch).
    async fn skipped(&self, name: &str, next: Position, progress: &mut Progress) {
        let effects_held = progress
            .deferred
            .as_ref()
            .is_some_and(|d| d.applied.count + d.applied.parked > 0);
        let known = (progress.settling.back().map(|s| s.batch.next))
            .into_iter()
            .chain(progress.deferred.as_ref().map(|d| d.next))
            .fold(progress.checkpoint, Position::max);
        if next > known {
            // Settled with the rest: its report says "running at the head" once it is saved.
            let skipped = Done {
                next,
                full: false,
                applied: Applied {
                    count: 0,
                    parked: 0,
                    lag: Duration::ZERO,
                },
            };
            progress.deferred = Some(match progress.deferred.take() {
                Some(earlier) => earlier.then(skipped),
                None => skipped,
            });
        }
        let Some(deferred) = &mut progress.deferred else {
            if progress.settling.is_empty() {
                self.set(|s| {
                    s.state = ProjectionState::Running;
                    s.lag = Duration::ZERO;
                    s.lag_events = 0;
                });
            }
            return;
        };
        // At the head: what it reports once settled.
        deferred.full = false;
        let now = Instant::now();
        let interval = self.runner.options.checkpoint_interval;
        if effects_held || now >= progress.settle_due(interval, now) {
            self.settle_deferred(name, progress).await;
        }
    }

    /// Settles the applied batches not settled yet, as one, once fewer than [`SETTLING`]
    /// batches are settling.
    async fn settle_deferred(&self, name: &str, progress: &mut Progress) {
        while progress.settling.len() >= SETTLING {
            self.await_oldest(progress).await;
        }
        if let Some(batch) = progress.deferred.take() {
            self.settle(name, batch, progress);
        }
    }

    /// Starts settling an applied batch in its own task: makes it visible, then saves its
    /// checkpoint once the batch before it has ended its save, so saves stay in feed order.
    fn settle(&self, name: &str, batch: Done, progress: &mut Progress) {
        let projection = self.runner.projection.clone();
        let checkpoints = self.runner.checkpoints.clone();
        let fence = self.fence.clone();
        let (name, next) = (name.to_owned(), batch.next);
        let after = progress.chain.take();
        let (saved, chain) = oneshot::channel();
        progress.chain = Some(chain);
        progress.last_settle = Some(Instant::now());
        let task = tokio::spawn(
            async move {
                let visible = projection
                    .make_visible()
                    .await
                    .map_err(|error| error_chain(&*error));
                if let Some(after) = after {
                    // Ended either way: a failed save before this one is made good by it.
                    let _ = after.await;
                }
                let result = match visible {
                    // A refused save also ends the term: leading stops, nothing more is saved.
                    Ok(()) => fence
                        .save(&*checkpoints, &name, next)
                        .await
                        .map_err(|error| match error {
                            SaveError::LeaseLost => "the lease was lost".to_owned(),
                            SaveError::Failed(error) => error_chain(&error),
                        }),
                    Err(error) => Err(error),
                };
                let _ = saved.send(());
                result
            }
            .in_current_span(),
        );
        progress.settling.push_back(Settling {
            batch,
            task: AbortOnDrop(task),
        });
    }

    /// Waits for every batch settling, reporting each, then settles again in line what
    /// failed. `Err` with why leading ends, when it could not.
    async fn finish(&mut self, name: &str, progress: &mut Progress) -> Result<(), Lead> {
        self.settle_deferred(name, progress).await;
        while !progress.settling.is_empty() {
            self.await_oldest(progress).await;
        }
        self.settle_in_line(name, progress).await
    }

    /// Waits for the oldest batch settling, then takes it off.
    async fn await_oldest(&self, progress: &mut Progress) {
        let ended = oldest_settled(&mut progress.settling).await;
        self.take_settled(ended, progress).await;
    }

    /// Takes the oldest settling batch off once it `ended`, and reports what settled.
    async fn take_settled(&self, ended: Result<(), String>, progress: &mut Progress) {
        if let Some(batch) = progress.take_oldest(ended, &self.status) {
            self.report(&batch, progress).await;
        }
    }

    /// Settles the applied batches whose settling failed with none settling after them:
    /// makes them visible and saves their checkpoint, retrying with backoff. `Err` with why
    /// leading ends, when it could not.
    async fn settle_in_line(&mut self, name: &str, progress: &mut Progress) -> Result<(), Lead> {
        let Some(batch) = progress.unsettled.take() else {
            return Ok(());
        };
        let mut attempt = 0;
        while let Err(error) = self.runner.projection.make_visible().await {
            attempt += 1;
            self.set(|s| s.last_error = Some(error_chain(&*error)));
            if !self.pause(self.runner.options.retry.delay(attempt)).await {
                return Err(Lead::Stopped);
            }
        }
        self.save_checkpoint(name, batch.next).await?;
        progress.checkpoint = progress.checkpoint.max(batch.next);
        self.report(&batch, progress).await;
        Ok(())
    }

    async fn report(&self, batch: &Done, progress: &mut Progress) {
        report(
            &self.status,
            &*self.runner.feed,
            &mut progress.last_head_check,
            batch,
        )
        .await;
    }

    /// Applies one batch: upcasts, holds back events of parked keys, retries transient failures
    /// behind the breaker, and deals with poison per the policy.
    async fn apply(
        &mut self,
        events: Vec<RecordedEvent>,
        parked: &mut HashSet<String>,
    ) -> Result<Applied, Lead> {
        let projection = self.runner.projection.clone();
        let mut ready = Vec::with_capacity(events.len());
        let mut poison: Vec<(RecordedEvent, String)> = Vec::new();
        // Keys whose event failed to upcast in this batch: their later events are held back
        // too, as if parked, so no document gets an event without the one before it.
        let mut failed: HashSet<String> = HashSet::new();
        for event in events {
            // Keys only matter once something is parked; most batches skip computing them.
            if !(parked.is_empty() && failed.is_empty())
                && projection
                    .key(&event)
                    .is_some_and(|k| parked.contains(&k) || failed.contains(&k))
            {
                poison.push((event, "an earlier event of this key is parked".to_owned()));
                continue;
            }
            let upcasters = &self.runner.options.upcasters;
            if upcasters.is_empty() {
                // The common case: no copy of the payload just to keep it for a dead letter.
                ready.push(event);
                continue;
            }
            match upcasters.upcast(event.clone()) {
                Ok(upcast) => ready.push(upcast),
                Err(error) => {
                    failed.extend(projection.key(&event));
                    poison.push((event, error_chain(&error)));
                    if self.runner.options.poison == PoisonPolicy::Stop {
                        // The projection stops just before this event: nothing after it is
                        // applied (whatever its key), so nothing lands ahead of the checkpoint.
                        break;
                    }
                }
            }
        }
        let lag = ready
            .last()
            .map(|e| (OffsetDateTime::now_utc() - e.recorded_at).unsigned_abs())
            .unwrap_or_default();
        let mut attempt = 0u32;
        let rejected = loop {
            if ready.is_empty() {
                break Vec::new();
            }
            let wait = self.breaker.wait_time();
            let state = self.breaker.state();
            self.set(|s| s.breaker = state);
            if !wait.is_zero() {
                self.set(|s| s.state = ProjectionState::Retrying);
                if !self.pause(wait).await {
                    return Err(Lead::Stopped);
                }
                continue;
            }
            let outcome = projection.apply(&ready).await;
            let breaker = &mut self.breaker;
            match outcome {
                Ok(()) => {
                    breaker.record_success();
                    break Vec::new();
                }
                Err(ProjectionError::Poison(rejected)) => {
                    breaker.record_success();
                    break rejected;
                }
                Err(ProjectionError::Transient(error)) => {
                    breaker.record_failure();
                    let state = breaker.state();
                    attempt = attempt.saturating_add(1);
                    let text = error_chain(&*error);
                    tracing::warn!(attempt, error = %text, "transient projection failure");
                    self.set(|s| {
                        s.state = ProjectionState::Retrying;
                        s.breaker = state;
                        s.last_error = Some(text);
                    });
                    if attempt >= self.runner.options.retry.max_attempts() {
                        return Err(Lead::Failed("retries exhausted".to_owned()));
                    }
                    if !self.pause(self.runner.options.retry.delay(attempt)).await {
                        return Err(Lead::Stopped);
                    }
                }
            }
        };
        self.set(|s| s.breaker = super::BreakerState::Closed);
        for Rejected { position, error } in rejected {
            if let Some(index) = ready.iter().position(|e| e.position == position) {
                poison.push((ready.remove(index), error));
            }
        }
        if poison.is_empty() {
            return Ok(Applied {
                count: ready.len() as u64,
                parked: 0,
                lag,
            });
        }
        poison.sort_by_key(|(event, _)| event.position);
        match self.runner.options.poison {
            PoisonPolicy::Stop => {
                let (first, error) = &poison[0];
                // Everything before the first poison event is applied: keep that much.
                let before = ready
                    .iter()
                    .map(|e| e.position)
                    .filter(|p| *p < first.position)
                    .max();
                Err(Lead::Poisoned {
                    before,
                    error: format!(
                        "poison event {}@{} ({}) at {}: {error}",
                        first.stream_id, first.version, first.event_type, first.position
                    ),
                })
            }
            PoisonPolicy::Park => {
                let Some(store) = self.runner.dead_letters.clone() else {
                    return Err(Lead::Failed(
                        "poison event and no dead-letter store to park it in".to_owned(),
                    ));
                };
                let parked_count = poison.len() as u64;
                for (event, error) in poison {
                    let key = projection.key(&event);
                    tracing::warn!(stream = %event.stream_id, version = %event.version, %error, "parking a poison event");
                    let letter = DeadLetter::new(
                        projection.name(),
                        event.position,
                        event.stream_id,
                        event.version,
                        &event.event_type,
                        key.clone(),
                        &error,
                        OffsetDateTime::now_utc(),
                    );
                    let mut attempt = 0;
                    while let Err(e) = store.park(letter.clone()).await {
                        attempt += 1;
                        self.set(|s| s.last_error = Some(e.to_string()));
                        if !self.pause(self.runner.options.retry.delay(attempt)).await {
                            return Err(Lead::Stopped);
                        }
                    }
                    if let Some(key) = key {
                        parked.insert(key);
                    }
                }
                Ok(Applied {
                    count: ready.len() as u64,
                    parked: parked_count,
                    lag,
                })
            }
        }
    }
}

/// Reports a batch whose checkpoint is saved: position, counts, lag, and whether it is
/// catching up (a full batch; the lag in events is asked of the feed at most once a second).
async fn report(
    status: &watch::Sender<ProjectionStatus>,
    feed: &dyn ReadAll,
    last_head_check: &mut Instant,
    batch: &Done,
) {
    let Done {
        next,
        full,
        ref applied,
    } = *batch;
    let lag_events = if full && last_head_check.elapsed() >= Duration::from_secs(1) {
        *last_head_check = Instant::now();
        feed.head()
            .await
            .ok()
            .map(|head| head.parts().1.saturating_sub(next.parts().1))
    } else {
        None
    };
    status.send_modify(|s| {
        s.state = if full {
            ProjectionState::CatchingUp
        } else {
            ProjectionState::Running
        };
        s.position = next;
        s.applied += applied.count;
        s.parked += applied.parked;
        s.lag = applied.lag;
        if let Some(lag_events) = lag_events {
            s.lag_events = lag_events;
        } else if !full {
            s.lag_events = 0;
        }
    });
}

struct Applied {
    count: u64,
    parked: u64,
    lag: Duration,
}

/// How many applied batches may be settling (made visible, checkpoint saved) at once while
/// later ones are applied.
const SETTLING: usize = 4;

/// Where leading stands: the last saved checkpoint, and the batches settling.
struct Progress {
    checkpoint: Position,
    last_head_check: Instant,
    /// Applied batches being made visible and checkpointed, oldest first.
    settling: VecDeque<Settling>,
    /// Applied batches whose settling failed: the next batch to settle makes them good (its
    /// visibility and checkpoint cover theirs), or they settle again in line.
    unsettled: Option<Done>,
    /// Ends when the save of the newest batch settling has ended.
    chain: Option<oneshot::Receiver<()>>,
    /// Applied batches that settle with a later one (catching up), as one.
    deferred: Option<Done>,
    /// When the last batch started settling.
    last_settle: Option<Instant>,
}

impl Progress {
    /// When deferred batches are due to settle: `interval` after the last batch started
    /// settling, or `now` if none did.
    fn settle_due(&self, interval: Duration, now: Instant) -> Instant {
        self.last_settle.map_or(now, |last| last + interval)
    }

    /// Takes the oldest settling batch off once it `ended`: the batches now settled to report,
    /// or `None` when it failed (it waits for the next one, or an in-line retry).
    fn take_oldest(
        &mut self,
        ended: Result<(), String>,
        status: &watch::Sender<ProjectionStatus>,
    ) -> Option<Done> {
        let oldest = self.settling.pop_front()?;
        let batch = match self.unsettled.take() {
            Some(earlier) => earlier.then(oldest.batch),
            None => oldest.batch,
        };
        match ended {
            Ok(()) => {
                self.checkpoint = self.checkpoint.max(batch.next);
                Some(batch)
            }
            Err(error) => {
                tracing::warn!(%error, "could not settle a batch; the next one makes it good");
                status.send_modify(|s| s.last_error = Some(error));
                self.unsettled = Some(batch);
                None
            }
        }
    }
}

/// An applied batch being made visible and checkpointed.
struct Settling {
    batch: Done,
    /// Aborted if leading ends without waiting for it (the lease was lost): it saves nothing
    /// more.
    task: AbortOnDrop<Result<(), String>>,
}

/// Waits for the oldest settling batch to end (forever when none is): `Err` with the reason
/// when it could not be made visible or its checkpoint saved. Take it off with
/// [`Progress::take_oldest`] once this returned.
async fn oldest_settled(settling: &mut VecDeque<Settling>) -> Result<(), String> {
    match settling.front_mut() {
        Some(oldest) => match (&mut oldest.task.0).await {
            Ok(result) => result,
            Err(error) => Err(format!("settling a batch ended abnormally: {error}")),
        },
        None => std::future::pending().await,
    }
}

/// A batch applied: the position to save and what to report once it is saved.
struct Done {
    next: Position,
    full: bool,
    applied: Applied,
}

impl Done {
    /// This batch and the `later` one, reported as one.
    fn then(self, later: Done) -> Done {
        Done {
            next: later.next,
            full: later.full,
            applied: Applied {
                count: self.applied.count + later.applied.count,
                parked: self.applied.parked + later.applied.parked,
                lag: later.applied.lag,
            },
        }
    }
}

/// What woke the leading loop.
enum Woke {
    Batch(Option<(FeedBatch, bool)>),
    Settled(Result<(), String>),
    SettleDeferred,
    /// Time to look for operators' requests on dead letters.
    Redrive,
}

/// An error and its sources, as one line.
fn error_chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

struct AbortOnDrop<T = ()>(JoinHandle<T>);

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Reads the feed ahead of the projection into a bounded channel.
struct Reader {
    feed: Arc<dyn ReadAll>,
    filter: EventFilter,
    batch_size: usize,
    poll_interval: Duration,
    retry: RetryPolicy,
    waiter: Option<Box<dyn FeedWaiter>>,
    after: Position,
    out: mpsc::Sender<(FeedBatch, bool)>,
}

impl Reader {
    async fn run(mut self) {
        let mut failures = 0u32;
        // An empty batch goes out once per idle stretch (so the runner can say it is at the
        // head), and whenever the feed moved past filtered events.
        let mut idle_reported = false;
        loop {
            let batch = match self
                .feed
                .read_all(self.after, self.batch_size, &self.filter)
                .await
            {
                Ok(batch) => batch,
                Err(error) => {
                    failures = failures.saturating_add(1);
                    tracing::warn!(%error, "feed read failed; retrying");
                    tokio::time::sleep(self.retry.delay(failures)).await;
                    continue;
                }
            };
            failures = 0;
            // A batch the store cut short is read on from at once, like a full one.
            let full = batch.events.len() >= self.batch_size || batch.more;
            let empty = batch.events.is_empty();
            let moved = batch.next > self.after;
            self.after = batch.next;
            let send = !empty || moved || !idle_reported;
            idle_reported = empty;
            if send && self.out.send((batch, full)).await.is_err() {
                return;
            }
            if !full {
                self.idle().await;
            }
        }
    }

    /// Waits for a signal or the poll interval, whichever comes first.
    async fn idle(&mut self) {
        match self.waiter.as_mut() {
            Some(waiter) => {
                let _ = tokio::time::timeout(self.poll_interval, waiter.wait()).await;
            }
            None => tokio::time::sleep(self.poll_interval).await,
        }
    }
}
