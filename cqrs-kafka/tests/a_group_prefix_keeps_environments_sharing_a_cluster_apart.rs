//! `KafkaConfig::with_group_prefix`: staging and production sharing one cluster run the same
//! consumer under groups of their own, so neither takes the other's partitions (or messages).

mod support;

use std::time::Duration;

use cqrs_kafka::consume::IntegrationConsumer;
use cqrs_kafka::testing::unique_topic;
use support::bus::{committed, counted, send_all, Recorder, Script};

const PATIENCE: Duration = Duration::from_secs(60);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_consumer_commits_under_its_prefixed_group_only() {
    let broker = support::broker();
    let topic = broker.create_topic("t-prefix", 1).await.expect("topic");
    let records: Vec<_> = (0..3).map(|n| counted(&topic, "k", n).1).collect();
    send_all(broker.config(), &records).await;
    let name = unique_topic("g-prefix");
    let staging = broker.config().clone().with_group_prefix("staging.");

    let handle =
        IntegrationConsumer::new(&staging, &name, &[&topic], Recorder::new(Script::default()))
            .spawn()
            .expect("spawn");
    handle
        .wait_until(PATIENCE, |s| {
            s.partition(&topic, 0).and_then(|p| p.committed) == Some(3)
        })
        .await
        .expect("all three handled and committed");
    handle.shutdown().await;

    let prefixed = format!("staging.{name}");
    assert_eq!(committed(broker.config(), &prefixed, &topic, 0), Some(3));
    assert_eq!(
        committed(broker.config(), &name, &topic, 0),
        None,
        "the unprefixed group, another environment's, is untouched"
    );
    broker.delete_topics().await.expect("delete topics");
}
