//! A feed read whose future is dropped midway (the reader task aborted at shutdown or on the
//! loss of its lease, a caller's timeout) leaves no transaction open on the server: an open one
//! would hold locks on the schema (a `DROP SCHEMA` or `ALTER TABLE` waits behind it) and, once
//! a waiter holds a transaction id, the gap-safe feed of every schema on the server.

mod support;

use std::time::Duration;

use cqrs_core::{
    AppendEvents, EventFilter, ExpectedVersion, NewEvent, Position, ReadAll, StreamId,
};
use tokio::time::Instant;

const PATIENCE: Duration = Duration::from_secs(10);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_feed_read_cut_off_midway_leaves_no_transaction_open() {
    let store = support::store_with(4).await;
    let schema = store.schema().as_str().to_owned();
    for batch in 0..20 {
        let stream = StreamId::new(format!("s-{batch}")).expect("stream id");
        let events = (0..500)
            .map(|i| {
                NewEvent::new(
                    "Filled",
                    1,
                    serde_json::json!({ "i": i, "pad": "x".repeat(200) }),
                )
            })
            .collect();
        store
            .append(&stream, ExpectedVersion::NoStream, events)
            .await
            .expect("append");
    }

    // Reads of the whole feed, each cut off after a different delay: some before the statement
    // is sent, some while it runs, some while its rows arrive.
    for round in 0..40u64 {
        let reader = store.clone();
        let read = tokio::spawn(async move {
            reader
                .read_all(Position::START, 10_000, &EventFilter::all())
                .await
        });
        tokio::time::sleep(Duration::from_micros(round * 500)).await;
        read.abort();
        let _ = read.await;
    }

    // Every session that ran a statement on this schema ends its transaction.
    let open = format!(
        "SELECT count(*) FROM pg_stat_activity
         WHERE query LIKE '%{schema}%' AND xact_start IS NOT NULL AND pid <> pg_backend_pid()"
    );
    let deadline = Instant::now() + PATIENCE;
    loop {
        let count: i64 = sqlx::query_scalar(&open)
            .fetch_one(store.pool())
            .await
            .expect("sessions");
        if count == 0 {
            break;
        }
        let states: Vec<(i32, Option<String>, Option<String>)> = sqlx::query_as(&format!(
            "SELECT pid, state, left(query, 80) FROM pg_stat_activity
             WHERE query LIKE '%{schema}%' AND xact_start IS NOT NULL AND pid <> pg_backend_pid()"
        ))
        .fetch_all(store.pool())
        .await
        .expect("sessions");
        assert!(
            Instant::now() < deadline,
            "{count} sessions still in a transaction after {PATIENCE:?}: {states:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
