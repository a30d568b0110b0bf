//! What the integration consumer does with a message it can never handle: under
//! `PoisonPolicy::Stop` (the default without a dead-letter store) it fails at that message and
//! commits only what came before; under `Park` the message is parked whole, later messages of
//! its key are parked behind it, and every other key goes on; an operator's retry handles a
//! key's letters again in order (a letter that fails again stays), a skip drops one, and a key
//! with no letter left flows again.

mod support;

use std::sync::Arc;
use std::time::Duration;

use cqrs_core::bus::{BusDeadLetterStore, BusLetter, BusLetterTarget, MessageId, ParkedKey};
use cqrs_core::projection::Redrive;
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
    // The handler was told of each, with the same reason, before it was parked.
    let told: Vec<(String, u64)> = recorder
        .told()
        .into_iter()
        .map(|(key, n, reason)| {
            let letter = letters
                .iter()
                .find(|l| l.error.ends_with(&reason))
                .expect("a letter with the reason told");
            assert_eq!(letter.key.as_deref(), Some(key.as_bytes()));
            (key, n)
        })
        .collect();
    let expected: Vec<(String, u64)> = (1..5).map(|n| ("a".to_owned(), n)).collect();
    assert_eq!(told, expected, "told of each, in order");
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

/// Telling the handler of a message being parked is tried a few times, then the message is
/// parked untold: a request's reply topic that is gone must not hold the partition (before,
/// telling was retried without end, and the partition stopped behind the message).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_is_parked_even_when_telling_of_it_keeps_failing() {
    let broker = support::broker();
    let topic = broker.create_topic("t-untold", 1).await.expect("topic");
    let records: Vec<_> = (0..3).map(|n| counted(&topic, "a", n).1).collect();
    send_all(broker.config(), &records).await;
    let recorder = Recorder::new(Script {
        poison: [("a".to_owned(), 0)].into(),
        untellable: true,
        ..Script::default()
    });
    let store = InMemoryEventStore::new();
    let group = unique_topic("g-untold");
    let options =
        ConsumerOptions::default().backoff(Duration::from_millis(5), Duration::from_millis(20));
    let handle = IntegrationConsumer::new(broker.config(), &group, &[&topic], recorder.clone())
        .with_dead_letters(Arc::new(store.clone()))
        .with_options(options)
        .spawn()
        .expect("spawn");
    let status = handle
        .wait_until(PATIENCE, |s| s.parked == 3)
        .await
        .expect("the poison message and the two held back behind it are parked");
    println!("{status}");
    handle.shutdown().await;
    broker.delete_topics().await.expect("delete topics");
}

