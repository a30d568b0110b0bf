//! [`Settlement`]: applied batches on their way to being settled (made visible, their
//! checkpoint saved, their status reported), and the checkpoint they have reached.
//!
//! Each applied batch settles in its own task while later batches are applied: it is made
//! visible, then saves its checkpoint once the batch before it has ended its save, so saves
//! stay in feed order and a save only ever follows its own batch's effect. While catching up,
//! batches settle together at most once per checkpoint interval; a batch at the head of the
//! feed settles at once. A batch whose settling failed is made good by the next one to settle,
//! or settles again in line (with backoff) when none follows.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::{oneshot, watch};
use tracing::Instrument;

use crate::projection::{Projection, ProjectionState, ProjectionStatus};
use crate::{CheckpointStore, Position, ReadAll, RetryPolicy};

use super::handle::AbortOnDrop;
use super::outcome::{Applied, Lead};
use super::report::{Done, Reporter};
use super::stop::Stop;
use super::term::{Fence, SaveError};

/// How many applied batches may be settling (made visible, checkpoint saved) at once while
/// later ones are applied.
const SETTLING: usize = 4;

/// What a [`Settlement`] works with: the leading worker's collaborators in this term.
pub(super) struct Parts {
    /// The checkpoint's name.
    pub(super) name: String,
    pub(super) projection: Arc<dyn Projection>,
    pub(super) checkpoints: Arc<dyn CheckpointStore>,
    /// Asked for its head when reporting the lag in events.
    pub(super) feed: Arc<dyn ReadAll>,
    /// Checkpoint saves go through it: under the lease of the term leading now, if any.
    pub(super) fence: Fence,
    pub(super) status: Arc<watch::Sender<ProjectionStatus>>,
    pub(super) stop: Stop,
    pub(super) retry: RetryPolicy,
    /// How often batches settle while catching up.
    pub(super) interval: Duration,
}

/// The batches applied in one term that are not settled yet, and the checkpoint saved.
pub(super) struct Settlement {
    parts: Parts,
    /// The last checkpoint saved.
    checkpoint: Position,
    /// Reports settled batches in the status.
    reporter: Reporter,
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
    /// Why a batch could not settle, when no retry can cure it: leading ends.
    failure: Option<String>,
}

/// Why a batch could not settle.
pub(super) struct Unsettled {
    error: String,
    /// Whether a retry may cure it.
    retry: bool,
}

impl Unsettled {
    fn retry(error: String) -> Self {
        Self { error, retry: true }
    }
}

/// An applied batch being made visible and checkpointed.
struct Settling {
    batch: Done,
    /// Aborted if leading ends without waiting for it (the lease was lost): it saves nothing
    /// more.
    task: AbortOnDrop<Result<(), Unsettled>>,
}

impl Settlement {
    /// Nothing applied yet, from the saved `checkpoint`.
    pub(super) fn new(parts: Parts, checkpoint: Position) -> Self {
        Self {
            reporter: Reporter::new(parts.status.clone(), parts.feed.clone()),
            parts,
            checkpoint,
            settling: VecDeque::new(),
            unsettled: None,
            chain: None,
            deferred: None,
            last_settle: None,
            failure: None,
        }
    }

    /// The name of the run it saves checkpoints for (its checkpoint name).
    pub(super) fn name(&self) -> &str {
        &self.parts.name
    }

    /// The last checkpoint saved.
    pub(super) fn checkpoint(&self) -> Position {
        self.checkpoint
    }

    /// Why a batch could not settle, when no retry can cure it: leading ends.
    pub(super) fn failure(&mut self) -> Option<String> {
        self.failure.take()
    }

    /// Whether some batch is settling (then [`next_settled`](Self::next_settled) ends).
    pub(super) fn is_settling(&self) -> bool {
        !self.settling.is_empty()
    }

    /// When deferred batches are due to settle, if any wait and the interval ever ends.
    pub(super) fn due_at(&self) -> Option<tokio::time::Instant> {
        let now = Instant::now();
        self.deferred.as_ref()?;
        self.settle_due(now).map(tokio::time::Instant::from_std)
    }

