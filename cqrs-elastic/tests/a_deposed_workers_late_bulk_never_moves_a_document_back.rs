//! A worker deposed while its bulk was in hand (its lease passed on during a long search
//! request, or a pause) cannot move a document back when that bulk lands late: every write of
//! a known document is conditional on the `_seq_no` it read, and a document records the feed
//! position it reflects, so the late write conflicts, the deposed worker reads the document
//! again, finds it already past its events, and writes nothing. This closes the gap of a
//! search request longer than the lease for the search sink without a fence in the node.

mod support;

use std::sync::{mpsc, Arc, Mutex};

use cqrs_core::projection::Projection;
use cqrs_core::InMemoryEventStore;
use cqrs_elastic::{EsProjector, EsQueries};
use serde_json::json;
use support::*;
use tokio::sync::Notify;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_deposed_workers_late_bulk_never_moves_a_document_back() {
    let client = client();
    let store = InMemoryEventStore::new();
    open_account(&store, "account-1", "o", "c").await;
    for cents in 1..=5 {
        append(&store, "account-1", "Deposited", json!({ "cents": cents })).await;
    }
    let events = all_events(&store).await;
    let accounts = Accounts {
        name: unique_name("deposed"),
    };
    let successor = projector(&client, accounts.clone()).await;
    // The document exists: the opening and one deposit.
    successor.apply(&events[..2]).await.unwrap();

    let read = Arc::new(Notify::new());
    let (go, held) = mpsc::channel();
    let deposed = Arc::new(
        EsProjector::new(
            client.clone(),
            Held {
                inner: accounts.clone(),
                read: read.clone(),
                go: Mutex::new(Some(held)),
                seen: Mutex::new(Vec::new()),
            },
        )
        .unwrap(),
    );
    // The deposed worker read the document (one deposit) and holds its bulk for deposits 2
    // and 3; meanwhile the lease passed on and the successor wrote all five deposits.
    let late = tokio::spawn({
        let (deposed, events) = (deposed.clone(), events.clone());
        async move { deposed.apply(&events[..4]).await }
    });
    tokio::time::timeout(HANDSHAKE, read.notified())
        .await
        .expect("the deposed worker read the document and reached its fold");
    successor.apply(&events).await.unwrap();
    let model = EsQueries::for_projection(client.clone(), &accounts).unwrap();
    let before = model.get("account-1").await.unwrap().unwrap();
    assert_eq!(before.deposits, 5);

    // Its bulk lands late: refused on the `_seq_no`, re-read, nothing left to fold.
    go.send(()).expect("the deposed worker still waits");
    late.await.unwrap().unwrap();
    let seen = deposed.projection().seen.lock().unwrap().clone();
    println!("the deposed worker folded {seen:?}");
    assert!(
        seen.iter()
            .all(|(position, _)| *position <= events[3].position),
        "the deposed worker folded only its own batch: {seen:?}"
    );
    let after = model.get("account-1").await.unwrap().unwrap();
    assert_eq!(after, before, "the late bulk moved the document back");
    assert_eq!((after.balance, after.deposits), (15, 5));
}
