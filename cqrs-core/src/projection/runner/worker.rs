//! The worker: holds the lease, then leads: takes batches from the reader, applies them, and
//! hands them to the settlement, until it is stopped, fails or loses its lease.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, watch};
use tracing::Instrument;

use crate::projection::{BreakerState, CircuitBreaker, ProjectionState, ProjectionStatus};
use crate::{Error, FeedBatch, Position};

use super::handle::{panic_message, AbortOnDrop};
use super::outcome::{Applied, Lead};
use super::reader::{Batches, Reader};
use super::report::Done;
use super::settle::{Parts, Settlement, Unsettled};
use super::stop::Stop;
use super::term::Fence;
use super::ProjectionRunner;

/// What woke the leading loop.
enum Woke {
    Batch(Option<(FeedBatch, bool)>),
    Settled(Result<(), Unsettled>),
    SettleDeferred,
    /// Time to look for operators' requests on dead letters.
    Redrive,
}

/// Runs a projection: the state its parts share.
pub(super) struct Worker {
    pub(super) runner: ProjectionRunner,
    /// Shared with the settling batches and the lease keeper, which report in it.
    pub(super) status: Arc<watch::Sender<ProjectionStatus>>,
    pub(super) stop: Stop,
    pub(super) breaker: CircuitBreaker,
    /// Keys with a parked event: their later events are held back (parked too).
    pub(super) parked: HashSet<String>,
    /// The fence of the term being led: its lease goes with each apply.
    pub(super) fence: Option<Fence>,
    /// The breaker's state as last recorded in the store (`None`: not yet).
    pub(super) recorded_breaker: Option<BreakerState>,
}

impl Worker {
    pub(super) fn new(
        runner: ProjectionRunner,
        status: Arc<watch::Sender<ProjectionStatus>>,
        stop: Stop,
    ) -> Self {
        let options = &runner.options;
        let breaker = CircuitBreaker::new(options.breaker_threshold, options.breaker_open_for);
        Self {
            runner,
            status,
            stop,
            breaker,
            parked: HashSet::new(),
            fence: None,
            recorded_breaker: None,
        }
    }

    /// Leads whenever it holds the lease, until stopped or failed.
    pub(super) async fn run(mut self) {
        let name = self.runner.checkpoint_name();
        // The lease of the last term lost, which the next must not renew.
        let mut ended = None;
        loop {
            let mut term = match self.hold_lease(&name, ended.as_ref()).await {
                Ok(term) => term,
                Err(Lead::Failed(error)) => break self.fail(error),
                Err(_) => break self.set(|s| s.state = ProjectionState::Stopped),
            };
            // The term can end any time (the keeper could not renew, or a save was refused):
            // leading ends with it, dropping the apply in flight, saving nothing more.
            // What the projection remembers from an earlier term may be stale: another worker
            // may have led meanwhile. It is told here, around the race, so a lost term (which
            // drops `lead` midway) tells it too.
            self.runner.projection.leadership_changed(true).await;
            let lead = tokio::select! {
                biased;
                () = term.lost() => Lead::LostLease,
                lead = self.lead(&name, term.fence()) => lead,
            };
            self.runner.projection.leadership_changed(false).await;
            match lead {
                Lead::Stopped => {
                    self.release(&mut term).await;
                    break self.set(|s| s.state = ProjectionState::Stopped);
                }
                Lead::LostLease => {
                    if let Some(error) = self.stores_disagree(&term).await {
                        self.release(&mut term).await;
                        break self.fail(error);
                    }
                    tracing::warn!("lease lost; standing by");
                    self.set(|s| {
                        s.stand_by();
                        s.error("the lease was lost; standing by".to_owned());
                    });
                    // Given back if the store still holds it for this worker (a renewal
                    // answered too late): leading again is then a new holder's term, under a
                    // higher epoch, and the fence refuses work of this term still on its way.
                    // Kept, the next term would be a renewal of this one's epoch.
                    self.release(&mut term).await;
                    ended = term.lease().cloned();
                    continue;
                }
                Lead::Failed(error) | Lead::Poisoned { error, .. } => {
                    self.release(&mut term).await;
                    break self.fail(error);
                }
            }
        }
    }

    /// Ends in the `Failed` state, saying why.
    fn fail(&self, error: String) {
        tracing::error!(%error, "projection failed");
        self.set(|s| {
            s.state = ProjectionState::Failed;
            s.error(error);
        });
    }

