//! The global feed: total order, batches, filters, and no skipped event under concurrent
//! writers.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use serde_json::json;

use crate::{EventFilter, ExpectedVersion, NewEvent, Position, RecordedEvent, StreamId};

use super::{event, numbers, read_whole_feed, stream, ConformanceStore};

/// The feed returns every event once, in append order across streams, in batches; positions
/// only grow; `head` is the last position.
pub async fn the_feed_is_totally_ordered_and_batched<S: ConformanceStore>(store: S) {
    let mut expected = Vec::new();
    for n in 0..30u64 {
        let s = stream(&format!("feed{}-{}", n % 3, n % 4));
        store
            .append(&s, ExpectedVersion::Any, vec![event(n)])
            .await
            .expect("append");
        expected.push(n);
    }
    let all = read_whole_feed(&store, &EventFilter::all(), expected.len()).await;
    assert_eq!(numbers(&all), expected);
    assert!(all.windows(2).all(|w| w[0].position < w[1].position));
    let last = all.last().expect("events").position;
    assert_eq!(store.head().await.expect("head"), last);
    let rest = store
        .read_all(last, 10, &EventFilter::all())
        .await
        .expect("read");
    assert!(rest.events.is_empty());
    let middle = all[9].position;
    let after = store
        .read_all(middle, 5, &EventFilter::all())
        .await
        .expect("read");
    assert_eq!(numbers(&after.events), [10, 11, 12, 13, 14]);
    assert_eq!(after.next, all[14].position);
    let mut per_stream: HashMap<&StreamId, u64> = HashMap::new();
    for e in &all {
        let last = per_stream.entry(&e.stream_id).or_default();
        assert_eq!(e.version.get(), *last + 1, "per-stream order in the feed");
        *last = e.version.get();
    }
}

/// Category and event-type filters work, alone and together, and a filtered reader still
/// moves past what it skipped.
pub async fn the_feed_filters_by_category_and_event_type<S: ConformanceStore>(store: S) {
    for n in 0..12u64 {
        let category = ["order", "payment", "orderline"][usize::try_from(n % 3).expect("small")];
        let s = stream(&format!("{category}-{n}"));
        let kind = if n % 2 == 0 { "Even" } else { "Odd" };
        store
            .append(
                &s,
                ExpectedVersion::Any,
                vec![NewEvent::new(kind, 1, json!({ "n": n }))],
            )
            .await
            .expect("append");
    }
    let orders = read_whole_feed(&store, &EventFilter::all().category("order"), 4).await;
    assert_eq!(numbers(&orders), [0, 3, 6, 9]);
    let two = read_whole_feed(
        &store,
        &EventFilter::all().category("order").category("payment"),
        8,
    )
    .await;
    assert_eq!(numbers(&two), [0, 1, 3, 4, 6, 7, 9, 10]);
    let odd = read_whole_feed(&store, &EventFilter::all().event_types(["Odd"]), 6).await;
    assert_eq!(numbers(&odd), [1, 3, 5, 7, 9, 11]);
    let both = read_whole_feed(
        &store,
        &EventFilter::all().category("payment").event_types(["Odd"]),
        2,
    )
    .await;
    assert_eq!(numbers(&both), [1, 7]);
    let none = store
        .read_all(
            Position::START,
            100,
            &EventFilter::all().category("nothing"),
        )
        .await
        .expect("read");
    assert!(none.events.is_empty());
    assert!(
        none.next > Position::START,
        "a filtered reader moves past skipped events"
    );
}

/// Writers on many streams append while a reader follows the feed: the reader sees every event
/// exactly once, each stream in version order.
pub async fn concurrent_writers_never_skip_a_feed_event<S: ConformanceStore>(store: S) {
    let writers = 8u64;
    let per_writer = 50u64;
    let done = Arc::new(AtomicBool::new(false));
    let reader = {
        let store = store.clone();
        let done = done.clone();
        tokio::spawn(async move {
            let mut after = Position::START;
            let mut seen: Vec<RecordedEvent> = Vec::new();
            let total = usize::try_from(writers * per_writer).expect("small");
            let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
            loop {
                // Once the writers are done, drain until every event came (a store may show a
                // committed event a moment late) or the deadline says one never will.
                let finished = done.load(Ordering::SeqCst)
                    && (seen.len() >= total || tokio::time::Instant::now() > deadline);
                let batch = store
                    .read_all(after, 64, &EventFilter::all())
                    .await
                    .expect("read");
                let empty = batch.events.is_empty();
                after = batch.next;
                seen.extend(batch.events);
                if empty {
                    if finished {
                        return seen;
                    }
                    tokio::time::sleep(Duration::from_millis(1)).await;
                }
            }
        })
    };
    let mut tasks = Vec::new();
    for w in 0..writers {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            for i in 0..per_writer {
                let s = stream(&format!("conc-{}", (w * 7 + i) % 13));
                let n = w * 1000 + i;
                store
                    .append(&s, ExpectedVersion::Any, vec![event(n)])
                    .await
                    .expect("append");
                if i % 10 == 0 {
                    tokio::task::yield_now().await;
                }
            }
        }));
    }
    for task in tasks {
        task.await.expect("writer");
    }
    done.store(true, Ordering::SeqCst);
    let seen = reader.await.expect("reader");
    let mut ns = numbers(&seen);
    assert_eq!(ns.len() as u64, writers * per_writer, "every event once");
    ns.sort_unstable();
    ns.dedup();
    assert_eq!(ns.len() as u64, writers * per_writer, "no event twice");
    let mut versions: BTreeMap<&StreamId, u64> = BTreeMap::new();
    for e in &seen {
        let last = versions.entry(&e.stream_id).or_default();
        assert_eq!(e.version.get(), *last + 1, "per-stream order in the feed");
        *last = e.version.get();
    }
}

/// A stream-partition filter passes exactly the streams whose id hashes to the partition, as
/// [`StreamPartition`](crate::projection::StreamPartition) computes it (the store computes the
/// same hash itself): every stream is in one partition, whatever its id's characters.
pub async fn the_feed_filters_by_stream_partition<S: ConformanceStore>(store: S) {
    use crate::projection::StreamPartition;

    let ids: Vec<String> = (0..300u64)
        .map(|n| match n % 3 {
            0 => format!("order-{n}"),
            1 => format!("Zahlung-ü{n}-é"),
            _ => format!(
                "x-{n}-{}",
                "ab".repeat(usize::try_from(n % 40).expect("small"))
            ),
        })
        .collect();
    for (n, id) in (0u64..).zip(&ids) {
        store
            .append(&stream(id), ExpectedVersion::Any, vec![event(n)])
            .await
            .expect("append");
    }
    let count = 4;
    let mut seen = 0;
    for index in 0..count {
        let partition = StreamPartition::new(index, count).expect("below the count");
        let expected: Vec<u64> = (0u64..)
            .zip(&ids)
            .filter(|(_, id)| partition.contains(id))
            .map(|(n, _)| n)
            .collect();
        let filter = EventFilter::all().partition(partition);
        let got = read_whole_feed(&store, &filter, expected.len()).await;
        assert_eq!(numbers(&got), expected, "{partition}");
        seen += got.len();
    }
    assert_eq!(seen, ids.len(), "every stream is in exactly one partition");
}
