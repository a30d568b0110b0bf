//! An event's id is stored once, in the `event_id` column; its metadata JSON holds every other
//! field. It repeated the id before (about 55 of a row's 250 bytes), and rows written that way
//! read back the same.

mod support;

use cqrs_core::{
    AppendEvents, EventFilter, EventId, ExpectedVersion, Metadata, NewEvent, Position, ReadAll,
    ReadStream, StreamId, Version,
};
use serde_json::{json, Value};
use uuid::Uuid;

fn metadata(correlation: Uuid) -> Metadata {
    Metadata::new(EventId::new())
        .with_correlation_id(correlation)
        .with_causation_id(Uuid::now_v7())
        .with_header("tenant", "acme")
}

#[tokio::test]
async fn the_metadata_column_holds_every_field_but_the_event_id() {
    let store = support::store().await;
    let stream = StreamId::new("order-1").expect("valid");
    let written = metadata(Uuid::now_v7());
    store
        .append(
            &stream,
            ExpectedVersion::NoStream,
            vec![NewEvent::new("Placed", 1, json!({ "n": 1 })).with_metadata(written.clone())],
        )
        .await
        .expect("append");

    let (column, stored): (Uuid, Value) = sqlx::query_as(&format!(
        "SELECT event_id, metadata FROM {}.events",
        store.schema().as_str()
    ))
    .fetch_one(store.pool())
    .await
    .expect("the row");
    assert_eq!(column, written.event_id.as_uuid());
    assert_eq!(
        stored,
        json!({
            "correlation_id": written.correlation_id,
            "causation_id": written.causation_id,
            "headers": { "tenant": "acme" },
        })
    );
}

#[tokio::test]
async fn every_read_gives_back_the_metadata_with_its_event_id() {
    let store = support::store().await;
    let stream = StreamId::new("order-2").expect("valid");
    let correlation = Uuid::now_v7();
    let written: Vec<Metadata> = (0..3).map(|_| metadata(correlation)).collect();
    let events = written
        .iter()
        .map(|m| NewEvent::new("Placed", 1, json!({})).with_metadata(m.clone()))
        .collect();
    let appended = store
        .append(&stream, ExpectedVersion::NoStream, events)
        .await
        .expect("append");
    // Another test's open transaction on the shared server holds the feed back for a moment.
    support::wait_for_feed(&store, appended.position).await;

    let by_stream = store
        .read_stream(&stream, Version::new(1), 10)
        .await
        .expect("stream read");
    let by_feed = store
        .read_all(Position::START, 10, &EventFilter::all())
        .await
        .expect("feed read")
        .events;
    let by_category = store
        .read_all(Position::START, 10, &EventFilter::all().category("order"))
        .await
        .expect("filtered feed read")
        .events;
    let by_correlation = store
        .correlated_events(correlation, Position::START, 10)
        .await
        .expect("correlated read");
    for (read, events) in [
        ("stream", by_stream),
        ("feed", by_feed),
        ("category", by_category),
        ("correlation", by_correlation),
    ] {
        let read_back: Vec<Metadata> = events.into_iter().map(|e| e.metadata).collect();
        assert_eq!(read_back, written, "the {read} read");
    }
}

#[tokio::test]
async fn a_row_written_with_the_event_id_in_its_metadata_reads_the_same() {
    let store = support::store().await;
    let written = metadata(Uuid::now_v7());
    // A row as the store wrote them before: the whole metadata, event id included.
    sqlx::query(&format!(
        "INSERT INTO {}.events
             (stream_id, version, event_id, event_type, schema_version, payload, metadata)
         VALUES ('order-3', 1, $1, 'Placed', 1, '{{}}', $2::jsonb)",
        store.schema().as_str()
    ))
    .bind(written.event_id.as_uuid())
    .bind(serde_json::to_string(&written).expect("encodes"))
    .execute(store.pool())
    .await
    .expect("an old row");

    let stream = StreamId::new("order-3").expect("valid");
    let events = store
        .read_stream(&stream, Version::new(1), 10)
        .await
        .expect("stream read");
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].metadata, written);
}

/// Runs of events sharing their metadata but for the id, and events that differ from the one
/// before them by one field each: the store writes a run's JSON once.
fn runs_of_metadata(events: usize) -> Vec<Metadata> {
    let (correlation, causation) = (Uuid::now_v7(), Uuid::now_v7());
    (0..events)
        .map(|i| {
            let fresh = Metadata::new(EventId::new())
                .with_correlation_id(correlation)
                .with_causation_id(causation)
                .with_header("tenant", "acme");
            match i % 7 {
                3 => fresh.with_header("tenant", "other"),
                4 => fresh.with_causation_id(Uuid::now_v7()),
                5 => fresh.with_header("extra", i.to_string()),
                _ => fresh,
            }
        })
        .collect()
}

#[tokio::test]
async fn metadata_shared_by_some_of_a_batchs_events_reads_back_per_event_by_statement_and_by_copy()
{
    let store = support::store().await;
    // 5 events: one statement; 100 to a new stream: a binary COPY.
    for (stream, events) in [("order-4", 5), ("order-5", 100)] {
        let stream = StreamId::new(stream).expect("valid");
        let written = runs_of_metadata(events);
        let batch = written
            .iter()
            .map(|m| NewEvent::new("Placed", 1, json!({})).with_metadata(m.clone()))
            .collect();
        store
            .append(&stream, ExpectedVersion::NoStream, batch)
            .await
            .expect("append");

        let read_back: Vec<Metadata> = store
            .read_stream(&stream, Version::new(1), 1_000)
            .await
            .expect("stream read")
            .into_iter()
            .map(|e| e.metadata)
            .collect();
        assert_eq!(read_back, written, "{stream}");
    }
}
