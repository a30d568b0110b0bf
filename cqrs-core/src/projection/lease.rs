//! Leases: one active worker per projection across processes, fenced by epochs.

use std::time::Duration;

use async_trait::async_trait;

use crate::Result;

/// A lease held: by whom, in which epoch, and for how long from the request that took or
/// renewed it.
///
/// The epoch is a fencing token: it grows each time the lease passes to a new holder (or back
/// to the same owner after it expired or was released) and stays the same on renewal. Work done
/// under a lease carries its epoch, so the store can refuse a save from a holder whose time is
/// up ([`CheckpointStore::save_checkpoint_fenced`](crate::CheckpointStore::save_checkpoint_fenced)).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Lease {
    /// The lease's name (the projection's checkpoint name).
    pub name: String,
    /// Its holder: a running worker's name and a suffix of its own (`{owner}~{8 hex
    /// digits}`, see [`RunnerOptions::owner`](super::RunnerOptions::owner)); [`worker`](Self::worker)
    /// is the name alone.
    pub owner: String,
    /// The fencing token: grows with each new holder, the same on renewal.
    pub epoch: u64,
    /// How long the lease lasts, counted by the store's clock from when it took the request.
    /// A holder counts it from when it *sent* the request, so it always thinks the lease ends
    /// a little earlier than the store does.
    pub valid_for: Duration,
}

impl Lease {
    /// A lease, for store implementations.
    pub fn new(
        name: impl Into<String>,
        owner: impl Into<String>,
        epoch: u64,
        valid_for: Duration,
    ) -> Self {
        Self {
            name: name.into(),
            owner: owner.into(),
            epoch,
            valid_for,
        }
    }

    /// The holder's worker name: [`owner`](Self::owner) without the suffix a running worker
    /// adds to it.
    ///
    /// ```
    /// # use std::time::Duration;
    /// use cqrs_core::projection::Lease;
    ///
    /// let lease = Lease::new("orders", "worker-a~0f3c9a2b", 1, Duration::from_secs(10));
    /// assert_eq!(lease.worker(), "worker-a");
    /// let taken_by_hand = Lease::new("orders", "ops", 1, Duration::from_secs(10));
    /// assert_eq!(taken_by_hand.worker(), "ops");
    /// ```
    pub fn worker(&self) -> &str {
        self.owner
            .rsplit_once('~')
            .map_or(self.owner.as_str(), |(worker, _)| worker)
    }
}

/// Time-limited, fenced leases by name. The holder renews before the time runs out; when it
/// dies, the lease expires and a standby takes it, in a higher epoch.
#[async_trait]
pub trait LeaseStore: Send + Sync {
    /// Takes the lease `name` for `owner` for `ttl`, or renews it if `owner` holds it and it
    /// has not expired. A new holder (also `owner` again after the lease expired or was
    /// released) gets a higher epoch than any before; a renewal keeps the epoch. `None` when
    /// another owner holds an unexpired lease.
    ///
    /// A `ttl` outside [`MIN_LEASE_TTL`](crate::backend::MIN_LEASE_TTL) to
    /// [`MAX_LEASE_TTL`](crate::backend::MAX_LEASE_TTL) is refused with
    /// [`Error::LeaseTtlOutOfRange`](crate::Error::LeaseTtlOutOfRange), taking nothing: a store
    /// calls [`check_lease_ttl`](crate::backend::check_lease_ttl) first.
    async fn try_acquire(&self, name: &str, owner: &str, ttl: Duration) -> Result<Option<Lease>>;

    /// Gives `lease` up, if it is still held in its epoch (the next holder gets a higher
    /// epoch; a lease held by someone else, or in a later epoch, is left alone).
    async fn release(&self, lease: &Lease) -> Result<()>;

    /// The leases held now whose names start with `prefix`, in name order, each with the time
    /// it has left by the store's clock as [`Lease::valid_for`]. Partitioned workers list
    /// their members' leases with it, and any process reads who holds which partition.
    ///
    /// The default refuses with [`Error::Unsupported`](crate::Error::Unsupported).
    async fn leases(&self, prefix: &str) -> Result<Vec<Lease>> {
        let _ = prefix;
        Err(crate::Error::Unsupported {
            operation: "listing leases",
        })
    }
}
