//! The consumer copies each message out of the client into its partition's queue, and pauses
//! the partition when the queue is full. Counting messages alone (500 a partition), large
//! records filled memory while a handler was slow or retrying: 500 records of 1 MB held 500 MB
//! a partition. The queue is bounded by bytes too now (`ConsumerOptions::buffered_bytes`).

mod support;

use std::sync::Arc;
use std::time::Duration;

use cqrs_kafka::consume::{ConsumerOptions, ConsumerStatus, IntegrationConsumer};
use cqrs_kafka::testing::unique_topic;
use cqrs_kafka::{CloudEvent, IntegrationEvent, Record};
use support::bus::{send_all, Counted, Recorder, Script};
use tokio::sync::Semaphore;
use uuid::Uuid;

const PATIENCE: Duration = Duration::from_secs(60);
const RECORD: usize = 100 << 10;
const LIMIT: usize = 1 << 20;

/// Message `n` of key `k`, padded to about 100 KB.
fn large(topic: &str, n: u64) -> Record {
    let body = serde_json::json!({ "key": "k", "n": n, "pad": "x".repeat(RECORD) });
    CloudEvent::new(Uuid::now_v7(), "/services/test", Counted::TYPE).write(Record::new(
        topic,
        "k",
        serde_json::to_vec(&body).expect("json"),
    ))
}

fn buffered_bytes(status: &ConsumerStatus) -> usize {
    status.partitions.iter().map(|p| p.buffered_bytes).sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_partition_of_large_messages_is_paused_by_their_bytes() {
    let broker = support::broker();
    let topic = broker.create_topic("t-bytes", 1).await.expect("topic");
    let records: Vec<Record> = (0..60).map(|n| large(&topic, n)).collect();
    send_all(broker.config(), &records).await;
    // The handler waits at the first message: everything after it queues.
    let gate = Arc::new(Semaphore::new(0));
    let recorder = Recorder::new(Script {
        gate: Some((("k".to_owned(), 0), gate.clone())),
        ..Script::default()
    });
    let group = unique_topic("g-bytes");
    let options = ConsumerOptions::default().buffered_bytes(LIMIT);
    let handle = IntegrationConsumer::new(broker.config(), &group, &[&topic], recorder.clone())
        .with_options(options)
        .spawn()
        .expect("spawn");

    // Nine tenths of the bound: when eleven records are queued before the handler takes the
    // first, the eleventh pauses the partition, and the handler then takes the first, leaving
    // ten, 2% short of the bound, for good (a CI run waited 60 s on that, paused as it should).
    handle
        .wait_until(PATIENCE, |s| buffered_bytes(s) >= LIMIT / 10 * 9)
        .await
        .expect("the queue fills up to its bound");
    // What was fetched before the pause lands meanwhile; nothing after it.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let status = handle.status();
    println!("{status:?}");
    let held = buffered_bytes(&status);
    assert!(
        held <= 3 * LIMIT,
        "{held} bytes queued of the 6 MB sent, past a 1 MiB bound"
    );

    gate.add_permits(1);
    let status = handle
        .wait_until(PATIENCE, |s| s.handled == 60)
        .await
        .expect("every message handled once the handler goes on");
    assert_eq!(buffered_bytes(&status), 0);
    let ns: Vec<u64> = recorder.handled().iter().map(|c| c.n).collect();
    assert_eq!(ns, (0..60).collect::<Vec<_>>(), "in order, each once");
    handle.shutdown().await;
    broker.delete_topics().await.expect("delete topics");
}
