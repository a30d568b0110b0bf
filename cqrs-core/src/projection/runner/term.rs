//! A worker's term as leader: the lease it holds, kept alive by a keeper task off the apply
//! path, and the fence its checkpoint saves go through.
//!
//! The keeper renews every third of the lease's time to live and counts each renewal's
//! validity from when the request *started* (the store counts from when it got it, later).
//! A failed renewal is not a renewal: the keeper tries again until shortly before the lease
//! would expire (a tenth of its time to live before), and when it cannot confirm the lease by
//! then, or the lease went to another epoch, the term is lost. The worker races its leading
//! against that and stops at once: the apply in flight is dropped and nothing more is saved.
//! Saves carry the lease's epoch, so a save the worker still makes after its lease passed on
//! (a pause longer than the lease) is refused by the store, which also ends the term.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tracing::Instrument;

use crate::{CheckpointStore, Error, FencedSave, Position};

use crate::projection::{Lease, LeaseStore, ProjectionStatus};

/// One term of leadership (or, without a lease store, leading unfenced).
pub(crate) struct Term {
    fence: Fence,
    lost: watch::Receiver<bool>,
    keeper: Option<JoinHandle<()>>,
    /// Tells the keeper to renew no more.
    stop: watch::Sender<bool>,
}

impl Drop for Term {
    fn drop(&mut self) {
        if let Some(keeper) = &self.keeper {
            keeper.abort();
        }
    }
}

impl Term {
    /// Leading without a lease store: never lost, saves unconditional (but forward only).
    pub(crate) fn unfenced() -> Self {
        let (lost, watched) = watch::channel(false);
        Self {
            fence: Fence {
                lease: None,
                lost: Arc::new(lost),
                refused: Arc::default(),
            },
            lost: watched,
            keeper: None,
            stop: watch::channel(false).0,
        }
    }

    /// Starts the term of `lease`, taken by a request sent at `asked_at` for `ttl`, and its
    /// keeper.
    /// Failed renewals show in `status` as the last error.
    pub(crate) fn start(
        leases: Arc<dyn LeaseStore>,
        lease: Lease,
        asked_at: Instant,
        ttl: Duration,
        status: Arc<watch::Sender<ProjectionStatus>>,
    ) -> Self {
        let (lost, watched) = watch::channel(false);
        let lost = Arc::new(lost);
        let (stop, stopped) = watch::channel(false);
        let keeper = Keeper {
            leases,
            stop: stopped,
            deadline: asked_at + lease.valid_for.saturating_sub(margin(ttl)),
            renew_at: asked_at + ttl / 3,
            lease: lease.clone(),
            ttl,
            lost: lost.clone(),
            status,
        };
        Self {
            fence: Fence {
                lease: Some(lease),
                lost,
                refused: Arc::default(),
            },
            lost: watched,
            keeper: Some(tokio::spawn(keeper.run().in_current_span())),
            stop,
        }
    }

    /// Stops the keeper and waits, up to `bound`, until it has: a renewal in flight lands
    /// first, so a release sent after this is the last word on the lease (sent beside a
    /// renewal, the renewal could land after it and take the lease again for a whole TTL).
    pub(crate) async fn end_keeper(&mut self, bound: Duration) {
        self.stop.send_replace(true);
        if let Some(keeper) = self.keeper.take() {
            let abort = keeper.abort_handle();
            if tokio::time::timeout(bound, keeper).await.is_err() {
                abort.abort();
            }
        }
    }

    /// The lease held, if any.
    pub(crate) fn lease(&self) -> Option<&Lease> {
        self.fence.lease.as_ref()
    }

    /// The fence saves in this term go through.
    pub(crate) fn fence(&self) -> Fence {
        self.fence.clone()
    }

    /// Ends once the term is lost (never when unfenced).
    pub(crate) async fn lost(&self) {
        let mut lost = self.lost.clone();
        if lost.wait_for(|lost| *lost).await.is_err() {
            // The sender lives as long as this term: not reached.
            std::future::pending::<()>().await;
        }
    }
}

/// Saves checkpoints under a term's lease (or unfenced without one).
#[derive(Clone)]
pub(crate) struct Fence {
    lease: Option<Lease>,
    lost: Arc<watch::Sender<bool>>,
    /// Whether the checkpoint store refused a save under the lease (what ended the term).
    refused: Arc<AtomicBool>,
}

/// Why a save through a [`Fence`] did not happen.
#[derive(Debug)]
pub(crate) enum SaveError {
    /// The store refused it: the lease has expired or passed on. The term is over.
    LeaseLost,
    /// The store failed (retry if [`Error::is_transient`]).
    Failed(Error),
}

