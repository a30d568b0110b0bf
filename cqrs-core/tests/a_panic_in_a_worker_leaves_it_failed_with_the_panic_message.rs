//! A panic in the worker task (here: inside the projection's `apply`) must not leave the status
//! saying "running": health checks read `is_live()`, so the status turns `Failed` and carries
//! the panic's message.

use std::time::Duration;

use async_trait::async_trait;
use cqrs_core::projection::{
    Projection, ProjectionError, ProjectionRunner, ProjectionState, RunnerOptions,
};
use cqrs_core::{
    AppendEvents, ExpectedVersion, InMemoryEventStore, NewEvent, RecordedEvent, StreamId,
};
use serde_json::json;

struct Panics;

#[async_trait]
impl Projection for Panics {
    fn name(&self) -> &str {
        "panics"
    }
    async fn apply(&self, _events: &[RecordedEvent]) -> Result<(), ProjectionError> {
        panic!("the sink's invariant broke");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panic_in_apply_leaves_the_status_failed_with_the_panic_message() {
    let store = InMemoryEventStore::new();
    store
        .append(
            &StreamId::new("s-1").expect("id"),
            ExpectedVersion::Any,
            vec![NewEvent::new("Counted", 1, json!({ "n": 1 }))],
        )
        .await
        .expect("append");
    let handle = ProjectionRunner::new(Panics, store.clone(), store.clone())
        .with_options(RunnerOptions::new().poll_interval(Duration::from_millis(20)))
        .spawn();
    let failed = tokio::time::timeout(
        Duration::from_secs(10),
        handle.wait_until(|s| s.state == ProjectionState::Failed),
    )
    .await
    .expect("the status changes in time");
    let status = handle.status();
    assert!(failed.is_some(), "the status says failed: {status:?}");
    assert!(!status.is_live(), "{status:?}");
    assert!(
        status
            .last_error
            .as_deref()
            .is_some_and(|e| e.contains("the sink's invariant broke")),
        "{status:?}"
    );
    handle.shutdown().await;
}

/// A feed whose reads panic.
struct BrokenFeed;

#[async_trait]
impl cqrs_core::ReadAll for BrokenFeed {
    async fn read_all(
        &self,
        _after: cqrs_core::Position,
        _limit: usize,
        _filter: &cqrs_core::EventFilter,
    ) -> cqrs_core::Result<cqrs_core::FeedBatch> {
        panic!("the feed's decoder broke");
    }
    async fn head(&self) -> cqrs_core::Result<cqrs_core::Position> {
        Ok(cqrs_core::Position::START)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panic_in_the_feed_reader_fails_the_projection_with_the_panic_message() {
    let handle = ProjectionRunner::new(Panics, BrokenFeed, InMemoryEventStore::new()).spawn();
    let failed = tokio::time::timeout(
        Duration::from_secs(10),
        handle.wait_until(|s| s.state == ProjectionState::Failed),
    )
    .await
    .expect("the status changes in time");
    let status = handle.status();
    assert!(failed.is_some(), "{status:?}");
    assert!(
        status
            .last_error
            .as_deref()
            .is_some_and(|e| e.contains("the feed's decoder broke")),
        "{status:?}"
    );
    handle.shutdown().await;
}
