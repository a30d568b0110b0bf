//! A change of partition count is a migration, not a rolling update: workers of two counts
//! split the events differently, so some stream would be applied by two of them at once and
//! some by none. Before, a worker of the new count simply joined: the running workers gave it
//! a share of their partitions, and it ran its own. A worker whose count differs from that of
//! the partitions led now stays out of the membership (no member lease: the running workers
//! give it nothing), says which count it waits on, and runs its partitions once every
//! partition of the old count was let go.

mod partition_support;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use cqrs_core::projection::{PartitionedRunner, Partitions, RunnerOptions};
use cqrs_core::InMemoryEventStore;

use partition_support::{all_applied, write, Book, Ledger};

const TTL: Duration = Duration::from_millis(900);
const PATIENCE: Duration = Duration::from_secs(20);

fn options(worker: &str) -> RunnerOptions {
    RunnerOptions::new()
        .lease_ttl(TTL)
        .owner(worker)
        .batch_size(20)
        .poll_interval(Duration::from_millis(50))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_worker_of_another_partition_count_waits_until_the_old_count_is_let_go() {
    let store = InMemoryEventStore::new();
    let stop = Arc::new(AtomicBool::new(false));
    let writer = tokio::spawn(write(
        store.clone(),
        20,
        stop.clone(),
        Duration::from_millis(5),
    ));
    let old_book = Arc::new(Mutex::new(Book::default()));
    let old = PartitionedRunner::for_store(
        Ledger::new("old", &old_book),
        Partitions::by_stream(4),
        &store,
    )
    .with_options(options("old"))
    .spawn();
    old.wait_until(PATIENCE, |s| s.leading().len() == 4)
        .await
        .expect("the old count's worker leads its four partitions");

    let new_book = Arc::new(Mutex::new(Book::default()));
    let new = PartitionedRunner::for_store(
        Ledger::new("new", &new_book),
        Partitions::by_stream(8),
        &store,
    )
    .with_options(options("new"))
    .spawn();
    new.wait_until(PATIENCE, |s| s.waiting_for_count == Some(4))
        .await
        .expect("the new worker says it waits on the four partitions led");
    // Two lease times: the old worker would have seen it join and handed it a share by now.
    tokio::time::sleep(TTL * 2).await;
    let (old_now, new_now) = (old.status(), new.status());
    assert_eq!(old_now.members, ["old"], "{old_now:?}");
    assert_eq!(old_now.leading().len(), 4, "{old_now:?}");
    assert!(new_now.partitions.is_empty(), "{new_now:?}");
    assert_eq!(
        new_book.lock().unwrap().applied,
        0,
        "the new count applied nothing"
    );

    // The old count stops (a migration's first step): the new one runs all eight.
    stop.store(true, Ordering::SeqCst);
    let expected = writer.await.unwrap();
    old.shutdown().await;
    let status = new
        .wait_until(PATIENCE, |s| s.leading().len() == 8)
        .await
        .expect("the new count runs once the old one was let go");
    assert_eq!(status.waiting_for_count, None);
    assert!(
        all_applied(&new_book, &expected, PATIENCE).await,
        "the new count replays every event"
    );
    let counts = {
        let book = new_book.lock().unwrap();
        (book.overlaps, book.gaps, book.duplicates)
    };
    assert_eq!(counts, (0, 0, 0), "overlaps, gaps, duplicates");
    new.shutdown().await;
}
