//! A partition whose queue holds two messages is paused and resumed on nearly every message,
//! 400 rounds: every pause must have its resume, and the messages come in order, each once.
//!
//! Each round waits for the fetch the client had in flight when it paused, up to
//! `fetch.wait.max.ms` (librdkafka's 500 ms by default) once the fetcher reached the end of
//! the log: at 500 ms this test reads about 240 of its messages in 60 s, which stop 47 took
//! for a stall in librdkafka (librdkafka's debug log shows each round's fetch 0.5 s after its
//! resume). It sets 50 ms, so its rounds take milliseconds.

mod support;

use std::time::Duration;

use cqrs_kafka::consume::{ConsumerOptions, IntegrationConsumer};
use cqrs_kafka::testing::unique_topic;
use cqrs_kafka::Record;
use support::bus::{counted, send_all, Recorder, Script};

const PATIENCE: Duration = Duration::from_secs(90);
const MESSAGES: u64 = 400;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_partition_paused_and_resumed_on_every_message_is_read_to_its_end() {
    let broker = support::broker();
    let topic = broker.create_topic("t-rounds", 1).await.expect("topic");
    let records: Vec<Record> = (0..MESSAGES).map(|n| counted(&topic, "k", n).1).collect();
    send_all(broker.config(), &records).await;
    let recorder = Recorder::new(Script::default());
    let group = unique_topic("g-rounds");
    let config = broker
        .config()
        .clone()
        .with_setting("fetch.wait.max.ms", "50");
    let handle = IntegrationConsumer::new(&config, &group, &[&topic], recorder.clone())
        .with_options(ConsumerOptions::default().buffered(2))
        .spawn()
        .expect("spawn");

    let result = handle.wait_until(PATIENCE, |s| s.handled == MESSAGES).await;
    let handled = recorder.handled().len();
    assert!(
        result.is_ok(),
        "{handled} of {MESSAGES} handled: {:?}",
        handle.status()
    );
    let ns: Vec<u64> = recorder.handled().iter().map(|c| c.n).collect();
    assert_eq!(ns, (0..MESSAGES).collect::<Vec<_>>(), "in order, each once");
    handle.shutdown().await;
    broker.delete_topics().await.expect("delete topics");
}
