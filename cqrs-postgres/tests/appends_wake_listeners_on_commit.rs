//! Each append NOTIFYs the store's channel on commit (no event bodies in the payload), so feed
//! readers can wake at once instead of polling.

mod support;

use std::time::Duration;

use cqrs_core::{AppendEvents, ExpectedVersion, NewEvent, StreamId};
use serde_json::json;
use sqlx::postgres::PgListener;
use sqlx::Connection;

#[tokio::test]
async fn a_listener_is_woken_by_a_commit_and_not_before() {
    let store = support::store().await;
    let mut listener = PgListener::connect_with(store.pool())
        .await
        .expect("listener");
    listener.listen(&store.channel()).await.expect("listen");

    let stream = StreamId::new("wake-1").expect("id");
    let mut conn = store.pool().acquire().await.expect("connection");
    let mut tx = conn.begin().await.expect("begin");
    store
        .append_in(
            &mut tx,
            &stream,
            ExpectedVersion::Any,
            vec![NewEvent::new("E", 1, json!({}))],
        )
        .await
        .expect("append");
    let early = tokio::time::timeout(Duration::from_millis(200), listener.recv()).await;
    assert!(early.is_err(), "no wake-up before commit");
    tx.commit().await.expect("commit");
    let note = tokio::time::timeout(Duration::from_secs(10), listener.recv())
        .await
        .expect("woken within the deadline")
        .expect("notification");
    assert_eq!(note.channel(), store.channel());
    assert_eq!(
        note.payload(),
        "",
        "no event bodies travel in notifications"
    );

    store
        .append(
            &stream,
            ExpectedVersion::Any,
            vec![NewEvent::new("E", 1, json!({}))],
        )
        .await
        .expect("append");
    tokio::time::timeout(Duration::from_secs(10), listener.recv())
        .await
        .expect("woken by an autocommit append")
        .expect("notification");
}
