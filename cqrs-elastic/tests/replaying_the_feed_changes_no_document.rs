//! At-least-once delivery, exactly-once effect: replaying the whole feed, or any suffix, with
//! any batch size, leaves every stored document byte-for-byte identical and writes nothing.

mod support;

use cqrs_core::{InMemoryEventStore, Position};
use serde_json::json;
use support::*;

#[tokio::test]
async fn replaying_the_feed_or_a_suffix_changes_no_document() {
    let client = client();
    let store = InMemoryEventStore::new();
    seed_accounts(&store, 25, 5).await;
    append(&store, "account-4", "Closed", json!({})).await;
    append(&store, "account-9", "Closed", json!({})).await;
    append(&store, "account-9", "Deposited", json!({ "cents": 3 })).await; // after the delete: ignored

    let accounts = Accounts {
        name: unique_name("replay"),
    };
    let index = format!("{}_v1", accounts.name);
    let projector = projector(&client, accounts).await;
    assert!(drive(&projector, &store, Position::START, 13)
        .await
        .is_empty());
    let before = raw_documents(&client, &index).await;
    assert_eq!(before.len(), 25, "tombstones are stored documents too");

    let events = all_events(&store).await;
    let suffixes = [
        Position::START,
        events[40].position,
        events[99].position,
        events[events.len() - 2].position,
    ];
    for (after, batch) in suffixes.into_iter().zip([1000, 1, 9, 4]) {
        assert!(drive(&projector, &store, after, batch).await.is_empty());
        let now = raw_documents(&client, &index).await;
        assert_eq!(
            now, before,
            "replay after {after} in batches of {batch} changed documents"
        );
    }

    // The tombstones hold only the metadata.
    let (source, _) = &before["account-4"];
    assert_eq!(
        source.as_object().unwrap().keys().collect::<Vec<_>>(),
        ["cqrs"]
    );
    assert_eq!(source["cqrs"]["deleted"], json!(true));
}