/// Polls the store until `done` holds for the consumer's letters, for at most `PATIENCE`.
async fn letters_until(
    store: &InMemoryEventStore,
    group: &str,
    what: &str,
    done: impl Fn(&[BusLetter]) -> bool,
) -> Vec<BusLetter> {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        let letters = store
            .parked_messages(group, None, 100)
            .await
            .expect("letters");
        if done(&letters) {
            return letters;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}: {letters:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operator_retries_or_skips_parked_messages_and_the_key_flows_again() {
    let broker = support::broker();
    let topic = broker.create_topic("t-redrive", 1).await.expect("topic");
    let records: Vec<_> = (0..5).map(|n| counted(&topic, "a", n).1).collect();
    send_all(broker.config(), &records).await;
    let recorder = Recorder::new(Script {
        poison: [("a".to_owned(), 1)].into(),
        ..Script::default()
    });
    let store = InMemoryEventStore::new();
    let group = unique_topic("g-redrive");
    let handle = IntegrationConsumer::new(broker.config(), &group, &[&topic], recorder.clone())
        .with_dead_letters(Arc::new(store.clone()))
        .with_options(ConsumerOptions::default().redrive_interval(Duration::from_millis(20)))
        .spawn()
        .expect("spawn");
    handle
        .wait_until(PATIENCE, |s| s.handled + s.parked == 5)
        .await
        .expect("handled or parked");
    let key = ParkedKey::new(topic.as_str(), "a");

    // A retry of the key: a 1 fails again, so it stays with the new error and nothing after it
    // runs; the key's requests are withdrawn.
    let marked = store
        .request_messages(
            &group,
            &BusLetterTarget::Key(key.clone()),
            Some(Redrive::Retry),
        )
        .await
        .expect("request");
    assert_eq!(marked, 4);
    let letters = letters_until(&store, &group, "the retry carried out", |letters| {
        letters.iter().all(|l| l.request.is_none())
    })
    .await;
    assert_eq!(letters.len(), 4, "every letter kept");
    assert!(
        letters[0].error.contains("a 1 is refused"),
        "{}",
        letters[0].error
    );
    let ns: Vec<u64> = recorder.handled().iter().map(|c| c.n).collect();
    assert_eq!(ns, [0], "nothing after the failed letter ran");

    // Skip a 1, retry a 2: a 2, 3 and 4 are handled in order and the key flows again.
    let a1 = MessageId::new(topic.as_str(), 0, 1);
    let a2 = MessageId::new(topic.as_str(), 0, 2);
    store
        .request_messages(&group, &BusLetterTarget::Message(a1), Some(Redrive::Skip))
        .await
        .expect("skip");
    store
        .request_messages(&group, &BusLetterTarget::Message(a2), Some(Redrive::Retry))
        .await
        .expect("retry");
    letters_until(&store, &group, "every letter gone", <[BusLetter]>::is_empty).await;
    let ns: Vec<u64> = recorder.handled().iter().map(|c| c.n).collect();
    assert_eq!(ns, [0, 2, 3, 4], "the key's letters in order, a 1 skipped");

    let (_, later) = counted(&topic, "a", 5);
    let places = send_all(broker.config(), &[later]).await;
    let status = handle
        .wait_for(&topic, 0, places[0].1, PATIENCE)
        .await
        .expect("the new message handled");
    println!("{status}");
    let ns: Vec<u64> = recorder.handled().iter().map(|c| c.n).collect();
    assert_eq!(ns, [0, 2, 3, 4, 5], "the key is no longer held back");
    assert_eq!(
        (status.handled, status.parked),
        (5, 1),
        "three letters re-driven, one skipped"
    );
    handle.shutdown().await;
    broker.delete_topics().await.expect("delete topics");
}

/// A skip and a retry of the same key in one look: the retry handles the key's letters again,
/// but not the one the operator asked to drop. (Carried out in offset order, the retry of `a 2`
/// handled `a 3` too, and its skip found nothing left to take.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_letter_skipped_in_the_same_look_as_a_retry_of_its_key_is_not_handled() {
    let broker = support::broker();
    let topic = broker.create_topic("t-skip-retry", 1).await.expect("topic");
    let records: Vec<_> = (0..5).map(|n| counted(&topic, "a", n).1).collect();
    send_all(broker.config(), &records).await;
    let recorder = Recorder::new(Script {
        poison: [("a".to_owned(), 1)].into(),
        ..Script::default()
    });
    let store = InMemoryEventStore::new();
    let group = unique_topic("g-skip-retry");
    // Looks far apart, so that the three requests below are made between two looks (each is a
    // call on the in-memory store, microseconds).
    let handle = IntegrationConsumer::new(broker.config(), &group, &[&topic], recorder.clone())
        .with_dead_letters(Arc::new(store.clone()))
        .with_options(ConsumerOptions::default().redrive_interval(Duration::from_secs(5)))
        .spawn()
        .expect("spawn");
    handle
        .wait_until(PATIENCE, |s| s.handled + s.parked == 5)
        .await
        .expect("handled or parked");

    // Drop a 1 (refused for good) and a 3; retry the key from a 2.
    for (offset, request) in [(1, Redrive::Skip), (3, Redrive::Skip), (2, Redrive::Retry)] {
        let message = MessageId::new(topic.as_str(), 0, offset);
        store
            .request_messages(&group, &BusLetterTarget::Message(message), Some(request))
            .await
            .expect("request");
    }
    letters_until(&store, &group, "every letter gone", <[BusLetter]>::is_empty).await;

    let ns: Vec<u64> = recorder.handled().iter().map(|c| c.n).collect();
    assert_eq!(
        ns,
        [0, 2, 4],
        "a 1 and a 3 skipped, the rest of the key in order"
    );
    handle.shutdown().await;
    broker.delete_topics().await.expect("delete topics");
}

/// Only a partition's worker carries out the requests on its letters, and a worker starts
/// with the first message of its partition: after a restart, a partition no new message comes
/// to still gets one, and an operator's retry there is carried out.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retry_is_carried_out_on_a_quiet_partition_after_a_restart() {
    let broker = support::broker();
    let topic = broker.create_topic("t-quiet", 1).await.expect("topic");
    let records: Vec<_> = (0..3).map(|n| counted(&topic, "a", n).1).collect();
    send_all(broker.config(), &records).await;
    let store = InMemoryEventStore::new();
    let group = unique_topic("g-quiet");
    let options = ConsumerOptions::default().redrive_interval(Duration::from_millis(50));
    let refusing = Recorder::new(Script {
        poison: [("a".to_owned(), 1)].into(),
        ..Script::default()
    });
    let first = IntegrationConsumer::new(broker.config(), &group, &[&topic], refusing.clone())
        .with_dead_letters(Arc::new(store.clone()))
        .with_options(options.clone())
        .spawn()
        .expect("spawn");
    first
        .wait_until(PATIENCE, |s| s.handled + s.parked == 3)
        .await
        .expect("handled or parked");
    first.shutdown().await;

    // The handler is fixed and the consumer restarted; nothing new is sent to the partition.
    let fixed = Recorder::new(Script::default());
    let second = IntegrationConsumer::new(broker.config(), &group, &[&topic], fixed.clone())
        .with_dead_letters(Arc::new(store.clone()))
        .with_options(options)
        .spawn()
        .expect("spawn");
    store
        .request_messages(
            &group,
            &BusLetterTarget::Key(ParkedKey::new(topic.as_str(), "a")),
            Some(Redrive::Retry),
        )
        .await
        .expect("request");
    letters_until(&store, &group, "every letter gone", <[BusLetter]>::is_empty).await;

    let ns: Vec<u64> = fixed.handled().iter().map(|c| c.n).collect();
    assert_eq!(ns, [1, 2], "the key's letters, in order");
    second.shutdown().await;
    broker.delete_topics().await.expect("delete topics");
}

