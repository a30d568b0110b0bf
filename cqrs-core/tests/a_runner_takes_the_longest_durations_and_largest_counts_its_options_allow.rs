//! A runner takes any value its options allow. `Duration::MAX` is a natural way to say
//! "never" (settle only at the head of the feed, look for new events only when woken), and a
//! count as large as the type allows says "no limit": the runner panicked on each, adding the
//! duration to an instant or sizing a channel by the count, and failed as "worker panicked".

use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use cqrs_core::projection::{
    PartitionedRunner, Partitions, Projection, ProjectionError, ProjectionRunner, RunnerOptions,
};
use cqrs_core::{
    AppendEvents, ExpectedVersion, InMemoryEventStore, NewEvent, Position, RecordedEvent, StreamId,
};

#[derive(Clone, Default)]
struct Count(Arc<Mutex<usize>>);

#[async_trait]
impl Projection for Count {
    fn name(&self) -> &str {
        "count"
    }

    async fn apply(&self, events: &[RecordedEvent]) -> Result<(), ProjectionError> {
        *self.0.lock().unwrap() += events.len();
        Ok(())
    }
}

/// Fifty events, one stream each; the position of the last.
async fn fifty(store: &InMemoryEventStore) -> Position {
    let mut last = Position::START;
    for i in 0..50 {
        let stream = StreamId::new(format!("s-{i}")).unwrap();
        let event = NewEvent::new("Happened", 1, serde_json::json!({ "i": i }));
        last = store
            .append(&stream, ExpectedVersion::NoStream, vec![event])
            .await
            .unwrap()
            .position;
    }
    last
}

/// Catches up over fifty events in batches of five with `options`, idles a moment (an idle
/// runner looks for operators' requests on its dead letters, then waits a poll interval),
/// and applies one more.
async fn catches_up(options: RunnerOptions) {
    let store = InMemoryEventStore::new();
    let head = fifty(&store).await;
    let count = Count::default();
    let runner = ProjectionRunner::for_store(count.clone(), &store)
        .with_options(options.batch_size(5))
        .spawn();
    let reached = runner.wait_for(head, Duration::from_secs(10)).await;
    assert!(reached.is_ok(), "{reached:?}: {:?}", runner.status());
    tokio::time::sleep(Duration::from_millis(300)).await;
    let stream = StreamId::new("one-more").unwrap();
    let event = NewEvent::new("Happened", 1, serde_json::json!({}));
    let head = store
        .append(&stream, ExpectedVersion::NoStream, vec![event])
        .await
        .unwrap()
        .position;
    let reached = runner.wait_for(head, Duration::from_secs(10)).await;
    let status = runner.status();
    runner.shutdown().await;
    assert!(reached.is_ok(), "{reached:?}: {status:?}");
    assert_eq!(*count.0.lock().unwrap(), 51);
}

#[tokio::test]
async fn a_checkpoint_interval_of_duration_max_settles_at_the_head() {
    catches_up(RunnerOptions::new().checkpoint_interval(Duration::MAX)).await;
}

#[tokio::test]
async fn a_poll_interval_of_duration_max_waits_for_wake_ups() {
    catches_up(RunnerOptions::new().poll_interval(Duration::MAX)).await;
}

#[tokio::test]
async fn a_lease_time_to_live_of_zero_or_duration_max_is_the_nearest_a_store_keeps() {
    catches_up(RunnerOptions::new().lease_ttl(Duration::ZERO)).await;
    catches_up(RunnerOptions::new().lease_ttl(Duration::MAX)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_partitioned_worker_given_a_lease_time_to_live_of_zero_leads_its_partitions() {
    let store = InMemoryEventStore::new();
    let head = fifty(&store).await;
    let count = Count::default();
    let worker = PartitionedRunner::for_store(count.clone(), Partitions::by_stream(4), &store)
        .with_options(RunnerOptions::new().lease_ttl(Duration::ZERO))
        .spawn();
    let led = worker
        .wait_until(Duration::from_secs(10), |s| s.leading().len() == 4)
        .await;
    let status = worker.status();
    assert!(led.is_some(), "{status:?}");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while *count.0.lock().unwrap() < 50 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "applied up to {head:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    worker.shutdown().await;
}

#[tokio::test]
async fn as_many_buffered_batches_as_usize_allows_are_a_bound_like_any_other() {
    catches_up(RunnerOptions::new().buffered_batches(usize::MAX)).await;
}
