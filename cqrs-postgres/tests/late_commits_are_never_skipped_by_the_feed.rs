//! Out-of-order commits: a transaction takes feed positions and holds its commit open while later
//! transactions commit. A reader polling before and after must see every event exactly once, in
//! per-stream order. A naive `WHERE position > checkpoint` reader skips the late one.

mod support;

use std::time::Duration;

use cqrs_core::{
    AppendEvents, EventFilter, ExpectedVersion, FeedBatch, NewEvent, Position, ReadAll,
    RecordedEvent, StreamId,
};
use cqrs_postgres::PgEventStore;
use serde_json::json;
use sqlx::Connection;

fn event(label: &str) -> NewEvent {
    NewEvent::new("Labelled", 1, json!({ "label": label }))
}

fn labels(events: &[RecordedEvent]) -> Vec<String> {
    events
        .iter()
        .map(|e| e.payload["label"].as_str().unwrap_or("?").to_owned())
        .collect()
}

/// Reads everything the feed hands out now, moving the reader's position.
async fn poll(store: &PgEventStore, after: &mut Position) -> Vec<RecordedEvent> {
    let mut seen = Vec::new();
    loop {
        let FeedBatch { events, next, .. } = store
            .read_all(*after, 2, &EventFilter::all())
            .await
            .expect("feed read");
        assert!(next >= *after, "the feed never moves backwards");
        *after = next;
        if events.is_empty() {
            return seen;
        }
        seen.extend(events);
    }
}

