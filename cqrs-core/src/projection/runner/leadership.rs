//! Keeping the lease: waiting until this worker holds it (standing by while another does,
//! following the checkpoint it saves),
//! starting a [`Term`] that renews it beside the work, and releasing it when leading ends.

use std::pin::pin;
use std::time::Duration;

use crate::projection::{Lease, LeaseStore};
use crate::Position;

use super::outcome::Lead;
use super::term::Term;
use super::worker::Worker;

impl Worker {
    /// Waits until this worker holds the lease (at once without a lease store), and starts
    /// its term. `Err` when asked to stop meanwhile, or on a store error a retry cannot cure.
    pub(super) async fn hold_lease(
        &mut self,
        name: &str,
        ended: Option<&Lease>,
    ) -> Result<Term, Lead> {
        let Some(leases) = self.runner.leases.clone() else {
            return match self.stop.stopping() {
                true => Err(Lead::Stopped),
                false => Ok(Term::unfenced()),
            };
        };
        let ttl = self.runner.options.lease_ttl;
        let poll = self.runner.options.poll_interval;
        loop {
            if self.stop.stopping() {
                return Err(Lead::Stopped);
            }
            let asked_at = tokio::time::Instant::now();
            let acquired = {
                let owner = self.runner.options.lease_owner();
                let mut acquire = pin!(leases.try_acquire(name, owner, ttl));
                tokio::select! {
                    acquired = &mut acquire => acquired,
                    // Stopping waits for a store that does not answer no longer than a lease
                    // lasts. One that answers late may have granted the lease: given back, or
                    // nobody else could lead until it expired.
                    () = self.stop.requested() => {
                        if let Ok(Ok(Some(lease))) = tokio::time::timeout(ttl, acquire).await {
                            give_back(&*leases, &lease, ttl).await;
                        }
                        return Err(Lead::Stopped);
                    }
                }
            };
            let standing = match acquired {
                // The lease of a term that ended, renewed (giving it back had failed): work of
                // that term still on its way would pass the fence. Given back again; the next
                // try takes it under a new epoch (or once it expired).
                Ok(Some(lease))
                    if ended.is_some_and(|e| e.owner == lease.owner && e.epoch == lease.epoch) =>
                {
                    give_back(&*leases, &lease, ttl).await;
                    false
                }
                Ok(Some(lease)) => {
                    let status = self.status.clone();
                    return Ok(Term::start(leases, lease, asked_at, ttl, status));
                }
                Ok(None) => true,
                Err(error) if !error.is_transient() => {
                    return Err(Lead::failed("could not take the lease", &error));
                }
                Err(error) => {
                    self.set(|s| s.error(error.to_string()));
                    false
                }
            };
            // The lease is tried every third of its time to live (each try writes its row);
            // meanwhile a standby follows the leader's checkpoint every poll interval.
            let next_try = asked_at + ttl / 3;
            loop {
                if standing && !self.stand_by(name).await {
                    return Err(Lead::Stopped);
                }
                let left = next_try.saturating_duration_since(tokio::time::Instant::now());
                if left.is_zero() {
                    break;
                }
                let wait = if standing { poll.min(left) } else { left };
                if !self.stop.pause(wait).await {
                    return Err(Lead::Stopped);
                }
            }
        }
    }

    /// Stands by while another worker leads, showing the checkpoint it saved as this worker's
    /// position: whoever waits on any worker of the projection (read-your-writes on any
    /// replica, a catch-up while the service leads) sees the projection move (a read that
    /// fails is reported as the last error; a service's readiness checks its store itself).
    /// `false` when asked to stop meanwhile.
    async fn stand_by(&mut self, name: &str) -> bool {
        let checkpoint = tokio::select! {
            checkpoint = self.runner.checkpoints.load_checkpoint(name) => checkpoint,
            () = self.stop.requested() => return false,
        };
        self.set(|s| {
            s.stand_by();
            match checkpoint {
                Ok(checkpoint) => s.position = checkpoint.unwrap_or(Position::START),
                Err(error) => s.error(error.to_string()),
            }
        });
        true
    }

    /// Why leading cannot go on, when the checkpoint store refused a save of `term` while the
    /// lease store still holds its lease in the same epoch: the two are not one store (the
    /// checkpoint store checks fenced saves against leases of its own), and every term would
    /// end the same way, its batches applied again without end. `None` for a lease that
    /// really passed on, expired or was reset (another holder, another epoch).
    pub(super) async fn stores_disagree(&self, term: &Term) -> Option<String> {
        let (Some(leases), Some(lease)) = (&self.runner.leases, term.lease()) else {
            return None;
        };
        if !term.fence().save_was_refused() {
            return None;
        }
        let ttl = self.runner.options.lease_ttl;
        let held = match tokio::time::timeout(ttl, leases.leases(&lease.name)).await {
            // Read, not taken: a probe that took an expired lease would lead unseen.
            Ok(Ok(listed)) => listed.iter().any(|held| {
                held.name == lease.name && held.owner == lease.owner && held.epoch == lease.epoch
            }),
            // A lease store that lists nothing: renewing tells as much, and a lease it took
            // anew (expired, or reset) is given back at once.
            _ => {
                match tokio::time::timeout(ttl, leases.try_acquire(&lease.name, &lease.owner, ttl))
                    .await
                {
                    Ok(Ok(Some(held))) if held.epoch == lease.epoch => true,
                    Ok(Ok(Some(taken))) => {
                        give_back(&**leases, &taken, ttl).await;
                        false
                    }
                    _ => false,
                }
            }
        };
        if held {
            Some(
                "a store of the runner's refused a write under a lease the lease store holds: \
                 a runner's lease store must be the store of its checkpoints and dead letters, \
                 which check fenced writes against their own leases"
                    .to_owned(),
            )
        } else {
            None
        }
    }

    /// Releases the lease of `term`, if it holds one.
    pub(super) async fn release(&self, term: &mut Term) {
        let ttl = self.runner.options.lease_ttl;
        term.end_keeper(ttl).await;
        if let (Some(leases), Some(lease)) = (&self.runner.leases, term.lease()) {
            give_back(&**leases, lease, ttl).await;
        }
    }
}

/// Gives `lease` back, waiting at most `ttl`: a store that does not answer lets it expire
/// instead. One place for every way leading gives a lease back (a term's end, a stop while
/// taking it, a lost term's lease renewed, a probe's).
async fn give_back(leases: &dyn LeaseStore, lease: &Lease, ttl: Duration) {
    match tokio::time::timeout(ttl, leases.release(lease)).await {
        Ok(Ok(())) => {}
        Ok(Err(error)) => tracing::warn!(%error, "could not release the lease"),
        Err(_) => tracing::warn!("releasing the lease did not answer; it will expire"),
    }
}
