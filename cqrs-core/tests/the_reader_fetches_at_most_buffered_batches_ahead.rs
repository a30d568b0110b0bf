//! `RunnerOptions::buffered_batches` bounds how far the feed reader runs ahead of a projection
//! that is stuck: one batch in hand, `n` buffered, one read waiting for room. The clock is
//! tokio's paused clock, so "no more reads" is checked once every task is idle, not after a
//! real-time sleep.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use cqrs_core::projection::{Projection, ProjectionError, ProjectionRunner, RunnerOptions};
use cqrs_core::{
    AppendEvents, EventFilter, ExpectedVersion, FeedBatch, InMemoryEventStore, NewEvent, Position,
    ReadAll, RecordedEvent, StreamId,
};
use serde_json::json;
use tokio::sync::Notify;

/// A feed that counts its reads.
#[derive(Clone)]
struct CountingFeed {
    inner: InMemoryEventStore,
    reads: Arc<AtomicU32>,
}

#[async_trait]
impl ReadAll for CountingFeed {
    async fn read_all(
        &self,
        after: Position,
        limit: usize,
        filter: &EventFilter,
    ) -> cqrs_core::Result<FeedBatch> {
        self.reads.fetch_add(1, Ordering::SeqCst);
        self.inner.read_all(after, limit, filter).await
    }

    async fn head(&self) -> cqrs_core::Result<Position> {
        self.inner.head().await
    }
}

/// A projection whose first apply does not return until released.
#[derive(Clone, Default)]
struct Stuck {
    release: Arc<Notify>,
    calls: Arc<AtomicU32>,
}

#[async_trait]
impl Projection for Stuck {
    fn name(&self) -> &str {
        "stuck"
    }

    async fn apply(&self, _events: &[RecordedEvent]) -> Result<(), ProjectionError> {
        if self.calls.fetch_add(1, Ordering::SeqCst) == 0 {
            self.release.notified().await;
        }
        Ok(())
    }
}

async fn reads_while_stuck(buffered: usize) -> u32 {
    let store = InMemoryEventStore::new();
    let stream = StreamId::new("s-1").expect("id");
    for i in 0..100 {
        store
            .append(
                &stream,
                ExpectedVersion::Any,
                vec![NewEvent::new("Counted", 1, json!({ "n": i }))],
            )
            .await
            .expect("append");
    }
    let feed = CountingFeed {
        inner: store.clone(),
        reads: Arc::default(),
    };
    let stuck = Stuck::default();
    let handle = ProjectionRunner::new(stuck.clone(), feed.clone(), store.clone())
        .with_options(
            RunnerOptions::new()
                .batch_size(5)
                .buffered_batches(buffered)
                .poll_interval(Duration::from_millis(20)),
        )
        .spawn();
    // Paused clock: this returns once every task is idle (the runtime advances time only
    // then), so the reader has fetched all it ever will while the apply is stuck.
    tokio::time::sleep(Duration::from_secs(60)).await;
    let reads = feed.reads.load(Ordering::SeqCst);
    assert_eq!(
        stuck.calls.load(Ordering::SeqCst),
        1,
        "the first apply is stuck"
    );
    stuck.release.notify_one();
    let last = store.head().await.expect("head");
    assert!(
        handle.wait_for(last, Duration::from_secs(60)).await.is_ok(),
        "released, the projection catches up: {:?}",
        handle.status()
    );
    handle.shutdown().await;
    reads
}

#[tokio::test(start_paused = true)]
async fn a_stuck_projection_holds_the_reader_to_its_buffer() {
    for buffered in [1usize, 3] {
        let reads = reads_while_stuck(buffered).await;
        let most = u32::try_from(buffered).expect("small") + 2;
        assert_eq!(
            reads, most,
            "buffered_batches({buffered}): one batch in hand, {buffered} buffered, one waiting"
        );
    }
}
