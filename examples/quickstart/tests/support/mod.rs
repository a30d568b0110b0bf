//! What the saga tests share: a stocked shop on the in-memory store, the saga's runners on a
//! `TestClock`, and waiting for them with a deadline.

#![allow(dead_code)] // each test file uses its own part

use std::time::Duration;

use cqrs_core::process::{InstanceCounts, ProcessManager, ProcessOptions};
use cqrs_core::projection::ProjectionHandle;
use cqrs_core::testing::TestClock;
use cqrs_core::{InMemoryEventStore, SharedClock};
use quickstart::carrier::{Answers, Carrier};
use quickstart::inventory::InventoryCommand;
use quickstart::order::{OrderCommand, OrderLine};
use quickstart::payment::CardLimits;
use quickstart::saga::commands::{ShopCommand, ShopRejection};
use quickstart::saga::{self};
use quickstart::shop::Shop;

/// How long a test waits for the saga.
pub(crate) const PATIENCE: Duration = Duration::from_secs(10);

/// Carol may spend 50.00 at most.
pub(crate) fn cards() -> CardLimits {
    CardLimits::new().limit("carol", 50_00)
}

/// A shop on a fresh in-memory store with 10 widgets and 5 gadgets.
pub(crate) async fn stocked_shop() -> Shop<InMemoryEventStore> {
    let shop = Shop::new(InMemoryEventStore::new(), cards());
    for (sku, quantity) in [("widget", 10), ("gadget", 5)] {
        shop.stock
            .execute(sku, &InventoryCommand::Restock { quantity })
            .await
            .expect("restock");
    }
    shop
}

/// Process managers running on a shop's store, on a test clock, with the carrier.
pub(crate) struct Running {
    /// The process clock.
    pub(crate) clock: TestClock,
    handles: Vec<ProjectionHandle>,
}

impl Running {
    /// The process clock, shared.
    pub(crate) fn shared_clock(&self) -> SharedClock {
        SharedClock::new(self.clock.clone())
    }

    /// Stops every runner.
    pub(crate) async fn stop(self) {
        for handle in self.handles {
            handle.shutdown().await;
        }
    }
}

/// Options on `clock`: the pump looks every 10 ms, so an advanced clock fires soon.
pub(crate) fn options(clock: &TestClock) -> ProcessOptions {
    ProcessOptions::default()
        .clock(SharedClock::new(clock.clone()))
        .timer_poll(Duration::from_millis(10))
}

/// Starts the carrier and `start`'s process managers on `store`.
pub(crate) fn start(
    store: &InMemoryEventStore,
    answers: Answers,
    start: impl FnOnce(&InMemoryEventStore, &TestClock) -> Vec<ProjectionHandle>,
) -> Running {
    let clock = TestClock::new();
    let mut handles = start(store, &clock);
    handles.push(Carrier::new(store.clone(), answers).runner().spawn());
    Running { clock, handles }
}

/// The runner of `P` on `store`, spawned.
pub(crate) fn spawn<P>(store: &InMemoryEventStore, clock: &TestClock) -> ProjectionHandle
where
    P: ProcessManager<Command = ShopCommand, Rejection = ShopRejection>,
{
    saga::runner::<P, _>(store, cards(), options(clock)).spawn()
}

/// Places order `id`.
pub(crate) async fn place(
    shop: &Shop<InMemoryEventStore>,
    id: &str,
    customer: &str,
    lines: Vec<OrderLine>,
) {
    let place = OrderCommand::Place {
        customer: customer.into(),
        lines,
    };
    shop.orders.execute(id, &place).await.expect("placed");
}

/// Waits until `count` instances of `P` finished and none runs.
pub(crate) async fn finished<P: ProcessManager>(
    store: &InMemoryEventStore,
    running: &Running,
    count: u64,
) -> InstanceCounts {
    saga::finished(store, P::TYPE, count, &running.shared_clock(), PATIENCE)
        .await
        .expect("the saga finishes")
}

/// Waits until `check` holds, polling until a deadline.
pub(crate) async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + PATIENCE;
    while !check().await {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{what}: not within {PATIENCE:?}"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}
