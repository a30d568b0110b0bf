//! Poison: a document the strict mapping refuses, or an event `apply` refuses, makes exactly
//! those events `ProjectionError::Poison`, while every other document of the batch is written.

mod support;

use cqrs_core::projection::{Projection, ProjectionError};
use cqrs_core::{InMemoryEventStore, Position};
use serde_json::json;
use support::*;

#[tokio::test]
async fn poison_events_are_named_exactly_and_the_rest_of_the_batch_is_written() {
    let client = client();
    let store = InMemoryEventStore::new();
    for i in 1..=4 {
        open_account(&store, &format!("account-{i}"), &format!("o{i}"), "c").await;
    }
    let accounts = Accounts {
        name: unique_name("poison"),
    };
    let model = read_model(&client, accounts.clone()).await;
    let projector = model.projector();
    assert!(drive(&projector, &store, Position::START, 100)
        .await
        .is_empty());
    let checkpoint = all_events(&store).await.last().unwrap().position;

    // One batch: account-1 fine; account-2 gets a field the strict mapping lacks (the server
    // refuses the document: both its events in the batch are poison); account-3 deposits, then
    // an event `apply` refuses; account-4 fine.
    append(&store, "account-1", "Deposited", json!({ "cents": 5 })).await;
    let nick_deposit = append(&store, "account-2", "Deposited", json!({ "cents": 7 })).await;
    let nicknamed = append(
        &store,
        "account-2",
        "Nicknamed",
        json!({ "nickname": "bobby" }),
    )
    .await;
    append(&store, "account-3", "Deposited", json!({ "cents": 9 })).await;
    let corrupt = append(&store, "account-3", "Corrupt", json!({})).await;
    append(&store, "account-4", "Withdrawn", json!({ "cents": 2 })).await;
    append(&store, "account-1", "Deposited", json!({ "cents": 1 })).await;

    let batch: Vec<_> = all_events(&store)
        .await
        .into_iter()
        .filter(|e| e.position > checkpoint)
        .collect();
    assert_eq!(batch.len(), 7);
    let rejected = match projector.apply(&batch).await {
        Err(ProjectionError::Poison(rejected)) => rejected,
        other => panic!("expected poison, got {other:?}"),
    };
    let positions: Vec<Position> = rejected.iter().map(|r| r.position).collect();
    assert_eq!(positions, [nick_deposit, nicknamed, corrupt]);
    assert!(
        rejected[0]
            .error
            .contains("strict_dynamic_mapping_exception"),
        "{}",
        rejected[0].error
    );
    assert!(rejected[1]
        .error
        .contains("strict_dynamic_mapping_exception"));
    assert_eq!(rejected[2].error, "corrupt event");

    let doc = |id: &'static str| {
        let model = model.clone();
        async move { model.get(id).await.unwrap().expect(id) }
    };
    assert_eq!(doc("account-1").await.balance, 6);
    assert_eq!(
        doc("account-2").await.balance,
        0,
        "refused document keeps its old state"
    );
    assert_eq!(
        doc("account-3").await.balance,
        9,
        "events before the refused one are applied"
    );
    assert_eq!(doc("account-4").await.balance, -2);

    // Applying the batch again (the runner retries after parking) names the same events and
    // changes nothing else.
    match projector.apply(&batch).await {
        Err(ProjectionError::Poison(again)) => {
            assert_eq!(
                again.iter().map(|r| r.position).collect::<Vec<_>>(),
                positions
            )
        }
        other => panic!("expected poison, got {other:?}"),
    }
    assert_eq!(doc("account-1").await.balance, 6);
}

#[tokio::test]
async fn events_after_a_refused_one_in_the_same_document_are_held_back() {
    let client = client();
    let store = InMemoryEventStore::new();
    open_account(&store, "account-1", "ada", "c").await;
    append(&store, "account-1", "Deposited", json!({ "cents": 5 })).await;
    let corrupt = append(&store, "account-1", "Corrupt", json!({})).await;
    let later = append(&store, "account-1", "Deposited", json!({ "cents": 100 })).await;
    open_account(&store, "account-2", "bob", "c").await;

    let accounts = Accounts {
        name: unique_name("heldback"),
    };
    let model = read_model(&client, accounts.clone()).await;
    let projector = model.projector();
    let rejected = drive(&projector, &store, Position::START, 100).await;
    assert_eq!(
        rejected.iter().map(|r| r.position).collect::<Vec<_>>(),
        [corrupt, later]
    );
    assert!(rejected[1].error.contains("held back"));

    assert_eq!(model.get("account-1").await.unwrap().unwrap().balance, 5);
    assert!(model.get("account-2").await.unwrap().is_some());
}
