//! The Kafka publisher split by stream over partitioned workers: two workers (a publisher per
//! partition, as `PartitionedRunner::for_store_each` makes them) share 4 partitions through PostgreSQL while a
//! writer appends. Read back, the topic holds one message per event, each stream's versions in
//! order: partitions by stream keep per-stream order across workers.

use std::collections::BTreeMap;
use std::time::Duration;

use cqrs_core::projection::{PartitionedRunner, Partitions};
use cqrs_core::EventFilter;
use integration_tests::publishing::{
    append_ticks, kafka_broker, read_topic, tick_publisher, topic_size,
};
use integration_tests::{drop_schema, eventually, pg_store, quick_options, PATIENCE};

const STREAMS: u64 = 40;
const PER_STREAM: u64 = 50;
const PER_APPEND: u64 = 10;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partitioned_publishers_publish_every_event_once_in_per_stream_order() {
    let store = pg_store().await;
    let broker = kafka_broker();
    let topic = broker
        .create_topic("it-partitioned-publishers", 4)
        .await
        .expect("a topic");
    let partitions = Partitions::by_stream(4);
    let workers: Vec<_> = ["a", "b"]
        .into_iter()
        .map(|id| {
            // A publisher per partition: each keeps its own retry memo.
            let (config, topic) = (broker.config().clone(), topic.clone());
            PartitionedRunner::for_store_each(partitions, &store, move |_| {
                tick_publisher(&config, &topic)
            })
            .with_options(quick_options().owner(id).lease_ttl(Duration::from_secs(3)))
            .spawn()
        })
        .collect();
    for round in 0..PER_STREAM / PER_APPEND {
        for s in 0..STREAMS {
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
    let name = workers[0].status().name;
    let leads = eventually(
        PATIENCE,
        "every partition published to the head",
        || async {
            let report = partitions
                .report(&store, &name, &EventFilter::all(), 10_000)
                .await
                .expect("report");
            let leads: Vec<usize> = workers.iter().map(|w| w.status().leading().len()).collect();
            (report
                .iter()
                .all(|p| p.lag_events == 0 && p.checkpoint.is_some())
                && leads == [2, 2])
            .then_some(leads)
        },
    )
    .await;
    for worker in workers {
        worker.shutdown().await;
    }
    let total = usize::try_from(STREAMS * PER_STREAM).expect("a count");
    assert_eq!(
        topic_size(&broker, &topic).await,
        total,
        "one message per event"
    );
    let log = read_topic(broker.config(), &topic, total, Duration::from_secs(120)).await;
    assert_eq!(log.distinct(), total, "one message per event id");
    let expected: BTreeMap<String, u64> = (0..STREAMS)
        .map(|s| (format!("tick-{s}"), PER_STREAM))
        .collect();
    let repeats = log.assert_every_event_in_stream_order(&expected);
    println!("{total} events published by two workers leading {leads:?}; {repeats} repeats");
    assert_eq!(repeats, 0);
    broker.delete_topics().await.expect("delete the topic");
    drop_schema(&store).await;
}
