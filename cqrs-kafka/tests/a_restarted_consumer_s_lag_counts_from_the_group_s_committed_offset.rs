//! A consumer's lag, before it handled anything, counts from where its group committed: a
//! service restarted on a partition its earlier run read to the end shows no lag, not the
//! partition's whole length (which stayed so on a quiet partition, a reply topic, until a
//! message came). (A partition no message comes to has a worker, and a status, when the
//! consumer parks letters: its worker carries out their re-drives.)

mod support;

use std::sync::Arc;
use std::time::Duration;

use cqrs_core::InMemoryEventStore;

use cqrs_kafka::consume::{ConsumerOptions, IntegrationConsumer};
use cqrs_kafka::testing::unique_topic;
use support::bus::{counted, send_all, Recorder, Script};

const PATIENCE: Duration = Duration::from_secs(60);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_consumer_restarted_at_the_end_of_its_partition_shows_no_lag() {
    let broker = support::broker();
    let topic = broker
        .create_topic("t-restart-lag", 1)
        .await
        .expect("topic");
    let records: Vec<_> = (0..10).map(|n| counted(&topic, "k", n).1).collect();
    send_all(broker.config(), &records).await;
    let group = unique_topic("g-restart-lag");
    let options = || ConsumerOptions::default().lag_interval(Duration::from_millis(20));
    let first = IntegrationConsumer::new(
        broker.config(),
        &group,
        &[&topic],
        Recorder::new(Script::default()),
    )
    .with_options(options())
    .spawn()
    .expect("spawn");
    first
        .wait_until(PATIENCE, |s| {
            s.partition(&topic, 0).and_then(|p| p.committed) == Some(10)
        })
        .await
        .expect("the first run reads and commits all 10");
    first.shutdown().await;

    let restarted = IntegrationConsumer::new(
        broker.config(),
        &group,
        &[&topic],
        Recorder::new(Script::default()),
    )
    .with_dead_letters(Arc::new(InMemoryEventStore::new()))
    .with_options(options())
    .spawn()
    .expect("spawn");
    let seen = restarted
        .wait_until(PATIENCE, |s| {
            s.partition(&topic, 0).and_then(|p| p.high_water) == Some(10)
        })
        .await
        .expect("the restarted run fetches the high-water mark");
    let partition = seen.partition(&topic, 0).expect("the partition");
    assert!(
        partition.lag.is_none_or(|lag| lag == 0),
        "a lag of {:?} on a partition read to its end",
        partition.lag
    );
    let settled = restarted
        .wait_until(PATIENCE, |s| {
            s.partition(&topic, 0).and_then(|p| p.lag).is_some()
        })
        .await
        .expect("the lag becomes known");
    assert_eq!(settled.partition(&topic, 0).and_then(|p| p.lag), Some(0));
    restarted.shutdown().await;
    broker.delete_topics().await.expect("delete topics");
}
