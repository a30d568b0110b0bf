//! Deletes are tombstones: queries never see them, and no replay of older events can bring a
//! deleted document back. Only a newer event can.

mod support;

use cqrs_core::projection::Projection;
use cqrs_core::{InMemoryEventStore, Position};
use cqrs_elastic::Query;
use serde_json::json;
use support::*;

#[tokio::test]
async fn a_deleted_document_is_never_resurrected_by_a_replay() {
    let client = client();
    let store = InMemoryEventStore::new();
    open_account(&store, "account-1", "ada", "c1").await;
    append(&store, "account-1", "Deposited", json!({ "cents": 10 })).await;
    open_account(&store, "account-2", "bob", "c1").await;
    append(&store, "account-1", "Closed", json!({})).await;

    let accounts = Accounts {
        name: unique_name("deletes"),
    };
    let model = read_model(&client, accounts.clone()).await;
    let projector = model.projector();
    assert!(drive(&projector, &store, Position::START, 100)
        .await
        .is_empty());

    assert_eq!(model.get("account-1").await.unwrap(), None);
    assert_eq!(model.count(&Query::match_all()).await.unwrap(), 1);
    assert_eq!(
        model.count(&Query::term("customer", "c1")).await.unwrap(),
        1
    );

    // Replays: everything, one event at a time, and the old events alone (as a runner restarted
    // from an old checkpoint would deliver them).
    let events = all_events(&store).await;
    assert!(drive(&projector, &store, Position::START, 1)
        .await
        .is_empty());
    projector.apply(&events[..2]).await.unwrap();
    projector.apply(&events[..1]).await.unwrap();
    projector.make_visible().await.unwrap();
    assert_eq!(model.get("account-1").await.unwrap(), None);
    assert_eq!(model.count(&Query::match_all()).await.unwrap(), 1);
    let raw = raw_documents(&client, &format!("{}_v1", accounts.name)).await;
    assert_eq!(raw["account-1"].0["cqrs"]["deleted"], json!(true));

    // A newer event may create it again: that is new history, not a replay.
    open_account(&store, "account-1", "ada again", "c2").await;
    assert!(drive(&projector, &store, events[3].position, 10)
        .await
        .is_empty());
    let back = model.get("account-1").await.unwrap().expect("reopened");
    assert_eq!(back.owner, "ada again");
    assert_eq!(model.count(&Query::match_all()).await.unwrap(), 2);
}
