//! `recorded_at` is the server's `now()` when the store writes it, but the table is the user's:
//! a row set to `infinity` by hand, or imported from a system that used it, is data from outside.
//! Reading it is a typed error, for the feed and for a stream, never a panic of the reader.

mod support;

use cqrs_core::{
    AppendEvents, EventFilter, ExpectedVersion, NewEvent, Position, ReadAll, ReadStream, StreamId,
    Version,
};
use serde_json::json;

#[tokio::test]
async fn an_event_recorded_at_infinity_is_read_as_an_error_not_a_panic() {
    let store = support::store().await;
    let stream = StreamId::new("imported-1").expect("a stream id");
    store
        .append(
            &stream,
            ExpectedVersion::NoStream,
            vec![NewEvent::new("Noted", 1, json!({}))],
        )
        .await
        .expect("append");
    sqlx::query(&format!(
        "UPDATE {}.events SET recorded_at = 'infinity'",
        store.schema().as_str()
    ))
    .execute(store.pool())
    .await
    .expect("the row set to infinity");

    let feed = {
        let store = store.clone();
        tokio::spawn(async move {
            store
                .read_all(Position::START, 10, &EventFilter::all())
                .await
        })
    };
    let read = {
        let (store, stream) = (store.clone(), stream.clone());
        tokio::spawn(async move { store.read_stream(&stream, Version::new(1), 10).await })
    };

    let feed = feed.await.expect("the feed reader does not panic");
    let read = read.await.expect("the stream reader does not panic");
    let error = feed
        .expect_err("the feed says the row is wrong")
        .to_string();
    assert!(error.contains("infinity"), "{error}");
    assert!(read.is_err(), "the stream read says the row is wrong");
}
