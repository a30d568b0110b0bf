//! The pure heart of the projector: group a batch by document, then fold each document's new
//! events over its stored state, skipping what it has already applied.

use std::collections::HashMap;

use cqrs_core::projection::Rejected;
use cqrs_core::{BoxError, Position, RecordedEvent};

use serde::de::DeserializeOwned;

use crate::document::Stored;
use crate::error::chain;
use crate::{Change, ElasticProjection};

/// The longest document id Elasticsearch accepts, in bytes.
pub(crate) const MAX_ID_BYTES: usize = 512;

/// The events of one document, in feed order.
#[derive(Debug)]
pub(crate) struct Group<'a> {
    pub(crate) id: String,
    pub(crate) events: Vec<&'a RecordedEvent>,
}

/// A batch split by document, in order of each document's first event.
#[derive(Debug, Default)]
pub(crate) struct Grouped<'a> {
    pub(crate) groups: Vec<Group<'a>>,
    /// Events whose document id failed or is unusable.
    pub(crate) rejected: Vec<Rejected>,
}

/// Groups `events` by the id `id_of` gives them; events without an id are ignored, events
/// whose id fails are rejected with the error's text.
pub(crate) fn group<'a>(
    events: &'a [RecordedEvent],
    id_of: impl Fn(&RecordedEvent) -> Result<Option<String>, BoxError>,
) -> Grouped<'a> {
    let mut grouped = Grouped::default();
    let mut index: HashMap<String, usize> = HashMap::new();
    for event in events {
        let id = match id_of(event) {
            Ok(Some(id)) => id,
            Ok(None) => continue,
            Err(error) => {
                grouped.rejected.push(Rejected::new(
                    event.position,
                    format!("no document id: {}", chain(&*error)),
                ));
                continue;
            }
        };
        if id.is_empty() || id.len() > MAX_ID_BYTES {
            grouped.rejected.push(Rejected::new(
                event.position,
                format!(
                    "document id must be 1 to {MAX_ID_BYTES} bytes, got {} bytes",
                    id.len()
                ),
            ));
            continue;
        }
        match index.get(&id) {
            Some(&i) => grouped.groups[i].events.push(event),
            None => {
                index.insert(id.clone(), grouped.groups.len());
                grouped.groups.push(Group {
                    id,
                    events: vec![event],
                });
            }
        }
    }
    grouped
}

/// What folding one document's events decided.
#[derive(Debug)]
pub(crate) struct Folded<D> {
    /// The state to write, if anything changed: `Some(doc)` or `None` for a tombstone, and the
    /// position of the last event applied.
    pub(crate) write: Option<(Option<D>, Position)>,
    /// Positions of the events folded into `write` (they stand or fall with it).
    pub(crate) applied: Vec<Position>,
    /// Events that cannot be applied.
    pub(crate) rejected: Vec<Rejected>,
    /// An event `apply` may apply on a retry (a transient [`cqrs_core::Error`]: one a newer
    /// release wrote): nothing of the document is written or rejected, and the batch is to
    /// be tried again.
    pub(crate) transient: Option<BoxError>,
}

impl<D> Folded<D> {
    fn nothing() -> Self {
        Self {
            write: None,
            applied: Vec::new(),
            rejected: Vec::new(),
            transient: None,
        }
    }
}

/// A document's state before a batch: its last applied position and the decoded document
/// (`None`: absent or a tombstone), or why it does not decode.
#[derive(Debug)]
pub(crate) struct Start<D> {
    pub(crate) position: Option<Position>,
    pub(crate) document: Result<Option<D>, String>,
}

impl<D> Start<D> {
    /// A document that does not exist.
    pub(crate) fn absent() -> Self {
        Self {
            position: None,
            document: Ok(None),
        }
    }
}

impl<D: DeserializeOwned> Start<D> {
    /// Decodes a stored document (`None`: it does not exist).
    pub(crate) fn from_stored(id: &str, stored: Option<&Stored>) -> Self {
        match stored {
            None => Self::absent(),
            Some(stored) => Self {
                position: stored.position,
                document: stored
                    .document::<D>(id)
                    .map_err(|e| format!("stored document {id} does not decode: {}", chain(&e))),
            },
        }
    }
}

