//! A projection idle at the head of PostgreSQL's feed holds a checkpoint past the last event
//! (the feed's end: the horizon, with the largest position). When its sink goes down and
//! events keep coming, the status counts them while it retries: an outage shows as a growing
//! lag, not as a projection at the head.

mod support;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use cqrs_core::projection::{
    Projection, ProjectionError, ProjectionRunner, ProjectionState, RunnerOptions,
};
use cqrs_core::{
    AppendEvents, ExpectedVersion, NewEvent, RecordedEvent, RetryPolicy, StreamId, Version,
};
use serde_json::json;

const DEADLINE: Duration = Duration::from_secs(30);

/// Fails transiently while `down` is set.
#[derive(Clone, Default)]
struct Sink {
    down: Arc<AtomicBool>,
}

#[async_trait]
impl Projection for Sink {
    fn name(&self) -> &str {
        "sink"
    }

    async fn apply(&self, _events: &[RecordedEvent]) -> Result<(), ProjectionError> {
        if self.down.load(Ordering::SeqCst) {
            return Err(ProjectionError::Transient("search node unreachable".into()));
        }
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_projection_whose_sink_is_down_counts_the_events_appended_since_it_idled() {
    let store = support::store_with(4).await;
    let sink = Sink::default();
    let options = RunnerOptions::new()
        .poll_interval(Duration::from_millis(50))
        .retry(
            RetryPolicy::new(u32::MAX).delays(Duration::from_millis(50), Duration::from_millis(50)),
        );
    let handle = ProjectionRunner::for_store(sink.clone(), &store)
        .with_options(options)
        .spawn();
    let stream = StreamId::new("account-1").expect("a valid stream id");
    store
        .append(
            &stream,
            ExpectedVersion::NoStream,
            vec![NewEvent::new("Opened", 1, json!({}))],
        )
        .await
        .expect("the first event is appended");
    let idle = tokio::time::timeout(
        DEADLINE,
        handle.wait_until(|s| s.state == ProjectionState::Running && s.applied == 1),
    )
    .await
    .unwrap_or_else(|_| panic!("the runner never applied the event: {:?}", handle.status()));
    assert!(idle.is_some(), "the runner stopped: {:?}", handle.status());

    sink.down.store(true, Ordering::SeqCst);
    let more: Vec<_> = (0..50)
        .map(|n| NewEvent::new("Deposited", 1, json!({ "n": n })))
        .collect();
    store
        .append(&stream, ExpectedVersion::Exact(Version::new(1)), more)
        .await
        .expect("50 more events are appended");

    let retrying = tokio::time::timeout(
        DEADLINE,
        handle.wait_until(|s| s.state == ProjectionState::Retrying && s.lag_events > 0),
    )
    .await;
    let status = handle.status();
    assert!(
        matches!(retrying, Ok(Some(_))),
        "the 50 events waiting were never counted: {status:?}"
    );
    assert_eq!(status.lag_events, 50, "{status:?}");
    handle.shutdown().await;
}
