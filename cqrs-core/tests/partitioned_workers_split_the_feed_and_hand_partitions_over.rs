//! Partitioned workers on the in-memory store, each a task as it would be a process: they
//! split the partitions evenly, take a share when one joins, hand over when one leaves or
//! stops renewing its leases, and through it all every event is applied, in stream order,
//! never by two holders of one partition at once.

mod partition_support;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use cqrs_core::projection::{
    PartitionedHandle, PartitionedRunner, PartitionedStatus, Partitions, RunnerOptions,
};
use cqrs_core::{CheckpointStore, EventFilter, FencedSave, InMemoryEventStore, Position};

use partition_support::{all_applied, write, Book, Ledger, Pausable};

/// Long enough that no stall of a loaded machine ends a term (a term ended applies its
/// unsaved events again): the tests that count duplicates must not depend on the scheduler.
const TTL: Duration = Duration::from_secs(3);
const STREAMS: usize = 40;
/// How long a test waits for what should take a lease time or two (generous: CI is busy).
const PATIENCE: Duration = Duration::from_secs(20);

fn options(worker: &str) -> RunnerOptions {
    RunnerOptions::new()
        .lease_ttl(TTL)
        .owner(worker)
        .batch_size(20)
        .poll_interval(Duration::from_millis(50))
}

fn worker(store: &InMemoryEventStore, book: &Arc<Mutex<Book>>, id: &str) -> PartitionedHandle {
    PartitionedRunner::for_store(Ledger::new(id, book), Partitions::by_stream(8), store)
        .with_options(options(id))
        .spawn()
}

fn leading(handle: &PartitionedHandle) -> Vec<u32> {
    handle.status().leading()
}

