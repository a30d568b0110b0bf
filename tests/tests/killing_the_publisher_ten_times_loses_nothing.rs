//! The publisher runs as a child process (`publisher_child`) while a writer appends. Ten
//! times it dies at a random point (SIGKILL from here, or its own `std::process::abort`),
//! mid-batch or between batches, and a new one starts from the checkpoint. At the end every
//! event is on the topic: messages sent again after a crash carry their event's `ce_id`, so
//! the distinct ids are exactly the events, and each stream's events are first seen in
//! version order (what a subscriber that drops repeated ids sees).

use std::collections::BTreeMap;
use std::process::{Child, Command};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use cqrs_core::CheckpointStore;
use integration_tests::publishing::{append_ticks, kafka_broker, read_topic, topic_size};
use integration_tests::{database_url, drop_schema, eventually, pg_store, settled_head};

const STREAMS: u64 = 30;
const PER_APPEND: u64 = 5;
const KILLS: usize = 10;

/// A child publisher, killed when dropped (the test failing included).
struct ChildPublisher(Child);

impl ChildPublisher {
    fn start(schema: &str, topic: &str, abort_after: Option<Duration>) -> Self {
        let mut command = Command::new(env!("CARGO_BIN_EXE_publisher_child"));
        command
            .env("DATABASE_URL", database_url())
            .env("PUBLISHER_SCHEMA", schema)
            .env("PUBLISHER_TOPIC", topic)
            .env_remove("PUBLISHER_ABORT_AFTER_MS");
        if let Some(after) = abort_after {
            command.env("PUBLISHER_ABORT_AFTER_MS", after.as_millis().to_string());
        }
        Self(command.spawn().expect("start the child publisher"))
    }

    /// Whether it is still running (it exits on its own only by aborting, or by failing).
    fn running(&mut self) -> bool {
        matches!(self.0.try_wait(), Ok(None))
    }

    /// SIGKILL, and wait for the process to end.
    fn kill(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Drop for ChildPublisher {
    fn drop(&mut self) {
        self.kill();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_the_publisher_ten_times_loses_nothing() {
    let started = Instant::now();
    let store = pg_store().await;
    let schema = store.schema().as_str().to_owned();
    let broker = kafka_broker();
    let topic = broker.create_topic("it-killed", 4).await.expect("a topic");

    // The writer appends a round (5 events to each of 30 streams) every 100 ms until told to
    // stop, through all the kills.
    let stop_writing = Arc::new(AtomicBool::new(false));
    let writer = {
        let store = store.clone();
        let stop = stop_writing.clone();
        tokio::spawn(async move {
            let mut rounds = 0;
            while !stop.load(Ordering::SeqCst) {
                for s in 0..STREAMS {
                    append_ticks(
                        &store,
                        &format!("tick-{s}"),
                        rounds * PER_APPEND,
                        PER_APPEND,
                        PER_APPEND,
                    )
                    .await;
                }
                rounds += 1;
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            rounds * PER_APPEND
        })
    };

    let mut deaths = Vec::new();
    for kill in 0..KILLS {
        // A random point: 300 ms to 1.5 s after the start (connecting, catching up, or at
        // the head between batches).
        let after = Duration::from_millis(fastrand::u64(300..1_500));
        let by_abort = kill % 2 == 1;
        let mut child = ChildPublisher::start(&schema, &topic, by_abort.then_some(after));
        if by_abort {
            eventually(Duration::from_secs(30), "the child to abort itself", || {
                let done = !child.running();
                async move { done.then_some(()) }
            })
            .await;
        } else {
            tokio::time::sleep(after).await;
            assert!(
                child.running(),
                "the child publisher ended before it was killed"
            );
            child.kill();
        }
        let checkpoint = store
            .load_checkpoint("publisher:ticks")
            .await
            .expect("the checkpoint");
        deaths.push(format!(
            "{} after {after:.1?} (checkpoint {})",
            if by_abort { "abort" } else { "SIGKILL" },
            checkpoint
                .map(|p| p.to_string())
                .unwrap_or_else(|| "none".into())
        ));
    }
    stop_writing.store(true, Ordering::SeqCst);
    let per_stream = writer.await.expect("the writer");
    let head = settled_head(&store).await;

    // One last publisher, left to finish.
    let mut last = ChildPublisher::start(&schema, &topic, None);
    eventually(
        Duration::from_secs(120),
        "the last publisher to reach the head",
        || {
            let store = store.clone();
            async move {
                let checkpoint = store.load_checkpoint("publisher:ticks").await.ok()??;
                (checkpoint >= head).then_some(())
            }
        },
    )
    .await;
    assert!(last.running(), "the last publisher is still up");
    last.kill();

    let total = usize::try_from(STREAMS * per_stream).expect("a count");
    let on_topic = topic_size(&broker, &topic).await;
    let log = read_topic(broker.config(), &topic, on_topic, Duration::from_secs(120)).await;
    assert_eq!(log.distinct(), total, "every event, by its ce_id");
    let expected: BTreeMap<String, u64> = (0..STREAMS)
        .map(|s| (format!("tick-{s}"), per_stream))
        .collect();
    let repeats = log.assert_every_event_in_stream_order(&expected);
    println!(
        "{total} events over {STREAMS} streams, {on_topic} messages ({repeats} sent again after a \
         death) in {:.1?}; deaths: {}",
        started.elapsed(),
        deaths.join("; ")
    );

    broker.delete_topics().await.expect("delete the topic");
    drop_schema(&store).await;
}
