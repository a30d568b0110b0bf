//! The plumbing end to end on a real broker: a topic created, 1,000 keyed messages with
//! headers sent through the idempotent producer, read back by a consumer group in per-key
//! order with the headers intact, each offset committed by hand after the message was
//! handled, and the committed offsets at the end of every partition.

mod support;

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use cqrs_kafka::testing::unique_topic;
use cqrs_kafka::{KafkaConsumer, KafkaProducer, Record};

const MESSAGES: usize = 1_000;
const KEYS: usize = 17;
const PARTITIONS: i32 = 3;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keyed_messages_come_back_in_per_key_order_with_their_headers_and_committed_offsets() {
    let broker = support::broker();
    let topic = broker
        .create_topic("t-plumbing", PARTITIONS)
        .await
        .expect("create the topic");

    // Enqueue all, then await every acknowledgement: the producer pipelines them.
    let producer = KafkaProducer::new(broker.config()).expect("producer");
    let mut pending = Vec::with_capacity(MESSAGES);
    let mut next_seq: HashMap<String, u32> = HashMap::new();
    for i in 0..MESSAGES {
        let key = format!("stream-{}", i % KEYS);
        let seq = next_seq.entry(key.clone()).or_default();
        let payload = format!(r#"{{"key":"{key}","seq":{seq}}}"#).into_bytes();
        let record = Record::new(topic.as_str(), key.as_str(), payload)
            .with_header("ce_id", format!("event-{i}"))
            .with_header("ce_type", "test.counted.v1")
            .with_header("seq", seq.to_string());
        *seq += 1;
        pending.push(producer.enqueue(&record).expect("enqueue"));
    }
    let mut last_offset: BTreeMap<i32, i64> = BTreeMap::new();
    for delivery in pending {
        let delivery = delivery.await.expect("acknowledged");
        let last = last_offset.entry(delivery.partition).or_insert(-1);
        assert!(
            delivery.offset > *last,
            "partition {} acknowledged offset {} after {}",
            delivery.partition,
            delivery.offset,
            last
        );
        *last = delivery.offset;
    }
    // Written once each: the offsets of each partition are 0..n without a gap.
    let written: i64 = last_offset.values().map(|last| last + 1).sum();
    assert_eq!(written, i64::try_from(MESSAGES).unwrap_or(i64::MAX));

    let consumer = KafkaConsumer::new(broker.config(), &unique_topic("t-group")).expect("consumer");
    consumer.subscribe(&[&topic]).expect("subscribe");
    let mut seen_seq: HashMap<String, u32> = HashMap::new();
    let mut partition_of_key: HashMap<String, i32> = HashMap::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    for received_count in 0..MESSAGES {
        let left = deadline.saturating_duration_since(Instant::now());
        let message = consumer
            .recv_within(left)
            .await
            .unwrap_or_else(|e| panic!("after {received_count} of {MESSAGES} messages: {e}"));
        let key = String::from_utf8(message.key().expect("a key").to_vec()).expect("utf-8 key");
        let seq: u32 = std::str::from_utf8(message.header("seq").expect("seq header"))
            .expect("utf-8")
            .parse()
            .expect("a number");
        let expected = seen_seq.entry(key.clone()).or_default();
        assert_eq!(seq, *expected, "key {key} out of order");
        *expected += 1;
        assert_eq!(
            message.payload(),
            Some(format!(r#"{{"key":"{key}","seq":{seq}}}"#).as_bytes())
        );
        assert_eq!(message.header("ce_type"), Some(&b"test.counted.v1"[..]));
        let ce_id = std::str::from_utf8(message.header("ce_id").expect("ce_id")).expect("utf-8");
        assert!(ce_id.starts_with("event-"), "{ce_id}");
        assert_eq!(message.headers().len(), 3, "{:?}", message.headers());
        let partition = *partition_of_key
            .entry(key.clone())
            .or_insert(message.partition());
        assert_eq!(
            partition,
            message.partition(),
            "key {key} in two partitions"
        );

        // The effect is done (here: checked): commit it.
        consumer.commit(&message).expect("commit");
    }
    assert_eq!(seen_seq, next_seq, "every message of every key came back");

    for (partition, last) in &last_offset {
        let committed = consumer
            .committed_offset(&topic, *partition, Duration::from_secs(10))
            .expect("committed offsets");
        assert_eq!(committed, Some(last + 1), "partition {partition}");
    }

    broker.delete_topics().await.expect("delete the topic");
}
