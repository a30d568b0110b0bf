//! Two projectors writing the same documents at once (a standby overlapping the active worker,
//! or a rebuild's catch-up overlapping the live projector) conflict on `_seq_no`, re-read,
//! refold and retry, and the documents end exactly as one full fold of the feed.

mod support;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use cqrs_core::projection::Projection;
use cqrs_core::{BoxError, EventFilter, InMemoryEventStore, Position, RecordedEvent};
use cqrs_elastic::{Change, ElasticProjection, EsProjector, ReadModel};
use serde_json::{json, Value};
use support::*;

/// Accounts, but the first `apply` sleeps, so another projector writes in between this
/// projector's read and its write; counts its `apply` calls.
struct Slow {
    inner: Accounts,
    slept: AtomicBool,
    calls: AtomicUsize,
}

impl ElasticProjection for Slow {
    type Document = AccountView;

    fn name(&self) -> &str {
        self.inner.name()
    }

    fn mappings(&self) -> Value {
        self.inner.mappings()
    }

    fn filter(&self) -> EventFilter {
        self.inner.filter()
    }

    fn document_id(&self, event: &RecordedEvent) -> Option<String> {
        self.inner.document_id(event)
    }

    fn apply(
        &self,
        current: Option<&AccountView>,
        event: &RecordedEvent,
    ) -> Result<Change<AccountView>, BoxError> {
        if !self.slept.swap(true, Ordering::SeqCst) {
            // Off the runtime's worker, so the other projector's I/O goes on meanwhile.
            tokio::task::block_in_place(|| std::thread::sleep(Duration::from_millis(500)));
        }
        self.calls.fetch_add(1, Ordering::SeqCst);
        self.inner.apply(current, event)
    }
}

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
    let slow = Arc::new(
        EsProjector::new(
            client.clone(),
            Slow {
                inner: accounts.clone(),
                slept: AtomicBool::new(false),
                calls: AtomicUsize::new(0),
            },
        )
        .unwrap(),
    );

    // The slow projector reads the (absent) document, then sleeps in its first `apply`; the
    // fast one writes the first three events meanwhile. The slow one's `create` gets a 409.
    let racing = tokio::spawn({
        let (slow, events) = (slow.clone(), events.clone());
        async move { slow.apply(&events).await }
    });
    tokio::time::sleep(Duration::from_millis(150)).await;
    fast.apply(&events[..3]).await.unwrap();
    racing.await.unwrap().unwrap();

    // 5 applies on the first fold, then 2 on the refold over the fast projector's document.
    assert_eq!(slow.projection().calls.load(Ordering::SeqCst), 7);
    let model = ReadModel::for_projection(client.clone(), &accounts).unwrap();
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
        .max_conflict_retries(50);
    let second = EsProjector::new(client.clone(), accounts.clone())
        .unwrap()
        .max_conflict_retries(50);

    let (a, b, c) = tokio::join!(
        drive(&first, &store, Position::START, 3),
        drive(&second, &store, Position::START, 5),
        drive(&first, &store, Position::START, 7),
    );
    assert!(a.is_empty() && b.is_empty() && c.is_empty());

    let expected = expected_accounts(&all_events(&store).await);
    let model = ReadModel::for_projection(client.clone(), &accounts).unwrap();
    for (id, doc) in &expected {
        assert_eq!(&model.get(id).await.unwrap(), doc, "{id}");
    }
}