/// Waits until the workers lead `shares` partitions (in any order when `any_order`), all
/// partitions led once.
async fn wait_for(
    workers: &[&PartitionedHandle],
    shares: &[usize],
    any_order: bool,
) -> Vec<Vec<u32>> {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    let mut wanted = shares.to_vec();
    if any_order {
        wanted.sort_unstable();
    }
    loop {
        let now: Vec<Vec<u32>> = workers.iter().map(|w| leading(w)).collect();
        let mut loads: Vec<usize> = now.iter().map(Vec::len).collect();
        if any_order {
            loads.sort_unstable();
        }
        let mut all: Vec<u32> = now.iter().flatten().copied().collect();
        all.sort_unstable();
        all.dedup();
        if loads == wanted && all.len() == shares.iter().sum::<usize>() {
            return now;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the workers never split {shares:?}: they lead {now:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Waits until worker `i` leads `shares[i]` partitions, all partitions led once.
async fn wait_for_split(workers: &[&PartitionedHandle], shares: &[usize]) -> Vec<Vec<u32>> {
    wait_for(workers, shares, false).await
}

fn check_book(book: &Arc<Mutex<Book>>, duplicates_allowed: bool) {
    let book = book.lock().unwrap();
    println!(
        "applied {} events ({} duplicates, {} gaps, {} overlaps), by worker {:?}",
        book.applied, book.duplicates, book.gaps, book.overlaps, book.by_worker
    );
    assert_eq!(
        book.overlaps, 0,
        "a partition was applied by two holders at once"
    );
    assert_eq!(
        book.gaps, 0,
        "an event was applied before an earlier one of its stream"
    );
    if !duplicates_allowed {
        assert_eq!(
            book.duplicates, 0,
            "a graceful handover applied events twice"
        );
    }
}

struct Writer {
    stop: Arc<AtomicBool>,
    task: tokio::task::JoinHandle<std::collections::HashMap<String, u64>>,
}

fn start_writer(store: &InMemoryEventStore) -> Writer {
    let stop = Arc::new(AtomicBool::new(false));
    let task = tokio::spawn(write(
        store.clone(),
        STREAMS,
        stop.clone(),
        Duration::from_millis(2),
    ));
    Writer { stop, task }
}

impl Writer {
    async fn finish(self) -> std::collections::HashMap<String, u64> {
        self.stop.store(true, Ordering::SeqCst);
        self.task.await.unwrap()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_workers_split_eight_partitions_four_and_four_and_apply_every_event_once() {
    let store = InMemoryEventStore::new();
    let book = Arc::new(Mutex::new(Book::default()));
    let writer = start_writer(&store);
    let a = worker(&store, &book, "a");
    let b = worker(&store, &book, "b");

    let split = wait_for_split(&[&a, &b], &[4, 4]).await;
    println!("a leads {:?}, b leads {:?}", split[0], split[1]);
    let expected = writer.finish().await;
    assert!(
        all_applied(&book, &expected, PATIENCE).await,
        "not every event was applied"
    );
    check_book(&book, false);
    // Each worker's view of the members catches up at its next look.
    let status: Option<PartitionedStatus> = a.wait_until(PATIENCE, |s| s.members.len() == 2).await;
    assert_eq!(
        status.map(|s| s.members),
        Some(vec!["a".to_owned(), "b".to_owned()])
    );

    // Status from the store, as any process reads it: each partition held, none behind.
    let report = Partitions::by_stream(8)
        .report(&store, "ledger", &EventFilter::all(), 10_000)
        .await
        .unwrap();
    for partition in &report {
        let holder = partition.lease.as_ref().map(|l| l.worker());
        assert!(matches!(holder, Some("a" | "b")), "{partition:?}");
    }
    a.shutdown().await;
    b.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_third_worker_takes_its_share_without_two_holders_applying_a_partition_at_once() {
    let store = InMemoryEventStore::new();
    let book = Arc::new(Mutex::new(Book::default()));
    let writer = start_writer(&store);
    let a = worker(&store, &book, "a");
    let b = worker(&store, &book, "b");
    wait_for_split(&[&a, &b], &[4, 4]).await;

    let joined = tokio::time::Instant::now();
    let c = worker(&store, &book, "c");
    let split = wait_for(&[&a, &b, &c], &[3, 3, 2], true).await;
    println!(
        "the third worker led its share {:?} after {:?}; split {split:?}",
        split[2],
        joined.elapsed()
    );
    let expected = writer.finish().await;
    assert!(
        all_applied(&book, &expected, PATIENCE).await,
        "not every event was applied"
    );
    check_book(&book, false);
    for w in [a, b, c] {
        w.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_worker_shut_down_hands_its_partitions_over_and_nothing_is_applied_twice() {
    let store = InMemoryEventStore::new();
    let book = Arc::new(Mutex::new(Book::default()));
    let writer = start_writer(&store);
    let a = worker(&store, &book, "a");
    let b = worker(&store, &book, "b");
    wait_for_split(&[&a, &b], &[4, 4]).await;

    let left = tokio::time::Instant::now();
    b.shutdown().await;
    wait_for_split(&[&a], &[8]).await;
    println!(
        "a led all 8 partitions {:?} after b shut down",
        left.elapsed()
    );
    let expected = writer.finish().await;
    assert!(
        all_applied(&book, &expected, PATIENCE).await,
        "not every event was applied"
    );
    check_book(&book, false);
    a.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_worker_whose_leases_stop_renewing_loses_its_partitions_after_the_ttl_and_its_late_saves_are_refused(
) {
    let store = InMemoryEventStore::new();
    let book = Arc::new(Mutex::new(Book::default()));
    let writer = start_writer(&store);
    let pausable = Pausable::new(&store);
    let a = PartitionedRunner::for_store(Ledger::new("a", &book), Partitions::by_stream(8), &store)
        .with_options(options("a"))
        .with_leases(pausable.clone())
        .spawn();
    let b = worker(&store, &book, "b");
    let split = wait_for_split(&[&a, &b], &[4, 4]).await;

    // `a` is cut off from its leases, as a paused process is: it cannot renew.
    pausable.paused.store(true, Ordering::SeqCst);
    let paused = tokio::time::Instant::now();
    wait_for_split(&[&a, &b], &[0, 8]).await;
    let took_over = paused.elapsed();
    println!("b led all 8 partitions {took_over:?} after a stopped renewing (ttl {TTL:?})");
    // b led them only once a's leases had expired: a's saves under them are refused now, and
    // no partition was applied by two holders at once (checked at the end).

    // Whatever `a` still tries to save under the leases it held is refused by the store.
    let held: Vec<_> = pausable
        .taken
        .lock()
        .unwrap()
        .iter()
        .filter(|l| split[0].iter().any(|i| l.name.ends_with(&format!("/{i}"))))
        .cloned()
        .collect();
    assert!(!held.is_empty());
    for lease in &held {
        let save = store
            .save_checkpoint_fenced(&lease.name, Position::from_parts(0, 1_000_000), lease)
            .await
            .unwrap();
        assert_eq!(
            save,
            FencedSave::LeaseLost,
            "a late save under {lease:?} went through"
        );
    }

    // Back again, `a` takes its share once more.
    pausable.paused.store(false, Ordering::SeqCst);
    wait_for_split(&[&a, &b], &[4, 4]).await;
    let expected = writer.finish().await;
    assert!(
        all_applied(&book, &expected, PATIENCE).await,
        "not every event was applied"
    );
    check_book(&book, true);
    a.shutdown().await;
    b.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_killed_worker_loses_its_partitions_within_a_lease_time_and_every_event_is_applied() {
    let store = InMemoryEventStore::new();
    let book = Arc::new(Mutex::new(Book::default()));
    let writer = start_writer(&store);
    let a = worker(&store, &book, "a");
    let b = worker(&store, &book, "b");
    wait_for_split(&[&a, &b], &[4, 4]).await;

    let killed = tokio::time::Instant::now();
    b.abort();
    wait_for_split(&[&a], &[8]).await;
    let rebalanced = killed.elapsed();
    println!("a led all 8 partitions {rebalanced:?} after b was killed (ttl {TTL:?})");
    let expected = writer.finish().await;
    assert!(
        all_applied(&book, &expected, PATIENCE).await,
        "not every event was applied"
    );
    check_book(&book, true);
    a.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_second_worker_given_a_taken_id_leads_nothing_and_says_why() {
    let store = InMemoryEventStore::new();
    let book = Arc::new(Mutex::new(Book::default()));
    let writer = start_writer(&store);
    let a = worker(&store, &book, "a");
    wait_for_split(&[&a], &[8]).await;

    let twin = worker(&store, &book, "a");
    let said = twin
        .wait_until(PATIENCE, |s| s.last_error.is_some())
        .await
        .and_then(|s| s.last_error);
    assert!(
        said.as_deref()
            .is_some_and(|e| e.contains("must be unique")),
        "{said:?}"
    );
    let expected = writer.finish().await;
    assert!(all_applied(&book, &expected, PATIENCE).await);
    assert_eq!(leading(&twin), Vec::<u32>::new(), "{:?}", twin.status());
    assert_eq!(leading(&a).len(), 8);
    check_book(&book, false);
    a.shutdown().await;
    twin.shutdown().await;
}
