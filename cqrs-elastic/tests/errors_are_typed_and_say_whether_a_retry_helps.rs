//! The `EsError` variants a caller meets, each produced the way it happens (a bad URL, a node
//! that does not answer, a stored document of another shape, a document that is not a JSON
//! object, an event store that fails under a rebuild), matched by variant, with whether a retry
//! may cure it: that decides whether the runner retries or parks.

mod support;

use cqrs_core::projection::{Projection, ProjectionError};
use cqrs_core::{
    BoxError, EventFilter, FeedBatch, InMemoryEventStore, Position, ReadAll, RecordedEvent,
};
use cqrs_elastic::{Change, ElasticProjection, EsError, EsIndex, EsQueries, RebuildOptions};
use elasticsearch::params::Refresh;
use elasticsearch::UpdateParts;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use support::*;

#[test]
fn a_url_that_does_not_parse_is_a_url_error_and_not_transient() {
    match cqrs_elastic::connect("not a url") {
        Err(error @ EsError::Url(_)) => assert!(!error.is_transient(), "{error:?}"),
        other => panic!("expected EsError::Url, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_that_does_not_answer_is_a_transient_transport_error() {
    // Nothing listens on port 1: the connection is refused at once.
    let client = cqrs_elastic::connect("http://127.0.0.1:1").expect("a client");
    let model: EsQueries<AccountView> = EsQueries::new(client, "nobody-listens").unwrap();
    match model.get("account-1").await {
        Err(error @ EsError::Transport(_)) => {
            assert!(error.is_transient(), "{error:?}");
            assert_eq!(error.status(), None, "no answer, no status");
        }
        other => panic!("expected EsError::Transport, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stored_document_of_another_shape_is_a_decode_error_naming_it() {
    let client = client();
    let store = InMemoryEventStore::new();
    seed_accounts(&store, 2, 1).await;
    let accounts = Accounts {
        name: unique_name("decode"),
    };
    let live = projector(&client, accounts.clone()).await;
    drive(&live, &store, Position::START, 100).await;
    let index = EsIndex::for_projection(client.clone(), &accounts).unwrap();
    let serving = index.current().await.unwrap().expect("the index").index;
    // Someone else nulls a field the read model's type requires.
    let updated = client
        .update(UpdateParts::IndexId(&serving, "account-1"))
        .body(json!({ "doc": { "owner": null } }))
        .refresh(Refresh::True)
        .send()
        .await
        .expect("update");
    assert!(updated.status_code().is_success());
    let model = EsQueries::for_projection(client.clone(), &accounts).unwrap();

    match model.get("account-1").await {
        Err(error @ EsError::Decode { .. }) => {
            assert!(!error.is_transient(), "{error:?}");
            assert!(matches!(&error, EsError::Decode { id, .. } if id == "account-1"));
        }
        other => panic!("expected EsError::Decode, got {other:?}"),
    }
    assert!(
        model.get("account-0").await.unwrap().is_some(),
        "the others decode"
    );

    let _ = client
        .indices()
        .delete(elasticsearch::indices::IndicesDeleteParts::Index(&[
            &serving,
        ]))
        .send()
        .await;
}

/// A read model whose documents are plain numbers: not JSON objects, so they cannot carry the
/// metadata fields beside their own.
#[derive(Clone)]
struct Counters {
    name: String,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(transparent)]
struct Counter(u64);

impl ElasticProjection for Counters {
    type Document = Counter;

    fn name(&self) -> &str {
        &self.name
    }

    fn mappings(&self) -> Value {
        json!({})
    }

    fn filter(&self) -> EventFilter {
        EventFilter::all().category("account")
    }

    fn document_id(&self, event: &RecordedEvent) -> Result<Option<String>, BoxError> {
        Ok(Some(event.stream_id.to_string()))
    }

    fn apply(
        &self,
        current: Option<&Counter>,
        _: &RecordedEvent,
    ) -> Result<Change<Counter>, BoxError> {
        Ok(Change::Upsert(Counter(current.map_or(1, |c| c.0 + 1))))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_document_that_is_not_a_json_object_is_an_encode_error_and_its_events_are_poison() {
    let client = client();
    let store = InMemoryEventStore::new();
    seed_accounts(&store, 2, 1).await;
    let counters = Counters {
        name: unique_name("encode"),
    };
    let projector = projector(&client, counters.clone()).await;
    let events = all_events(&store).await;

    match projector.apply(&events).await {
        Err(ProjectionError::Poison(rejected)) => {
            assert_eq!(
                rejected.iter().map(|r| r.position).collect::<Vec<_>>(),
                events.iter().map(|e| e.position).collect::<Vec<_>>(),
                "every event of the documents that cannot be encoded"
            );
            for r in &rejected {
                assert!(
                    r.error.contains("does not encode as a JSON object"),
                    "the rejection says it is EsError::Encode: {}",
                    r.error
                );
            }
        }
        other => panic!("expected the events to be poison, got {other:?}"),
    }
    let index = EsIndex::for_projection(client.clone(), &counters).unwrap();
    let serving = index.current().await.unwrap().expect("the index").index;
    assert!(
        raw_documents(&client, &serving).await.is_empty(),
        "nothing written"
    );

    let _ = client
        .indices()
        .delete(elasticsearch::indices::IndicesDeleteParts::Index(&[
            &serving,
        ]))
        .send()
        .await;
}

/// A feed whose backend is down.
struct DownFeed;

#[async_trait::async_trait]
impl ReadAll for DownFeed {
    async fn read_all(
        &self,
        _: Position,
        _: usize,
        _: &EventFilter,
    ) -> cqrs_core::Result<FeedBatch> {
        Err(cqrs_core::Error::unavailable("the event store is down"))
    }

    async fn head(&self) -> cqrs_core::Result<Position> {
        Err(cqrs_core::Error::unavailable("the event store is down"))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_event_store_failing_under_a_rebuild_is_a_transient_store_error() {
    let client = client();
    let store = InMemoryEventStore::new();
    let accounts = Accounts {
        name: unique_name("store-down"),
    };
    projector(&client, accounts.clone()).await;
    let index = EsIndex::for_projection(client.clone(), &accounts).unwrap();

    let failed = index
        .rebuild(
            accounts.clone(),
            DownFeed,
            store.clone(),
            RebuildOptions::default(),
        )
        .await;
    match &failed {
        Err(error @ EsError::Store(cqrs_core::Error::Unavailable(_))) => {
            assert!(error.is_transient(), "{error:?}");
        }
        other => panic!("expected EsError::Store, got {other:?}"),
    }
    assert_eq!(
        index.current().await.unwrap().map(|v| v.version),
        Some(1),
        "the alias stays"
    );

    let _ = client
        .indices()
        .delete(elasticsearch::indices::IndicesDeleteParts::Index(&[
            &index.version_name(1),
            &index.version_name(2),
        ]))
        .send()
        .await;
}
