//! Looking at what the search node really holds: every stored document of an index, raw, and
//! the comparison of a read model with a fold from scratch.

use std::collections::BTreeMap;

use cqrs_core::{EventFilter, Position, ReadAll, RecordedEvent};
use elasticsearch::indices::IndicesRefreshParts;
use elasticsearch::{Elasticsearch, SearchParts};
use serde_json::{json, Value};

use crate::summaries::{expected_summaries, OrderSummary};

/// One stored document, as the node holds it.
#[derive(Clone, Debug, PartialEq)]
pub struct RawDocument {
    /// The whole `_source`, the framework's `cqrs` metadata included.
    pub source: Value,
    /// Its `_seq_no`: it changes on every write, even one that stores the same source.
    pub seq_no: u64,
}

impl RawDocument {
    /// Whether it is a tombstone (a deleted document).
    pub fn is_tombstone(&self) -> bool {
        self.source["cqrs"]["deleted"] == json!(true)
    }

    /// The user's fields: the `_source` without `cqrs`.
    pub fn fields(&self) -> Value {
        let mut fields = self.source.clone();
        if let Some(map) = fields.as_object_mut() {
            map.remove("cqrs");
        }
        fields
    }
}

/// Makes everything written to `index` (an index or alias) searchable.
pub async fn refresh(client: &Elasticsearch, index: &str) {
    let response = client
        .indices()
        .refresh(IndicesRefreshParts::Index(&[index]))
        .send()
        .await
        .expect("refresh");
    assert!(
        response.status_code().is_success(),
        "refresh of {index} answered {}",
        response.status_code()
    );
}

/// Every stored document of `index` (an index or alias), tombstones included, by id.
pub async fn raw_documents(client: &Elasticsearch, index: &str) -> BTreeMap<String, RawDocument> {
    refresh(client, index).await;
    let response = client
        .search(SearchParts::Index(&[index]))
        .body(json!({
            "query": { "match_all": {} },
            "size": 10000,
            "seq_no_primary_term": true,
            "track_total_hits": true
        }))
        .send()
        .await
        .expect("search every document");
    let status = response.status_code();
    let body: Value = response.json().await.expect("a search answer");
    assert!(
        status.is_success(),
        "raw search of {index}: {status} {body}"
    );
    let hits = body["hits"]["hits"].as_array().expect("hits");
    assert_eq!(
        body["hits"]["total"]["value"].as_u64(),
        u64::try_from(hits.len()).ok(),
        "every document of {index} fits in one page"
    );
    hits.iter()
        .map(|hit| {
            (
                hit["_id"].as_str().expect("an id").to_owned(),
                RawDocument {
                    source: hit["_source"].clone(),
                    seq_no: hit["_seq_no"].as_u64().expect("a seq_no"),
                },
            )
        })
        .collect()
}

/// Every event of `feed`, in feed order.
pub async fn all_events(feed: &dyn ReadAll) -> Vec<RecordedEvent> {
    let mut events = Vec::new();
    let mut after = Position::START;
    loop {
        let batch = feed
            .read_all(after, 1000, &EventFilter::all())
            .await
            .expect("read the feed");
        if batch.events.is_empty() {
            return events;
        }
        after = batch.next;
        events.extend(batch.events);
    }
}

/// Asserts that `index` holds exactly the documents `expected` says: a live document with
/// these fields for `Some`, a tombstone for `None`, and nothing else.
pub async fn assert_documents(
    client: &Elasticsearch,
    index: &str,
    expected: &BTreeMap<String, Option<OrderSummary>>,
) {
    let stored = raw_documents(client, index).await;
    let mut problems = Vec::new();
    for (id, want) in expected {
        let Some(doc) = stored.get(id) else {
            problems.push(format!("{id}: missing, expected {want:?}"));
            continue;
        };
        match want {
            None if !doc.is_tombstone() => {
                problems.push(format!("{id}: expected a tombstone, found {}", doc.source));
            }
            Some(want) => {
                let want = serde_json::to_value(want).expect("a summary encodes");
                if doc.is_tombstone() || doc.fields() != want {
                    problems.push(format!("{id}: expected {want}, found {}", doc.source));
                }
            }
            None => {}
        }
        if doc.source["cqrs"]["id"] != json!(id) {
            problems.push(format!("{id}: wrong cqrs.id in {}", doc.source));
        }
    }
    for id in stored.keys().filter(|id| !expected.contains_key(*id)) {
        problems.push(format!("{id}: unexpected document {}", stored[id].source));
    }
    assert!(
        problems.is_empty(),
        "{index} differs from a fold from scratch in {} of {} documents:\n{}",
        problems.len(),
        expected.len(),
        problems.join("\n")
    );
}

/// Asserts that `index` holds exactly what a fold from scratch of every event in `feed` gives.
/// Returns how many documents that is.
pub async fn assert_read_model_is_the_fold(
    client: &Elasticsearch,
    index: &str,
    feed: &dyn ReadAll,
) -> usize {
    let expected = expected_summaries(&all_events(feed).await);
    assert_documents(client, index, &expected).await;
    expected.len()
}
