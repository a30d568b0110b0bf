//! An event whose upcaster fails is poison, and so is every later event of its key, even in
//! the same batch: under `Park` they are parked, under `Stop` none of them is applied. Otherwise
//! a document gets E2 without E1, or (under `Stop`) carries E2's position while the checkpoint
//! stops before E1, so E1 is skipped as "already applied" once the upcaster is fixed.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use cqrs_core::projection::{
    DeadLetterStore, PoisonPolicy, Projection, ProjectionError, ProjectionRunner, ProjectionState,
    RunnerOptions,
};
use cqrs_core::{
    AppendEvents, CheckpointStore, ExpectedVersion, InMemoryEventStore, NewEvent, Position,
    RecordedEvent, StreamId, Upcasters,
};
use serde_json::json;

const WAIT: Duration = Duration::from_secs(10);

/// Records `(stream, version)` of every event it is given; keyed by stream.
#[derive(Clone, Default)]
struct Seen(Arc<Mutex<Vec<(String, u64)>>>);

impl Seen {
    fn of(&self, stream: &str) -> Vec<u64> {
        let seen = self.0.lock().expect("lock");
        seen.iter()
            .filter(|(s, _)| s == stream)
            .map(|(_, v)| *v)
            .collect()
    }
}

#[async_trait]
impl Projection for Seen {
    fn name(&self) -> &str {
        "seen"
    }
    fn key(&self, event: &RecordedEvent) -> Option<String> {
        Some(event.stream_id.to_string())
    }
    async fn apply(&self, events: &[RecordedEvent]) -> Result<(), ProjectionError> {
        let mut seen = self.0.lock().expect("lock");
        seen.extend(
            events
                .iter()
                .map(|e| (e.stream_id.to_string(), e.version.get())),
        );
        Ok(())
    }
}

/// `Counted` v1 payloads need `n`; one without it cannot be upcast.
fn upcasters() -> Upcasters {
    Upcasters::new().with_fn("Counted", 1, |payload| {
        let n = payload["n"].as_i64().ok_or("no n in payload")?;
        Ok(json!({ "count": n }))
    })
}

/// One batch: `k` v1 (bad), `other` v1, `k` v2 (good), `other` v2. Returns the positions.
async fn one_batch(store: &InMemoryEventStore) -> Vec<Position> {
    let mut positions = Vec::new();
    for (stream, payload) in [
        ("k", json!({ "broken": true })),
        ("other", json!({ "n": 1 })),
        ("k", json!({ "n": 2 })),
        ("other", json!({ "n": 3 })),
    ] {
        let outcome = store
            .append(
                &StreamId::new(stream).expect("id"),
                ExpectedVersion::Any,
                vec![NewEvent::new("Counted", 1, payload)],
            )
            .await
            .expect("append");
        positions.push(outcome.position);
    }
    positions
}

fn options(policy: PoisonPolicy) -> RunnerOptions {
    RunnerOptions::new()
        .batch_size(100)
        .poll_interval(Duration::from_millis(20))
        .upcasters(upcasters())
        .poison(policy)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn under_park_the_later_event_of_the_key_is_parked_not_applied() {
    let store = InMemoryEventStore::new();
    let positions = one_batch(&store).await;
    let seen = Seen::default();
    let handle = ProjectionRunner::new(seen.clone(), store.clone(), store.clone())
        .with_dead_letters(store.clone())
        .with_options(options(PoisonPolicy::Park))
        .spawn();
    assert!(
        handle.wait_for(positions[3], WAIT).await.is_ok(),
        "{:?}",
        handle.status()
    );
    handle.shutdown().await;
    assert_eq!(
        seen.of("k"),
        Vec::<u64>::new(),
        "k's second event waits behind its first"
    );
    assert_eq!(seen.of("other"), [1, 2]);
    let letters = store
        .dead_letters("seen", Position::START, 100)
        .await
        .expect("letters");
    let parked: Vec<(String, u64)> = letters
        .iter()
        .map(|l| (l.stream_id.to_string(), l.version.get()))
        .collect();
    assert_eq!(parked, [("k".to_owned(), 1), ("k".to_owned(), 2)]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn under_stop_the_later_event_of_the_key_is_not_applied() {
    let store = InMemoryEventStore::new();
    let positions = one_batch(&store).await;
    let seen = Seen::default();
    let handle = ProjectionRunner::new(seen.clone(), store.clone(), store.clone())
        .with_options(options(PoisonPolicy::Stop))
        .spawn();
    let status = handle
        .wait_until(|s| s.state == ProjectionState::Failed)
        .await
        .expect("the projection fails");
    assert!(
        status
            .last_error
            .as_deref()
            .is_some_and(|e| e.contains("k@1")),
        "{status:?}"
    );
    handle.shutdown().await;
    assert_eq!(
        seen.of("k"),
        Vec::<u64>::new(),
        "k's second event is not applied before its first"
    );
    let checkpoint = store.load_checkpoint("seen").await.expect("load");
    assert!(
        checkpoint.is_none_or(|c| c < positions[0]),
        "the checkpoint stops before the poison event: {checkpoint:?}"
    );
}
