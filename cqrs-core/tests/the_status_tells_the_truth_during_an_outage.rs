//! What a projection's status says while its sink is down and after: the events waiting are
//! counted (also while it retries), waiting for a position ends as soon as the projection has
//! failed and says so, the last error says when it happened, and the breaker is recorded in
//! the store for operators outside the runner's process.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use cqrs_core::projection::{
    BreakerState, PoisonPolicy, Projection, ProjectionError, ProjectionRunner, ProjectionState,
    Rejected, RunnerOptions, WaitError,
};
use cqrs_core::{
    AppendEvents, CheckpointStore, ExpectedVersion, InMemoryEventStore, NewEvent, Position,
    RecordedEvent, RetryPolicy, StreamId,
};
use serde_json::json;

const WAIT: Duration = Duration::from_secs(10);

/// Down (failing transiently) while `down` is set; refuses events without an `n` as poison.
/// Cannot make its writes visible while `hidden` is set (a search node refusing refreshes).
#[derive(Clone, Default)]
struct Sink {
    down: Arc<AtomicBool>,
    hidden: Arc<AtomicBool>,
    /// Events applied.
    applied: Arc<std::sync::atomic::AtomicUsize>,
}

#[async_trait]
impl Projection for Sink {
    fn name(&self) -> &str {
        "sink"
    }

    async fn apply(&self, events: &[RecordedEvent]) -> Result<(), ProjectionError> {
        if self.down.load(Ordering::SeqCst) {
            return Err(ProjectionError::Transient("search node unreachable".into()));
        }
        let rejected: Vec<_> = events
            .iter()
            .filter(|e| e.payload["n"].as_i64().is_none())
            .map(|e| Rejected::new(e.position, "no n in payload"))
            .collect();
        if rejected.is_empty() {
            self.applied.fetch_add(events.len(), Ordering::SeqCst);
            Ok(())
        } else {
            Err(ProjectionError::Poison(rejected))
        }
    }