    /// Changes the status.
    pub(super) fn set(&self, change: impl FnOnce(&mut ProjectionStatus)) {
        self.status.send_modify(change);
    }

    /// Leads one term: from the checkpoint, saves going through `fence`.
    async fn lead(&mut self, name: &str, fence: Fence) -> Lead {
        self.set(|s| {
            s.state = ProjectionState::Starting;
            s.oldest_unapplied_at = None;
        });
        let checkpoint = match self.load_checkpoint(name).await {
            Ok(checkpoint) => checkpoint,
            Err(lead) => return lead,
        };
        self.fence = Some(fence.clone());
        let options = &self.runner.options;
        let parts = Parts {
            name: name.to_owned(),
            projection: self.runner.projection.clone(),
            checkpoints: self.runner.checkpoints.clone(),
            feed: self.runner.feed.clone(),
            fence,
            status: self.status.clone(),
            stop: self.stop.clone(),
            retry: options.retry,
            interval: options.checkpoint_interval,
        };
        let mut settlement = Settlement::new(parts, checkpoint);
        let lead = self.lead_from(&mut settlement).await;
        // However leading ended, the applied batches' checkpoint saves are seen through;
        // unless the lease is lost: then nothing more is saved.
        if !matches!(lead, Lead::LostLease) {
            let _ = settlement.finish().await;
        }
        lead
    }

    /// Loads the checkpoint, retrying store errors worth retrying; `Err` with why leading
    /// ends (asked to stop, or an error a retry cannot cure).
    async fn load_checkpoint(&mut self, name: &str) -> Result<Position, Lead> {
        let mut attempt = 0;
        loop {
            match self.runner.checkpoints.load_checkpoint(name).await {
                Ok(position) => return Ok(position.unwrap_or(Position::START)),
                Err(error) if !error.is_transient() => {
                    return Err(Lead::failed("could not load the checkpoint", &error));
                }
                Err(error) => {
                    attempt += 1;
                    self.set(|s| {
                        s.state = ProjectionState::Retrying;
                        s.error(error.to_string());
                    });
                    let delay = self.runner.options.retry.delay(attempt);
                    if !self.stop.pause(delay).await {
                        return Err(Lead::Stopped);
                    }
                }
            }
        }
    }

    /// The leading loop: batch after batch from the checkpoint, settling them as they are
    /// applied, and carrying out operators' requests on dead letters in between.
    async fn lead_from(&mut self, settlement: &mut Settlement) -> Lead {
        if let Err(lead) = self.load_parked_keys().await {
            return lead;
        }
        let checkpoint = settlement.checkpoint();
        self.set(|s| s.position = checkpoint);
        let (mut incoming, mut reader) = self.start_reader(checkpoint);
        let redriving = self.runner.dead_letters.is_some();
        // Operators' requests on dead letters are looked for at once, then once per poll.
        let mut redrive_at = Some(tokio::time::Instant::now());
        loop {
            if let Some(error) = settlement.failure() {
                return Lead::Failed(error);
            }
            let settle_at = settlement.due_at();
            let woke = tokio::select! {
                batch = incoming.recv() => Woke::Batch(batch),
                ended = settlement.next_settled(), if settlement.is_settling() => {
                    Woke::Settled(ended)
                }
                () = self.stop.requested() => return Lead::Stopped,
                () = sleep_until(settle_at), if settle_at.is_some() => Woke::SettleDeferred,
                () = sleep_until(redrive_at), if redriving => Woke::Redrive,
            };
            let batch = match woke {
                Woke::Batch(Some(batch)) => batch,
                Woke::Batch(None) => return reader_stopped(&mut reader).await,
                Woke::Settled(ended) => {
                    if let Err(lead) = settlement.settled(ended).await {
                        return lead;
                    }
                    continue;
                }
                Woke::SettleDeferred => {
                    settlement.settle_deferred().await;
                    continue;
                }
                Woke::Redrive => {
                    let more = self.redrive_requested().await;
                    let wait = if more {
                        Duration::ZERO
                    } else {
                        self.runner.options.poll_interval
                    };
                    // `None`: a poll interval too long to end (`Duration::MAX`).
                    redrive_at = tokio::time::Instant::now().checked_add(wait);
                    continue;
                }
            };
            let (batch, full) = self.with_queued(batch, &mut incoming);
            if self.stop.stopping() {
                return Lead::Stopped;
            }
            let FeedBatch { events, next, .. } = batch;
            if events.is_empty() {
                settlement.skipped(next).await;
                continue;
            }
            let (oldest, newest) = recorded_between(&events);
            self.set(|s| s.oldest_unapplied_at = oldest);
            let span = super::span::batch(settlement.name(), &events);
            let applied = match self
                .apply_while_settling(events, settlement)
                .instrument(span.clone())
                .await
            {
                Ok(applied) => applied,
                Err(Lead::Poisoned { before, error }) => {
                    settlement.keep_before_poison(before).await;
                    return Lead::Failed(error);
                }
                Err(lead) => return lead,
            };
            // At the head nothing waits; catching up, the next event is no older than this
            // batch's last.
            self.set(|s| s.oldest_unapplied_at = newest.filter(|_| full));
            settlement
                .applied(Done {
                    next,
                    full,
                    applied,
                    oldest,
                    span,
                })
                .await;
        }
    }

