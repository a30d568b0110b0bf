//! `GroupCommit::max_appends` and `max_events` bound what one grouped transaction writes:
//! under many concurrent writers groups fill up to the bound and never past it, and a single
//! append larger than `max_events` still lands whole, in a group of its own.

mod support;

use std::sync::Arc;

use cqrs_core::{AppendEvents, ExpectedVersion, NewEvent, StreamId, Version};
use cqrs_postgres::{GroupCommit, PgEventStore};
use serde_json::json;
use tokio::sync::Barrier;

const WRITERS: u64 = 24;
const APPENDS: u64 = 8;

/// For each transaction that wrote events: (appends, events). An append is one stream's events
/// in one transaction (a group holds one append per stream).
async fn transactions(store: &PgEventStore) -> Vec<(i64, i64)> {
    sqlx::query_as(&format!(
        "SELECT count(DISTINCT stream_id), count(*) FROM \"{}\".events GROUP BY transaction_id",
        store.schema().as_str()
    ))
    .fetch_all(store.pool())
    .await
    .expect("appends and events per transaction")
}

/// `WRITERS` writers at once, each making `APPENDS` appends of `events` events to its own stream.
async fn write_concurrently(store: &PgEventStore, events: u64) {
    let barrier = Arc::new(Barrier::new(usize::try_from(WRITERS).expect("small")));
    let tasks: Vec<_> = (0..WRITERS)
        .map(|w| {
            let (store, barrier) = (store.clone(), barrier.clone());
            tokio::spawn(async move {
                let id = StreamId::new(format!("writer-{w}")).expect("id");
                barrier.wait().await;
                for a in 0..APPENDS {
                    let batch = (0..events)
                        .map(|n| NewEvent::new("Counted", 1, json!({ "n": n })))
                        .collect();
                    let expected = ExpectedVersion::Exact(Version::new(a * events));
                    store.append(&id, expected, batch).await.expect("append");
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.expect("writer");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_group_holds_at_most_max_appends() {
    let store = support::store_with(30)
        .await
        .with_group_commit(GroupCommit::default().alone_below(0).max_appends(3));
    write_concurrently(&store, 1).await;
    let groups = transactions(&store).await;
    let total: i64 = groups.iter().map(|(appends, _)| appends).sum();
    assert_eq!(total, i64::try_from(WRITERS * APPENDS).expect("small"));
    let largest = groups.iter().map(|(appends, _)| *appends).max();
    assert!(
        largest.is_some_and(|n| n <= 3),
        "a transaction held {largest:?} appends, more than max_appends(3)"
    );
    assert!(
        groups.iter().any(|(appends, _)| *appends > 1),
        "nothing was grouped: {groups:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_group_holds_at_most_max_events_unless_one_append_alone_has_more() {
    let store = support::store_with(30)
        .await
        .with_group_commit(GroupCommit::default().alone_below(0).max_events(5));
    // Two events per append: a group of five events at most holds two appends.
    write_concurrently(&store, 2).await;
    let groups = transactions(&store).await;
    let largest = groups.iter().map(|(_, events)| *events).max();
    assert!(
        largest.is_some_and(|n| n <= 5),
        "a transaction held {largest:?} events, more than max_events(5)"
    );
    assert!(
        groups.iter().any(|(appends, _)| *appends > 1),
        "nothing was grouped: {groups:?}"
    );

    // An append of eight events is more than a group may hold: it lands whole, alone.
    let big = StreamId::new("big-1").expect("id");
    let batch = (0..8)
        .map(|n| NewEvent::new("Counted", 1, json!({ "n": n })))
        .collect();
    let outcome = store
        .append(&big, ExpectedVersion::NoStream, batch)
        .await
        .expect("an append over max_events lands");
    assert_eq!(
        (outcome.first_version, outcome.last_version),
        (Version::new(1), Version::new(8))
    );
    let (xid, _) = outcome.position.parts();
    let written: i64 = sqlx::query_scalar(&format!(
        "SELECT count(*) FROM \"{}\".events WHERE transaction_id::text = $1",
        store.schema().as_str()
    ))
    .bind(xid.to_string())
    .fetch_one(store.pool())
    .await
    .expect("events of its transaction");
    assert_eq!(written, 8, "the eight events landed in one transaction");
}
