//! [`StreamCounts`]: a search-node read model that makes a doubled or lost event visible: one
//! document per stream counting the events applied to it and the last version seen. Applied
//! once each, `events` equals `last_version`; an event applied twice makes `events` larger, a
//! lost one smaller (or `last_version` short of the stream's).

use std::collections::BTreeMap;

use cqrs_core::{BoxError, RecordedEvent};
use cqrs_elastic::{Change, ElasticProjection};
use elasticsearch::Elasticsearch;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::raw_documents;

/// A stream's document.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StreamCount {
    /// Events applied to it.
    pub events: u64,
    /// The version of the last one.
    pub last_version: u64,
}

/// The projection: documents named after their streams.
#[derive(Clone, Debug)]
pub struct StreamCounts {
    /// The read model's name (alias), unique per test.
    pub name: String,
}

impl ElasticProjection for StreamCounts {
    type Document = StreamCount;

    fn name(&self) -> &str {
        &self.name
    }

    fn mappings(&self) -> Value {
        json!({
            "events": { "type": "long" },
            "last_version": { "type": "long" }
        })
    }

    fn document_id(&self, event: &RecordedEvent) -> Result<Option<String>, BoxError> {
        Ok(Some(event.stream_id.as_str().to_owned()))
    }

    fn apply(
        &self,
        current: Option<&StreamCount>,
        event: &RecordedEvent,
    ) -> Result<Change<StreamCount>, BoxError> {
        Ok(Change::Upsert(StreamCount {
            events: current.map_or(0, |c| c.events) + 1,
            last_version: event.version.get(),
        }))
    }
}

/// Asserts that `index` (an alias or index, read with `client`, which should be a direct one)
/// holds exactly one document per stream of `events` (every event of the store), each counting
/// that stream's events once; returns how many documents that is.
pub async fn assert_counts_are_the_fold(
    client: &Elasticsearch,
    index: &str,
    events: &[RecordedEvent],
) -> usize {
    let mut fold: BTreeMap<String, StreamCount> = BTreeMap::new();
    for event in events {
        let count = fold
            .entry(event.stream_id.as_str().to_owned())
            .or_insert(StreamCount {
                events: 0,
                last_version: 0,
            });
        count.events += 1;
        count.last_version = count.last_version.max(event.version.get());
    }
    let stored = raw_documents(client, index).await;
    let mut problems = Vec::new();
    for (id, want) in &fold {
        match stored
            .get(id)
            .map(|doc| serde_json::from_value::<StreamCount>(doc.fields()))
        {
            Some(Ok(have)) if have == *want => {}
            Some(Ok(have)) if have.events > want.events => problems.push(format!(
                "{id}: {} events applied, {} in the store (doubled)",
                have.events, want.events
            )),
            Some(have) => problems.push(format!("{id}: {have:?}, the fold gives {want:?}")),
            None => problems.push(format!("{id}: missing")),
        }
    }
    for id in stored.keys().filter(|id| !fold.contains_key(*id)) {
        problems.push(format!("{id}: a document no stream has"));
    }
    assert!(
        problems.is_empty(),
        "{index} differs from a fold from scratch in {} of {} documents:\n{}",
        problems.len(),
        fold.len(),
        problems.join("\n")
    );
    fold.len()
}
