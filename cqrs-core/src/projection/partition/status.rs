//! Partition status as data: the worker's own view, and the store's, which any process reads.

use std::collections::BTreeMap;

use crate::projection::{Lease, LeaseStore, ProjectionStatus};
use crate::{CheckpointStore, EventFilter, Position, ReadAll, Result};

use super::{PartitionBy, Partitions};

/// What one partitioned worker is doing: whom it sees, what it runs.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct PartitionedStatus {
    /// The projection.
    pub name: String,
    /// This worker's id (its [`RunnerOptions::owner`](crate::projection::RunnerOptions::owner)).
    pub worker: String,
    /// The live members it saw last, sorted.
    pub members: Vec<String>,
    /// The partitions the assignment gives it.
    pub assigned: Vec<u32>,
    /// The status of each partition it runs (a partition it was just given may stand by
    /// until its old holder lets go).
    pub partitions: BTreeMap<u32, ProjectionStatus>,
    /// Partitions it is stopping (no longer its own): they settle, save and release.
    pub stopping: Vec<u32>,
    /// The last error of the membership (a lease it could not renew or list), if any.
    pub last_error: Option<String>,
    /// Another layout (another count, or the other split of this count) whose partitions
    /// are led now: this worker waits outside the membership, running nothing, until every
    /// one of them is let go (a change of layout is a migration: stop the old workers).
    pub waiting_for: Option<Partitions>,
    /// Whether it has stopped.
    pub stopped: bool,
}

impl PartitionedStatus {
    pub(super) fn new(name: &str, worker: &str) -> Self {
        Self {
            name: name.to_owned(),
            worker: worker.to_owned(),
            members: Vec::new(),
            assigned: Vec::new(),
            partitions: BTreeMap::new(),
            stopping: Vec::new(),
            last_error: None,
            waiting_for: None,
            stopped: false,
        }
    }

    /// The partitions this worker leads now (holds the lease of, and applies).
    pub fn leading(&self) -> Vec<u32> {
        use crate::projection::ProjectionState::{CatchingUp, Retrying, Running};
        self.partitions
            .iter()
            .filter(|(_, s)| matches!(s.state, CatchingUp | Running | Retrying))
            .map(|(i, _)| *i)
            .collect()
    }
}

/// One partition as the store sees it: who holds it, where its checkpoint is, how far behind.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct PartitionReport {
    /// The partition's index.
    pub index: u32,
    /// Its name (checkpoint, lease and dead letters).
    pub name: String,
    /// Its lease, if held now: the holder (a worker id), the epoch, the time left.
    pub lease: Option<Lease>,
    /// Its checkpoint, if it has one.
    pub checkpoint: Option<Position>,
    /// Events after the checkpoint in the partition's feed, counted up to the limit asked
    /// (a count at the limit means at least that many). By key, every event the projection's
    /// filter passes is counted (the store cannot compute the key): an upper bound.
    pub lag_events: u64,
}

impl Partitions {
    /// The live members of `projection`'s workers, as the store sees them: their member
    /// leases (the worker id is the owner).
    ///
    /// # Errors
    ///
    /// The store's, [`Error::Unsupported`](crate::Error::Unsupported) when it cannot list
    /// leases.
    pub async fn members(&self, store: &dyn LeaseStore, projection: &str) -> Result<Vec<Lease>> {
        store.leases(&Self::members_prefix(projection)).await
    }

    /// Each partition of `projection` (whose filter is `filter`) as the store sees it: from
    /// any process that reaches the store (an operator's tool), not only from a worker.
    /// `max_lag` bounds how many events are counted per partition.
    ///
    /// # Errors
    ///
    /// The store's.
    pub async fn report<S>(
        &self,
        store: &S,
        projection: &str,
        filter: &EventFilter,
        max_lag: u64,
    ) -> Result<Vec<PartitionReport>>
    where
        S: ReadAll + CheckpointStore + LeaseStore + ?Sized,
    {
        let mut leases: BTreeMap<String, Lease> = store
            .leases(&self.prefix(projection))
            .await?
            .into_iter()
            .map(|l| (l.name.clone(), l))
            .collect();
        let mut reports = Vec::with_capacity(self.count as usize);
        for index in 0..self.count {
            let name = self.name(projection, index);
            let checkpoint = store.load_checkpoint(&name).await?;
            let filter = match (self.by, self.partition(index)) {
                (PartitionBy::Stream, Some(partition)) => filter.clone().partition(partition),
                _ => filter.clone(),
            };
            let lag_events = count_after(
                store,
                checkpoint.unwrap_or(Position::START),
                &filter,
                max_lag,
            )
            .await?;
            reports.push(PartitionReport {
                index,
                lease: leases.remove(&name),
                name,
                checkpoint,
                lag_events,
            });
        }
        Ok(reports)
    }
}

/// Counts the events after `after` that pass `filter`, up to `max`.
async fn count_after<S: ReadAll + ?Sized>(
    store: &S,
    mut after: Position,
    filter: &EventFilter,
    max: u64,
) -> Result<u64> {
    let mut counted = 0u64;
    while counted < max {
        let batch = store.read_all(after, 1000, filter).await?;
        counted += batch.events.len() as u64;
        if batch.next <= after || (batch.events.len() < 1000 && !batch.more) {
            break;
        }
        after = batch.next;
    }
    Ok(counted.min(max))
}
