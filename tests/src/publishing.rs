//! The publisher's tests: a mapper of "Ticked" events to a public contract, appending ticks
//! over many streams, reading a topic back, and the checks a published topic must pass
//! (every event there, each stream's events first seen in version order).

use std::collections::{BTreeMap, HashSet};
use std::time::Duration;

use cqrs_core::{AppendEvents, ExpectedVersion, NewEvent, RecordedEvent, StreamId};
use cqrs_kafka::testing::{unique_topic, TestBroker};
use cqrs_kafka::{
    CloudEvent, IntegrationEvent, IntegrationMapper, KafkaConfig, KafkaConsumer, KafkaPublisher,
    MapError, Outgoing, PublisherOptions,
};
use serde::{Deserialize, Serialize};
use tokio::time::Instant;
use uuid::Uuid;

/// The public contract the test publishes.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Tick {
    /// The tick's number in its stream (its version).
    pub n: u64,
}

impl IntegrationEvent for Tick {
    const TYPE: &'static str = "test.tick.v1";
}

/// Maps every `Ticked` event to a [`Tick`] on `topic`.
#[derive(Debug, Clone)]
pub struct TickMapper {
    topic: String,
}

impl IntegrationMapper for TickMapper {
    fn event_types(&self) -> Vec<&'static str> {
        vec!["Ticked"]
    }

    fn map(&self, event: &RecordedEvent) -> Result<Option<Outgoing>, MapError> {
        let n = event.payload["n"]
            .as_u64()
            .ok_or_else(|| MapError::refused("a tick without n"))?;
        Outgoing::of(self.topic.as_str(), &Tick { n }).map(Some)
    }
}

/// A publisher named `ticks` of the ticks to `topic`, on the brokers of `config`.
pub fn tick_publisher(config: &KafkaConfig, topic: &str) -> KafkaPublisher<TickMapper> {
    KafkaPublisher::new(
        "ticks",
        TickMapper {
            topic: topic.to_owned(),
        },
        config,
        PublisherOptions::new("/services/ticks"),
    )
    .expect("a publisher")
}

/// The test broker (`KAFKA_BOOTSTRAP_SERVERS`); fails the test, saying how to get one, when
/// it is unset.
pub fn kafka_broker() -> TestBroker {
    TestBroker::from_env().unwrap_or_else(|e| {
        panic!(
            "{e}. The bus tests need a real Kafka broker: run scripts/test.sh, or \
             `scripts/kafka.sh start` and export the KAFKA_BOOTSTRAP_SERVERS=... line it prints"
        )
    })
}

/// Appends `count` ticks to `stream` (`n` = the version), `per_append` per append.
pub async fn append_ticks(
    store: &impl AppendEvents,
    stream: &str,
    from_version: u64,
    count: u64,
    per_append: u64,
) {
    let id = StreamId::new(stream).expect("a stream id");
    let mut next = from_version + 1;
    let end = from_version + count;
    while next <= end {
        let last = (next + per_append - 1).min(end);
        let events = (next..=last)
            .map(|n| NewEvent::new("Ticked", 1, serde_json::json!({ "n": n })))
            .collect();
        let expected = if next == 1 {
            ExpectedVersion::NoStream
        } else {
            ExpectedVersion::Exact(cqrs_core::Version::new(next - 1))
        };
        store
            .append(&id, expected, events)
            .await
            .unwrap_or_else(|e| panic!("append ticks {next}..={last} to {stream}: {e}"));
        next = last + 1;
    }
}

/// One message read back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seen {
    /// `ce_subject` (the stream), checked equal to the key.
    pub stream: String,
    /// `ce_sequence` (the version), checked equal to the body's `n`.
    pub version: u64,
    /// `ce_id`.
    pub id: Uuid,
}

/// What a topic holds, read back in each partition's order.
#[derive(Debug, Default)]
pub struct TopicLog {
    /// Every message, in the order read (each partition's order kept).
    pub messages: Vec<Seen>,
}

impl TopicLog {
    /// How many distinct `ce_id`s were read.
    pub fn distinct(&self) -> usize {
        self.messages
            .iter()
            .map(|m| m.id)
            .collect::<HashSet<_>>()
            .len()
    }

    /// Checks that each stream of `expected` (stream -> last version) was published whole
    /// (every version 1..=last, no other), and that its versions were *first* seen in
    /// order: a re-send after a crash may repeat a suffix, but a subscriber that drops
    /// repeated ids sees 1, 2, 3... Returns how many messages were repeats.
    pub fn assert_every_event_in_stream_order(&self, expected: &BTreeMap<String, u64>) -> usize {
        let mut first_seen: BTreeMap<&str, u64> = BTreeMap::new();
        let mut ids: HashSet<Uuid> = HashSet::new();
        let mut version_of: BTreeMap<Uuid, (&str, u64)> = BTreeMap::new();
        let mut repeats = 0;
        for message in &self.messages {
            if let Some(earlier) = version_of.insert(message.id, (&message.stream, message.version))
            {
                assert_eq!(
                    earlier,
                    (message.stream.as_str(), message.version),
                    "one ce_id on two events"
                );
            }
            if !ids.insert(message.id) {
                repeats += 1;
                continue;
            }
            let last = first_seen.entry(&message.stream).or_insert(0);
            assert_eq!(
                message.version,
                *last + 1,
                "stream {}: version {} first seen after version {}",
                message.stream,
                message.version,
                last
            );
            *last = message.version;
        }
        let seen: BTreeMap<String, u64> = first_seen
            .into_iter()
            .map(|(s, v)| (s.to_owned(), v))
            .collect();
        assert_eq!(&seen, expected, "the last version published per stream");
        repeats
    }
}

/// Reads `topic` from the start until `count` messages were read, at most `timeout`;
/// checks each message's CloudEvents headers against its key and body.
pub async fn read_topic(
    config: &KafkaConfig,
    topic: &str,
    count: usize,
    timeout: Duration,
) -> TopicLog {
    let consumer =
        KafkaConsumer::new(config, &unique_topic("it-read")).expect("a consumer to read back");
    consumer.subscribe(&[topic]).expect("subscribe");
    let deadline = Instant::now() + timeout;
    let mut log = TopicLog::default();
    while log.messages.len() < count {
        let left = deadline.saturating_duration_since(Instant::now());
        let message = consumer.recv_within(left).await.unwrap_or_else(|e| {
            panic!(
                "read {} of {count} messages of {topic}: {e}",
                log.messages.len()
            )
        });
        let attributes = CloudEvent::read(&message).expect("CloudEvents headers");
        let stream = attributes.subject.expect("ce_subject");
        assert_eq!(
            message.key(),
            Some(stream.as_bytes()),
            "the key is the stream"
        );
        assert_eq!(attributes.event_type, Tick::TYPE);
        let version = attributes.sequence.expect("ce_sequence");
        let tick: Tick =
            serde_json::from_slice(message.payload().expect("a body")).expect("a tick");
        assert_eq!(tick.n, version, "the body is the event's");
        log.messages.push(Seen {
            stream,
            version,
            id: attributes.id,
        });
    }
    log
}

/// How many messages `topic` holds in all.
pub async fn topic_size(broker: &TestBroker, topic: &str) -> usize {
    let counts = broker
        .message_counts(topic)
        .await
        .expect("the topic's watermarks");
    let total: i64 = counts.iter().map(|(_, n)| n).sum();
    usize::try_from(total).expect("a count")
}
