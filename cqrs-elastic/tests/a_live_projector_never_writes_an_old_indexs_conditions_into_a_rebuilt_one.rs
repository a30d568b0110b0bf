//! A live projector remembers each document it wrote with the write conditions the serving
//! index gave (`_seq_no`, `_primary_term`). Those count per index: a rebuilt index starts
//! counting anew, so after the alias swap a remembered condition could match the rebuilt
//! document and overwrite it with the old index's state. The rebuild moves the new index's
//! primary terms past the old one's, so no old condition can match: the write is refused, the
//! document read again, and the rebuilt state kept.

mod support;

use cqrs_core::projection::Projection;
use cqrs_core::{BoxError, EventFilter, InMemoryEventStore, RecordedEvent};
use cqrs_elastic::{Change, ElasticProjection, EsIndex, EsQueries, RebuildOptions};
use serde_json::{json, Value};
use support::*;

/// Accounts that open with a bonus: the fold a rebuild brings in changes it.
#[derive(Clone)]
struct Bonus {
    inner: Accounts,
    bonus: i64,
}

impl ElasticProjection for Bonus {
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
        Ok(match self.inner.apply(current, event)? {
            Change::Upsert(view) if event.event_type == "Opened" => Change::Upsert(AccountView {
                balance: self.bonus,
                ..view
            }),
            other => other,
        })
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rebuilt_document_is_not_overwritten_with_what_the_live_projector_remembers() {
    let client = client();
    let store = InMemoryEventStore::new();
    open_account(&store, "account-1", "ada", "c1").await;
    let accounts = Accounts {
        name: unique_name("remembered"),
    };
    let old = Bonus {
        inner: accounts.clone(),
        bonus: 0,
    };
    // The live projector writes the one document once, and remembers it.
    let live = projector(&client, old.clone()).await;
    live.apply(&all_events(&store).await).await.expect("opened");

    // A rebuild with the new fold: the opening bonus is 100.
    let new = Bonus {
        inner: accounts.clone(),
        bonus: 100,
    };
    let index = EsIndex::for_projection(client.clone(), &old).expect("index");
    index
        .rebuild(
            new.clone(),
            store.clone(),
            store.clone(),
            RebuildOptions::default(),
        )
        .await
        .expect("rebuilt");

    // The next event reaches the live projector, which still remembers the old document.
    append(&store, "account-1", "Deposited", json!({ "cents": 5 })).await;
    let events = all_events(&store).await;
    live.apply(&events[1..]).await.expect("deposited");
    live.make_visible().await.expect("refresh");

    let queries = EsQueries::for_projection(client.clone(), &new).expect("queries");
    let doc = queries.get("account-1").await.expect("get").expect("open");
    assert_eq!(doc.balance, 105, "the rebuilt bonus and the deposit");
}
