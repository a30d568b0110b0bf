//! A projection whose feed reads fail (the head still answers; on PostgreSQL, a filtered read
//! that hits its statement timeout every time) retried them without end and said nothing: its
//! status stayed `Running` with no error and no lag while events piled up, and a `catch_up`
//! with a bounded retry policy (a rebuild's) never returned. A failed read now shows as
//! `Retrying` with its error, and the runner's retry policy bounds the reads as it bounds the
//! applies.

use std::time::Duration;

use async_trait::async_trait;
use cqrs_core::projection::{
    Projection, ProjectionError, ProjectionRunner, ProjectionState, RunnerOptions,
};
use cqrs_core::{
    AppendEvents, Error, EventFilter, ExpectedVersion, FeedBatch, InMemoryEventStore, NewEvent,
    Position, ReadAll, RecordedEvent, RetryPolicy, StreamId,
};
use serde_json::json;

/// The store's feed, whose reads fail as unavailable; its head answers.
#[derive(Clone)]
struct Unreadable(InMemoryEventStore);

#[async_trait]
impl ReadAll for Unreadable {
    async fn read_all(
        &self,
        _after: Position,
        _limit: usize,
        _filter: &EventFilter,
    ) -> cqrs_core::Result<FeedBatch> {
        Err(Error::unavailable(
            "canceling statement due to statement timeout",
        ))
    }

    async fn head(&self) -> cqrs_core::Result<Position> {
        self.0.head().await
    }
}

struct Nothing;

#[async_trait]
impl Projection for Nothing {
    fn name(&self) -> &str {
        "nothing"
    }

    async fn apply(&self, _events: &[RecordedEvent]) -> Result<(), ProjectionError> {
        Ok(())
    }
}

async fn store_with_an_event() -> InMemoryEventStore {
    let store = InMemoryEventStore::new();
    store
        .append(
            &StreamId::new("s-1").expect("id"),
            ExpectedVersion::Any,
            vec![NewEvent::new("Counted", 1, json!({ "n": 1 }))],
        )
        .await
        .expect("append");
    store
}

#[tokio::test]
async fn a_catch_up_gives_up_when_its_retries_run_out() {
    let store = store_with_an_event().await;
    let retry = RetryPolicy::new(3).delays(Duration::from_millis(1), Duration::from_millis(1));
    let caught_up = tokio::time::timeout(
        Duration::from_secs(10),
        ProjectionRunner::new(Nothing, Unreadable(store.clone()), store)
            .with_options(RunnerOptions::new().retry(retry))
            .catch_up(),
    )
    .await
    .expect("the catch-up ends");
    let error = caught_up.expect_err("the feed never reads");
    assert!(
        error.to_string().contains("statement timeout"),
        "the read's error: {error}"
    );
}

#[tokio::test]
async fn a_failing_read_shows_as_retrying_with_its_error() {
    let store = store_with_an_event().await;
    let handle = ProjectionRunner::new(Nothing, Unreadable(store.clone()), store)
        .with_options(RunnerOptions::new().retry(
            RetryPolicy::new(u32::MAX).delays(Duration::from_millis(1), Duration::from_millis(5)),
        ))
        .spawn();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let status = handle.status();
        if status.state == ProjectionState::Retrying
            && status
                .last_error
                .as_deref()
                .is_some_and(|e| e.contains("statement timeout"))
        {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the status says nothing of the failing reads: {status:?}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(
        !handle.status().is_ready(),
        "a projection that cannot read is not ready"
    );
    handle.shutdown().await;
}
