//! A projector remembers the documents it wrote. When another worker (a standby that led while
//! this one had lost its lease) moves a document on, the memory is stale: an event valid on
//! the moved-on document may be refused on the remembered one. Such a refusal is not poison
//! until the document, read again from the index, refuses it too.

mod support;

use std::sync::{mpsc, Arc, Mutex};

use cqrs_core::projection::{Projection, ProjectionError};
use cqrs_core::{BoxError, EventFilter, InMemoryEventStore, RecordedEvent};
use cqrs_elastic::{Change, ElasticProjection, EsProjector, EsQueries, ProjectorOptions};
use serde_json::{json, Value};
use support::*;

/// Accounts whose `Opened` is refused on an open account (as the read model of the issue's
/// run did), so the event that reopens a closed account is valid only on the current state.
#[derive(Clone)]
struct Strict {
    inner: Accounts,
}

impl ElasticProjection for Strict {
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

    fn document_id(&self, event: &RecordedEvent) -> Result<Option<String>, BoxError> {
        self.inner.document_id(event)
    }

    fn apply(
        &self,
        current: Option<&AccountView>,
        event: &RecordedEvent,
    ) -> Result<Change<AccountView>, BoxError> {
        if event.event_type == "Opened" && current.is_some() {
            return Err("Opened on an open account".into());
        }
        self.inner.apply(current, event)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_event_refused_by_a_stale_remembered_document_is_applied_to_the_fresh_one() {
    let client = client();
    let store = InMemoryEventStore::new();
    open_account(&store, "account-1", "ada", "c1").await;
    append(&store, "account-1", "Closed", json!({})).await;
    open_account(&store, "account-1", "ada again", "c2").await;
    append(&store, "account-1", "Deposited", json!({ "cents": 5 })).await;
    let events = all_events(&store).await;
    let strict = Strict {
        inner: Accounts {
            name: unique_name("stale-memory"),
        },
    };
    let worker_a = projector(&client, strict.clone()).await;
    let worker_b = EsProjector::new(client.clone(), strict.clone()).expect("projector");

    // A applies the opening and remembers the open account.
    worker_a.apply(&events[..1]).await.expect("opened");
    // B (leading while A had lost its lease) moves the document on: closed.
    worker_b.apply(&events[..2]).await.expect("closed");
    // A, leading again, gets the reopening and the deposit: valid on the closed account.
    let outcome = worker_a.apply(&events[2..]).await;
    assert!(
        outcome.is_ok(),
        "a rejection on a stale memory is no poison: {outcome:?}"
    );
    worker_a.make_visible().await.expect("refresh");

    let model = EsQueries::for_projection(client.clone(), &strict).expect("read model");
    let doc = model.get("account-1").await.expect("get").expect("open");
    assert_eq!((doc.owner.as_str(), doc.balance), ("ada again", 5));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_event_refused_by_the_fresh_document_too_is_still_poison() {
    let client = client();
    let store = InMemoryEventStore::new();
    open_account(&store, "account-1", "ada", "c1").await;
    open_account(&store, "account-1", "ada twice", "c2").await;
    append(&store, "account-1", "Deposited", json!({ "cents": 5 })).await;
    let events = all_events(&store).await;
    let strict = Strict {
        inner: Accounts {
            name: unique_name("true-poison"),
        },
    };
    let worker = projector(&client, strict.clone()).await;
    worker.apply(&events[..1]).await.expect("opened");
    match worker.apply(&events[1..]).await {
        Err(ProjectionError::Poison(rejected)) => {
            let positions: Vec<_> = rejected.iter().map(|r| r.position).collect();
            assert_eq!(positions, [events[1].position, events[2].position]);
            assert_eq!(rejected[0].error, "Opened on an open account");
        }
        other => panic!("expected poison, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leading_anew_forgets_the_remembered_documents() {
    let client = client();
    let store = InMemoryEventStore::new();
    open_account(&store, "account-1", "ada", "c1").await;
    append(&store, "account-1", "Deposited", json!({ "cents": 5 })).await;
    append(&store, "account-1", "Deposited", json!({ "cents": 7 })).await;
    let events = all_events(&store).await;
    let accounts = Accounts {
        name: unique_name("forget"),
    };
    let worker_a = projector(&client, accounts.clone()).await;
    let worker_b = EsProjector::new(client.clone(), accounts.clone()).expect("projector");

    worker_a.leadership_changed(true).await;
    worker_a.apply(&events[..1]).await.expect("opened");
    worker_a.leadership_changed(false).await;
    worker_b.apply(&events[..2]).await.expect("first deposit");
    worker_a.leadership_changed(true).await;
    // With the memory dropped, A reads the document B wrote: its write expects B's `_seq_no`
    // at once, and no conflict retry is needed (none is allowed).
    let worker_a = worker_a.with_options(ProjectorOptions::default().max_conflict_retries(0));
    worker_a.apply(&events[2..]).await.expect("second deposit");
    worker_a.make_visible().await.expect("refresh");

    let model = EsQueries::for_projection(client.clone(), &accounts).expect("read model");
    let doc = model.get("account-1").await.expect("get").expect("open");
    assert_eq!((doc.balance, doc.deposits), (12, 2));
}

/// `Strict`, but its first `apply` says so on `folding` and waits for `go`: another writer
/// moves the document on between this projector's read and its fold.
struct Paused {
    inner: Strict,
    folding: Mutex<Option<mpsc::Sender<()>>>,
    go: Mutex<mpsc::Receiver<()>>,
}

impl ElasticProjection for Paused {
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

    fn document_id(&self, event: &RecordedEvent) -> Result<Option<String>, BoxError> {
        self.inner.document_id(event)
    }

    fn apply(
        &self,
        current: Option<&AccountView>,
        event: &RecordedEvent,
    ) -> Result<Change<AccountView>, BoxError> {
        let first = self.folding.lock().expect("lock").take();
        if let Some(folding) = first {
            folding.send(()).expect("the test listens");
            // Off the runtime's worker, so the other writer's I/O goes on meanwhile.
            tokio::task::block_in_place(|| self.go.lock().expect("lock").recv())
                .expect("the test says go");
        }
        self.inner.apply(current, event)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_event_refused_by_a_document_moved_on_after_it_was_read_is_applied_to_the_fresh_one() {
    let client = client();
    let store = InMemoryEventStore::new();
    open_account(&store, "account-1", "ada", "c1").await;
    append(&store, "account-1", "Closed", json!({})).await;
    open_account(&store, "account-1", "ada again", "c2").await;
    let events = all_events(&store).await;
    let strict = Strict {
        inner: Accounts {
            name: unique_name("moved-on"),
        },
    };
    let other = projector(&client, strict.clone()).await;
    other.apply(&events[..1]).await.expect("opened");

    let (folding, is_folding) = mpsc::channel();
    let (go, wait) = mpsc::channel();
    let paused = Arc::new(
        EsProjector::new(
            client.clone(),
            Paused {
                inner: strict.clone(),
                folding: Mutex::new(Some(folding)),
                go: Mutex::new(wait),
            },
        )
        .expect("projector"),
    );
    // It reads the open account, then waits in its fold of the reopening...
    let racing = tokio::spawn({
        let (paused, events) = (paused.clone(), events.clone());
        async move { paused.apply(&events[2..]).await }
    });
    tokio::task::spawn_blocking(move || is_folding.recv())
        .await
        .expect("join")
        .expect("it folds");
    // ... while the other writer closes it.
    other.apply(&events[..2]).await.expect("closed");
    go.send(()).expect("it waits");
    let outcome = racing.await.expect("join");
    assert!(
        outcome.is_ok(),
        "refused on a stale read is no poison: {outcome:?}"
    );

    let model = EsQueries::for_projection(client.clone(), &strict).expect("read model");
    let doc = model.get("account-1").await.expect("get").expect("open");
    assert_eq!(doc.owner, "ada again");
}
