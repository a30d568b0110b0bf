//! Appends under load still share transactions with the default group commit, which writes
//! an append alone only while fewer than `GroupCommit::alone_below` others are in flight;
//! also under the longest timeouts a store takes (`Duration::MAX`, meant as "no bound"):
//! they panicked every grouped append (doubling them overflowed), and a `statement_timeout`
//! past what PostgreSQL takes turned grouping off; and with as many lanes as `usize` allows
//! (the store panicked making them).

mod support;

use std::sync::Arc;
use std::time::Duration;

use cqrs_core::{AppendEvents, ExpectedVersion, NewEvent, StreamId, Version};
use cqrs_postgres::GroupCommit;
use serde_json::json;
use tokio::sync::Barrier;

const WRITERS: u32 = 16;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn appends_under_load_still_share_transactions() {
    let store = support::store_with(WRITERS + 2)
        .await
        .with_group_commit(GroupCommit::default());
    share_transactions(store).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn appends_share_transactions_under_the_longest_timeouts_a_store_takes() {
    let store = support::store_with(WRITERS + 2)
        .await
        .with_answer_timeout(Duration::MAX)
        .with_group_commit(GroupCommit::default().timeout(Duration::MAX));
    share_transactions(store).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn appends_land_with_as_many_lanes_as_usize_allows() {
    let store = support::store_with(WRITERS + 2)
        .await
        .with_group_commit(GroupCommit::default().lanes(usize::MAX));
    // Enough at once for appends to be grouped (fewer than two others in flight: alone).
    let appends = (0..WRITERS).map(|w| {
        let store = store.clone();
        async move {
            let stream = StreamId::new(format!("laned-{w}")).expect("id");
            let event = NewEvent::new("Counted", 1, json!({ "n": 0 }));
            store
                .append(&stream, ExpectedVersion::NoStream, vec![event])
                .await
        }
    });
    for appended in futures_util::future::join_all(appends).await {
        appended.expect("append");
    }
}

/// Sixteen writers append twenty events each: every append lands once, and some share a
/// transaction.
async fn share_transactions(store: cqrs_postgres::PgEventStore) {
    let barrier = Arc::new(Barrier::new(WRITERS as usize));
    let writers: Vec<_> = (0..WRITERS)
        .map(|w| {
            let (store, barrier) = (store.clone(), barrier.clone());
            tokio::spawn(async move {
                barrier.wait().await;
                for n in 0..20u64 {
                    let stream = StreamId::new(format!("loaded-{w}")).expect("id");
                    let event = NewEvent::new("Counted", 1, json!({ "n": n }));
                    store
                        .append(
                            &stream,
                            ExpectedVersion::Exact(Version::new(n)),
                            vec![event],
                        )
                        .await
                        .expect("append");
                }
            })
        })
        .collect();
    for writer in writers {
        writer.await.expect("writer");
    }
    let per_transaction: Vec<(i64,)> = sqlx::query_as(&format!(
        "SELECT count(*) FROM \"{}\".events GROUP BY transaction_id",
        store.schema().as_str()
    ))
    .fetch_all(store.pool())
    .await
    .expect("appends per transaction");
    let appends: i64 = per_transaction.iter().map(|(n,)| n).sum();
    assert_eq!(appends, i64::from(WRITERS) * 20, "every append landed once");
    let shared = per_transaction.iter().filter(|(n,)| *n > 1).count();
    assert!(
        shared > 0,
        "16 writers in a loop never shared a transaction: {per_transaction:?}"
    );
}
