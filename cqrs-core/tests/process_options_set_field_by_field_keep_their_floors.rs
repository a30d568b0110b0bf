//! `ProcessOptions`' fields are public, so a caller can set them without the builder's
//! floors: `concurrency = 0` drove no instance of a batch and reported it applied (every
//! routed event was dropped, no order ever started), and `timer_batch = 0` made the timer
//! pump take nothing, call it a full batch and look again at once, for good (no timeout
//! fired). The process manager applies the floors itself.

mod process_support;

use std::time::Duration;

use cqrs_core::process::{InstanceState, ProcessManagerProjection, ProcessOptions, ProcessStore};
use cqrs_core::projection::RunnerOptions;
use cqrs_core::testing::TestClock;
use cqrs_core::{InMemoryEventStore, SharedClock};
use process_support::{eventually, place, total, Shop};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_concurrency_of_zero_still_drives_every_instance() {
    let store = InMemoryEventStore::new();
    place(&store, 1, 30, 0).await;
    let mut options = ProcessOptions::default();
    options.concurrency = 0;
    let handle = ProcessManagerProjection::<process_support::Checkout, _, _>::new(
        store.clone(),
        Shop::new(&store),
        options,
    )
    .runner()
    .spawn();
    eventually("the order completes", || async {
        store
            .instance("checkout", "1")
            .await
            .expect("read")
            .is_some_and(|r| r.state == InstanceState::Completed)
    })
    .await;
    handle.shutdown().await;
    assert_eq!(total(&store, "pay-1").await, 30);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_timer_batch_of_zero_still_fires_timeouts() {
    let store = InMemoryEventStore::new();
    let clock = TestClock::new();
    let mut options = ProcessOptions::default()
        .clock(SharedClock::new(clock.clone()))
        .timer_poll(Duration::from_millis(10));
    options.timer_batch = 0;
    // The reserve is forwarded and never answered, so the order expires after 60 s.
    let mut shop = Shop::new(&store);
    shop.forward_stock = true;
    place(&store, 1, 30, 0).await;
    let handle = ProcessManagerProjection::<process_support::Checkout, _, _>::new(
        store.clone(),
        shop,
        options,
    )
    .runner_with(RunnerOptions::new().owner("worker-1"))
    .spawn();
    eventually("the reserve is forwarded", || async {
        store
            .instance("checkout", "1")
            .await
            .expect("read")
            .is_some_and(|r| r.pending_commands == 1 && r.next_timeout_at.is_some())
    })
    .await;
    clock.advance(Duration::from_secs(61));
    eventually("the expiry refunds", || async {
        total(&store, "refund-1").await == 30
    })
    .await;
    handle.shutdown().await;
}
