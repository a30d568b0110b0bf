//! The integration consumer commits a partition's offset only up to the last message whose
//! handler returned: while a handler is blocked, the committed offset stays at that message
//! however many commit intervals pass; shutdown commits what was handled.

mod support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use cqrs_kafka::consume::{ConsumerOptions, IntegrationConsumer};
use cqrs_kafka::testing::unique_topic;
use support::bus::{committed, counted, send_all, Recorder, Script};
use tokio::sync::Semaphore;

const PATIENCE: Duration = Duration::from_secs(60);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_blocked_handler_keeps_the_committed_offset_behind_it() {
    let broker = support::broker();
    let topic = broker.create_topic("t-commit", 1).await.expect("topic");
    let records: Vec<_> = (0..10).map(|n| counted(&topic, "k", n).1).collect();
    let places = send_all(broker.config(), &records).await;
    assert_eq!(places.last(), Some(&(0, 9)), "offsets 0..=9 in partition 0");

    let gate = Arc::new(Semaphore::new(0));
    let recorder = Recorder::new(Script {
        gate: Some((("k".to_owned(), 5), gate.clone())),
        ..Script::default()
    });
    let group = unique_topic("g-commit");
    let handle = IntegrationConsumer::new(broker.config(), &group, &[&topic], recorder.clone())
        .with_options(
            ConsumerOptions::default()
                .commit_interval(Duration::from_millis(20))
                .lag_interval(Duration::from_millis(20)),
        )
        .spawn()
        .expect("spawn");

    // Messages 0..=4 are handled; the handler of 5 waits at the gate.
    handle
        .wait_for(&topic, 0, 4, PATIENCE)
        .await
        .expect("0..=4 handled");
    let status = handle
        .wait_until(PATIENCE, |s| {
            s.partition(&topic, 0).and_then(|p| p.committed) == Some(5)
        })
        .await
        .expect("offset 5 (the next to read) committed");
    println!("while blocked: {status}");
    let status = handle
        .wait_until(PATIENCE, |s| {
            s.partition(&topic, 0).and_then(|p| p.lag) == Some(5)
        })
        .await
        .expect("a lag of 5: the blocked message and the four behind it");
    assert_eq!(
        status.partition(&topic, 0).and_then(|p| p.high_water),
        Some(10)
    );
    // Watch the broker's committed offset for 25 commit intervals: never past the blocked one.
    let watched = Instant::now();
    let mut reads = 0;
    while watched.elapsed() < Duration::from_millis(500) {
        let offset = committed(broker.config(), &group, &topic, 0);
        assert_eq!(
            offset,
            Some(5),
            "the committed offset stays at the blocked message"
        );
        reads += 1;
    }
    assert_eq!(
        recorder.handled().len(),
        5,
        "nothing after the blocked message ran"
    );
    println!("{reads} reads of the committed offset, all 5");

    gate.add_permits(1);
    handle
        .wait_for(&topic, 0, 9, PATIENCE)
        .await
        .expect("all handled");
    handle
        .wait_until(PATIENCE, |s| {
            s.partition(&topic, 0).and_then(|p| p.committed) == Some(10)
        })
        .await
        .expect("everything committed");
    handle
        .wait_until(PATIENCE, |s| {
            s.partition(&topic, 0).and_then(|p| p.lag) == Some(0)
        })
        .await
        .expect("no lag left");
    let status = handle.shutdown().await;
    assert_eq!(committed(broker.config(), &group, &topic, 0), Some(10));
    assert_eq!(status.handled, 10);
    let ns: Vec<u64> = recorder.handled().iter().map(|c| c.n).collect();
    assert_eq!(ns, (0..10).collect::<Vec<_>>(), "in order, once each");
    broker.delete_topics().await.expect("delete topics");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_commits_what_was_handled() {
    let broker = support::broker();
    let topic = broker.create_topic("t-shutdown", 3).await.expect("topic");
    let records: Vec<_> = (0..30)
        .map(|n| counted(&topic, &format!("k{}", n % 7), n).1)
        .collect();
    let places = send_all(broker.config(), &records).await;

    let recorder = Recorder::default();
    let group = unique_topic("g-shutdown");
    // No interval commit during the test: only the shutdown commits.
    let handle = IntegrationConsumer::new(broker.config(), &group, &[&topic], recorder.clone())
        .with_options(ConsumerOptions::default().commit_interval(Duration::from_secs(3600)))
        .spawn()
        .expect("spawn");
    handle
        .wait_until(PATIENCE, |s| s.handled == 30)
        .await
        .expect("all handled");
    // The first tick of the interval fires at once; nothing was handled then.
    for partition in 0..3 {
        let last = places
            .iter()
            .filter(|p| p.0 == partition)
            .map(|p| p.1)
            .max();
        let handled = handle
            .status()
            .partition(&topic, partition)
            .and_then(|p| p.handled_up_to);
        assert_eq!(handled, last.map(|l| l + 1), "partition {partition}");
    }
    let status = handle.shutdown().await;
    println!("{status}");
    for partition in 0..3 {
        let last = places
            .iter()
            .filter(|p| p.0 == partition)
            .map(|p| p.1)
            .max();
        assert_eq!(
            committed(broker.config(), &group, &topic, partition),
            last.map(|l| l + 1),
            "partition {partition} committed to its end at shutdown"
        );
    }
    broker.delete_topics().await.expect("delete topics");
}
