//! A feed subscription promises a wake-up for every append after it began. Its `LISTEN`
//! connection starts a moment later (it waits for a pool connection), and `NOTIFY`s sent in
//! between reach nobody: the subscriber must be woken once it listens, or a runner that has
//! just read the feed would not see such an append until its next poll.
//!
//! The test holds the pool's only connection, so the listener cannot start before the append
//! commits: no timing.

mod support;

use std::time::Duration;

use cqrs_core::projection::FeedSignal;
use cqrs_core::{ExpectedVersion, NewEvent, StreamId};
use serde_json::json;
use sqlx::Connection;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_append_committed_between_subscribing_and_listening_wakes_the_subscriber() {
    let store = support::store_with(1).await;
    let mut only = store
        .pool()
        .acquire()
        .await
        .expect("the pool's only connection");
    let mut waiter = store.feed_signal().subscribe();

    // The listener waits for a connection; meanwhile an append commits and notifies no one.
    let mut tx = only.begin().await.expect("begin");
    store
        .append_in(
            &mut tx,
            &StreamId::new("early-1").expect("id"),
            ExpectedVersion::NoStream,
            vec![NewEvent::new("E", 1, json!({}))],
        )
        .await
        .expect("append");
    tx.commit().await.expect("commit");
    drop(only);

    tokio::time::timeout(Duration::from_secs(20), waiter.wait())
        .await
        .expect(
            "timed out after 20 s waiting for a wake-up: an append committed after subscribing, \
             before the LISTEN connection was up, woke nobody",
        );
}
