//! A batch large enough goes out as several `_bulk` requests at once: every document is
//! written exactly once, each item's outcome is matched to its own document (a refused
//! document in one part names exactly its own events), and a replay writes nothing.

mod support;

use cqrs_core::projection::{Projection, ProjectionError};
use cqrs_core::{InMemoryEventStore, Position};
use cqrs_elastic::ProjectorOptions;
use serde_json::json;
use support::*;

#[tokio::test]
async fn a_batch_in_three_parallel_bulks_writes_each_document_once() {
    let client = client();
    let store = InMemoryEventStore::new();
    for i in 0..450 {
        open_account(&store, &format!("account-{i}"), &format!("o{i}"), "c").await;
    }
    // account-40 lands in the first of three parts, and the mapping refuses it.
    let refused_open = all_events(&store).await[40].position;
    let refused = append(
        &store,
        "account-40",
        "Nicknamed",
        json!({ "nickname": "x" }),
    )
    .await;
    for i in (0..450).step_by(7) {
        append(
            &store,
            &format!("account-{i}"),
            "Deposited",
            json!({ "cents": i }),
        )
        .await;
    }
    let events = all_events(&store).await;

    let accounts = Accounts {
        name: unique_name("parallel"),
    };
    let projector = projector(&client, accounts.clone()).await.with_options(
        ProjectorOptions::default()
            .parallel_bulks(3)
            .cache_documents(0),
    );
    let poison = |result| match result {
        Err(ProjectionError::Poison(rejected)) => rejected
            .into_iter()
            .map(|r| r.position)
            .collect::<Vec<Position>>(),
        other => panic!("expected poison, got {other:?}"),
    };
    assert_eq!(
        poison(projector.apply(&events).await),
        [refused_open, refused]
    );
    projector.make_visible().await.expect("refresh");

    let mut expected = expected_accounts(&events);
    expected.remove("account-40");
    let written = raw_documents(&client, projector.target()).await;
    assert_eq!(written.len(), expected.len());
    for (id, view) in &expected {
        let (source, _) = &written[id];
        let view = view.as_ref().expect("no account is closed");
        assert_eq!(source["balance"], json!(view.balance), "{id}");
        assert_eq!(source["owner"], json!(view.owner), "{id}");
    }
    // One write per document: every document has its own, first `_seq_no`.
    let mut seq_nos: Vec<u64> = written.values().map(|(_, seq_no)| *seq_no).collect();
    seq_nos.sort_unstable();
    seq_nos.dedup();
    assert_eq!(seq_nos.len(), expected.len());
    assert!(seq_nos.iter().all(|&s| s < 450), "{:?}", seq_nos.last());

    // A replay (every document read back, nothing remembered) changes nothing.
    assert_eq!(
        poison(projector.apply(&events).await),
        [refused_open, refused]
    );
    projector.make_visible().await.expect("refresh");
    assert_eq!(raw_documents(&client, projector.target()).await, written);
}
