//! A store keeps an event's payload and metadata as `jsonb` (the default) or `json`
//! (`EventJson::Json`), chosen when `migrate` creates the events table. Every write path (one
//! event, a batch by statement, a new stream's large batch by binary `COPY`, a group) and every
//! read (a stream, a replay, the feed, a correlation's events) works the same on both.
//! `migrate` refuses a store configured for the other type than its table has; one that
//! skipped `migrate` fails a copied batch whole, writing nothing.

mod support;

use cqrs_core::{
    AppendEvents, EventFilter, EventId, ExpectedVersion, Metadata, NewEvent, Payload, Position,
    ReadAll, ReadStream, StreamId, Version,
};
use cqrs_postgres::{testing, EventJson, GroupCommit, PgError, PgEventStore};
use serde_json::{json, Value};
use uuid::Uuid;

/// `n` events, each with its own payload and a correlated metadata with a header.
fn events(n: u64, correlation: Uuid) -> Vec<NewEvent> {
    (1..=n)
        .map(|i| {
            let metadata = Metadata::new(EventId::new())
                .with_correlation_id(correlation)
                .with_header("tenant", "acme");
            NewEvent::new("Noted", 1, json!({ "n": i, "text": "ü \"q\"" })).with_metadata(metadata)
        })
        .collect()
}

/// Writes through every path on `store` and reads each event back as written.
async fn round_trip(store: &PgEventStore) {
    let correlation = Uuid::now_v7();
    // (stream, events, expected): one event; a batch by statement; a new stream's batch of
    // 100, over the 64 from which it is copied; a later batch to that stream.
    let writes = [
        ("note-1", 1, ExpectedVersion::NoStream),
        ("note-2", 10, ExpectedVersion::NoStream),
        ("note-3", 100, ExpectedVersion::NoStream),
        ("note-3", 100, ExpectedVersion::Exact(Version::new(100))),
    ];
    let mut written = Vec::new();
    let mut last = Position::START;
    for (stream, n, expected) in writes {
        let stream = StreamId::new(stream).expect("valid");
        let batch = events(n, correlation);
        let outcome = store
            .append(&stream, expected, batch.clone())
            .await
            .expect("append");
        last = last.max(outcome.position);
        written.extend(batch.into_iter().map(|e| (stream.clone(), e)));
    }
    support::wait_for_feed(store, last).await;

    let feed = store
        .read_all(Position::START, 1_000, &EventFilter::all())
        .await
        .expect("feed")
        .events;
    assert_eq!(feed.len(), written.len());
    for (read, (stream, event)) in feed.iter().zip(&written) {
        assert_eq!(&read.stream_id, stream);
        assert_eq!(read.payload, event.payload, "the payload as written");
        assert_eq!(read.metadata, event.metadata, "the metadata as written");
    }
    // The one statement that looks inside the JSON: `->>`, which both types have.
    let correlated = store
        .correlated_events(correlation, Position::START, 1_000)
        .await
        .expect("correlated");
    assert_eq!(correlated.len(), written.len());
    let stream = StreamId::new("note-3").expect("valid");
    let read = store
        .read_stream(&stream, Version::new(1), 1_000)
        .await
        .expect("read");
    assert_eq!(read.len(), 200);
    let mut replayed = Vec::new();
    store
        .replay(&stream, Version::new(1), 1_000, &mut |event| {
            let Payload::Json(text) = event.payload else {
                panic!("a store's replay hands over JSON text");
            };
            replayed.push(serde_json::from_str::<Value>(text).expect("JSON"));
            Ok(())
        })
        .await
        .expect("replay");
    let payloads: Vec<_> = read.iter().map(|e| e.payload.clone()).collect();
    assert_eq!(replayed, payloads);
}

#[tokio::test]
async fn every_write_and_read_keeps_events_as_written_in_json_columns() {
    let store = support::json_store().await;
    assert_eq!(
        store.stored_event_json().await.expect("type"),
        Some(EventJson::Json)
    );
    round_trip(&store).await;
}

#[tokio::test]
async fn every_write_and_read_keeps_events_as_written_in_jsonb_columns() {
    let store = support::store().await;
    assert_eq!(
        store.stored_event_json().await.expect("type"),
        Some(EventJson::Jsonb)
    );
    round_trip(&store).await;
}

#[tokio::test]
async fn grouped_appends_write_json_columns() {
    let store = PgEventStore::new(support::pool(20).await)
        .with_event_json(EventJson::Json)
        .with_group_commit(GroupCommit::default().alone_below(0));
    let store = testing::fresh_store_from(store).await.expect("migrate");
    let correlation = Uuid::now_v7();
    let appends = (0..8).map(|i| {
        let store = store.clone();
        async move {
            let stream = StreamId::new(format!("grouped-{i}")).expect("valid");
            store
                .append(&stream, ExpectedVersion::NoStream, events(2, correlation))
                .await
        }
    });
    for outcome in futures_util::future::join_all(appends).await {
        outcome.expect("append");
    }
    let stream = StreamId::new("grouped-7").expect("valid");
    let read = store
        .read_stream(&stream, Version::new(1), 10)
        .await
        .expect("read");
    assert_eq!(read.len(), 2);
    assert_eq!(read[1].payload, json!({ "n": 2, "text": "ü \"q\"" }));
}

#[tokio::test]
async fn migrate_refuses_a_store_configured_for_the_other_type_than_its_table() {
    let created = support::json_store().await;
    let other = PgEventStore::new(created.pool().clone()).with_schema(created.schema().clone());
    assert_eq!(other.event_json(), EventJson::Jsonb);

    let refused = other.migrate().await.expect_err("a json table");
    assert!(
        matches!(
            &refused,
            PgError::EventJsonMismatch { configured: EventJson::Jsonb, found } if found == "json"
        ),
        "{refused:?}"
    );
    assert!(!refused.is_transient());
    assert!(refused.to_string().contains("with_event_json"), "{refused}");
    // What it found is what a tool configures from; then it migrates.
    let found = other
        .stored_event_json()
        .await
        .expect("type")
        .expect("a table");
    other
        .with_event_json(found)
        .migrate()
        .await
        .expect("matches");
}

#[tokio::test]
async fn a_schema_without_an_events_table_stores_no_type_yet() {
    let store = PgEventStore::new(support::pool(2).await).with_schema(support::unique_schema());
    assert_eq!(store.stored_event_json().await.expect("type"), None);
}

#[tokio::test]
async fn a_store_that_skipped_migrate_on_the_other_type_fails_a_copied_batch_whole() {
    let created = support::store().await;
    let mismatched = PgEventStore::new(created.pool().clone())
        .with_event_json(EventJson::Json)
        .with_schema(created.schema().clone());
    let stream = StreamId::new("copied-1").expect("valid");

    let refused = mismatched
        .append(
            &stream,
            ExpectedVersion::NoStream,
            events(100, Uuid::now_v7()),
        )
        .await;
    assert!(refused.is_err(), "{refused:?}");
    let read = created
        .read_stream(&stream, Version::new(1), 1_000)
        .await
        .expect("read");
    assert!(read.is_empty(), "nothing of the batch is written");
    // A small batch goes by statement, whose cast the column's type takes either way.
    mismatched
        .append(
            &stream,
            ExpectedVersion::NoStream,
            events(3, Uuid::now_v7()),
        )
        .await
        .expect("append");
}
