//! Read-your-writes: after an append, `EsReadModel::wait_for_position` returns once the
//! projection (run by the core's `ProjectionRunner`) has checkpointed it, and the change is
//! then searchable, even on an index that never refreshes on its own. A position never reached
//! times out: not before its timeout, and not never.

mod support;

use std::time::{Duration, Instant};

use cqrs_core::projection::{ProjectionRunner, RunnerOptions};
use cqrs_core::{InMemoryEventStore, Position};
use cqrs_elastic::{EsReadModel, IndexSettings, Query};
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
    let model = EsReadModel::new(client.clone(), accounts.clone())
        .unwrap()
        .with_index_settings(IndexSettings::default().refresh_interval("-1"));
    model.ensure().await.unwrap();
    let handle = ProjectionRunner::new(model.projector(), store.clone(), store.clone())
        .with_signal(store.clone())
        .with_options(RunnerOptions::new().poll_interval(Duration::from_millis(200)))
        .spawn();

    for i in 0..5 {
        let stream = format!("account-{i}");
        open_account(&store, &stream, "ada", "c").await;
        let position = append(&store, &stream, "Deposited", json!({ "cents": 10 + i })).await;
        let reached = model
            .wait_for_position(&store, position, Duration::from_secs(10))
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
        .wait_for_position(&store, last, Duration::from_secs(10))
        .await
        .unwrap();
    assert!(reached, "the projection reached {last}");
    let found = model.count(&Query::term("customer", "busy")).await.unwrap();
    assert_eq!(
        found, 40,
        "every busy account is searchable right after the wait"
    );

    // A position never reached: the wait gives up after its timeout, not before, and does
    // give up. How long past the timeout it returns depends on a loaded machine, so the bound
    // above is only a deadline that says the timeout was not ignored.
    let far = Position::from_parts(u64::MAX, 0);
    let timeout = Duration::from_millis(300);
    let started = Instant::now();
    let waited = tokio::time::timeout(
        Duration::from_secs(30),
        model.wait_for_position(&store, far, timeout),
    )
    .await
    .expect("wait_for_position to give up within 30 s on its 300 ms timeout");
    let elapsed = started.elapsed();
    assert!(
        !waited.unwrap(),
        "a position never appended reads as not reached"
    );
    assert!(
        elapsed >= timeout,
        "gave up after {elapsed:?}, before its timeout"
    );
    handle.shutdown().await;
}
