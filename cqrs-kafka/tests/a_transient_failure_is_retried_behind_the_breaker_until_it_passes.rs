//! A handler that fails transiently is retried with backoff (its partition waits, so the key
//! keeps its order), the shared breaker opens after its threshold, and once the failure
//! passes the message is handled once and the rest follow.

mod support;

use std::time::Duration;

use cqrs_core::projection::BreakerState;
use cqrs_kafka::consume::{ConsumerOptions, ConsumerState, IntegrationConsumer};
use cqrs_kafka::testing::unique_topic;
use support::bus::{counted, send_all, Recorder, Script};

const PATIENCE: Duration = Duration::from_secs(60);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transient_failure_is_retried_behind_the_breaker_until_it_passes() {
    let broker = support::broker();
    let topic = broker.create_topic("t-retry", 1).await.expect("topic");
    let records: Vec<_> = (0..4).map(|n| counted(&topic, "k", n).1).collect();
    send_all(broker.config(), &records).await;
    let recorder = Recorder::new(Script {
        transient: [(("k".to_owned(), 1), 4)].into(),
        ..Script::default()
    });
    let handle = IntegrationConsumer::new(
        broker.config(),
        &unique_topic("g-retry"),
        &[&topic],
        recorder.clone(),
    )
    .with_options(
        ConsumerOptions::default()
            .backoff(Duration::from_millis(5), Duration::from_millis(20))
            // Open long enough for the test to see the consumer retrying, however slow
            // the machine: the status shows only the latest state.
            .breaker(2, Duration::from_millis(500)),
    )
    .spawn()
    .expect("spawn");
    let retrying = handle
        .wait_until(PATIENCE, |s| s.state == ConsumerState::Retrying)
        .await
        .expect("retrying");
    println!("{retrying}");
    assert!(retrying
        .last_error
        .as_deref()
        .unwrap_or("")
        .contains("fails"));
    let done = handle
        .wait_until(PATIENCE, |s| s.handled == 4)
        .await
        .expect("all handled");
    println!("{done}");
    assert_eq!(done.state, ConsumerState::Running, "back to running");
    assert_eq!(done.breaker, BreakerState::Closed);
    assert!(
        done.breaker_trips >= 1,
        "4 failures opened a breaker of threshold 2"
    );
    let attempts =
        recorder.attempts.lock().unwrap_or_else(|p| p.into_inner())[&("k".to_owned(), 1)];
    assert_eq!(attempts, 5, "four failures, then the pass");
    let ns: Vec<u64> = recorder.handled().iter().map(|c| c.n).collect();
    assert_eq!(ns, [0, 1, 2, 3], "once each, in order");
    handle.shutdown().await;
    broker.delete_topics().await.expect("delete topics");
}
