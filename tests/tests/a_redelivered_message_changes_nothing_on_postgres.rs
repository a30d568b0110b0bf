//! A message delivered again (the same `ce_id`, as after a publisher crash) changes nothing:
//! the consumer derives the same command id and the repository returns the first outcome. The
//! command also carries the message's correlation, its event as causation, and its
//! `traceparent`.

use std::sync::Arc;
use std::time::Duration;

use cqrs_core::{ReadStream, Version};
use cqrs_kafka::consume::IntegrationConsumer;
use cqrs_kafka::testing::unique_topic;
use integration_tests::bus::{
    fold, kafka, send_all, tallies, tally_added_with_id, TallyAdded, TallyHandler,
};
use integration_tests::{drop_schema, pg_store};
use uuid::Uuid;

const PATIENCE: Duration = Duration::from_secs(60);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redelivered_message_changes_nothing_on_postgres() {
    let store = pg_store().await;
    let broker = kafka();
    let topic = broker.create_topic("t-redeliver", 3).await.expect("topic");
    let names: Vec<String> = (0..5).map(|i| format!("tally-{i}")).collect();
    let sent: Vec<(Uuid, TallyAdded)> = (0..40u64)
        .map(|i| {
            let tally = names[usize::try_from(i).unwrap_or(0) % names.len()].clone();
            (
                Uuid::now_v7(),
                TallyAdded {
                    tally,
                    amount: i + 1,
                },
            )
        })
        .collect();
    // Every message twice in a row (the first one with a correlation id and a trace), then the
    // first ten a third time once all were handled.
    let mut records = Vec::new();
    for (id, added) in &sent {
        for _ in 0..2 {
            records.push(tally_added_with_id(&topic, *id, &added.tally, added.amount));
        }
    }
    let correlation = Uuid::now_v7();
    let parent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    let first = &sent[0];
    records[0] = {
        let plain = tally_added_with_id(&topic, first.0, &first.1.tally, first.1.amount);
        let mut record = cqrs_kafka::Record::new(
            topic.as_str(),
            first.1.tally.as_str(),
            plain.payload().to_vec(),
        );
        for (name, value) in plain.headers() {
            record = record.with_header(name.as_str(), value.clone());
        }
        record
            .with_header(
                cqrs_kafka::cloudevents::CORRELATION_ID,
                correlation.to_string(),
            )
            .with_header(cqrs_kafka::cloudevents::TRACEPARENT, parent)
    };
    send_all(broker.config(), &records).await;

    let group = unique_topic("g-redeliver");
    let handle = IntegrationConsumer::new(
        broker.config(),
        &group,
        &[&topic],
        TallyHandler::new(store.clone()),
    )
    .with_dead_letters(Arc::new(store.clone()))
    .spawn()
    .expect("spawn");
    handle
        .wait_until(PATIENCE, |s| s.handled == 80)
        .await
        .expect("every delivery handled");
    let again: Vec<_> = sent[..10]
        .iter()
        .map(|(id, a)| tally_added_with_id(&topic, *id, &a.tally, a.amount))
        .collect();
    send_all(broker.config(), &again).await;
    let status = handle
        .wait_until(PATIENCE, |s| s.handled == 90)
        .await
        .expect("the late redeliveries handled");
    println!("{status}");
    assert_eq!(status.parked, 0);

    let expected = fold(sent.iter().map(|(_, a)| a));
    let actual = tallies(&store, &names).await;
    assert_eq!(
        actual, expected,
        "each message added once, however often delivered"
    );
    let repository_stream =
        cqrs_core::Repository::<cqrs_core::testing::Tally, _>::new(store.clone())
            .stream_id(&first.1.tally)
            .expect("stream id");
    let events = store
        .read_stream(&repository_stream, Version::ZERO, 100)
        .await
        .expect("read the tally");
    let event = events
        .iter()
        .find(|e| e.metadata.causation_id == Some(first.0))
        .expect("the first message's event");
    assert_eq!(event.metadata.correlation_id, Some(correlation));
    assert_eq!(
        event
            .metadata
            .headers
            .get(cqrs_core::telemetry::TRACEPARENT)
            .map(String::as_str),
        Some(parent),
        "the trace continues"
    );
    assert_eq!(
        event.metadata.command_id.map(|c| c.as_uuid()),
        Some(cqrs_kafka::consume::derived_command_id(
            &group, first.0, "add"
        ))
    );
    handle.shutdown().await;
    broker.delete_topics().await.expect("delete topics");
    drop_schema(&store).await;
}
