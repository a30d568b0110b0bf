//! A partition of a projection: the projection under the partition's name, its filter
//! narrowed to the partition, run by an ordinary runner.

use std::sync::Arc;

use async_trait::async_trait;

use crate::projection::{Lease, Projection, ProjectionError};
use crate::{BoxError, EventFilter, RecordedEvent};

use super::{PartitionBy, StreamPartition};

/// Partition `partition` of `inner`, named `name`.
pub(crate) struct PartitionProjection {
    pub(crate) inner: Arc<dyn Projection>,
    pub(crate) name: String,
    pub(crate) partition: StreamPartition,
    pub(crate) by: PartitionBy,
}

impl PartitionProjection {
    /// Whether `event` is this partition's (by key: the key's hash, or the stream's without
    /// a key).
    fn owns(&self, event: &RecordedEvent) -> bool {
        match self.inner.key(event) {
            Some(key) => self.partition.contains(&key),
            None => self.partition.contains(event.stream_id.as_str()),
        }
    }
}

#[async_trait]
impl Projection for PartitionProjection {
    fn name(&self) -> &str {
        &self.name
    }

    fn filter(&self) -> EventFilter {
        let filter = self.inner.filter();
        match self.by {
            PartitionBy::Stream => filter.partition(self.partition),
            PartitionBy::Key => filter,
        }
    }

    fn key(&self, event: &RecordedEvent) -> Option<String> {
        self.inner.key(event)
    }

    async fn apply(&self, events: &[RecordedEvent]) -> Result<(), ProjectionError> {
        self.apply_fenced(events, None).await
    }

    async fn apply_fenced(
        &self,
        events: &[RecordedEvent],
        lease: Option<&Lease>,
    ) -> Result<(), ProjectionError> {
        match self.by {
            PartitionBy::Stream => self.inner.apply_fenced(events, lease).await,
            PartitionBy::Key => {
                let mine: Vec<RecordedEvent> =
                    events.iter().filter(|e| self.owns(e)).cloned().collect();
                if mine.is_empty() {
                    return Ok(());
                }
                self.inner.apply_fenced(&mine, lease).await
            }
        }
    }

    async fn make_visible(&self) -> Result<(), BoxError> {
        self.inner.make_visible().await
    }

    async fn leadership_changed(&self, leading: bool) {
        self.inner.leadership_changed(leading).await;
    }
}
