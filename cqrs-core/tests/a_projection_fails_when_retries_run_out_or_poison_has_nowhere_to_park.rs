//! The runner's two ways to give up on its own: transient failures that outlast the retry
//! policy, and poison under [`PoisonPolicy::Park`] with no dead-letter store to park it in.
//! Either way the projection ends `Failed`, says why, and its checkpoint stays before the
//! batch it could not apply.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use cqrs_core::projection::{
    PoisonPolicy, Projection, ProjectionError, ProjectionHandle, ProjectionRunner, ProjectionState,
    ProjectionStatus, Rejected, RunnerOptions,
};
use cqrs_core::{
    AppendEvents, CheckpointStore, ExpectedVersion, InMemoryEventStore, NewEvent, Position,
    RecordedEvent, RetryPolicy, StreamId,
};
use serde_json::json;

const WAIT: Duration = Duration::from_secs(10);

/// Fails every call with a transient error, or rejects every event without an `n`.
#[derive(Clone, Default)]
struct Sink {
    calls: Arc<AtomicU32>,
    always_down: bool,
}

#[async_trait]
impl Projection for Sink {
    fn name(&self) -> &str {
        "sink"
    }

    async fn apply(&self, events: &[RecordedEvent]) -> Result<(), ProjectionError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        if self.always_down {
            return Err(ProjectionError::Transient("sink unavailable".into()));
        }
        let rejected: Vec<_> = events
            .iter()
            .filter(|e| e.payload["n"].as_i64().is_none())
            .map(|e| Rejected::new(e.position, "no n in payload"))
            .collect();
        if rejected.is_empty() {
            Ok(())
        } else {
            Err(ProjectionError::Poison(rejected))
        }
    }
}

async fn append(store: &InMemoryEventStore, payload: serde_json::Value) -> Position {
    store
        .append(
            &StreamId::new("s-1").expect("id"),
            ExpectedVersion::Any,
            vec![NewEvent::new("Counted", 1, payload)],
        )
        .await
        .expect("append")
        .position
}

/// Waits until the projection has failed; fails the test after [`WAIT`].
async fn failed(handle: &ProjectionHandle) -> ProjectionStatus {
    match tokio::time::timeout(
        WAIT,
        handle.wait_until(|s| s.state == ProjectionState::Failed),
    )
    .await
    {
        Ok(Some(status)) => status,
        Ok(None) => panic!(
            "the projection stopped instead of failing: {:?}",
            handle.status()
        ),
        Err(_) => panic!(
            "waited {WAIT:?} for the projection to fail; status: {:?}",
            handle.status()
        ),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transient_failures_beyond_the_retry_policy_fail_the_projection() {
    let store = InMemoryEventStore::new();
    append(&store, json!({ "n": 1 })).await;
    let sink = Sink {
        always_down: true,
        ..Sink::default()
    };
    let handle = ProjectionRunner::new(sink.clone(), store.clone(), store.clone())
        .with_options(
            RunnerOptions::new()
                .poll_interval(Duration::from_millis(20))
                // The breaker never opens here: only the retry policy decides.
                .breaker(100, Duration::from_millis(1))
                .retry(
                    RetryPolicy::new(3).delays(Duration::from_millis(1), Duration::from_millis(2)),
                ),
        )
        .spawn();
    let status = failed(&handle).await;
    assert!(
        status
            .last_error
            .as_deref()
            .is_some_and(|e| e.contains("retries exhausted") && e.contains("sink unavailable")),
        "says why it gave up, and what kept failing: {status:?}"
    );
    assert_eq!(
        sink.calls.load(Ordering::SeqCst),
        3,
        "three attempts in all, as the policy says"
    );
    assert!(!status.is_live());
    assert_eq!(
        store.load_checkpoint("sink").await.expect("load"),
        None,
        "nothing was applied, nothing is checkpointed"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn park_without_a_dead_letter_store_fails_instead_of_dropping_the_event() {
    let store = InMemoryEventStore::new();
    let good = append(&store, json!({ "n": 1 })).await;
    append(&store, json!({ "bad": true })).await;
    append(&store, json!({ "n": 2 })).await;
    let sink = Sink::default();
    // Park, but no `with_dead_letters`: there is nowhere to put the poison event.
    let handle = ProjectionRunner::new(sink.clone(), store.clone(), store.clone())
        .with_options(
            RunnerOptions::new()
                .batch_size(1)
                .poll_interval(Duration::from_millis(20))
                .poison(PoisonPolicy::Park),
        )
        .spawn();
    let status = failed(&handle).await;
    assert!(
        status
            .last_error
            .as_deref()
            .is_some_and(|e| e.contains("no dead-letter store")),
        "{status:?}"
    );
    let saved = store.load_checkpoint("sink").await.expect("load");
    assert!(
        saved.is_none_or(|p| p <= good),
        "the checkpoint stays before the poison event: {saved:?}"
    );
}
