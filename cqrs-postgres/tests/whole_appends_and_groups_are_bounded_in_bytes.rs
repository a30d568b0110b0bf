//! Size limits bound what an append really costs: its payloads, and its metadata and headers
//! too. And a group commit never binds more than a bounded number of bytes into one statement,
//! however many large appends queue up.

mod support;

use std::sync::Arc;

use cqrs_core::{
    AppendEvents, Error, EventId, ExpectedVersion, Metadata, NewEvent, ReadStream, StreamId,
    Version,
};
use cqrs_postgres::{GroupCommit, DEFAULT_MAX_APPEND_BYTES};
use serde_json::json;
use tokio::sync::Barrier;

/// The default bound on one group's bytes.
const DEFAULT_GROUP_MAX_BYTES: i64 = 8 << 20;

#[tokio::test]
async fn headers_count_toward_the_append_limit() {
    let store = support::store().await;
    let stream = StreamId::new("headers-1").expect("id");
    let headers =
        Metadata::new(EventId::new()).with_header("blob", "x".repeat(DEFAULT_MAX_APPEND_BYTES));
    let event = NewEvent::new("Tiny", 1, json!({})).with_metadata(headers);
    let refused = store
        .append(&stream, ExpectedVersion::NoStream, vec![event])
        .await;
    match refused {
        Err(Error::AppendTooLarge { bytes, limit, .. }) => {
            assert!(bytes > DEFAULT_MAX_APPEND_BYTES);
            assert_eq!(limit, DEFAULT_MAX_APPEND_BYTES);
        }
        other => panic!(
            "a 16 MiB header must be refused as too large, got {:?}",
            other.map(|o| o.last_version)
        ),
    }
    let events = store
        .read_stream(&stream, Version::new(1), 10)
        .await
        .expect("read");
    assert!(events.is_empty(), "nothing was written");
}

#[tokio::test]
async fn the_whole_batch_counts_toward_the_append_limit() {
    let store = support::store().await.with_max_append_bytes(10_000);
    let stream = StreamId::new("batch-1").expect("id");
    // Each payload is well under the payload limit; together they are not.
    let events: Vec<NewEvent> = (0..20)
        .map(|n| NewEvent::new("Chunk", 1, json!({ "n": n, "data": "y".repeat(600) })))
        .collect();
    match store
        .append(&stream, ExpectedVersion::NoStream, events)
        .await
    {
        Err(Error::AppendTooLarge {
            events: 20,
            limit: 10_000,
            ..
        }) => {}
        other => panic!(
            "expected AppendTooLarge, got {:?}",
            other.map(|o| o.last_version)
        ),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_group_never_binds_more_than_its_byte_bound() {
    const WRITERS: usize = 20;
    let store = support::store_with(30)
        .await
        .with_group_commit(GroupCommit::default().alone_below(0));
    let barrier = Arc::new(Barrier::new(WRITERS));
    let tasks: Vec<_> = (0..WRITERS)
        .map(|w| {
            let (store, barrier) = (store.clone(), barrier.clone());
            tokio::spawn(async move {
                // Just under the default payload limit of 1 MiB.
                let payload = json!({ "data": "z".repeat(1_000_000) });
                let id = StreamId::new(format!("big-{w}")).expect("id");
                barrier.wait().await;
                store
                    .append(
                        &id,
                        ExpectedVersion::NoStream,
                        vec![NewEvent::new("Big", 1, payload)],
                    )
                    .await
            })
        })
        .collect();
    for task in tasks {
        task.await.expect("task").expect("each append lands");
    }
    let largest: i64 = sqlx::query_scalar(&format!(
        "SELECT max(bytes)::bigint FROM (
             SELECT sum(octet_length(payload::text) + octet_length(metadata::text)) AS bytes
             FROM \"{}\".events GROUP BY transaction_id) t",
        store.schema().as_str()
    ))
    .fetch_one(store.pool())
    .await
    .expect("bytes per transaction");
    assert!(
        largest <= DEFAULT_GROUP_MAX_BYTES,
        "one transaction carried {largest} bytes of events, more than {DEFAULT_GROUP_MAX_BYTES}"
    );
}

#[test]
fn the_group_byte_bound_is_configurable() {
    assert_ne!(GroupCommit::default().max_bytes(1), GroupCommit::default());
}
