//! The in-memory store's snapshots and checkpoints.

use async_trait::async_trait;
use tokio::time::Instant;

use crate::projection::Lease;
use crate::store::{CheckpointStore, FencedSave, SnapshotStore};
use crate::{Position, Result, Snapshot, StreamId};

use super::InMemoryEventStore;

#[async_trait]
impl SnapshotStore for InMemoryEventStore {
    async fn save_snapshot(&self, snapshot: Snapshot) -> Result<()> {
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
        self.write().checkpoints.remove(name);
        Ok(())
    }
}