/// Folds `events` (one document's, in feed order) over `start`, the stored document.
///
/// Only events after the document's last applied position are applied, so a replay changes
/// nothing. An `apply` error rejects that event and holds back the document's later events
/// (they are rejected too): each document sees its events in order or not at all. A
/// transient one (an event a newer release wrote) decides nothing: see [`Folded::transient`].
pub(crate) fn fold<P: ElasticProjection>(
    projection: &P,
    id: &str,
    start: Start<P::Document>,
    events: &[&RecordedEvent],
) -> Folded<P::Document> {
    let last = start.position;
    let pending: Vec<&RecordedEvent> = events
        .iter()
        .copied()
        .filter(|event| last.is_none_or(|last| event.position > last))
        .collect();
    if pending.is_empty() {
        return Folded::nothing();
    }
    let mut state = match start.document {
        Ok(state) => state,
        Err(why) => return reject_all(&pending, &why),
    };
    let mut folded = Folded::nothing();
    let mut dirty = false;
    let mut applied_up_to = Position::START;
    for (i, event) in pending.iter().enumerate() {
        match projection.apply(state.as_ref(), event) {
            Ok(Change::Upsert(document)) => {
                state = Some(document);
                dirty = true;
            }
            Ok(Change::Delete) => {
                state = None;
                dirty = true;
            }
            Ok(Change::Unchanged) => {}
            Err(error) if cqrs_core::Error::is_transient_boxed(&*error) => {
                return Folded {
                    transient: Some(error),
                    ..Folded::nothing()
                };
            }
            Err(error) => {
                folded.rejected.push(Rejected::new(event.position, error));
                for later in &pending[i + 1..] {
                    folded.rejected.push(Rejected::new(
                        later.position,
                        format!(
                            "held back: an earlier event of document {id} (at {}) was rejected",
                            event.position
                        ),
                    ));
                }
                break;
            }
        }
        applied_up_to = event.position;
        folded.applied.push(event.position);
    }
    if dirty {
        folded.write = Some((state, applied_up_to));
    }
    folded
}