    /// When deferred batches are due to settle: the interval after the last batch started
    /// settling, or `now` if none did; `None` for an interval too long to end (such as
    /// `Duration::MAX`: they settle at the head of the feed).
    fn settle_due(&self, now: Instant) -> Option<Instant> {
        match self.last_settle {
            None => Some(now),
            Some(last) => last.checked_add(self.parts.interval),
        }
    }

    /// Whether deferred batches are due to settle at `now`.
    fn settle_is_due(&self, now: Instant) -> bool {
        self.settle_due(now).is_some_and(|due| now >= due)
    }

    /// Waits for the oldest settling batch to end (forever when none is): `Err` with the reason
    /// when it could not be made visible or its checkpoint saved. Take it off with
    /// [`take_settled`](Self::take_settled) or [`settled`](Self::settled) once this returned.
    pub(super) async fn next_settled(&mut self) -> Result<(), Unsettled> {
        match self.settling.front_mut() {
            Some(oldest) => match (&mut oldest.task.0).await {
                Ok(result) => result,
                Err(error) => Err(Unsettled::retry(format!(
                    "settling a batch ended abnormally: {error}"
                ))),
            },
            None => std::future::pending().await,
        }
    }

    /// Takes the oldest settling batch off once it `ended`, and reports what settled; when
    /// none is settling any more, settles in line what failed. `Err` with why leading ends.
    pub(super) async fn settled(&mut self, ended: Result<(), Unsettled>) -> Result<(), Lead> {
        self.take_settled(ended).await;
        if let Some(error) = self.failure.take() {
            return Err(Lead::Failed(error));
        }
        if self.settling.is_empty() {
            self.settle_in_line().await?;
        }
        Ok(())
    }

    /// Takes the oldest settling batch off once it `ended`, and reports what settled (a
    /// failed batch waits for the next one, or an in-line retry; a failure no retry cures
    /// waits in [`failure`](Self::failure)).
    pub(super) async fn take_settled(&mut self, ended: Result<(), Unsettled>) {
        let Some(oldest) = self.settling.pop_front() else {
            return;
        };
        let (batch, earlier_failed) = match self.unsettled.take() {
            Some(earlier) => (earlier.then(oldest.batch), true),
            None => (oldest.batch, false),
        };
        match ended {
            Ok(()) => {
                self.checkpoint = self.checkpoint.max(batch.next);
                if earlier_failed {
                    made_good(&self.parts.status);
                }
                self.reporter.report(&batch).await;
            }
            Err(Unsettled { error, retry }) => {
                tracing::warn!(%error, "could not settle a batch; the next one makes it good");
                if !retry {
                    self.failure.get_or_insert_with(|| error.clone());
                }
                unsettled(&self.parts.status, &batch, error);
                self.unsettled = Some(batch);
            }
        }
    }

    /// Takes an applied batch: it settles with later ones while catching up, unless it is at
    /// the head of the feed or the interval is up.
    pub(super) async fn applied(&mut self, done: Done) {
        let full = done.full;
        let done = match self.deferred.take() {
            Some(earlier) => earlier.then(done),
            None => done,
        };
        self.deferred = Some(done);
        if !full || self.settle_is_due(Instant::now()) {
            self.settle_deferred().await;
        }
    }

