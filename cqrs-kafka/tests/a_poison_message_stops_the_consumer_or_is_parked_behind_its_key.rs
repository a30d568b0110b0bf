//! What the integration consumer does with a message it can never handle: under
//! `PoisonPolicy::Stop` (the default without a dead-letter store) it fails at that message and
//! commits only what came before; under `Park` the message is parked whole, later messages of
//! its key are parked behind it, and every other key goes on.

mod support;

use std::sync::Arc;
use std::time::Duration;

use cqrs_core::bus::{BusDeadLetterStore, MessageId};
use cqrs_core::InMemoryEventStore;
use cqrs_kafka::consume::{ConsumerOptions, ConsumerState, ConsumerWaitError, IntegrationConsumer};
use cqrs_kafka::testing::unique_topic;
use support::bus::{committed, counted, send_all, Recorder, Script};

const PATIENCE: Duration = Duration::from_secs(60);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_dead_letter_store_the_consumer_fails_before_the_poison_message() {
    let broker = support::broker();
    let topic = broker.create_topic("t-stop", 1).await.expect("topic");
    let records: Vec<_> = (0..6).map(|n| counted(&topic, "k", n).1).collect();
    send_all(broker.config(), &records).await;
    let recorder = Recorder::new(Script {
        poison: [("k".to_owned(), 3)].into(),
        ..Script::default()
    });
    let group = unique_topic("g-stop");
    let handle = IntegrationConsumer::new(broker.config(), &group, &[&topic], recorder.clone())
        .with_options(ConsumerOptions::default().commit_interval(Duration::from_millis(20)))
        .spawn()
        .expect("spawn");
    let failed = handle
        .wait_until(PATIENCE, |_| false)
        .await
        .expect_err("the consumer stops");
    let ConsumerWaitError::Failed(status) = failed else {
        panic!("expected a failure, got {failed}");
    };
    println!("{status}");
    assert_eq!(status.state, ConsumerState::Failed);
    let error = status.last_error.clone().unwrap_or_default();
    assert!(
        error.contains("@3") && error.contains("k 3 is refused"),
        "{error}"
    );
    assert_eq!(status.handled, 3);
    let status = handle.shutdown().await;
    assert_eq!(status.state, ConsumerState::Failed, "the failure is kept");
    assert_eq!(
        committed(broker.config(), &group, &topic, 0),
        Some(3),
        "committed up to the poison message, not past it"
    );
    assert_eq!(recorder.handled().len(), 3);
    broker.delete_topics().await.expect("delete topics");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_parked_message_holds_back_its_key_and_the_other_keys_go_on() {
    let broker = support::broker();
    let topic = broker.create_topic("t-park", 2).await.expect("topic");
    // Keys a and b, five messages each, interleaved; a 1 is refused.
    let records: Vec<_> = (0..5)
        .flat_map(|n| [counted(&topic, "a", n).1, counted(&topic, "b", n).1])
        .collect();
    send_all(broker.config(), &records).await;
    let recorder = Recorder::new(Script {
        poison: [("a".to_owned(), 1)].into(),
        ..Script::default()
    });
    let store = InMemoryEventStore::new();
    let group = unique_topic("g-park");
    let handle = IntegrationConsumer::new(broker.config(), &group, &[&topic], recorder.clone())
        .with_dead_letters(Arc::new(store.clone()))
        .spawn()
        .expect("spawn");
    let status = handle
        .wait_until(PATIENCE, |s| s.handled + s.parked == 10)
        .await
        .expect("every message handled or parked");
    println!("{status}");
    assert_eq!((status.handled, status.parked), (6, 4));
    let handled: Vec<(String, u64)> = recorder
        .handled()
        .into_iter()
        .map(|c| (c.key, c.n))
        .collect();
    let a: Vec<u64> = handled.iter().filter(|h| h.0 == "a").map(|h| h.1).collect();
    let b: Vec<u64> = handled.iter().filter(|h| h.0 == "b").map(|h| h.1).collect();
    assert_eq!(a, [0], "a stops at its poison message");
    assert_eq!(b, [0, 1, 2, 3, 4], "b goes on, in order");

    let letters = store
        .parked_messages(&group, None, 100)
        .await
        .expect("letters");
    let parked: Vec<&MessageId> = letters.iter().map(|l| &l.message).collect();
    assert_eq!(parked.len(), 4, "{parked:?}");
    assert!(
        letters[0].error.contains("a 1 is refused"),
        "{}",
        letters[0].error
    );
    for later in &letters[1..] {
        assert!(later.error.contains("held back"), "{}", later.error);
    }
    let first = &letters[0];
    assert_eq!(first.key.as_deref(), Some(&b"a"[..]));
    assert_eq!(
        first.payload,
        records[2].payload().to_vec().into(),
        "the whole payload"
    );
    assert_eq!(
        first.headers.len(),
        records[2].headers().len(),
        "every header kept"
    );
    handle.shutdown().await;
    broker.delete_topics().await.expect("delete topics");
}