/// A retry of a key held back for long handles its letters a page at a time (each handled
/// letter is taken, so the next read starts after it): all of them, in order, once. It read
/// them all at once before, each with its payload.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retry_of_a_key_with_more_letters_than_a_page_handles_each_once_in_order() {
    const HELD: u64 = 250;
    let broker = support::broker();
    let topic = broker.create_topic("t-long-key", 1).await.expect("topic");
    let records: Vec<_> = (0..=HELD).map(|n| counted(&topic, "a", n).1).collect();
    send_all(broker.config(), &records).await;
    let recorder = Recorder::new(Script {
        poison: [("a".to_owned(), 0)].into(),
        ..Script::default()
    });
    let store = InMemoryEventStore::new();
    let group = unique_topic("g-long-key");
    let handle = IntegrationConsumer::new(broker.config(), &group, &[&topic], recorder.clone())
        .with_dead_letters(Arc::new(store.clone()))
        .with_options(ConsumerOptions::default().redrive_interval(Duration::from_millis(20)))
        .spawn()
        .expect("spawn");
    handle
        .wait_until(PATIENCE, |s| s.parked == HELD + 1)
        .await
        .expect("the poison message and every later one of its key are parked");

    let first = MessageId::new(topic.as_str(), 0, 0);
    store
        .request_messages(
            &group,
            &BusLetterTarget::Message(first),
            Some(Redrive::Skip),
        )
        .await
        .expect("skip");
    letters_until(&store, &group, "the poison letter skipped", |letters| {
        letters.iter().all(|l| l.message.offset != 0)
    })
    .await;
    let second = MessageId::new(topic.as_str(), 0, 1);
    store
        .request_messages(
            &group,
            &BusLetterTarget::Message(second),
            Some(Redrive::Retry),
        )
        .await
        .expect("retry");
    letters_until(&store, &group, "every letter gone", <[BusLetter]>::is_empty).await;

    let ns: Vec<u64> = recorder.handled().iter().map(|c| c.n).collect();
    assert_eq!(ns, (1..=HELD).collect::<Vec<_>>(), "each once, in order");
    handle.shutdown().await;
    broker.delete_topics().await.expect("delete topics");
}
