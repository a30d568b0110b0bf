//! Messages the consumer can never handle: no CloudEvents headers, a spec version it does not
//! speak, an unknown type, a body that is not the contract. Each is parked whole in the
//! service's PostgreSQL with its error, later messages of its key are parked behind it, and
//! every other message is handled: the tallies equal the fold of the messages not parked.

use std::sync::Arc;
use std::time::Duration;

use cqrs_core::bus::BusDeadLetterStore;
use cqrs_kafka::consume::IntegrationConsumer;
use cqrs_kafka::testing::unique_topic;
use cqrs_kafka::{CloudEvent, IntegrationEvent, Record};
use integration_tests::bus::{
    fold, kafka, send_all, tallies, tally_added, TallyAdded, TallyHandler,
};
use integration_tests::{drop_schema, pg_store};
use uuid::Uuid;

const PATIENCE: Duration = Duration::from_secs(60);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_malformed_or_unknown_message_is_parked_and_the_rest_goes_on() {
    let store = pg_store().await;
    let broker = kafka();
    let topic = broker.create_topic("t-malformed", 4).await.expect("topic");
    let good: Vec<String> = (0..6).map(|i| format!("good-{i}")).collect();
    let bad = ["no-headers", "old-spec", "unknown-type", "bad-body"];

    let mut records = Vec::new();
    let mut handled = Vec::new();
    let push_good = |records: &mut Vec<Record>, tally: &str, amount: u64| {
        records.push(tally_added(&topic, tally, amount).1);
        TallyAdded {
            tally: tally.to_owned(),
            amount,
        }
    };
    for round in 0..3u64 {
        for tally in &good {
            handled.push(push_good(&mut records, tally, round + 1));
        }
        if round == 1 {
            // The poison messages, in the middle of the flow.
            let body = br#"{"tally":"x","amount":1}"#.to_vec();
            records.push(Record::new(topic.as_str(), bad[0], body.clone()));
            records.push(
                Record::new(topic.as_str(), bad[1], body.clone())
                    .with_header("ce_specversion", "0.3")
                    .with_header("ce_id", Uuid::now_v7().to_string())
                    .with_header("ce_source", "/old")
                    .with_header("ce_type", TallyAdded::TYPE),
            );
            records.push(
                CloudEvent::new(Uuid::now_v7(), "/services/test", "test.tally.removed.v1")
                    .write(Record::new(topic.as_str(), bad[2], body)),
            );
            records.push(
                CloudEvent::new(Uuid::now_v7(), "/services/test", TallyAdded::TYPE)
                    .write(Record::new(topic.as_str(), bad[3], b"{not json".to_vec())),
            );
        }
    }
    // A good message after each poison one, on the poison keys: parked behind them.
    for key in bad {
        records.push(tally_added(&topic, key, 100).1);
    }
    send_all(broker.config(), &records).await;

    let group = unique_topic("g-malformed");
    let handle = IntegrationConsumer::new(
        broker.config(),
        &group,
        &[&topic],
        TallyHandler::new(store.clone()),
    )
    .with_dead_letters(Arc::new(store.clone()))
    .spawn()
    .expect("spawn");
    let total = u64::try_from(records.len()).unwrap_or(u64::MAX);
    let status = handle
        .wait_until(PATIENCE, |s| s.handled + s.parked == total)
        .await
        .expect("every message handled or parked");
    println!("{status}");
    assert_eq!(status.parked, 8, "four poison messages and one behind each");
    assert_eq!(
        tallies(&store, &good).await,
        fold(&handled),
        "every other message handled once"
    );
    let untouched = tallies(&store, &bad.map(str::to_owned)).await;
    assert!(untouched.values().all(|t| *t == (0, 0)), "{untouched:?}");

    let letters = store
        .parked_messages(&group, None, 100)
        .await
        .expect("letters");
    assert_eq!(letters.len(), 8);
    for key in bad {
        let of_key: Vec<_> = letters
            .iter()
            .filter(|l| l.key.as_deref() == Some(key.as_bytes()))
            .collect();
        assert_eq!(of_key.len(), 2, "{key}: {of_key:?}");
        let (first, behind) = (of_key[0], of_key[1]);
        assert!(first.message.offset < behind.message.offset);
        assert!(behind.error.contains("held back"), "{}", behind.error);
        let expected = match key {
            "no-headers" => "malformed: the message has no ce_specversion header",
            "old-spec" => "malformed: cloudevents spec version 0.3 is not supported",
            "unknown-type" => "unknown event type test.tally.removed.v1",
            _ => "the body is not a test.tally.added.v1",
        };
        assert!(first.error.contains(expected), "{key}: {}", first.error);
        assert!(first.payload.is_some(), "{key}: the payload is kept");
    }
    let old_spec = letters
        .iter()
        .find(|l| l.key.as_deref() == Some(b"old-spec".as_slice()))
        .expect("old-spec letter");
    assert_eq!(
        old_spec.headers.len(),
        4,
        "every header kept: {:?}",
        old_spec.headers
    );
    assert_eq!(
        old_spec.headers[0],
        ("ce_specversion".to_owned(), Some(b"0.3".to_vec()))
    );
    handle.shutdown().await;
    broker.delete_topics().await.expect("delete topics");
    drop_schema(&store).await;
}
