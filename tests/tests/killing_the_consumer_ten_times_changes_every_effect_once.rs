//! The consumer as a child process (`bus_consumer_child`), killed with SIGKILL at random
//! points ten times while messages flow: whatever it handled and had not committed is
//! delivered again to the next child, and the derived command ids make the replay change
//! nothing. At the end the tallies on PostgreSQL equal the fold of the messages sent: every
//! effect exactly once.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use integration_tests::bus::{fold, kafka, send_all, tallies, tally_added, TallyAdded};
use integration_tests::{database_url, drop_schema, eventually, pg_store};

const KILLS: usize = 10;
const TALLIES: usize = 12;
const BATCHES: u64 = 60;
const PER_BATCH: u64 = 40;

/// Kills the child when the test ends, even on a failure.
struct ChildGuard(Option<Child>);

impl ChildGuard {
    fn kill(&mut self) {
        if let Some(mut child) = self.0.take() {
            let _ = child.kill(); // SIGKILL
            let _ = child.wait();
        }
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        self.kill();
    }
}

fn spawn_child(schema: &str, topic: &str, group: &str) -> ChildGuard {
    let child = Command::new(env!("CARGO_BIN_EXE_bus_consumer_child"))
        .env("DATABASE_URL", database_url())
        .env("BUS_CHILD_SCHEMA", schema)
        .env("BUS_CHILD_TOPIC", topic)
        .env("BUS_CHILD_GROUP", group)
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start the consumer child");
    ChildGuard(Some(child))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_the_consumer_ten_times_changes_every_effect_once() {
    let store = pg_store().await;
    let broker = kafka();
    let topic = broker.create_topic("t-kill", 4).await.expect("topic");
    let group = cqrs_kafka::testing::unique_topic("g-kill");
    let schema = store.schema().as_str().to_owned();
    let names: Vec<String> = (0..TALLIES).map(|i| format!("tally-{i}")).collect();
    let seed = fastrand::u64(..);
    println!("seed {seed}");
    let mut rng = fastrand::Rng::with_seed(seed);

    // The producer: a batch every 50 ms, while the children are killed.
    let config = broker.config().clone();
    let (topic_p, names_p) = (topic.clone(), names.clone());
    let producer = tokio::spawn(async move {
        let mut sent: Vec<TallyAdded> = Vec::new();
        let mut ticker = tokio::time::interval(Duration::from_millis(50));
        for batch in 0..BATCHES {
            ticker.tick().await;
            let mut records = Vec::new();
            for i in 0..PER_BATCH {
                let n = batch * PER_BATCH + i;
                let tally = &names_p[usize::try_from(n).unwrap_or(0) % names_p.len()];
                let amount = n % 97 + 1;
                records.push(tally_added(&topic_p, tally, amount).1);
                sent.push(TallyAdded {
                    tally: tally.clone(),
                    amount,
                });
            }
            send_all(&config, &records).await;
        }
        sent
    });

    for kill in 1..=KILLS {
        let mut child = spawn_child(&schema, &topic, &group);
        let after = Duration::from_millis(rng.u64(300..2_500));
        tokio::time::sleep(after).await;
        child.kill();
        let so_far = tallies(&store, &names).await;
        let applied: u64 = so_far.values().map(|t| t.1).sum();
        println!("kill {kill} after {after:?}: {applied} effects so far");
    }
    let sent = producer.await.expect("the producer");
    let expected = fold(&sent);
    println!("{} messages sent", sent.len());

    let mut last = spawn_child(&schema, &topic, &group);
    let actual = eventually(
        Duration::from_secs(180),
        "the tallies to equal the fold of the messages",
        || async {
            let actual = tallies(&store, &names).await;
            let applied: u64 = actual.values().map(|t| t.1).sum();
            let sent = u64::try_from(sent.len()).unwrap_or(u64::MAX);
            assert!(
                applied <= sent,
                "more effects ({applied}) than messages ({sent})"
            );
            (actual == expected).then_some(actual)
        },
    )
    .await;
    last.kill();
    assert_eq!(actual, expected, "each message's effect exactly once");
    broker.delete_topics().await.expect("delete topics");
    drop_schema(&store).await;
}
