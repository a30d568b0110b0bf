//! One partitioned worker in a process of its own, for
//! `three_partitioned_worker_processes_survive_one_killed_in_a_loop`: it runs the fenced read
//! model (`FencedVersions`, projection `fenced`) split by stream into 8 partitions, sharing
//! them with the other workers through PostgreSQL only, until it is killed (SIGKILL).
//!
//! Environment: `DATABASE_URL`, `WORKER_SCHEMA` (a migrated schema with the read model's
//! tables), `WORKER_ID` (unique among the workers), `WORKER_TTL_MS` (the lease time to live).

use std::time::Duration;

use cqrs_core::projection::{PartitionedRunner, Partitions};
use cqrs_postgres::{PgEventStore, PgSchema};
use integration_tests::{quick_options, FencedVersions};
use sqlx::postgres::PgPoolOptions;

fn var(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| panic!("{name} is not set"))
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let pool = PgPoolOptions::new()
        .max_connections(12)
        .connect(&var("DATABASE_URL"))
        .await
        .expect("connect to DATABASE_URL");
    let schema = PgSchema::new(&var("WORKER_SCHEMA")).expect("a schema name");
    let store = PgEventStore::new(pool).with_schema(schema);
    let ttl: u64 = var("WORKER_TTL_MS")
        .parse()
        .expect("WORKER_TTL_MS in milliseconds");
    let model = FencedVersions::new(&store, "fenced");
    let handle = PartitionedRunner::for_store(model, Partitions::by_stream(8), &store)
        .with_options(
            quick_options()
                .owner(var("WORKER_ID"))
                .lease_ttl(Duration::from_millis(ttl))
                .batch_size(100),
        )
        .spawn();
    // Runs until killed; a worker that ends on its own is a failure the test sees.
    let status = handle
        .wait_until(Duration::from_secs(365 * 86_400), |s| s.stopped)
        .await;
    eprintln!("the partitioned worker ended: {status:?}");
    std::process::exit(2);
}
