//! A member retrying a message with backoff whose partition the group gives to another member
//! (it joined, or this one stalled past its session) stops retrying it: the new owner handles
//! that message, and the old member's late retries would run it again beside it, out of its
//! key's order, and keep tripping the breaker its other partitions share.

mod support;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use cqrs_kafka::consume::{
    ConsumerOptions, HandleError, Incoming, IntegrationConsumer, IntegrationHandler,
};
use cqrs_kafka::testing::unique_topic;
use support::bus::{counted, send_all, Counted, Recorder, Script};

const PATIENCE: Duration = Duration::from_secs(60);

/// Fails every message transiently, counting its calls per partition.
#[derive(Clone, Default)]
struct AlwaysDown {
    calls: Arc<Mutex<HashMap<i32, u64>>>,
}

impl AlwaysDown {
    fn calls(&self, partition: i32) -> u64 {
        let calls = self.calls.lock().unwrap_or_else(|p| p.into_inner());
        calls.get(&partition).copied().unwrap_or(0)
    }
}

#[async_trait]
impl IntegrationHandler for AlwaysDown {
    fn event_types(&self) -> Vec<&'static str> {
        vec![<Counted as cqrs_kafka::IntegrationEvent>::TYPE]
    }

    async fn handle(&self, incoming: &Incoming) -> Result<(), HandleError> {
        let partition = incoming.message().partition();
        *(self.calls.lock().unwrap_or_else(|p| p.into_inner()))
            .entry(partition)
            .or_default() += 1;
        Err(HandleError::transient("the downstream service is down"))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_stops_retrying_a_message_of_a_partition_it_lost() {
    let broker = support::broker();
    let topic = broker.create_topic("t-moved", 2).await.expect("topic");
    // Messages of several keys, so both partitions hold some.
    let records: Vec<_> = (0..8)
        .map(|n| counted(&topic, &format!("k{n}"), n).1)
        .collect();
    let placed = send_all(broker.config(), &records).await;
    assert!(
        (0..2).all(|p| placed.iter().any(|(partition, _)| *partition == p)),
        "both partitions hold messages: {placed:?}"
    );
    let group = unique_topic("g-moved");
    let options = || {
        ConsumerOptions::default()
            .backoff(Duration::from_millis(20), Duration::from_millis(20))
            .breaker(u32::MAX, Duration::from_millis(1))
    };
    let down = AlwaysDown::default();
    let a = IntegrationConsumer::new(broker.config(), &group, &[&topic], down.clone())
        .with_options(options())
        .spawn()
        .expect("spawn a");
    for partition in 0..2 {
        let deadline = tokio::time::Instant::now() + PATIENCE;
        while down.calls(partition) == 0 {
            assert!(
                tokio::time::Instant::now() < deadline,
                "a never tried {partition}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    // b joins: the group gives it one of the partitions.
    let recorder = Recorder::new(Script::default());
    let b = IntegrationConsumer::new(broker.config(), &group, &[&topic], recorder.clone())
        .with_options(options())
        .spawn()
        .expect("spawn b");
    let taken = b
        .wait_until(PATIENCE, |s| s.partitions.iter().any(|p| p.assigned))
        .await
        .expect("b gets a partition");
    let lost = taken
        .partitions
        .iter()
        .find(|p| p.assigned)
        .map(|p| p.partition)
        .expect("b's partition");
    a.wait_until(PATIENCE, |s| {
        s.partitions
            .iter()
            .any(|p| p.partition == lost && !p.assigned)
            && s.partitions
                .iter()
                .any(|p| p.partition != lost && p.assigned)
    })
    .await
    .expect("a keeps the other partition only");
    let on_lost = placed.iter().filter(|(p, _)| *p == lost).count() as u64;
    b.wait_until(PATIENCE, |s| s.handled >= on_lost)
        .await
        .expect("b handles the messages of the partition it got");
    let calls_then = down.calls(lost);
    // Ten backoffs of a's: each would have been another call.
    tokio::time::sleep(Duration::from_millis(200)).await;

    assert_eq!(
        down.calls(lost),
        calls_then,
        "a kept retrying a message of partition {lost}, which b owns"
    );
    a.shutdown().await;
    b.shutdown().await;
    broker.delete_topics().await.expect("delete topics");
}
