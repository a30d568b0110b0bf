//! Read-your-writes: after an append, `ReadModel::wait_for_position` returns once the
//! projection (run by the core's `ProjectionRunner`) has checkpointed it, and the change is
//! then searchable, even on an index that never refreshes on its own. A position never reached
//! times out on time.

mod support;

use std::time::{Duration, Instant};

use cqrs_core::projection::{ProjectionRunner, RunnerOptions};
use cqrs_core::{InMemoryEventStore, Position};
use cqrs_elastic::{EsIndex, EsProjector, Query, ReadModel};
use serde_json::json;
use support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wait_for_position_then_search_sees_the_write() {
    let client = client();
    let store = InMemoryEventStore::new();
    let accounts = Accounts {
        name: unique_name("wait"),
    };
    // No periodic refresh: only the projector's own refreshes make writes searchable.
    EsIndex::for_projection(client.clone(), &accounts)
        .unwrap()
        .refresh_interval("-1")
        .ensure()
        .await
        .unwrap();
    let projector = EsProjector::new(client.clone(), accounts.clone()).unwrap();
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
        // Searchable at once (refreshed before the checkpoint moved), not only by id.
        let found = model.count(&Query::term("balance", 10 + i)).await.unwrap();
        assert_eq!(found, 1, "account-{i} is searchable right after the wait");
    }

    // Appends racing the runner: batches are refreshed while later ones are written, and
    // refreshes are shared; the last position reached still means all of it is searchable.
    let appends = (0..40).map(|i| {
        let store = store.clone();
        tokio::spawn(async move {
            let stream = format!("account-busy{i}");
            open_account(&store, &stream, "bob", "busy").await
        })
    });
    let mut last = Position::START;
    for append in appends {
        last = last.max(append.await.unwrap());
    }
    let reached = model
        .wait_for_position(&store, &accounts.name, last, Duration::from_secs(10))
        .await
        .unwrap();
    assert!(reached, "the projection reached {last}");
    let found = model.count(&Query::term("customer", "busy")).await.unwrap();
    assert_eq!(
        found, 40,
        "every busy account is searchable right after the wait"
    );

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
