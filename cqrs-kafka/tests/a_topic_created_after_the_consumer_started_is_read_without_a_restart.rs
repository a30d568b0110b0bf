//! A consumer subscribed to a topic that does not exist yet (a service deployed before its
//! topic, or a topic whose creation the broker had not spread to its metadata when the
//! consumer joined) reads it once it exists, without a restart: the cross-service saga stalled
//! in full test runs because the consumer of the last topic created joined before the broker
//! showed it, and librdkafka looks again only every `topic.metadata.refresh.interval.ms`
//! (five minutes by default).

mod support;

use std::time::Duration;

use cqrs_kafka::consume::IntegrationConsumer;
use cqrs_kafka::testing::unique_topic;
use support::bus::{counted, send_all, Recorder};

/// Generous for a busy machine; far less than librdkafka's default five minutes.
const PATIENCE: Duration = Duration::from_secs(60);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_topic_created_after_the_consumer_started_is_read_without_a_restart() {
    let broker = support::broker();
    let early = broker.create_topic("t-early", 1).await.expect("topic");
    let late = unique_topic("t-late");
    let recorder = Recorder::default();
    let group = unique_topic("g-late");
    let handle =
        IntegrationConsumer::new(broker.config(), &group, &[&early, &late], recorder.clone())
            .spawn()
            .expect("spawn");

    // The group has formed, with only the topic that exists.
    send_all(broker.config(), &[counted(&early, "k", 0).1]).await;
    handle
        .wait_for(&early, 0, 0, PATIENCE)
        .await
        .expect("the early topic's message handled");

    broker
        .create_topic_named(&late, 1)
        .await
        .expect("late topic");
    send_all(broker.config(), &[counted(&late, "k", 1).1]).await;
    let status = handle
        .wait_for(&late, 0, 0, PATIENCE)
        .await
        .expect("the late topic's message handled without a restart");
    println!("{status}");
    let ns: Vec<u64> = recorder.handled().iter().map(|c| c.n).collect();
    assert_eq!(ns, vec![0, 1]);
    handle.shutdown().await;
    broker.delete_topics().await.expect("delete topics");
}
