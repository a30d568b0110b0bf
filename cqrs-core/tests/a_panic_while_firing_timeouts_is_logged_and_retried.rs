//! The timer pump runs a store's and a clock's code, which may be a user's own. A panic in
//! one firing is logged and retried after the retry policy's delay, like a store error: it
//! does not end the pump, which nothing awaits, so every later timeout of the process would
//! go unfired while the worker looked healthy.

mod process_support;

use std::sync::Arc;
use std::time::Duration;

use cqrs_core::process::{ProcessManagerProjection, ProcessOptions, ProcessStore};
use cqrs_core::projection::{ProjectionRunner, ProjectionState, ProjectionStore, RunnerOptions};
use cqrs_core::testing::TestClock;
use cqrs_core::{InMemoryEventStore, SharedClock};
use process_support::{eventually, place, total, Checkout, Probe, Probed, Shop};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panic_while_firing_timeouts_is_logged_and_retried() {
    let store = Probed {
        inner: InMemoryEventStore::new(),
        probe: Arc::new(Probe::default()),
    };
    let clock = TestClock::new();
    let options = ProcessOptions::default()
        .clock(SharedClock::new(clock.clone()))
        .timer_poll(Duration::from_millis(10));
    // The reserve is forwarded and never answered, so the order expires after 60 s.
    let mut shop = Shop::new(&store.inner);
    shop.forward_stock = true;
    place(&store.inner, 1, 30, 0).await;
    let projection = ProcessManagerProjection::<Checkout, _, _>::new(store.clone(), shop, options);
    let handle = ProjectionRunner::new(projection, store.clone(), store.clone())
        .with_signal(store.signal())
        .with_options(RunnerOptions::new().poll_interval(Duration::from_millis(10)))
        .spawn();
    eventually("the reserve is forwarded", || async {
        ProcessStore::instance(&store.inner, "checkout", "1")
            .await
            .expect("read")
            .is_some_and(|r| r.pending_commands == 1 && r.next_timeout_at.is_some())
    })
    .await;

    store.probe.panic_next_fire();
    eventually("the pump to reach the panic", || async {
        !store.probe.fire_panic_pending()
    })
    .await;
    clock.advance(Duration::from_secs(61));
    eventually("the expiry refunds after the panic", || async {
        total(&store.inner, "refund-1").await == 30
    })
    .await;
    assert_eq!(handle.status().state, ProjectionState::Running);
    handle.shutdown().await;
}
