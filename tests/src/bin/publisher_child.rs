//! A publisher in a process of its own, for `killing_the_publisher_ten_times_loses_nothing`:
//! the test starts it, then kills it (SIGKILL) or lets it abort itself at a random point.
//!
//! Environment: `DATABASE_URL`, `PUBLISHER_SCHEMA` (a migrated schema), `KAFKA_BOOTSTRAP_SERVERS`,
//! `PUBLISHER_TOPIC`, and optionally `PUBLISHER_ABORT_AFTER_MS` (then it calls
//! `std::process::abort` that long after starting). It runs until killed.

use std::time::Duration;

use cqrs_core::projection::RunnerOptions;
use cqrs_kafka::KafkaConfig;
use cqrs_postgres::{PgEventStore, PgSchema};
use integration_tests::pg_runner;
use integration_tests::publishing::tick_publisher;
use sqlx::postgres::PgPoolOptions;

fn var(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| panic!("{name} is not set"))
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    if let Ok(ms) = std::env::var("PUBLISHER_ABORT_AFTER_MS") {
        let ms: u64 = ms
            .parse()
            .expect("PUBLISHER_ABORT_AFTER_MS in milliseconds");
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(ms));
            std::process::abort();
        });
    }
    let pool = PgPoolOptions::new()
        .max_connections(4)
        .connect(&var("DATABASE_URL"))
        .await
        .expect("connect to DATABASE_URL");
    let schema = PgSchema::new(&var("PUBLISHER_SCHEMA")).expect("a schema name");
    let store = PgEventStore::new(pool).with_schema(schema);
    let config = KafkaConfig::from_env().expect("KAFKA_BOOTSTRAP_SERVERS");
    let handle = pg_runner(
        tick_publisher(&config, &var("PUBLISHER_TOPIC")),
        &store,
        RunnerOptions::new()
            .batch_size(100)
            .poll_interval(Duration::from_millis(50)),
    )
    .spawn();
    // Runs until killed; a runner that ends on its own is a failure the test sees (the
    // process exits before being killed).
    let status = handle.wait_until(|_| false).await;
    eprintln!("the publisher ended: {status:?}");
    std::process::exit(2);
}
