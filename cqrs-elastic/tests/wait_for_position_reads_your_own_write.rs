//! Read-your-writes: after an append, `ReadModel::wait_for_position` returns once the
//! projection (run by the core's `ProjectionRunner`) has checkpointed it, and the change is
//! then searchable. A position never reached times out on time.

mod support;

use std::time::{Duration, Instant};

use cqrs_core::projection::{ProjectionRunner, RunnerOptions};
use cqrs_core::{InMemoryEventStore, Position};
use cqrs_elastic::{Query, ReadModel};
use serde_json::json;
use support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wait_for_position_then_search_sees_the_write() {
    let client = client();
    let store = InMemoryEventStore::new();
    let accounts = Accounts {
        name: unique_name("wait"),
    };
    let projector = projector(&client, accounts.clone()).await;
    let handle = ProjectionRunner::new(projector, store.clone(), store.clone())
        .with_signal(store.clone())
        .with_options(RunnerOptions::new().poll_interval(Duration::from_millis(200)))
        .spawn();
    let model = ReadModel::for_projection(client.clone(), &accounts).unwrap();

    for i in 0..5 {
        let stream = format!("account-{i}");
        open_account(&store, &stream, "ada", "c").await;
        let position = append(&store, &stream, "Deposited", json!({ "cents": 10 + i })).await;
        let reached = model
            .wait_for_position(&store, &accounts.name, position, Duration::from_secs(10))
            .await
            .unwrap();
        assert!(reached, "the projection reached {position}");
        // Searchable at once (the projector refreshes after each bulk), not only by id.
        let found = model.count(&Query::term("balance", 10 + i)).await.unwrap();
        assert_eq!(found, 1, "account-{i} is searchable right after the wait");
    }

    let far = Position::from_parts(u64::MAX, 0);
    let started = Instant::now();
    let reached = model
        .wait_for_position(&store, &accounts.name, far, Duration::from_millis(300))
        .await
        .unwrap();
    let waited = started.elapsed();
    assert!(!reached);
    assert!(
        waited >= Duration::from_millis(300) && waited < Duration::from_secs(2),
        "{waited:?}"
    );
    handle.shutdown().await;
}
