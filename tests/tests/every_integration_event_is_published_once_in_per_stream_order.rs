//! The publisher on PostgreSQL and a real broker: 50,000 events appended by four writers
//! over 250 streams while the publisher follows the feed, into a topic of 8 partitions. Read
//! back, the topic holds exactly 50,000 messages, one per event (distinct `ce_id`s), and each
//! stream's versions come in order.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use cqrs_core::projection::RunnerOptions;
use integration_tests::publishing::{
    append_ticks, kafka_broker, read_topic, tick_publisher, topic_size,
};
use integration_tests::{drop_schema, pg_runner, pg_store, settled_head};

const STREAMS: u64 = 250;
const PER_STREAM: u64 = 200;
const PER_APPEND: u64 = 20;
const WRITERS: u64 = 4;
const PARTITIONS: i32 = 8;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_integration_event_is_published_once_in_per_stream_order() {
    let started = Instant::now();
    let store = pg_store().await;
    let broker = kafka_broker();
    let topic = broker
        .create_topic("it-published-once", PARTITIONS)
        .await
        .expect("a topic");
    let handle = pg_runner(
        tick_publisher(broker.config(), &topic),
        &store,
        RunnerOptions::new().poll_interval(Duration::from_millis(100)),
    )
    .spawn();

    // Four writers append 20 events at a time, streams interleaved, while it publishes.
    let writers: Vec<_> = (0..WRITERS)
        .map(|writer| {
            let store = store.clone();
            tokio::spawn(async move {
                let streams: Vec<u64> = (0..STREAMS).filter(|s| s % WRITERS == writer).collect();
                for round in 0..PER_STREAM / PER_APPEND {
                    for s in &streams {
                        append_ticks(
                            &store,
                            &format!("tick-{s}"),
                            round * PER_APPEND,
                            PER_APPEND,
                            PER_APPEND,
                        )
                        .await;
                    }
                }
            })
        })
        .collect();
    for writer in writers {
        writer.await.expect("a writer");
    }
    let appended = started.elapsed();
    let head = settled_head(&store).await;
    let status = handle
        .wait_for(head, Duration::from_secs(180))
        .await
        .expect("the publisher reaches the head");
    let published = started.elapsed();
    handle.shutdown().await;
    let total = usize::try_from(STREAMS * PER_STREAM).expect("a count");
    assert_eq!(status.applied, STREAMS * PER_STREAM, "{status:?}");
    assert_eq!(status.parked, 0, "{status:?}");

    assert_eq!(
        topic_size(&broker, &topic).await,
        total,
        "the topic holds one message per event, no more"
    );
    let log = read_topic(broker.config(), &topic, total, Duration::from_secs(120)).await;
    assert_eq!(log.distinct(), total, "one message per event id");
    let expected: BTreeMap<String, u64> = (0..STREAMS)
        .map(|s| (format!("tick-{s}"), PER_STREAM))
        .collect();
    let repeats = log.assert_every_event_in_stream_order(&expected);
    assert_eq!(repeats, 0);
    println!(
        "{total} events over {STREAMS} streams into {PARTITIONS} partitions: appended in {:.1?}, \
         published (all acknowledged) at {:.1?}, read back and checked at {:.1?}",
        appended,
        published,
        started.elapsed()
    );

    broker.delete_topics().await.expect("delete the topic");
    drop_schema(&store).await;
}