    async fn make_visible(&self) -> Result<(), cqrs_core::BoxError> {
        if self.hidden.load(Ordering::SeqCst) {
            return Err("the refresh was refused".into());
        }
        Ok(())
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

fn options() -> RunnerOptions {
    RunnerOptions::new()
        .poll_interval(Duration::from_millis(20))
        .retry(
            RetryPolicy::new(u32::MAX).delays(Duration::from_millis(5), Duration::from_millis(20)),
        )
        .breaker(1000, Duration::from_millis(10))
}

#[tokio::test]
async fn the_events_waiting_are_counted_while_the_sink_is_down() {
    let store = InMemoryEventStore::new();
    let sink = Sink::default();
    sink.down.store(true, Ordering::SeqCst);
    for n in 0..5 {
        append(&store, json!({ "n": n })).await;
    }
    let handle = ProjectionRunner::new(sink.clone(), store.clone(), store.clone())
        .with_options(options())
        .spawn();
    let retrying = tokio::time::timeout(
        WAIT,
        handle.wait_until(|s| s.state == ProjectionState::Retrying && s.lag_events > 0),
    )
    .await;
    let status = handle.status();
    assert!(
        matches!(retrying, Ok(Some(_))),
        "while retrying, the status counts the 5 events waiting: {status:?}"
    );
    assert_eq!(status.lag_events, 5, "{status:?}");
    sink.down.store(false, Ordering::SeqCst);
    let last = append(&store, json!({ "n": 5 })).await;
    let reached = handle.wait_for(last, WAIT).await.expect("caught up");
    assert_eq!(reached.lag_events, 0, "{reached:?}");
    handle.shutdown().await;
}

#[tokio::test]
async fn a_sink_that_cannot_make_its_writes_visible_is_retrying_not_running() {
    let store = InMemoryEventStore::new();
    let sink = Sink::default();
    let handle = ProjectionRunner::new(sink.clone(), store.clone(), store.clone())
        .with_options(options())
        .spawn();
    let first = append(&store, json!({ "n": 0 })).await;
    handle.wait_for(first, WAIT).await.expect("caught up");

    // Applied, but readers cannot see it and the checkpoint cannot move: the projection is
    // behind, whatever the apply said.
    sink.hidden.store(true, Ordering::SeqCst);
    let second = append(&store, json!({ "n": 1 })).await;
    let stuck = tokio::time::timeout(
        WAIT,
        handle.wait_until(|s| {
            s.state == ProjectionState::Retrying && s.oldest_unapplied_at.is_some()
        }),
    )
    .await;
    let status = handle.status();
    assert!(matches!(stuck, Ok(Some(_))), "{status:?}");
    assert!(!status.is_ready(), "{status:?}");
    assert!(
        status
            .last_error
            .as_deref()
            .is_some_and(|e| e.contains("refresh was refused")),
        "{status:?}"
    );

    sink.hidden.store(false, Ordering::SeqCst);
    let reached = handle.wait_for(second, WAIT).await.expect("settled");
    assert_eq!(reached.state, ProjectionState::Running, "{reached:?}");
    assert_eq!(reached.oldest_unapplied_at, None, "{reached:?}");
    handle.shutdown().await;
}

/// The store's checkpoints, whose first save waits for `gate`, then fails for now (a lock
/// another session held), as a database under maintenance would.
struct FirstSaveFails {
    inner: InMemoryEventStore,
    gate: Arc<tokio::sync::Notify>,
    first: AtomicBool,
}

#[async_trait]
impl CheckpointStore for FirstSaveFails {
    async fn load_checkpoint(&self, name: &str) -> cqrs_core::Result<Option<Position>> {
        self.inner.load_checkpoint(name).await
    }
    async fn save_checkpoint(&self, name: &str, position: Position) -> cqrs_core::Result<()> {
        if self.first.swap(false, Ordering::SeqCst) {
            self.gate.notified().await;
            return Err(cqrs_core::Error::unavailable(
                "the checkpoint table is locked",
            ));
        }
        self.inner.save_checkpoint(name, position).await
    }
}

#[tokio::test]
async fn a_batch_that_could_not_settle_made_good_by_the_next_leaves_no_lag_behind() {
    let store = InMemoryEventStore::new();
    let sink = Sink::default();
    let gate = Arc::new(tokio::sync::Notify::new());
    let checkpoints = FirstSaveFails {
        inner: store.clone(),
        gate: gate.clone(),
        first: AtomicBool::new(true),
    };
    let handle = ProjectionRunner::new(sink.clone(), store.clone(), checkpoints)
        .with_signal(store.clone())
        .with_options(options())
        .spawn();
    // The first batch's save waits; the second batch is applied meanwhile, and its save, which
    // covers the first, follows the first's failure.
    append(&store, json!({ "n": 0 })).await;
    tokio::time::timeout(WAIT, async {
        while sink.applied.load(Ordering::SeqCst) < 1 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await
    .expect("the first batch applied");
    let second = append(&store, json!({ "n": 1 })).await;
    tokio::time::timeout(WAIT, async {
        while sink.applied.load(Ordering::SeqCst) < 2 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await
    .expect("the second batch applied");
    gate.notify_one();

    let reached = handle.wait_for(second, WAIT).await.expect("settled");
    assert_eq!(reached.state, ProjectionState::Running, "{reached:?}");
    assert_eq!(
        reached.oldest_unapplied_at, None,
        "nothing waits at the head: {reached:?}"
    );
    handle.shutdown().await;
}

#[tokio::test]
async fn waiting_for_a_position_ends_when_the_projection_fails_and_says_so() {
    let store = InMemoryEventStore::new();
    append(&store, json!({ "n": 1 })).await;
    append(&store, json!({ "oops": true })).await;
    let beyond = append(&store, json!({ "n": 3 })).await;
    let handle = ProjectionRunner::new(Sink::default(), store.clone(), store.clone())
        .with_options(options().poison(PoisonPolicy::Stop))
        .spawn();
    let started = Instant::now();
    let waited = handle.wait_for(beyond, Duration::from_secs(60)).await;
    assert!(started.elapsed() < WAIT, "waited {:?}", started.elapsed());
    match waited {
        Err(WaitError::Failed(status)) => {
            assert_eq!(status.state, ProjectionState::Failed);
            let error = WaitError::Failed(status.clone()).to_string();
            assert!(error.contains("no n in payload"), "{error}");
        }
        other => panic!("expected a failure, got {other:?}"),
    }
    handle.shutdown().await;
}

#[tokio::test]
async fn waiting_past_the_timeout_says_where_the_projection_is() {
    let store = InMemoryEventStore::new();
    let sink = Sink::default();
    sink.down.store(true, Ordering::SeqCst);
    let position = append(&store, json!({ "n": 1 })).await;
    let handle = ProjectionRunner::new(sink, store.clone(), store.clone())
        .with_options(options())
        .spawn();
    match handle.wait_for(position, Duration::from_millis(200)).await {
        Err(WaitError::TimedOut(status)) => {
            assert_eq!(status.position, Position::START, "{status:?}");
        }
        other => panic!("expected a timeout, got {other:?}"),
    }
    handle.shutdown().await;
}

#[tokio::test]
async fn the_last_error_says_when_it_happened() {
    let store = InMemoryEventStore::new();
    let sink = Sink::default();
    sink.down.store(true, Ordering::SeqCst);
    let before = time::OffsetDateTime::now_utc();
    append(&store, json!({ "n": 1 })).await;
    let handle = ProjectionRunner::new(sink.clone(), store.clone(), store.clone())
        .with_options(options())
        .spawn();
    let failing = tokio::time::timeout(WAIT, handle.wait_until(|s| s.last_error.is_some()))
        .await
        .expect("an error is reported")
        .expect("still running");
    let at = failing.last_error_at.expect("the error's time");
    assert!(at >= before, "{at} is before the outage began ({before})");
    sink.down.store(false, Ordering::SeqCst);
    let last = append(&store, json!({ "n": 2 })).await;
    let recovered = handle.wait_for(last, WAIT).await.expect("recovered");
    assert_eq!(recovered.state, ProjectionState::Running);
    // The error stays as history, with its time: older than the recovery.
    let last_at = recovered.last_error_at.expect("kept");
    assert!(last_at >= at && last_at <= time::OffsetDateTime::now_utc());
    handle.shutdown().await;
}

/// Polls the breaker the store recorded for `name` until `done` says so, or fails saying what
/// it saw.
async fn recorded_breaker(
    store: &InMemoryEventStore,
    name: &str,
    what: &str,
    done: impl Fn(&cqrs_core::projection::BreakerRecord) -> bool,
) -> cqrs_core::projection::BreakerRecord {
    let deadline = Instant::now() + WAIT;
    loop {
        let record = store.breaker(name);
        if let Some(record) = record.as_ref().filter(|r| done(r)) {
            return record.clone();
        }
        assert!(Instant::now() < deadline, "{what}: recorded {record:?}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[tokio::test]
async fn the_breaker_is_recorded_in_the_store_when_it_opens_and_when_it_closes_again() {
    let store = InMemoryEventStore::new();
    let sink = Sink::default();
    append(&store, json!({ "n": 0 })).await;
    let handle = ProjectionRunner::new(sink.clone(), store.clone(), store.clone())
        .with_options(options().breaker(2, Duration::from_millis(30)))
        .spawn();
    handle
        .wait_for(Position::START, WAIT)
        .await
        .expect("started");
    let first = recorded_breaker(&store, "sink", "closed once applying", |r| {
        r.state == BreakerState::Closed
    })
    .await;
    assert_eq!(first.last_error, None);

    sink.down.store(true, Ordering::SeqCst);
    append(&store, json!({ "n": 1 })).await;
    let open = recorded_breaker(&store, "sink", "open while the sink is down", |r| {
        r.state != BreakerState::Closed
    })
    .await;
    assert_eq!(
        open.last_error.as_deref(),
        Some("search node unreachable"),
        "{open:?}"
    );

    sink.down.store(false, Ordering::SeqCst);
    let last = append(&store, json!({ "n": 2 })).await;
    handle.wait_for(last, WAIT).await.expect("caught up");
    let closed = recorded_breaker(&store, "sink", "closed after the sink is back", |r| {
        r.state == BreakerState::Closed
    })
    .await;
    assert_eq!(closed.last_error, None, "a closed breaker keeps no error");
    handle.shutdown().await;
}