    /// A batch with nothing for us, up to `next`. Applied batches held back are at the head
    /// of the feed now: they settle at once, as a batch that is not full would. The feed may
    /// also have moved past events we filter out: worth a save, so readers waiting on the
    /// checkpoint (read-your-writes) see it, but under unrelated load every wake-up brings
    /// such a batch, so that save alone waits for the checkpoint interval (the reader sends
    /// these batches only when the feed moved, or once per idle stretch).
    pub(super) async fn skipped(&mut self, next: Position) {
        let effects_held = self
            .deferred
            .as_ref()
            .is_some_and(|d| d.applied.count + d.applied.parked > 0);
        let known = (self.settling.back().map(|s| s.batch.next))
            .into_iter()
            .chain(self.deferred.as_ref().map(|d| d.next))
            .fold(self.checkpoint, Position::max);
        if next > known {
            // Settled with the rest: its report says "running at the head" once it is saved.
            let skipped = Done {
                next,
                full: false,
                applied: Applied::NOTHING,
                oldest: None,
                span: tracing::Span::none(),
            };
            self.deferred = Some(match self.deferred.take() {
                Some(earlier) => earlier.then(skipped),
                None => skipped,
            });
        }
        let Some(deferred) = &mut self.deferred else {
            if self.settling.is_empty() {
                self.parts.status.send_modify(|s| {
                    s.state = ProjectionState::Running;
                    s.lag = Duration::ZERO;
                    s.lag_events = 0;
                });
            }
            return;
        };
        // At the head: what it reports once settled.
        deferred.full = false;
        if effects_held || self.settle_is_due(Instant::now()) {
            self.settle_deferred().await;
        }
    }

    /// Settles the applied batches not settled yet, as one, once fewer than [`SETTLING`]
    /// batches are settling.
    pub(super) async fn settle_deferred(&mut self) {
        while self.settling.len() >= SETTLING {
            let ended = self.next_settled().await;
            self.take_settled(ended).await;
        }
        if let Some(batch) = self.deferred.take() {
            self.settle(batch);
        }
    }

    /// Starts settling an applied batch in its own task: makes it visible, then saves its
    /// checkpoint once the batch before it has ended its save, so saves stay in feed order.
    fn settle(&mut self, batch: Done) {
        let projection = self.parts.projection.clone();
        let checkpoints = self.parts.checkpoints.clone();
        let fence = self.parts.fence.clone();
        let (name, next) = (self.parts.name.clone(), batch.next);
        let after = self.chain.take();
        let (saved, chain) = oneshot::channel();
        self.chain = Some(chain);
        self.last_settle = Some(Instant::now());
        // Inside the batch's span. Progress past filtered-out events has none: its spans sit
        // in the runner's (their log lines keep its scope) but start traces of their own, since
        // the runner's one trace lasts as long as the runner and would gather every such save.
        let parent = match batch.span.is_disabled() {
            true => tracing::Span::current(),
            false => batch.span.clone(),
        };
        let visible_span = tracing::debug_span!(parent: &parent, "make_visible");
        let save_span = tracing::debug_span!(parent: &parent, "checkpoint", position = %next);
        if batch.span.is_disabled() {
            for span in [&visible_span, &save_span] {
                crate::telemetry::follow_first(span, []);
            }
        }
        let task = tokio::spawn(
            async move {
                let visible = projection
                    .make_visible()
                    .instrument(visible_span)
                    .await
                    .map_err(|error| Unsettled::retry(error.to_string()));
                if let Some(after) = after {
                    // Ended either way: a failed save before this one is made good by it.
                    let _ = after.await;
                }
                let result = match visible {
                    // A refused save also ends the term: leading stops, nothing more is saved.
                    Ok(()) => fence
                        .save(&*checkpoints, &name, next)
                        .instrument(save_span)
                        .await
                        .map_err(|error| match error {
                            SaveError::LeaseLost => {
                                Unsettled::retry("the lease was lost".to_owned())
                            }
                            SaveError::Failed(error) => Unsettled {
                                retry: error.is_transient(),
                                error: format!("could not save the checkpoint: {error}"),
                            },
                        }),
                    Err(error) => Err(error),
                };
                let _ = saved.send(());
                result
            }
            .in_current_span(),
        );
        self.settling.push_back(Settling {
            batch,
            task: AbortOnDrop(task),
        });
    }

