//! Two projectors writing the same documents at once (a standby overlapping the active worker,
//! or a rebuild's catch-up overlapping the live projector) conflict on `_seq_no`, re-read,
//! refold and retry, and the documents end exactly as one full fold of the feed.

mod support;

use std::sync::{mpsc, Arc, Mutex};

use cqrs_core::projection::Projection;
use cqrs_core::{InMemoryEventStore, Position};
use cqrs_elastic::{EsProjector, EsQueries, ProjectorOptions};
use serde_json::json;
use support::*;
use tokio::sync::Notify;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_document_written_between_read_and_write_is_read_again_and_refolded() {
    let client = client();
    let store = InMemoryEventStore::new();
    open_account(&store, "account-1", "o", "c").await;
    for cents in 1..=4 {
        append(&store, "account-1", "Deposited", json!({ "cents": cents })).await;
    }
    let events = all_events(&store).await;
    let accounts = Accounts {
        name: unique_name("conflict"),
    };
    let fast = projector(&client, accounts.clone()).await;
    let read = Arc::new(Notify::new());
    let (go, held) = mpsc::channel();
    let slow = Arc::new(
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

    // The slow projector reads the (absent) document and holds in its first `apply`; the
    // fast one writes the first three events meanwhile. The slow one's `create` gets a 409.
    let racing = tokio::spawn({
        let (slow, events) = (slow.clone(), events.clone());
        async move { slow.apply(&events).await }
    });
    tokio::time::timeout(HANDSHAKE, read.notified())
        .await
        .expect("the slow projector read the document and reached its first apply");
    fast.apply(&events[..3]).await.unwrap();
    go.send(()).expect("the slow projector still waits");
    racing.await.unwrap().unwrap();

    // The conflict and the refold: the first fold ran over the absent document the slow
    // projector read before the fast write; then, its `create` refused, it read the fast
    // projector's document (the opening and 2 deposits) and folded only the 2 events past it.
    // The handshakes fix this order, so the calls are exact.
    let seen = slow.projection().seen.lock().unwrap().clone();
    let at = |i: usize| events[i].position;
    let first_fold = [(at(0), None), (at(1), Some(0)), (at(2), Some(1))];
    let first_fold = first_fold
        .into_iter()
        .chain([(at(3), Some(2)), (at(4), Some(3))]);
    let refold = [(at(3), Some(2)), (at(4), Some(3))];
    let expected: Vec<_> = first_fold.chain(refold).collect();
    assert_eq!(
        seen, expected,
        "one fold over the absent document, then a refold over the fast projector's"
    );
    let model = EsQueries::for_projection(client.clone(), &accounts).unwrap();
    let doc = model.get("account-1").await.unwrap().unwrap();
    assert_eq!((doc.balance, doc.deposits), (10, 4));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn projectors_racing_on_the_same_documents_converge_to_one_fold() {
    let client = client();
    let store = InMemoryEventStore::new();
    for i in 0..3 {
        open_account(&store, &format!("account-{i}"), "o", "c").await;
    }
    for n in 0..300_i64 {
        append(
            &store,
            &format!("account-{}", n % 3),
            "Deposited",
            json!({ "cents": n }),
        )
        .await;
    }
    let accounts = Accounts {
        name: unique_name("race"),
    };
    let first = projector(&client, accounts.clone())
        .await
        .with_options(ProjectorOptions::default().max_conflict_retries(50));
    let second = EsProjector::new(client.clone(), accounts.clone())
        .unwrap()
        .with_options(ProjectorOptions::default().max_conflict_retries(50));

    let (a, b, c) = tokio::join!(
        drive(&first, &store, Position::START, 3),
        drive(&second, &store, Position::START, 5),
        drive(&first, &store, Position::START, 7),
    );
    assert!(a.is_empty() && b.is_empty() && c.is_empty());

    let expected = expected_accounts(&all_events(&store).await);
    let model = EsQueries::for_projection(client.clone(), &accounts).unwrap();
    for (id, doc) in &expected {
        assert_eq!(&model.get(id).await.unwrap(), doc, "{id}");
    }
}
