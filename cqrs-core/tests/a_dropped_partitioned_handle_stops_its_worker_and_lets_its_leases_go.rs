//! Dropping a partitioned worker's handle stops the worker, as dropping a `ProjectionHandle`
//! stops its runner: its partitions stop and its leases are let go. Before, the dropped stop
//! channel woke the worker's every pause at once: it looked at the store back to back, kept
//! renewing its leases and ran its partitions for good, with nothing left to stop it.

mod partition_support;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use cqrs_core::projection::{LeaseStore, PartitionedRunner, Partitions, RunnerOptions};
use cqrs_core::InMemoryEventStore;

use partition_support::{Book, Ledger};

/// Far longer than the test waits: leases gone within it were let go, not left to expire.
const TTL: Duration = Duration::from_secs(120);
const PATIENCE: Duration = Duration::from_secs(20);

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_dropped_partitioned_handle_stops_its_worker_and_lets_its_leases_go() {
    let store = InMemoryEventStore::new();
    let book = Arc::new(Mutex::new(Book::default()));
    let worker = PartitionedRunner::for_store(
        Ledger::new("dropped", &book),
        Partitions::by_stream(4),
        &store,
    )
    .with_options(
        RunnerOptions::new()
            .lease_ttl(TTL)
            .owner("w1")
            .poll_interval(Duration::from_millis(50)),
    )
    .spawn();
    worker
        .wait_until(PATIENCE, |s| s.leading().len() == 4)
        .await
        .expect("it leads its four partitions");
    assert!(!store.leases("ledger").await.expect("leases").is_empty());

    drop(worker);

    // Let go on the way out: a lease left to expire would outlive the wait.
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        let held = store.leases("ledger").await.expect("leases");
        if held.is_empty() {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "still held after the handle was dropped: {held:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
