//! A filtered projection is woken by every append, also by events it filters out. Moving its
//! checkpoint past them is worth a save, but not one per wake-up: under unrelated load that is
//! a commit per append for nothing. The runner saves such progress at most once per
//! `checkpoint_interval`, or with the next batch it applies.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use cqrs_core::projection::{Projection, ProjectionError, ProjectionRunner, RunnerOptions};
use cqrs_core::{
    AppendEvents, CheckpointStore, EventFilter, ExpectedVersion, FeedBatch, InMemoryEventStore,
    NewEvent, Position, ReadAll, RecordedEvent, StreamId,
};
use serde_json::json;
use tokio::sync::watch;

const WAIT: Duration = Duration::from_secs(10);

/// Wants the `wanted` category only.
struct Wanted;

#[async_trait]
impl Projection for Wanted {
    fn name(&self) -> &str {
        "wanted"
    }
    fn filter(&self) -> EventFilter {
        EventFilter::all().category("wanted")
    }
    async fn apply(&self, _events: &[RecordedEvent]) -> Result<(), ProjectionError> {
        Ok(())
    }
}

/// The feed, telling how far the runner's reader has read.
struct Watched {
    inner: InMemoryEventStore,
    read_to: watch::Sender<Position>,
}

#[async_trait]
impl ReadAll for Watched {
    async fn read_all(
        &self,
        after: Position,
        limit: usize,
        filter: &EventFilter,
    ) -> cqrs_core::Result<FeedBatch> {
        let batch = self.inner.read_all(after, limit, filter).await?;
        self.read_to.send_modify(|p| *p = (*p).max(batch.next));
        Ok(batch)
    }
    async fn head(&self) -> cqrs_core::Result<Position> {
        self.inner.head().await
    }
}

/// The store's checkpoints, counting saves.
struct Counted {
    inner: InMemoryEventStore,
    saves: Arc<AtomicU32>,
}

#[async_trait]
impl CheckpointStore for Counted {
    async fn load_checkpoint(&self, name: &str) -> cqrs_core::Result<Option<Position>> {
        self.inner.load_checkpoint(name).await
    }
    async fn save_checkpoint(&self, name: &str, position: Position) -> cqrs_core::Result<()> {
        self.saves.fetch_add(1, Ordering::SeqCst);
        self.inner.save_checkpoint(name, position).await
    }
}

async fn append(store: &InMemoryEventStore, stream: &str) -> Position {
    store
        .append(
            &StreamId::new(stream).expect("id"),
            ExpectedVersion::Any,
            vec![NewEvent::new("Happened", 1, json!({}))],
        )
        .await
        .expect("append")
        .position
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thirty_unrelated_wake_ups_cost_no_thirty_checkpoint_saves() {
    let store = InMemoryEventStore::new();
    let (read_to, mut reader_at) = watch::channel(Position::START);
    let saves = Arc::new(AtomicU32::new(0));
    let handle = ProjectionRunner::new(
        Wanted,
        Watched {
            inner: store.clone(),
            read_to,
        },
        Counted {
            inner: store.clone(),
            saves: saves.clone(),
        },
    )
    .with_signal(store.clone())
    .with_options(
        RunnerOptions::new()
            .poll_interval(Duration::from_secs(3600))
            .checkpoint_interval(Duration::from_secs(3600)),
    )
    .spawn();
    let first = append(&store, "wanted-1").await;
    assert!(
        handle.wait_for(first, WAIT).await.is_ok(),
        "{:?}",
        handle.status()
    );
    let before = saves.load(Ordering::SeqCst);

    // One unrelated event per wake-up: each time the reader reads past it before the next.
    let mut last = first;
    for i in 0..30 {
        last = append(&store, &format!("unrelated-{i}")).await;
        tokio::time::timeout(WAIT, reader_at.wait_for(|p| *p >= last))
            .await
            .expect("the reader reads past it in time")
            .expect("the runner is alive");
    }
    // An event it wants: applied at the head, it settles at once, with everything before it.
    let wanted = append(&store, "wanted-2").await;
    assert!(
        handle.wait_for(wanted, WAIT).await.is_ok(),
        "{:?}",
        handle.status()
    );
    let during = saves.load(Ordering::SeqCst) - before;
    handle.shutdown().await;

    assert!(
        during <= 3,
        "{during} checkpoint saves for 30 wake-ups by filtered-out events and one wanted event"
    );
    assert!(last < wanted);
    assert_eq!(
        store.load_checkpoint("wanted").await.expect("load"),
        Some(wanted)
    );
}
