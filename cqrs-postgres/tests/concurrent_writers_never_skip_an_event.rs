//! 64 writers over many streams, with random delays inside their transactions, append over
//! 100k events while a consumer follows the feed: the consumer sees every event exactly once, and
//! each stream's versions arrive contiguous and in order.

mod support;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use cqrs_core::{EventFilter, ExpectedVersion, NewEvent, Position, ReadAll, StreamId};
use serde_json::json;
use sqlx::Connection;

const WRITERS: u64 = 64;
const TRANSACTIONS_PER_WRITER: u64 = 160;
const EVENTS_PER_TRANSACTION: u64 = 10;
const STREAMS: u64 = 400;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sixty_four_writers_and_a_feed_consumer_agree_on_every_event() {
    let store = support::store_with(u32::try_from(WRITERS).expect("small") + 4).await;
    let total = WRITERS * TRANSACTIONS_PER_WRITER * EVENTS_PER_TRANSACTION;
    let writers_done = Arc::new(AtomicBool::new(false));

    let consumer = {
        let store = store.clone();
        let writers_done = writers_done.clone();
        tokio::spawn(async move {
            let mut after = Position::START;
            let mut seen: Vec<(StreamId, u64, u64)> = Vec::new();
            let deadline = tokio::time::Instant::now() + Duration::from_secs(600);
            loop {
                let done = writers_done.load(Ordering::SeqCst);
                let batch = store
                    .read_all(after, 1000, &EventFilter::all())
                    .await
                    .expect("feed read");
                assert!(batch.next >= after);
                after = batch.next;
                let empty = batch.events.is_empty();
                for e in batch.events {
                    let id = e.payload["id"].as_u64().expect("id");
                    seen.push((e.stream_id, e.version.get(), id));
                }
                if empty {
                    if done && seen.len() as u64 >= total {
                        return seen;
                    }
                    assert!(tokio::time::Instant::now() < deadline, "consumer timed out");
                    tokio::time::sleep(Duration::from_millis(2)).await;
                }
            }
        })
    };

    let mut writers = Vec::new();
    for w in 0..WRITERS {
        let store = store.clone();
        writers.push(tokio::spawn(async move {
            let mut conn = store.pool().acquire().await.expect("connection");
            for t in 0..TRANSACTIONS_PER_WRITER {
                let stream = StreamId::new(format!("s-{}", fastrand::u64(0..STREAMS))).expect("id");
                let events = (0..EVENTS_PER_TRANSACTION)
                    .map(|i| {
                        let id = (w * TRANSACTIONS_PER_WRITER + t) * EVENTS_PER_TRANSACTION + i;
                        NewEvent::new("Written", 1, json!({ "id": id }))
                    })
                    .collect::<Vec<_>>();
                // A transaction older than the stream's last writer gets a conflict and retries
                // as a whole, as a user's unit of work would.
                loop {
                    let mut tx = conn.begin().await.expect("begin");
                    match store
                        .append_in(&mut tx, &stream, ExpectedVersion::Any, events.clone())
                        .await
                    {
                        Ok(_) => {}
                        Err(e) if e.is_conflict() => {
                            tx.rollback().await.expect("rollback");
                            continue;
                        }
                        Err(e) => panic!("append failed: {e:?}"),
                    }
                    // Hold the commit open a little, so commits land out of position order.
                    if fastrand::u8(0..4) == 0 {
                        tokio::time::sleep(Duration::from_micros(fastrand::u64(0..3000))).await;
                    }
                    tx.commit().await.expect("commit");
                    break;
                }
            }
        }));
    }
    for writer in writers {
        writer.await.expect("writer");
    }
    writers_done.store(true, Ordering::SeqCst);
    let seen = consumer.await.expect("consumer");

    assert_eq!(seen.len() as u64, total, "every event exactly once");
    let mut ids: Vec<u64> = seen.iter().map(|(_, _, id)| *id).collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len() as u64, total, "no event twice");
    let mut versions: HashMap<&StreamId, u64> = HashMap::new();
    for (stream, version, _) in &seen {
        let last = versions.entry(stream).or_default();
        assert_eq!(*version, *last + 1, "stream {stream} out of order");
        *last = *version;
    }
}