    /// Starts the reader after `checkpoint`: the batches it reads ahead, and its task.
    fn start_reader(&self, checkpoint: Position) -> (Batches, AbortOnDrop<Result<(), Error>>) {
        let options = &self.runner.options;
        let (batches, incoming) = mpsc::channel(options.buffered_batches);
        let reader = Reader {
            feed: self.runner.feed.clone(),
            filter: self.runner.projection.filter(),
            batch_size: options.batch_size,
            poll_interval: options.poll_interval,
            retry: options.retry,
            waiter: self.runner.signal.as_ref().map(|s| s.subscribe()),
            after: checkpoint,
            out: batches,
            status: self.status.clone(),
        };
        let task = tokio::spawn(reader.run().in_current_span());
        (incoming, AbortOnDrop(task))
    }

    /// `batch` with the batches that queued up while the last one was applied: they go in
    /// together, one apply (one round trip to the sink, one checkpoint) rather than one each,
    /// so a live projection keeps up when the sink is slower than the writers. Applies stay
    /// under twice the batch size.
    fn with_queued(
        &self,
        (mut batch, mut full): (FeedBatch, bool),
        incoming: &mut Batches,
    ) -> (FeedBatch, bool) {
        while batch.events.len() < self.runner.options.batch_size {
            let Ok((queued, queued_full)) = incoming.try_recv() else {
                break;
            };
            batch.events.extend(queued.events);
            batch.next = batch.next.max(queued.next);
            full = queued_full;
        }
        (batch, full)
    }

    /// Applies a batch while earlier batches settle (made visible, checkpoint saved): a save
    /// only ever follows its own batch's effect, and neither round trip sits between two
    /// applies.
    async fn apply_while_settling(
        &mut self,
        events: Vec<crate::RecordedEvent>,
        settlement: &mut Settlement,
    ) -> Result<Applied, Lead> {
        let mut apply = std::pin::pin!(self.apply(events));
        loop {
            tokio::select! {
                biased;
                applied = &mut apply => return applied,
                ended = settlement.next_settled(), if settlement.is_settling() => {
                    // Reported as soon as it settled, not when this apply ends (which may
                    // take long, retrying behind the breaker).
                    settlement.take_settled(ended).await;
                }
            }
        }
    }
}

/// When the first and the last of `events` were recorded.
fn recorded_between(
    events: &[crate::RecordedEvent],
) -> (Option<time::OffsetDateTime>, Option<time::OffsetDateTime>) {
    (
        events.first().map(|e| e.recorded_at),
        events.last().map(|e| e.recorded_at),
    )
}

/// Sleeps until `at` (forever without one).
async fn sleep_until(at: Option<tokio::time::Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// The reader ends on a feed error a retry cannot cure, or by a panic: says which.
async fn reader_stopped(reader: &mut AbortOnDrop<Result<(), Error>>) -> Lead {
    match (&mut reader.0).await {
        Ok(Err(error)) => Lead::failed("could not read the feed", &error),
        Err(error) if error.is_panic() => Lead::Failed(format!(
            "the feed reader stopped: {}",
            panic_message(&*error.into_panic())
        )),
        _ => Lead::Failed("the feed reader stopped".to_owned()),
    }
}
