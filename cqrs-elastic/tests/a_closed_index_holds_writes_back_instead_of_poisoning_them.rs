//! A read model's index closed by an operator answers every write with 400
//! `index_closed_exception`. That is the index's state, not the documents' fault: the batch
//! fails as transient (retried, shown in the runner's status) instead of making its events
//! poison (stopping the projection or parking them), and once the index is open again the same
//! batch is written.

mod support;

use std::time::Duration;

use cqrs_core::projection::{Projection, ProjectionError};
use cqrs_core::{EventFilter, InMemoryEventStore, Position, ReadAll};
use cqrs_elastic::EsQueries;
use elasticsearch::indices::{IndicesCloseParts, IndicesOpenParts};
use serde_json::json;
use support::*;
use tokio::time::Instant;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_closed_index_holds_writes_back_instead_of_poisoning_them() {
    let client = client();
    let store = InMemoryEventStore::new();
    seed_accounts(&store, 10, 1).await;
    let accounts = Accounts {
        name: unique_name("closed"),
    };
    // The projector remembers the documents it wrote, so the next batch goes straight to the
    // bulk, without a read first.
    let live = projector(&client, accounts.clone()).await;
    let head = drive(&live, &store, Position::START, 100).await;
    assert!(head.is_empty(), "{head:?}");
    let after = store.head().await.unwrap();
    append(&store, "account-3", "Deposited", json!({ "cents": 1000 })).await;
    let batch = store
        .read_all(after, 100, &EventFilter::all())
        .await
        .unwrap()
        .events;
    assert_eq!(batch.len(), 1);

    let index = format!("{}_v1", accounts.name);
    let closed = client
        .indices()
        .close(IndicesCloseParts::Index(&[&index]))
        .send()
        .await
        .unwrap();
    assert!(closed.status_code().is_success());
    match live.apply(&batch).await {
        Err(ProjectionError::Transient(error)) => {
            assert!(
                error.to_string().contains("index_closed_exception"),
                "{error}"
            );
        }
        other => panic!("a write into a closed index must be transient: {other:?}"),
    }

    let opened = client
        .indices()
        .open(IndicesOpenParts::Index(&[&index]))
        .send()
        .await
        .unwrap();
    assert!(opened.status_code().is_success());
    // The reopened shards take a moment to start: retry as the runner would.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        match live.apply(&batch).await {
            Ok(()) => break,
            Err(ProjectionError::Transient(_)) if Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            other => panic!("the batch after reopening: {other:?}"),
        }
    }
    let model: EsQueries<AccountView> =
        EsQueries::for_projection(client.clone(), &accounts).unwrap();
    let expected = expected_accounts(&all_events(&store).await);
    assert_eq!(
        model.get("account-3").await.unwrap(),
        expected["account-3"].clone()
    );
    let _ = client
        .indices()
        .delete(elasticsearch::indices::IndicesDeleteParts::Index(&[&index]))
        .send()
        .await;
}
