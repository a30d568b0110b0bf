//! The publisher on a real broker: events appended to the in-memory store are published by
//! the core's runner, and each message reads back with `CloudEvent::read` as the event it
//! came from (id, source, type, subject, time, sequence, correlation, causation,
//! traceparent), its key the stream id and its body the contract's JSON.

mod support;

use std::time::Duration;

use cqrs_core::projection::ProjectionRunner;
use cqrs_core::telemetry::TRACEPARENT;
use cqrs_core::{
    AppendEvents, DomainEvent, ExpectedVersion, InMemoryEventStore, Metadata, NewEvent, ReadAll,
    ReadStream, RecordedEvent, StreamId,
};
use cqrs_kafka::testing::unique_topic;
use cqrs_kafka::{
    CloudEvent, DomainMapper, IntegrationEvent, KafkaConsumer, KafkaPublisher, Outgoing,
    PublisherOptions,
};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

#[derive(Serialize, Deserialize, DomainEvent)]
enum OrderEvent {
    Placed { total_cents: u64 },
    Noted { text: String },
}

#[derive(Serialize, Deserialize, Debug, PartialEq)]
struct OrderPlaced {
    order_id: String,
    total_cents: u64,
}
impl IntegrationEvent for OrderPlaced {
    const TYPE: &'static str = "shop.order.placed.v1";
    const SCHEMA: Option<&'static str> = Some("https://schemas.example/order-placed.v1.json");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_published_event_reads_back_as_its_cloudevent_and_body() {
    let broker = support::broker();
    let topic = broker.create_topic("t-publish", 2).await.expect("a topic");

    let store = InMemoryEventStore::new();
    let stream = StreamId::new("order-42").expect("a stream id");
    let correlation = Uuid::now_v7();
    let causation = Uuid::now_v7();
    let parent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    let placed = NewEvent::from_domain(
        &OrderEvent::Placed { total_cents: 1250 },
        Metadata::default()
            .with_correlation_id(correlation)
            .with_causation_id(causation)
            .with_header(TRACEPARENT, parent),
    )
    .expect("encodes");
    let noted = NewEvent::from_domain(
        &OrderEvent::Noted {
            text: "private".into(),
        },
        Metadata::default(),
    )
    .expect("encodes");
    let second = NewEvent::from_domain(&OrderEvent::Placed { total_cents: 1 }, Metadata::default())
        .expect("encodes");
    store
        .append(
            &stream,
            ExpectedVersion::NoStream,
            vec![placed, noted, second],
        )
        .await
        .expect("append");

    let mapper_topic = topic.clone();
    let mapper = DomainMapper::new(
        ["Placed", "Noted"],
        move |event: &OrderEvent, recorded: &RecordedEvent| match event {
            OrderEvent::Placed { total_cents } => Outgoing::of(
                mapper_topic.as_str(),
                &OrderPlaced {
                    order_id: recorded.stream_id.instance().to_owned(),
                    total_cents: *total_cents,
                },
            )
            .map(Some),
            OrderEvent::Noted { .. } => Ok(None),
        },
    );
    let publisher = KafkaPublisher::new(
        "orders",
        mapper,
        broker.config(),
        PublisherOptions::new("/services/orders"),
    )
    .expect("a publisher");
    let handle = ProjectionRunner::for_store(publisher, &store).spawn();
    let head = store.head().await.expect("head");
    handle
        .wait_for(head, Duration::from_secs(60))
        .await
        .expect("published and acknowledged");
    handle.shutdown().await;

    let recorded = store
        .read_stream(&stream, cqrs_core::Version::ZERO, 10)
        .await
        .expect("read the stream");
    let consumer =
        KafkaConsumer::new(broker.config(), &unique_topic("g-publish")).expect("consumer");
    consumer.subscribe(&[&topic]).expect("subscribe");
    for expected in [&recorded[0], &recorded[2]] {
        let message = consumer
            .recv_within(Duration::from_secs(60))
            .await
            .expect("a message");
        let attributes = CloudEvent::read(&message).expect("cloudevent headers");
        assert_eq!(attributes.id, expected.metadata.event_id.as_uuid());
        assert_eq!(attributes.source, "/services/orders");
        assert_eq!(attributes.event_type, "shop.order.placed.v1");
        assert_eq!(attributes.subject.as_deref(), Some("order-42"));
        assert_eq!(attributes.sequence, Some(expected.version.get()));
        assert_eq!(
            attributes.time.map(|t| t.unix_timestamp_nanos()),
            Some(expected.recorded_at.unix_timestamp_nanos())
        );
        assert_eq!(
            attributes.dataschema.as_deref(),
            Some("https://schemas.example/order-placed.v1.json")
        );
        assert_eq!(attributes.correlation_id, expected.metadata.correlation_id);
        assert_eq!(attributes.causation_id, expected.metadata.causation_id);
        assert_eq!(
            attributes.traceparent.as_deref(),
            expected.metadata.header(TRACEPARENT)
        );
        assert_eq!(message.key(), Some(&b"order-42"[..]));
        assert_eq!(
            message.header(cqrs_kafka::cloudevents::CONTENT_TYPE),
            Some(&b"application/json"[..])
        );
        let body: OrderPlaced = serde_json::from_slice(message.payload().expect("a body"))
            .expect("the contract's JSON");
        let OrderEvent::Placed { total_cents } = expected.decode().expect("decodes") else {
            panic!("only Placed is published");
        };
        assert_eq!(
            body,
            OrderPlaced {
                order_id: "42".into(),
                total_cents
            }
        );
    }
    // The first message carries the metadata given at append.
    assert_eq!(recorded[0].metadata.correlation_id, Some(correlation));
    assert_eq!(recorded[0].metadata.causation_id, Some(causation));
    // The private event (version 2) was not published: one key, one partition, so it would
    // have come between the two.

    broker.delete_topics().await.expect("delete the topic");
}