fn reject_all<D>(events: &[&RecordedEvent], why: &str) -> Folded<D> {
    Folded {
        write: None,
        applied: Vec::new(),
        transient: None,
        rejected: events
            .iter()
            .map(|event| Rejected::new(event.position, why))
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cqrs_core::{BoxError, NewEvent, StreamId, Version};
    use serde::{Deserialize, Serialize};
    use serde_json::{json, Value};

    #[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
    struct Counter {
        n: i64,
    }

    struct Counters;

    impl ElasticProjection for Counters {
        type Document = Counter;

        fn name(&self) -> &str {
            "counters"
        }

        fn mappings(&self) -> Value {
            json!({ "n": { "type": "long" } })
        }

        fn document_id(&self, event: &RecordedEvent) -> Result<Option<String>, BoxError> {
            match &event.payload["doc"] {
                Value::String(doc) => Ok(Some(doc.clone())),
                Value::Null => Ok(None),
                other => Err(format!("doc is not a string: {other}").into()),
            }
        }

        fn apply(
            &self,
            current: Option<&Counter>,
            event: &RecordedEvent,
        ) -> Result<Change<Counter>, BoxError> {
            let n = current.map_or(0, |c| c.n);
            Ok(match event.event_type.as_str() {
                "Add" => Change::Upsert(Counter {
                    n: n + event.payload["n"].as_i64().ok_or("n missing")?,
                }),
                "Del" => Change::Delete,
                "Noop" => Change::Unchanged,
                // What decoding an event a newer release wrote answers.
                "Newer" => {
                    return Err(Box::new(cqrs_core::Error::WrittenByNewerCode {
                        event_type: "Newer".to_owned(),
                        schema_version: 2,
                        current: 1,
                        stream_id: None,
                        version: None,
                    }))
                }
                _ => return Err("unknown event".into()),
            })
        }
    }

    fn event(major: u64, kind: &str, payload: Value) -> RecordedEvent {
        RecordedEvent::new(
            StreamId::new("s-1").unwrap(),
            Version::new(major),
            Position::from_parts(major, 0),
            NewEvent::new(kind, 1, payload),
            time::OffsetDateTime::UNIX_EPOCH,
        )
    }

    fn add(major: u64, doc: &str, n: i64) -> RecordedEvent {
        event(major, "Add", json!({ "doc": doc, "n": n }))
    }

    fn stored(n: i64, position: u64) -> Stored {
        Stored {
            position: Some(Position::from_parts(position, 0)),
            deleted: false,
            source: json!({ "n": n }),
        }
    }

    fn at(major: u64) -> Position {
        Position::from_parts(major, 0)
    }

    /// Folds `events` of document `a` over `current`.
    fn fold_over(current: Option<&Stored>, events: &[&RecordedEvent]) -> Folded<Counter> {
        fold(&Counters, "a", Start::from_stored("a", current), events)
    }

    #[test]
    fn batches_are_grouped_by_document_in_feed_order() {
        let events = vec![
            add(1, "a", 1),
            add(2, "b", 1),
            event(3, "Add", json!({ "n": 1 })),
            add(4, "a", 2),
            add(5, "", 1),
            add(6, &"x".repeat(MAX_ID_BYTES + 1), 1),
            event(7, "Add", json!({ "doc": 7 })),
        ];
        let grouped = group(&events, |e| Counters.document_id(e));
        let ids: Vec<&str> = grouped.groups.iter().map(|g| g.id.as_str()).collect();
        assert_eq!(ids, ["a", "b"]);
        let a: Vec<Position> = grouped.groups[0]
            .events
            .iter()
            .map(|e| e.position)
            .collect();
        assert_eq!(a, [at(1), at(4)]);
        let bad: Vec<Position> = grouped.rejected.iter().map(|r| r.position).collect();
        assert_eq!(bad, [at(5), at(6), at(7)]);
        assert_eq!(
            grouped.rejected[2].error,
            "no document id: doc is not a string: 7"
        );
    }

    #[test]
    fn only_events_after_the_documents_position_are_folded() {
        let events = [add(3, "a", 10), add(5, "a", 100), add(7, "a", 1000)];
        let refs: Vec<&RecordedEvent> = events.iter().collect();
        let current = stored(10, 3);
        let folded = fold_over(Some(&current), &refs);
        assert_eq!(folded.write, Some((Some(Counter { n: 1110 }), at(7))));
        assert_eq!(folded.applied, [at(5), at(7)]);

        let replayed = stored(1110, 7);
        let folded = fold_over(Some(&replayed), &refs);
        assert!(folded.write.is_none() && folded.applied.is_empty() && folded.rejected.is_empty());
    }

    #[test]
    fn an_apply_error_rejects_its_event_and_holds_back_the_later_ones() {
        let events = [
            add(1, "a", 1),
            event(2, "Boom", json!({ "doc": "a" })),
            add(3, "a", 5),
        ];
        let refs: Vec<&RecordedEvent> = events.iter().collect();
        let folded = fold_over(None, &refs);
        assert_eq!(folded.write, Some((Some(Counter { n: 1 }), at(1))));
        assert_eq!(folded.applied, [at(1)]);
        let rejected: Vec<Position> = folded.rejected.iter().map(|r| r.position).collect();
        assert_eq!(rejected, [at(2), at(3)]);
        assert_eq!(folded.rejected[0].error, "unknown event");
        assert!(folded.rejected[1].error.contains("held back"));
    }

    #[test]
    fn deletes_write_tombstones_and_later_events_may_recreate() {
        let events = [add(1, "a", 1), event(2, "Del", json!({ "doc": "a" }))];
        let refs: Vec<&RecordedEvent> = events.iter().collect();
        let folded = fold_over(None, &refs);
        assert_eq!(folded.write, Some((None, at(2))));

        let tombstone = Stored {
            position: Some(at(2)),
            deleted: true,
            source: json!({}),
        };
        let again = [add(1, "a", 1), add(9, "a", 4)];
        let refs: Vec<&RecordedEvent> = again.iter().collect();
        let folded = fold_over(Some(&tombstone), &refs);
        assert_eq!(folded.write, Some((Some(Counter { n: 4 }), at(9))));
    }

    #[test]
    fn unchanged_events_write_nothing_on_their_own() {
        let events = [event(4, "Noop", json!({ "doc": "a" }))];
        let refs: Vec<&RecordedEvent> = events.iter().collect();
        let current = stored(3, 1);
        let folded = fold_over(Some(&current), &refs);
        assert!(folded.write.is_none() && folded.rejected.is_empty());

        let events = [add(4, "a", 1), event(5, "Noop", json!({ "doc": "a" }))];
        let refs: Vec<&RecordedEvent> = events.iter().collect();
        let folded = fold_over(Some(&current), &refs);
        assert_eq!(folded.write, Some((Some(Counter { n: 4 }), at(5))));
    }

    #[test]
    fn an_undecodable_stored_document_rejects_the_new_events() {
        let current = Stored {
            position: Some(at(1)),
            deleted: false,
            source: json!({ "n": "many" }),
        };
        let events = [add(1, "a", 1), add(2, "a", 1)];
        let refs: Vec<&RecordedEvent> = events.iter().collect();
        let folded = fold_over(Some(&current), &refs);
        assert!(folded.write.is_none());
        let rejected: Vec<Position> = folded.rejected.iter().map(|r| r.position).collect();
        assert_eq!(rejected, [at(2)]);
    }

    #[test]
    fn an_event_a_retry_may_apply_stops_the_fold_without_rejecting_anything() {
        // An event a newer release wrote is applied once that release leads: nothing of the
        // document is written or rejected now, and the batch is retried.
        let (one, newer, two) = (add(1, "a", 1), event(2, "Newer", json!({})), add(3, "a", 2));
        let folded = fold_over(None, &[&one, &newer, &two]);
        assert!(folded.rejected.is_empty(), "{:?}", folded.rejected);
        assert!(folded.write.is_none());
        assert!(folded
            .transient
            .as_ref()
            .is_some_and(|error| error.to_string().contains("newer release")));
    }
}
