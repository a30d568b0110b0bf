//! A change of partition count is a migration, not a rolling update: workers of two counts
//! split the events differently, so some stream would be applied by two of them at once and
//! some by none. Before, a worker of the new count simply joined: the running workers gave it
//! a share of their partitions, and it ran its own. A worker whose count differs from that of
//! the partitions led now stays out of the membership (no member lease: the running workers
//! give it nothing), says which count it waits on, and runs its partitions once every
//! partition of the old count was let go. Workers of two counts that both started (they
//! looked at the same moment, or one looked while the other's leases had expired) see each
//! other at their next look, and the count with fewer partitions led stops.

mod partition_support;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use cqrs_core::projection::{
    Lease, LeaseStore, PartitionedHandle, PartitionedRunner, Partitions, RunnerOptions,
};
use cqrs_core::InMemoryEventStore;

use partition_support::{all_applied, write, Book, Ledger};

/// Long enough that no stall of a loaded machine ends a term while the test looks at who
/// leads what.
const TTL: Duration = Duration::from_secs(3);
const PATIENCE: Duration = Duration::from_secs(20);

fn options(worker: &str) -> RunnerOptions {
    RunnerOptions::new()
        .lease_ttl(TTL)
        .owner(worker)
        .batch_size(20)
        .poll_interval(Duration::from_millis(50))
}

/// A worker of four partitions, once it leads all four.
async fn old_worker(store: &InMemoryEventStore) -> PartitionedHandle {
    let book = Arc::new(Mutex::new(Book::default()));
    let old =
        PartitionedRunner::for_store(Ledger::new("old", &book), Partitions::by_stream(4), store)
            .with_options(options("old"))
            .spawn();
    old.wait_until(PATIENCE, |s| s.leading().len() == 4)
        .await
        .expect("the old count's worker leads its four partitions");
    old
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
    let old = old_worker(&store).await;

    let new_book = Arc::new(Mutex::new(Book::default()));
    let new = PartitionedRunner::for_store(
        Ledger::new("new", &new_book),
        Partitions::by_stream(8),
        &store,
    )
    .with_options(options("new"))
    .spawn();
    new.wait_until(PATIENCE, |s| {
        s.waiting_for == Some(Partitions::by_stream(4))
    })
    .await
    .expect("the new worker says it waits on the four partitions led");
    // A lease time, three looks: the old worker would have seen it join and handed it a
    // share by now.
    tokio::time::sleep(TTL).await;
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
    assert_eq!(status.waiting_for, None);
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

/// The store's leases, except that while `blind`, a listing shows no partition of another
/// count than `count`: the worker looks as if at a moment when the other count held none.
#[derive(Clone)]
struct Blind {
    store: InMemoryEventStore,
    count: u32,
    blind: Arc<AtomicBool>,
}

#[async_trait]
impl LeaseStore for Blind {
    async fn try_acquire(
        &self,
        name: &str,
        owner: &str,
        ttl: Duration,
    ) -> cqrs_core::Result<Option<Lease>> {
        self.store.try_acquire(name, owner, ttl).await
    }

    async fn release(&self, lease: &Lease) -> cqrs_core::Result<()> {
        self.store.release(lease).await
    }

    async fn leases(&self, prefix: &str) -> cqrs_core::Result<Vec<Lease>> {
        let leases = self.store.leases(prefix).await?;
        if !self.blind.load(Ordering::SeqCst) {
            return Ok(leases);
        }
        Ok(leases
            .into_iter()
            .filter(|l| {
                Partitions::parse_name(&l.name)
                    .is_none_or(|(_, layout, _)| layout.count() == self.count)
            })
            .collect())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn workers_of_two_counts_that_both_started_leave_one_count_running() {
    let store = InMemoryEventStore::new();
    let old = old_worker(&store).await;

    // The new worker does not see the old count's partitions when it looks, and starts.
    let blind = Arc::new(AtomicBool::new(true));
    let new_book = Arc::new(Mutex::new(Book::default()));
    let new = PartitionedRunner::for_store(
        Ledger::new("new", &new_book),
        Partitions::by_stream(8),
        &store,
    )
    .with_leases(Blind {
        store: store.clone(),
        count: 8,
        blind: blind.clone(),
    })
    .with_options(options("new"))
    .spawn();
    new.wait_until(PATIENCE, |s| !s.leading().is_empty())
        .await
        .expect("the new count runs, blind to the old");
    blind.store(false, Ordering::SeqCst);

    // At their next looks, one count stops: the old (four partitions led against eight).
    old.wait_until(PATIENCE, |s| {
        s.partitions.is_empty() && s.waiting_for == Some(Partitions::by_stream(8))
    })
    .await
    .expect("the count with fewer partitions led stops and waits");
    tokio::time::sleep(TTL).await;
    let (old_now, new_now) = (old.status(), new.status());
    assert!(old_now.partitions.is_empty(), "{old_now:?}");
    assert_eq!(new_now.leading().len(), 8, "{new_now:?}");
    old.shutdown().await;
    new.shutdown().await;
}
