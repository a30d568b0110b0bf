//! `ProjectionRunner::for_store` wires every role a store plays in one call: the runner reads
//! its feed, keeps its checkpoint there, holds its lease, parks poison in its dead letters,
//! and wakes on its appends (no poll needed).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use cqrs_core::projection::{
    DeadLetterStore, LeaseStore, Projection, ProjectionError, ProjectionRunner, Rejected,
    RunnerOptions,
};
use cqrs_core::{
    AppendEvents, CheckpointStore, ExpectedVersion, InMemoryEventStore, NewEvent, Position,
    RecordedEvent, StreamId,
};
use serde_json::json;

const WAIT: Duration = Duration::from_secs(10);

/// Keeps the `n`s it applies; refuses an event without one.
#[derive(Clone, Default)]
struct Ns(Arc<Mutex<Vec<i64>>>);

#[async_trait]
impl Projection for Ns {
    fn name(&self) -> &str {
        "ns"
    }

    async fn apply(&self, events: &[RecordedEvent]) -> Result<(), ProjectionError> {
        let mut rejected = Vec::new();
        let mut ns = self.0.lock().expect("lock");
        for event in events {
            match event.payload["n"].as_i64() {
                Some(n) => ns.push(n),
                None => rejected.push(Rejected::new(event.position, "no n in payload")),
            }
        }
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

#[tokio::test]
async fn one_call_wires_feed_checkpoint_lease_dead_letters_and_signal() {
    let store = InMemoryEventStore::new();
    let ns = Ns::default();
    // Polls only once an hour: the append's signal must wake it.
    let handle = ProjectionRunner::for_store(ns.clone(), &store)
        .with_options(RunnerOptions::new().poll_interval(Duration::from_secs(3600)))
        .spawn();
    append(&store, json!({ "n": 1 })).await;
    append(&store, json!({ "oops": true })).await;
    let last = append(&store, json!({ "n": 3 })).await;
    handle
        .wait_for(last, WAIT)
        .await
        .unwrap_or_else(|e| panic!("{e}"));

    assert_eq!(*ns.0.lock().expect("lock"), [1, 3]);
    assert_eq!(handle.status().parked, 1);
    let letters = store
        .dead_letters("ns", Position::START, 10)
        .await
        .expect("letters");
    assert_eq!(letters.len(), 1, "the poison event is parked in the store");
    assert_eq!(
        store.load_checkpoint("ns").await.expect("checkpoint"),
        Some(last)
    );
    let other = store
        .try_acquire("ns", "someone-else", Duration::from_secs(1))
        .await
        .expect("lease store");
    assert!(other.is_none(), "the runner holds the projection's lease");
    handle.shutdown().await;
}
