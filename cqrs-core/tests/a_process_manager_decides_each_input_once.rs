//! One decision per input, however often it comes: the triggers are delivered five times to
//! each of two process-manager projections on one store, concurrently, and then once more
//! by a runner. Each input is recorded once with its decision, and each command lands once.

mod process_support;

use cqrs_core::process::{InstanceState, ProcessManagerProjection, ProcessOptions, ProcessStore};
use cqrs_core::projection::{Projection, RunnerOptions};
use cqrs_core::testing::TestClock;
use cqrs_core::{
    InMemoryEventStore, Position, ReadAll, SharedClock, SnapshotStore, StreamId, Version,
};
use process_support::{
    assert_each_command_once, eventually, place, recorded_inputs, row, stream, total, Checkout,
    Shop,
};
use std::time::Duration;

const ORDERS: u64 = 12;

fn projection(
    store: &InMemoryEventStore,
) -> ProcessManagerProjection<Checkout, InMemoryEventStore, Shop> {
    let options = ProcessOptions::default()
        .clock(SharedClock::new(TestClock::new()))
        .timer_poll(Duration::from_millis(10))
        .snapshot_every(2);
    ProcessManagerProjection::new(store.clone(), Shop::new(store), options)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn each_input_is_decided_once_and_each_command_lands_once() {
    let store = InMemoryEventStore::new();
    for n in 0..ORDERS {
        process_support::place(&store, n, 10 + n, n % 3).await;
    }
    let first = projection(&store);
    let second = projection(&store);
    let feed = store
        .read_all(Position::START, 1_000, &first.filter())
        .await
        .expect("read the feed")
        .events;
    assert_eq!(feed.len() as u64, ORDERS);

    for delivery in 0..5 {
        let (a, b) = tokio::join!(first.apply(&feed), second.apply(&feed));
        a.unwrap_or_else(|e| panic!("delivery {delivery}, first: {e}"));
        b.unwrap_or_else(|e| panic!("delivery {delivery}, second: {e}"));
    }
    // And once more through the engine, from the start of the feed.
    let handle = first.runner().spawn();
    let head = store.head().await.expect("head");
    handle
        .wait_for(head, Duration::from_secs(10))
        .await
        .expect("the runner catches up");
    handle.shutdown().await;

    let mut tallies = Vec::new();
    for n in 0..ORDERS {
        let instance = n.to_string();
        let inputs = recorded_inputs(&store, &instance).await;
        // Placed, then the charge's and the reserve's outcomes: each once.
        assert_eq!(inputs.len(), 3, "order {n}: {inputs:?}");
        let mut unique = inputs.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(
            unique.len(),
            inputs.len(),
            "order {n}: an input recorded twice"
        );
        let status = row(&store, &instance).await;
        assert_eq!(status.state, InstanceState::Completed, "order {n}");
        // A snapshot every 2 journal events: taken at 2 of 3, and the runner loaded from it.
        let snapshot = store
            .load_snapshot(&StreamId::new(format!("checkout-{n}")).expect("id"))
            .await
            .expect("read");
        assert_eq!(
            snapshot.map(|s| s.version),
            Some(Version::new(2)),
            "order {n}"
        );
        assert_eq!(status.pending_commands, 0);
        assert_eq!(total(&store, &format!("pay-{n}")).await, 10 + n);
        tallies.push(format!("pay-{n}"));
    }
    for sku in 0..3 {
        let expected: u64 = (0..ORDERS).filter(|n| n % 3 == sku).map(|n| 10 + n).sum();
        assert_eq!(
            total(&store, &format!("stock-{sku}")).await,
            expected,
            "sku {sku}"
        );
        tallies.push(format!("stock-{sku}"));
    }
    assert_each_command_once(&store, &tallies).await;
    // Every timeout was cancelled when its instance completed.
    for n in 0..ORDERS {
        let live = store
            .instance_timeouts("checkout", &n.to_string())
            .await
            .expect("read");
        assert!(live.is_empty(), "order {n}: {live:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fired_timeout_is_an_input_decided_once_too() {
    let store = InMemoryEventStore::new();
    let clock = TestClock::new();
    let options = || {
        ProcessOptions::default()
            .clock(SharedClock::new(clock.clone()))
            .timer_poll(Duration::from_millis(10))
    };
    // The reserve is forwarded and never answered, so the order expires after 60 s.
    let mut shop = Shop::new(&store);
    shop.forward_stock = true;
    place(&store, 1, 30, 0).await;
    let handle = ProcessManagerProjection::<Checkout, _, _>::new(store.clone(), shop, options())
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
    assert_eq!(total(&store, "refund-1").await, 0, "not yet due");

    clock.advance(Duration::from_secs(61));
    eventually("the expiry refunds", || async {
        total(&store, "refund-1").await == 30
    })
    .await;
    handle.shutdown().await;

    // The fired timeout is in the feed once; delivered three times more, it is decided once.
    let timers = store
        .read_all(
            Position::START,
            100,
            &cqrs_core::EventFilter::all().category("checkout_timer"),
        )
        .await
        .expect("read")
        .events;
    assert_eq!(timers.len(), 1);
    let mut shop = Shop::new(&store);
    shop.forward_stock = true;
    let again = ProcessManagerProjection::<Checkout, _, _>::new(store.clone(), shop, options());
    for _ in 0..3 {
        again.apply(&timers).await.expect("applied");
    }
    let journal = stream(&store, "checkout-1").await;
    let timeouts = journal
        .iter()
        .filter(|e| e.payload["kind"]["type"] == "timeout")
        .count();
    assert_eq!(timeouts, 1);
    assert_eq!(total(&store, "refund-1").await, 30);
    let status = row(&store, "1").await;
    // Complete waits for the forwarded reserve's answer.
    assert_eq!(status.state, InstanceState::Running);
    assert_eq!(status.next_timeout_at, None);
    assert_eq!(status.last_input, "accepted Add");
}
