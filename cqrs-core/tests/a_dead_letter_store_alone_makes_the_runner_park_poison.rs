//! Giving a runner a dead-letter store is asking it to park: without a poison policy set,
//! a poison event is parked and the projection goes on. A policy set explicitly wins: `Stop`
//! stops even with a dead-letter store.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use cqrs_core::projection::{
    DeadLetterStore, PoisonPolicy, Projection, ProjectionError, ProjectionRunner, ProjectionState,
    Rejected, RunnerOptions,
};
use cqrs_core::{
    AppendEvents, ExpectedVersion, InMemoryEventStore, NewEvent, Position, RecordedEvent, StreamId,
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

async fn append(store: &InMemoryEventStore, stream: &str, payload: serde_json::Value) -> Position {
    store
        .append(
            &StreamId::new(stream).expect("id"),
            ExpectedVersion::Any,
            vec![NewEvent::new("Counted", 1, payload)],
        )
        .await
        .expect("append")
        .position
}

fn quick() -> RunnerOptions {
    RunnerOptions::new().poll_interval(Duration::from_millis(20))
}

#[tokio::test]
async fn a_poison_event_is_parked_when_a_dead_letter_store_is_given_and_no_policy_is_set() {
    let store = InMemoryEventStore::new();
    append(&store, "s-1", json!({ "n": 1 })).await;
    append(&store, "s-2", json!({ "oops": true })).await;
    let last = append(&store, "s-3", json!({ "n": 3 })).await;
    let ns = Ns::default();
    let handle = ProjectionRunner::new(ns.clone(), store.clone(), store.clone())
        .with_dead_letters(store.clone())
        .with_options(quick())
        .spawn();
    handle
        .wait_for(last, WAIT)
        .await
        .unwrap_or_else(|e| panic!("the projection went past the poison event: {e}"));
    let status = handle.status();
    assert_eq!(status.parked, 1, "{status:?}");
    assert_eq!(*ns.0.lock().expect("lock"), [1, 3]);
    let letters = store
        .dead_letters("ns", Position::START, 10)
        .await
        .expect("letters");
    assert_eq!(letters.len(), 1);
    assert_eq!(letters[0].stream_id.as_str(), "s-2");
    handle.shutdown().await;
}

#[tokio::test]
async fn an_explicit_stop_stops_even_with_a_dead_letter_store() {
    let store = InMemoryEventStore::new();
    append(&store, "s-1", json!({ "n": 1 })).await;
    append(&store, "s-2", json!({ "oops": true })).await;
    let handle = ProjectionRunner::new(Ns::default(), store.clone(), store.clone())
        .with_dead_letters(store.clone())
        .with_options(quick().poison(PoisonPolicy::Stop))
        .spawn();
    let failed = tokio::time::timeout(
        WAIT,
        handle.wait_until(|s| s.state == ProjectionState::Failed),
    )
    .await
    .expect("the projection stops at the poison event");
    assert!(failed.is_some());
    assert!(store
        .dead_letters("ns", Position::START, 10)
        .await
        .expect("letters")
        .is_empty());
    handle.shutdown().await;
}