    /// Waits for every batch settling, reporting each, then settles again in line what
    /// failed. `Err` with why leading ends, when it could not.
    pub(super) async fn finish(&mut self) -> Result<(), Lead> {
        self.settle_deferred().await;
        while !self.settling.is_empty() {
            let ended = self.next_settled().await;
            self.take_settled(ended).await;
        }
        self.settle_in_line().await
    }

    /// After a poison event stopped the projection: keeps what was applied before it (up to
    /// `before`), saved only now, after the earlier batches' saves, so the checkpoint never
    /// moves back. One try at making it visible: the index's own refresh does it otherwise.
    pub(super) async fn keep_before_poison(&mut self, before: Option<Position>) {
        let Some(before) = before else {
            return;
        };
        if self.finish().await.is_err() {
            return;
        }
        if let Err(error) = self.parts.projection.make_visible().await {
            tracing::warn!(%error, "could not make the last applied events visible");
        }
        if self.save_checkpoint(before).await.is_ok() {
            self.parts.status.send_modify(|s| s.position = before);
        }
    }

    /// Settles the applied batches whose settling failed with none settling after them:
    /// makes them visible and saves their checkpoint, retrying with backoff. `Err` with why
    /// leading ends, when it could not.
    async fn settle_in_line(&mut self) -> Result<(), Lead> {
        let Some(batch) = self.unsettled.take() else {
            return Ok(());
        };
        let mut attempt = 0;
        while let Err(error) = self.parts.projection.make_visible().await {
            attempt += 1;
            unsettled(&self.parts.status, &batch, error.to_string());
            if !self.parts.stop.pause(self.parts.retry.delay(attempt)).await {
                return Err(Lead::Stopped);
            }
        }
        self.save_checkpoint(batch.next).await?;
        self.checkpoint = self.checkpoint.max(batch.next);
        made_good(&self.parts.status);
        self.reporter.report(&batch).await;
        Ok(())
    }

    /// Saves the checkpoint through this term's fence, retrying store failures worth
    /// retrying. `Err` with why leading ends: asked to stop, the lease lost (a refused save is
    /// not retried), or a store error a retry cannot cure (a store that cannot fence, a
    /// missing table).
    async fn save_checkpoint(&mut self, position: Position) -> Result<(), Lead> {
        let mut attempt = 0;
        loop {
            let parts = &mut self.parts;
            match parts
                .fence
                .save(&*parts.checkpoints, &parts.name, position)
                .await
            {
                Ok(()) => return Ok(()),
                Err(SaveError::LeaseLost) => return Err(Lead::LostLease),
                Err(SaveError::Failed(error)) if !error.is_transient() => {
                    return Err(Lead::failed("could not save the checkpoint", &error));
                }
                Err(SaveError::Failed(error)) => {
                    attempt += 1;
                    parts.status.send_modify(|s| {
                        s.state = ProjectionState::Retrying;
                        s.error(error.to_string());
                    });
                    if !parts.stop.pause(parts.retry.delay(attempt)).await {
                        return Err(Lead::Stopped);
                    }
                }
            }
        }
    }
}

/// Batches that could not settle are settled now: the age [`unsettled`] showed goes. What the
/// worker applied since is applied, which it counts as not waiting (at the head, nothing
/// waits; catching up, its next batch says how old what waits is).
fn made_good(status: &watch::Sender<ProjectionStatus>) {
    status.send_modify(|s| s.oldest_unapplied_at = None);
}

/// Shows `batch`, applied, as not settled yet because of `error`: retrying (not ready), with
/// its oldest event waiting. Readers cannot see it, or the checkpoint has not moved past it,
/// so the projection is behind whatever its apply said, until a later settle says otherwise.
fn unsettled(status: &watch::Sender<ProjectionStatus>, batch: &Done, error: String) {
    status.send_modify(|s| {
        s.state = ProjectionState::Retrying;
        s.oldest_unapplied_at = match (s.oldest_unapplied_at, batch.oldest) {
            (Some(at), Some(oldest)) => Some(at.min(oldest)),
            (at, oldest) => at.or(oldest),
        };
        s.error(error);
    });
}
