//! The runner retries only what a retry may cure: a store that is unavailable is retried with
//! backoff, but a store error that is not transient (a missing table, a corrupt row) fails the
//! projection at once, with the store's message in its status and in `catch_up`'s error,
//! instead of being retried forever.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use cqrs_core::projection::{
    Projection, ProjectionError, ProjectionRunner, ProjectionState, RunnerOptions,
};
use cqrs_core::{
    AppendEvents, CheckpointStore, Error, ErrorKind, ExpectedVersion, InMemoryEventStore, NewEvent,
    Position, RecordedEvent, RetryPolicy, StreamId,
};
use serde_json::json;

const WAIT: Duration = Duration::from_secs(10);

/// Applies everything.
struct Sink;

#[async_trait]
impl Projection for Sink {
    fn name(&self) -> &str {
        "sink"
    }

    async fn apply(&self, _events: &[RecordedEvent]) -> Result<(), ProjectionError> {
        Ok(())
    }
}

/// The store's checkpoints, whose saves fail: `transient` ones the first `failures` times
/// (then they succeed), the others always, as a missing table would.
#[derive(Clone)]
struct Checkpoints {
    inner: InMemoryEventStore,
    transient: bool,
    failures: Arc<AtomicU32>,
}

#[async_trait]
impl CheckpointStore for Checkpoints {
    async fn load_checkpoint(&self, name: &str) -> cqrs_core::Result<Option<Position>> {
        self.inner.load_checkpoint(name).await
    }

    async fn save_checkpoint(&self, name: &str, position: Position) -> cqrs_core::Result<()> {
        if !self.transient {
            return Err(Error::backend(r#"relation "checkpoints" does not exist"#));
        }
        let failing = self
            .failures
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1));
        if failing.is_ok() {
            return Err(Error::unavailable("connection refused"));
        }
        self.inner.save_checkpoint(name, position).await
    }
}

async fn one_event(store: &InMemoryEventStore) -> Position {
    store
        .append(
            &StreamId::new("s-1").expect("id"),
            ExpectedVersion::Any,
            vec![NewEvent::new("Counted", 1, json!({ "n": 1 }))],
        )
        .await
        .expect("append")
        .position
}

fn quick_retries() -> RunnerOptions {
    RunnerOptions::new().retry(
        RetryPolicy::new(u32::MAX).delays(Duration::from_millis(1), Duration::from_millis(5)),
    )
}

#[tokio::test]
async fn a_checkpoint_store_that_cannot_save_fails_the_projection_with_its_message() {
    let store = InMemoryEventStore::new();
    one_event(&store).await;
    let checkpoints = Checkpoints {
        inner: store.clone(),
        transient: false,
        failures: Arc::default(),
    };
    let handle = ProjectionRunner::new(Sink, store.clone(), checkpoints)
        .with_options(quick_retries())
        .spawn();
    let failed = tokio::time::timeout(
        WAIT,
        handle.wait_until(|s| s.state == ProjectionState::Failed),
    )
    .await
    .unwrap_or_else(|_| {
        panic!(
            "a save that cannot succeed was retried for {WAIT:?}: {:?}",
            handle.status()
        )
    });
    let status = failed.expect("the status says failed");
    let error = status.last_error.expect("the status says why");
    assert!(
        error.contains(r#"relation "checkpoints" does not exist"#),
        "{error}"
    );
    handle.shutdown().await;
}

#[tokio::test]
async fn catch_up_returns_a_typed_projection_failure() {
    let store = InMemoryEventStore::new();
    one_event(&store).await;
    let checkpoints = Checkpoints {
        inner: store.clone(),
        transient: false,
        failures: Arc::default(),
    };
    let caught_up = tokio::time::timeout(
        WAIT,
        ProjectionRunner::new(Sink, store.clone(), checkpoints)
            .with_options(quick_retries())
            .catch_up(),
    )
    .await
    .expect("catch_up ends instead of retrying forever");
    let error = caught_up.expect_err("the checkpoint could not be saved");
    assert_eq!(error.kind(), ErrorKind::ProjectionFailed);
    match &error {
        Error::ProjectionFailed { projection, reason } => {
            assert_eq!(projection, "sink");
            assert!(reason.contains("does not exist"), "{reason}");
        }
        other => panic!("not a projection failure: {other:?}"),
    }
    assert!(error.to_string().contains("does not exist"), "{error}");
}

#[tokio::test]
async fn an_unavailable_store_is_retried_until_it_answers() {
    let store = InMemoryEventStore::new();
    let position = one_event(&store).await;
    let checkpoints = Checkpoints {
        inner: store.clone(),
        transient: true,
        failures: Arc::new(AtomicU32::new(3)),
    };
    let handle = ProjectionRunner::new(Sink, store.clone(), checkpoints.clone())
        .with_options(quick_retries())
        .spawn();
    handle
        .wait_for(position, WAIT)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(checkpoints.failures.load(Ordering::SeqCst), 0);
    handle.shutdown().await;
}
