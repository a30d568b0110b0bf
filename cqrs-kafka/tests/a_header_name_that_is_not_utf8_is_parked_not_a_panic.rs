//! Kafka header names are bytes; the broker stores whatever a client sends, and a client in
//! another language can send a name that is not UTF-8. rdkafka reads names as `&str` and
//! panics on such a name. Before, that panic killed the consumer's task: nothing was parked or
//! committed, the handle still said `Running`, and every member the partition moved to died the
//! same way. Now the message is read with the names that can be read, counted as having
//! unreadable ones, and parked as malformed while the rest goes on; a consumer whose task ends
//! by a panic says `Failed`.

mod support;

use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use cqrs_core::bus::{BusDeadLetterStore, BusLetterTarget};
use cqrs_core::projection::Redrive;
use cqrs_core::InMemoryEventStore;
use cqrs_kafka::consume::{ConsumerState, IntegrationConsumer};
use cqrs_kafka::testing::unique_topic;
use cqrs_kafka::{KafkaConsumer, UNREADABLE_HEADERS};
use support::bus::{counted, send_all, Recorder, Script};
use support::raw::{self, RawRecord};

const PATIENCE: Duration = Duration::from_secs(60);

/// A record whose second header's name is not UTF-8, between two well-formed ones.
fn unreadable() -> RawRecord {
    RawRecord {
        key: b"bad".to_vec(),
        value: br#"{"key":"bad","n":0}"#.to_vec(),
        headers: vec![
            (b"ce_specversion".to_vec(), b"1.0".to_vec()),
            (
                b"x-\xff\xfe".to_vec(),
                b"from a client that writes bytes".to_vec(),
            ),
            (b"ce_type".to_vec(), b"test.counted.v1".to_vec()),
        ],
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_consumer_parks_the_message_and_goes_on_with_the_others() {
    let broker = support::broker();
    let topic = broker
        .create_topic("t-header-name", 1)
        .await
        .expect("topic");
    raw::produce(broker.config(), &topic, 0, &[unreadable()]).await;
    send_all(broker.config(), &[counted(&topic, "k", 0).1]).await;
    let recorder = Recorder::new(Script::default());
    let store = InMemoryEventStore::new();
    let group = unique_topic("g-header-name");
    let handle = IntegrationConsumer::new(broker.config(), &group, &[&topic], recorder.clone())
        .with_dead_letters(Arc::new(store.clone()))
        .spawn()
        .expect("spawn");

    let status = handle
        .wait_until(PATIENCE, |s| s.handled + s.parked == 2)
        .await
        .expect("one message parked, the other handled");
    println!("{status}");
    assert_eq!((status.handled, status.parked), (1, 1));
    assert_eq!(status.state, ConsumerState::Running);
    assert_eq!(recorder.handled().len(), 1);
    let letters = store
        .parked_messages(&group, None, 10)
        .await
        .expect("letters");
    assert_eq!(letters.len(), 1, "{letters:?}");
    let letter = &letters[0];
    assert!(
        letter.error.contains("malformed") && letter.error.contains("not UTF-8"),
        "{}",
        letter.error
    );
    assert_eq!(letter.key.as_deref(), Some(&b"bad"[..]));
    assert_eq!(
        letter.headers,
        [
            ("ce_specversion".to_owned(), Some(b"1.0".to_vec())),
            ("ce_type".to_owned(), Some(b"test.counted.v1".to_vec())),
            (UNREADABLE_HEADERS.to_owned(), Some(b"1".to_vec())),
        ],
        "the headers that can be read are kept, and how many could not be"
    );

    // A retry refuses it as it was refused: it is not handled without the header it lost.
    store
        .request_messages(
            &group,
            &BusLetterTarget::Message(letter.message.clone()),
            Some(Redrive::Retry),
        )
        .await
        .expect("request");
    let deadline = Instant::now() + PATIENCE;
    let letters = loop {
        let letters = store
            .parked_messages(&group, None, 10)
            .await
            .expect("letters");
        if letters.iter().all(|l| l.request.is_none()) || Instant::now() > deadline {
            break letters;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(letters.len(), 1, "the letter is kept: {letters:?}");
    assert!(letters[0].request.is_none(), "the retry was carried out");
    assert!(
        letters[0].error.contains("not UTF-8"),
        "{}",
        letters[0].error
    );
    assert_eq!(recorder.handled().len(), 1, "the retry handled nothing");
    handle.shutdown().await;
    broker.delete_topics().await.expect("delete topics");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_plain_consumer_reads_the_message_and_counts_the_unreadable_name() {
    let broker = support::broker();
    let topic = broker
        .create_topic("t-header-plain", 1)
        .await
        .expect("topic");
    raw::produce(broker.config(), &topic, 0, &[unreadable()]).await;
    let group = unique_topic("g-header-plain");
    let consumer = KafkaConsumer::new(broker.config(), &group).expect("consumer");
    consumer.subscribe(&[&topic]).expect("subscribe");

    let message = consumer.recv_within(PATIENCE).await.expect("received");

    assert_eq!(message.unreadable_headers(), 1);
    let names: Vec<&str> = message.headers().iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["ce_specversion", "ce_type"]);
    assert_eq!(message.payload(), Some(&br#"{"key":"bad","n":0}"#[..]));
    broker.delete_topics().await.expect("delete topics");
}
