//! End to end through the bus with both ends dying: a writer appends ticks to 30 streams in the
//! producer's schema; the publisher (`publisher_child`) publishes them, and the consumer
//! (`bus_consumer_child`, `BUS_CHILD_HANDLER=ticks`) adds each to a tally in its own schema.
//! Ten times each child dies at a random point (the publisher by SIGKILL or its own
//! `std::process::abort`, the consumer by SIGKILL) and a new one starts. The publisher sends
//! again what it had not checkpointed (same `ce_id`), the consumer replays what it had not
//! committed (same derived command id): at the end the consumer's tallies equal the fold of
//! the producer's events, each event's effect exactly once.

use std::collections::BTreeMap;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use integration_tests::bus::{kafka, tallies, tick_amount};
use integration_tests::publishing::append_ticks;
use integration_tests::{database_url, drop_schema, eventually, pg_store};

const STREAMS: u64 = 30;
const PER_APPEND: u64 = 5;
const KILLS: usize = 10;

/// A child process, SIGKILLed when dropped (the test failing included).
struct ChildGuard(Option<Child>);

impl ChildGuard {
    fn running(&mut self) -> bool {
        self.0
            .as_mut()
            .is_some_and(|c| matches!(c.try_wait(), Ok(None)))
    }

    fn kill(&mut self) {
        if let Some(mut child) = self.0.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        self.kill();
    }
}

fn publisher(schema: &str, topic: &str, abort_after: Option<Duration>) -> ChildGuard {
    let mut command = Command::new(env!("CARGO_BIN_EXE_publisher_child"));
    command
        .env("DATABASE_URL", database_url())
        .env("PUBLISHER_SCHEMA", schema)
        .env("PUBLISHER_TOPIC", topic)
        .env_remove("PUBLISHER_ABORT_AFTER_MS")
        .stdout(Stdio::null());
    if let Some(after) = abort_after {
        command.env("PUBLISHER_ABORT_AFTER_MS", after.as_millis().to_string());
    }
    ChildGuard(Some(command.spawn().expect("start the publisher child")))
}

fn consumer(schema: &str, topic: &str, group: &str) -> ChildGuard {
    let child = Command::new(env!("CARGO_BIN_EXE_bus_consumer_child"))
        .env("DATABASE_URL", database_url())
        .env("BUS_CHILD_SCHEMA", schema)
        .env("BUS_CHILD_TOPIC", topic)
        .env("BUS_CHILD_GROUP", group)
        .env("BUS_CHILD_HANDLER", "ticks")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start the consumer child");
    ChildGuard(Some(child))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_the_publisher_and_the_consumer_ten_times_changes_every_effect_once() {
    let started = Instant::now();
    let producer_store = pg_store().await;
    let consumer_store = pg_store().await;
    let producer_schema = producer_store.schema().as_str().to_owned();
    let consumer_schema = consumer_store.schema().as_str().to_owned();
    let broker = kafka();
    let topic = broker.create_topic("t-kill-both", 4).await.expect("topic");
    let group = cqrs_kafka::testing::unique_topic("g-kill-both");
    let seed = fastrand::u64(..);
    println!("seed {seed}");
    let mut rng = fastrand::Rng::with_seed(seed);

    // The writer: a round (5 ticks to each of 30 streams) every 100 ms, through the kills.
    let stop_writing = Arc::new(AtomicBool::new(false));
    let writer = {
        let store = producer_store.clone();
        let stop = stop_writing.clone();
        tokio::spawn(async move {
            let mut rounds = 0;
            while !stop.load(Ordering::SeqCst) {
                for s in 0..STREAMS {
                    let stream = format!("tick-{s}");
                    append_ticks(&store, &stream, rounds * PER_APPEND, PER_APPEND, PER_APPEND)
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
        let by_abort = kill % 2 == 1;
        let publisher_dies = Duration::from_millis(rng.u64(300..1_500));
        let consumer_dies = Duration::from_millis(rng.u64(300..2_000));
        let mut publishing =
            publisher(&producer_schema, &topic, by_abort.then_some(publisher_dies));
        let mut consuming = consumer(&consumer_schema, &topic, &group);
        let (first, second) = if publisher_dies <= consumer_dies {
            (publisher_dies, consumer_dies)
        } else {
            (consumer_dies, publisher_dies)
        };
        tokio::time::sleep(first).await;
        let kill_publisher = |p: &mut ChildGuard| {
            if !by_abort {
                assert!(p.running(), "the publisher ended before it was killed");
                p.kill();
            }
        };
        if publisher_dies <= consumer_dies {
            kill_publisher(&mut publishing);
        } else {
            assert!(
                consuming.running(),
                "the consumer ended before it was killed"
            );
            consuming.kill();
        }
        tokio::time::sleep(second - first).await;
        if publisher_dies <= consumer_dies {
            assert!(
                consuming.running(),
                "the consumer ended before it was killed"
            );
            consuming.kill();
        } else {
            kill_publisher(&mut publishing);
        }
        if by_abort {
            eventually(
                Duration::from_secs(30),
                "the publisher to abort itself",
                || {
                    let done = !publishing.running();
                    async move { done.then_some(()) }
                },
            )
            .await;
        }
        let names: Vec<String> = (0..STREAMS).map(|s| format!("tick-{s}")).collect();
        let applied: u64 = tallies(&consumer_store, &names)
            .await
            .values()
            .map(|t| t.1)
            .sum();
        deaths.push(format!(
            "publisher {} after {publisher_dies:?}, consumer after {consumer_dies:?}: {applied} effects",
            if by_abort { "aborted" } else { "killed" }
        ));
    }
    stop_writing.store(true, Ordering::SeqCst);
    let per_stream = writer.await.expect("the writer");

    // The fold of the producer's events: per stream, the sum of each tick's amount, and the
    // count.
    let names: Vec<String> = (0..STREAMS).map(|s| format!("tick-{s}")).collect();
    let expected: BTreeMap<String, (u64, u64)> = names
        .iter()
        .map(|name| {
            let total = (1..=per_stream).map(tick_amount).sum();
            (name.clone(), (total, per_stream))
        })
        .collect();
    let mut last_publisher = publisher(&producer_schema, &topic, None);
    let mut last_consumer = consumer(&consumer_schema, &topic, &group);
    let actual = eventually(
        Duration::from_secs(180),
        "the consumer's tallies to equal the fold of the producer's events",
        || async {
            let actual = tallies(&consumer_store, &names).await;
            for (name, (_, count)) in &actual {
                assert!(
                    *count <= per_stream,
                    "{name}: more effects ({count}) than events ({per_stream})"
                );
            }
            (actual == expected).then_some(actual)
        },
    )
    .await;
    assert!(last_publisher.running() && last_consumer.running());
    last_publisher.kill();
    last_consumer.kill();
    assert_eq!(actual, expected, "each event's effect exactly once");
    println!(
        "{} events over {STREAMS} streams, each effect once, in {:.1?}; {}",
        per_stream * STREAMS,
        started.elapsed(),
        deaths.join("; ")
    );
    broker.delete_topics().await.expect("delete topics");
    drop_schema(&producer_store).await;
    drop_schema(&consumer_store).await;
}