impl Fence {
    /// The lease saves go through, if any.
    pub(crate) fn lease(&self) -> Option<&Lease> {
        self.lease.as_ref()
    }

    /// Whether a store of the worker's own (checkpoints, dead letters) refused a write under
    /// the lease.
    pub(crate) fn save_was_refused(&self) -> bool {
        self.refused.load(Ordering::SeqCst)
    }

    /// Ends the term: a store of the worker's own (its dead letters) refused a write under the
    /// lease, as a refused checkpoint save does.
    pub(crate) fn refused_by_store(&self) {
        self.refused.store(true, Ordering::SeqCst);
        self.lost.send_replace(true);
    }

    /// Ends the term: the sink refused a write under its lease.
    pub(crate) fn lose(&self) {
        self.lost.send_replace(true);
    }

    /// Saves `position` as checkpoint `name`: under the lease's epoch if there is one.
    pub(crate) async fn save(
        &self,
        store: &dyn CheckpointStore,
        name: &str,
        position: Position,
    ) -> Result<(), SaveError> {
        let Some(lease) = &self.lease else {
            return store
                .save_checkpoint(name, position)
                .await
                .map_err(SaveError::Failed);
        };
        match store.save_checkpoint_fenced(name, position, lease).await {
            Ok(FencedSave::Saved) => Ok(()),
            Ok(FencedSave::LeaseLost) => {
                tracing::warn!(
                    epoch = lease.epoch,
                    "checkpoint save refused: the lease has passed on"
                );
                self.refused.store(true, Ordering::SeqCst);
                self.lost.send_replace(true);
                Err(SaveError::LeaseLost)
            }
            Err(error) => Err(SaveError::Failed(error)),
        }
    }
}

/// How long before the lease would expire a worker gives it up, when it could not confirm it:
/// time to drop the work in flight before anyone else can take the lease.
fn margin(ttl: Duration) -> Duration {
    ttl / 10
}

/// Renews a term's lease until it cannot, then says the term is lost (also if it panics: it
/// says so when dropped).
struct Keeper {
    leases: Arc<dyn LeaseStore>,
    /// Set when the term ends by the worker's choice: renew no more.
    stop: watch::Receiver<bool>,
    lease: Lease,
    ttl: Duration,
    /// Until when the lease is surely held (by our clock, counted from a request's start),
    /// less the [`margin`].
    deadline: Instant,
    renew_at: Instant,
    lost: Arc<watch::Sender<bool>>,
    status: Arc<watch::Sender<ProjectionStatus>>,
}

impl Keeper {
    async fn run(mut self) {
        let every = self.ttl / 3;
        let mut stop = self.stop.clone();
        loop {
            // Between renewals only: one in flight is let finish.
            tokio::select! {
                () = tokio::time::sleep_until(self.renew_at.min(self.deadline)) => {}
                _ = stop.wait_for(|stop| *stop) => break,
            }
            if Instant::now() >= self.deadline {
                tracing::warn!(
                    epoch = self.lease.epoch,
                    "lease not confirmed before it expired; no longer leading"
                );
                break;
            }
            let asked_at = Instant::now();
            let renewal = self
                .leases
                .try_acquire(&self.lease.name, &self.lease.owner, self.ttl);
            match tokio::time::timeout_at(self.deadline, renewal).await {
                Ok(Ok(Some(renewed))) if renewed.epoch == self.lease.epoch => {
                    self.deadline = asked_at + renewed.valid_for.saturating_sub(margin(self.ttl));
                    self.renew_at = asked_at + every;
                }
                Ok(Ok(_)) => {
                    tracing::warn!(
                        epoch = self.lease.epoch,
                        "the lease passed on; no longer leading"
                    );
                    break;
                }
                Ok(Err(error)) => {
                    // Not held until confirmed: try again soon, until the lease would expire.
                    tracing::warn!(%error, "could not renew the lease; trying again");
                    let error = format!("could not renew the lease: {error}");
                    self.status.send_modify(|s| s.error(error));
                    self.renew_at = Instant::now() + every / 4;
                }
                Err(_) => {
                    tracing::warn!(
                        epoch = self.lease.epoch,
                        "lease renewal did not answer before the lease expired; no longer leading"
                    );
                    break;
                }
            }
        }
    }
}

impl Drop for Keeper {
    /// However the keeper ends (gave up, panicked in the lease store, aborted with its term),
    /// the lease is no longer kept: the term is over.
    fn drop(&mut self) {
        self.lost.send_replace(true);
    }
}