/// Polls until `count` events came, or a deadline passes. Other tests' open transactions can
/// hold the cluster-wide horizon back for a moment, so a positive check must wait, not assume.
async fn poll_until(
    store: &PgEventStore,
    after: &mut Position,
    count: usize,
) -> Vec<RecordedEvent> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    let mut seen = Vec::new();
    while seen.len() < count && tokio::time::Instant::now() < deadline {
        seen.extend(poll(store, after).await);
        if seen.len() < count {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
    seen
}

fn stream(name: &str) -> StreamId {
    StreamId::new(name).expect("valid")
}

#[tokio::test]
async fn an_event_committed_after_later_positions_is_still_delivered() {
    let store = support::store().await;
    let mut reader = Position::START;
    let before = store
        .append(
            &stream("early-1"),
            ExpectedVersion::Any,
            vec![event("before")],
        )
        .await
        .expect("append");
    assert_eq!(
        labels(&poll_until(&store, &mut reader, 1).await),
        ["before"]
    );

    // A takes its positions first and holds its commit open.
    let mut a = support::pool(1).await.acquire().await.expect("connection");
    let mut tx_a = a.begin().await.expect("begin");
    let late = store
        .append_in(
            &mut tx_a,
            &stream("late-1"),
            ExpectedVersion::NoStream,
            vec![event("late-1"), event("late-2")],
        )
        .await
        .expect("append in A");

    // B takes later positions and commits.
    let b = store
        .append(
            &stream("quick-1"),
            ExpectedVersion::NoStream,
            vec![event("quick")],
        )
        .await
        .expect("append B");
    let (_, late_seq) = late.position.parts();
    let (_, quick_seq) = b.position.parts();
    assert!(quick_seq > late_seq, "B's sequence number is after A's");

    // A naive reader ordering by position alone would now see B, move its checkpoint past A's
    // positions, and never see A's events.
    let naive: Vec<String> = sqlx::query_scalar(&format!(
        "SELECT payload->>'label' FROM \"{}\".events WHERE position > $1 ORDER BY position",
        store.schema()
    ))
    .bind(i64::try_from(before.position.parts().1).expect("small"))
    .fetch_all(store.pool())
    .await
    .expect("naive read");
    assert_eq!(naive, ["quick"], "the naive reader sees B before A commits");

    // While A is open the reader must not move past A's positions: it sees nothing.
    for _ in 0..3 {
        assert!(poll(&store, &mut reader).await.is_empty());
    }
    let horizon = store.feed_horizon().await.expect("horizon");
    assert!(horizon.oldest_open_transaction.is_some());
    assert!(
        horizon.waiting_events >= 1,
        "B's event waits behind A: {horizon:?}"
    );

    tx_a.commit().await.expect("commit A");
    let seen = poll_until(&store, &mut reader, 3).await;
    assert_eq!(labels(&seen), ["late-1", "late-2", "quick"]);
    assert!(poll(&store, &mut reader).await.is_empty(), "nothing twice");
}

#[tokio::test]
async fn an_older_transaction_committing_last_is_delivered_before_younger_ones() {
    let store = support::store().await;
    let pool = support::pool(2).await;
    let mut reader = Position::START;

    // Old opens first (smaller transaction id) but writes and commits last.
    let mut old_conn = pool.acquire().await.expect("connection");
    let mut old = old_conn.begin().await.expect("begin");
    sqlx::query("SELECT pg_current_xact_id()")
        .execute(&mut *old)
        .await
        .expect("take a transaction id");
    let mut young_conn = pool.acquire().await.expect("connection");
    let mut young = young_conn.begin().await.expect("begin");
    store
        .append_in(
            &mut young,
            &stream("young-1"),
            ExpectedVersion::Any,
            vec![event("young")],
        )
        .await
        .expect("append young");
    young.commit().await.expect("commit young");
    assert!(
        poll(&store, &mut reader).await.is_empty(),
        "held back by the older transaction"
    );

    store
        .append_in(
            &mut old,
            &stream("old-1"),
            ExpectedVersion::Any,
            vec![event("old")],
        )
        .await
        .expect("append old");
    tokio::time::sleep(Duration::from_millis(20)).await;
    assert!(poll(&store, &mut reader).await.is_empty());
    old.commit().await.expect("commit old");

    assert_eq!(
        labels(&poll_until(&store, &mut reader, 2).await),
        ["old", "young"]
    );
}

#[tokio::test]
async fn a_rolled_back_transaction_leaves_no_hole_and_blocks_nothing() {
    let store = support::store().await;
    let mut reader = Position::START;
    let mut conn = support::pool(1).await.acquire().await.expect("connection");
    let mut tx = conn.begin().await.expect("begin");
    store
        .append_in(
            &mut tx,
            &stream("doomed-1"),
            ExpectedVersion::Any,
            vec![event("doomed")],
        )
        .await
        .expect("append");
    store
        .append(&stream("kept-1"), ExpectedVersion::Any, vec![event("kept")])
        .await
        .expect("append");
    tx.rollback().await.expect("rollback");
    assert_eq!(labels(&poll_until(&store, &mut reader, 1).await), ["kept"]);
}

#[tokio::test]
async fn a_conflict_inside_a_callers_transaction_leaves_it_usable() {
    let store = support::store().await;
    let s = stream("shared-1");
    store
        .append(&s, ExpectedVersion::NoStream, vec![event("first")])
        .await
        .expect("append");
    let mut conn = support::pool(1).await.acquire().await.expect("connection");
    let mut tx = conn.begin().await.expect("begin");
    let err = store
        .append_in(
            &mut tx,
            &s,
            ExpectedVersion::NoStream,
            vec![event("second")],
        )
        .await
        .expect_err("conflict");
    assert!(err.is_conflict(), "{err:?}");
    store
        .append_in(
            &mut tx,
            &stream("other-1"),
            ExpectedVersion::NoStream,
            vec![event("other")],
        )
        .await
        .expect("the transaction still works");
    tx.commit().await.expect("commit");
    let mut reader = Position::START;
    assert_eq!(
        labels(&poll_until(&store, &mut reader, 2).await),
        ["first", "other"]
    );
}

#[tokio::test]
async fn a_transaction_older_than_the_streams_last_writer_gets_a_conflict() {
    let store = support::store().await;
    let s = stream("ordered-1");
    let mut conn = support::pool(1).await.acquire().await.expect("connection");
    let mut old = conn.begin().await.expect("begin");
    sqlx::query("SELECT pg_current_xact_id()")
        .execute(&mut *old)
        .await
        .expect("take a transaction id");
    store
        .append(&s, ExpectedVersion::NoStream, vec![event("younger")])
        .await
        .expect("append");
    // Appending now would order `old`'s event before version 1 in the feed.
    let err = store
        .append_in(&mut old, &s, ExpectedVersion::Any, vec![event("older")])
        .await
        .expect_err("an older transaction must not append after a younger one");
    assert!(err.is_conflict(), "{err:?}");
    old.rollback().await.expect("rollback");
    store
        .append(&s, ExpectedVersion::Any, vec![event("retried")])
        .await
        .expect("a new transaction succeeds");
    let mut reader = Position::START;
    assert_eq!(
        labels(&poll_until(&store, &mut reader, 2).await),
        ["younger", "retried"]
    );
}
