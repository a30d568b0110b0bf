//! One decision per input, however often it comes: the triggers are delivered five times to
//! each of two process-manager projections on one store, concurrently, and then once more
//! by a runner. Each input is recorded once with its decision, and each command lands once.

mod process_support;

use cqrs_core::process::{InstanceState, ProcessManagerProjection, ProcessOptions, ProcessStore};
use cqrs_core::projection::Projection;
use cqrs_core::testing::TestClock;
use cqrs_core::{InMemoryEventStore, Position, ReadAll, SharedClock};
use process_support::{assert_each_command_once, recorded_inputs, row, total, Checkout, Shop};
use std::time::Duration;

const ORDERS: u64 = 12;

fn projection(
    store: &InMemoryEventStore,
) -> ProcessManagerProjection<Checkout, InMemoryEventStore, Shop> {
    let options = ProcessOptions::default()
        .clock(SharedClock::new(TestClock::new()))
        .timer_poll(Duration::from_millis(10));
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
