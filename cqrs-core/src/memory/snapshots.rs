//! The in-memory store's snapshots, checkpoints and recorded breakers.

use async_trait::async_trait;
use tokio::time::Instant;

use crate::projection::{BreakerRecord, BreakerState, Lease};
use crate::store::{CheckpointStore, FencedSave, SnapshotReplay, SnapshotStore};
use crate::{Position, Result, Snapshot, StreamEvent, StreamId, Version};

use super::{InMemoryEventStore, LeaseRow};

#[async_trait]
impl SnapshotStore for InMemoryEventStore {
    async fn save_snapshot(&self, snapshot: Snapshot) -> Result<()> {
        crate::backend::check_snapshot(&snapshot)?;
        let mut state = self.write();
        let newer = state
            .snapshots
            .get(&snapshot.stream_id)
            .is_none_or(|existing| existing.version < snapshot.version);
        if newer {
            state.snapshots.insert(snapshot.stream_id.clone(), snapshot);
        }
        Ok(())
    }

    async fn load_snapshot(&self, stream_id: &StreamId) -> Result<Option<Snapshot>> {
        Ok(self.read().snapshots.get(stream_id).cloned())
    }

    /// Both under one read lock, as PostgreSQL's one statement sees one snapshot of the data.
    async fn replay_from_snapshot(
        &self,
        stream_id: &StreamId,
        limit: usize,
        each: &mut (dyn for<'e> FnMut(SnapshotReplay<'e>) -> Result<()> + Send),
    ) -> Result<Option<usize>> {
        let state = self.read();
        let snapshot = state.snapshots.get(stream_id).cloned();
        let from = snapshot
            .as_ref()
            .map_or(Version::ZERO, |s| s.version)
            .next();
        if let Some(snapshot) = snapshot {
            each(SnapshotReplay::Snapshot(snapshot))?;
        }
        let mut replayed = 0;
        for event in state.stream(stream_id, from, limit) {
            each(SnapshotReplay::Event(StreamEvent::from(event)))?;
            replayed += 1;
        }
        Ok(Some(replayed))
    }
}

#[async_trait]
impl CheckpointStore for InMemoryEventStore {
    async fn load_checkpoint(&self, name: &str) -> Result<Option<Position>> {
        Ok(self.read().checkpoints.get(name).copied())
    }

    async fn save_checkpoint(&self, name: &str, position: Position) -> Result<()> {
        self.write().advance_checkpoint(name, position);
        Ok(())
    }

    async fn save_checkpoint_fenced(
        &self,
        name: &str,
        position: Position,
        lease: &Lease,
    ) -> Result<FencedSave> {
        let mut state = self.write();
        if lease.name != name || !state.holds(lease, Instant::now()) {
            return Ok(FencedSave::LeaseLost);
        }
        state.advance_checkpoint(name, position);
        Ok(FencedSave::Saved)
    }

    async fn reset_checkpoint(&self, name: &str) -> Result<()> {
        let mut state = self.write();
        let now = Instant::now();
        // The holder's term ends: a new epoch, ended now (a row is kept, as for a release).
        let lease = state.leases.entry(name.to_owned()).or_insert(LeaseRow {
            owner: String::new(),
            epoch: 0,
            expires: now,
        });
        lease.epoch += 1;
        lease.expires = lease.expires.min(now);
        state
            .dead_letters
            .retain(|letter| letter.projection != name);
        state.checkpoints.remove(name);
        Ok(())
    }

    async fn record_breaker(&self, name: &str, breaker: &BreakerRecord) -> Result<()> {
        let mut state = self.write();
        let kept = state
            .breakers
            .get(name)
            .and_then(|before| before.last_error.clone());
        let mut record = breaker.clone();
        if record.state != BreakerState::Closed && record.last_error.is_none() {
            record.last_error = kept;
        }
        state.breakers.insert(name.to_owned(), record);
        Ok(())
    }
}

impl InMemoryEventStore {
    /// Where projection `name`'s runner last recorded its circuit breaker
    /// ([`CheckpointStore::record_breaker`]), if it did.
    pub fn breaker(&self, name: &str) -> Option<BreakerRecord> {
        self.read().breakers.get(name).cloned()
    }
}
