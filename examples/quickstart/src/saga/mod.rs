//! The order saga, twice, on the framework's process managers
//! ([`cqrs_core::process`]): each runs as a projection on the one engine, records what it
//! received and decided in its own stream, sends commands with derived ids (each step lands
//! once), and keeps its timeouts in the store.
//!
//! - [`orchestrated::OrderFulfilment`]: one process manager that knows the whole flow (pay,
//!   reserve line by line, ask a carrier, ship; compensate on a refusal, a shortage or a
//!   carrier that never answers);
//! - [`choreographed`]: the same flow as three small policies, one per service, that only know
//!   their own step and find each other's events by correlation id;
//! - [`commands`]: the commands they send, the rejections they hear back, and the
//!   [`Shop`] as their dispatcher.

pub mod choreographed;
pub mod commands;
pub mod orchestrated;

use std::time::Duration;

use cqrs_core::process::{
    InstanceCounts, ProcessManager, ProcessManagerProjection, ProcessManagerStore, ProcessOptions,
    ProcessStore,
};
use cqrs_core::projection::{ProjectionRunner, RunnerOptions};
use cqrs_core::{Aggregate, BoxError, Clock, Error, RecordedEvent, SharedClock};

use crate::inventory::{Inventory, InventoryEvent};
use crate::order::{Order, OrderEvent};
use crate::payment::{CardLimits, Payment, PaymentEvent};
use crate::shipping::{Shipment, ShipmentEvent};
use crate::shop::Shop;
use commands::{ShopCommand, ShopRejection};

/// The runner of process manager `P` on `store`, sending its commands through a [`Shop`] on the
/// same store (asking `cards` about payments): checkpoint, lease and dead letters under
/// `"process:{TYPE}"`. Spawn it, or `catch_up`.
///
/// ```
/// use cqrs_core::process::ProcessOptions;
/// use cqrs_core::InMemoryEventStore;
/// use quickstart::payment::CardLimits;
/// use quickstart::saga::{self, orchestrated::OrderFulfilment};
///
/// # #[tokio::main]
/// # async fn main() {
/// let store = InMemoryEventStore::new();
/// let options = ProcessOptions::default();
/// let fulfilment = saga::runner::<OrderFulfilment, _>(&store, CardLimits::new(), options);
/// let handle = fulfilment.spawn();
/// // ... place orders: the saga takes each from placed to shipped or cancelled.
/// handle.shutdown().await;
/// # }
/// ```
pub fn runner<P, S>(store: &S, cards: CardLimits, options: ProcessOptions) -> ProjectionRunner
where
    P: ProcessManager<Command = ShopCommand, Rejection = ShopRejection>,
    S: ProcessManagerStore,
{
    runner_with::<P, S>(store, cards, options, RunnerOptions::new())
}

/// Like [`runner`], with the runner's own options (its owner, lease, batch size, checkpoint
/// name...).
pub fn runner_with<P, S>(
    store: &S,
    cards: CardLimits,
    options: ProcessOptions,
    runner: RunnerOptions,
) -> ProjectionRunner
where
    P: ProcessManager<Command = ShopCommand, Rejection = ShopRejection>,
    S: ProcessManagerStore,
{
    let shop = Shop::new(store.clone(), cards);
    ProcessManagerProjection::<P, S, Shop<S>>::new(store.clone(), shop, options).runner_with(runner)
}

/// An event of one of the shop's aggregates, decoded: what the shop's process managers react to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ShopEvent {
    /// Of an order.
    Order(OrderEvent),
    /// Of an item's stock.
    Stock(InventoryEvent),
    /// Of a payment.
    Payment(PaymentEvent),
    /// Of a shipment.
    Shipping(ShipmentEvent),
}

impl ShopEvent {
    /// Decodes `event` by its stream's category; `None` for streams that are not the shop's.
    /// An event that does not decode is an error (the process manager parks it).
    pub fn decode(event: &RecordedEvent) -> Result<Option<Self>, Error> {
        let category = event.stream_id.category();
        Ok(Some(if category == Order::TYPE {
            Self::Order(event.decode()?)
        } else if category == Inventory::TYPE {
            Self::Stock(event.decode()?)
        } else if category == Payment::TYPE {
            Self::Payment(event.decode()?)
        } else if category == Shipment::TYPE {
            Self::Shipping(event.decode()?)
        } else {
            return Ok(None);
        }))
    }
}

/// Waits until `count` instances of `process` have finished (completed or failed) and none is
/// running, reading the store's status rows (at `clock`'s time) until `within` has passed.
/// Returns the last counts.
pub async fn finished<S: ProcessStore>(
    store: &S,
    process: &str,
    count: u64,
    clock: &SharedClock,
    within: Duration,
) -> Result<InstanceCounts, BoxError> {
    // `None`: too far off to fall due (`Duration::MAX`).
    let deadline = tokio::time::Instant::now().checked_add(within);
    loop {
        let counts =
            (store.instance_counts(process, clock.now(), Duration::from_secs(3600))).await?;
        if counts.running == 0 && counts.completed + counts.failed >= count {
            return Ok(counts);
        }
        if deadline.is_some_and(|deadline| tokio::time::Instant::now() > deadline) {
            let waited = within.as_secs_f64();
            return Err(format!(
                "{process}: {count} instances not finished in {waited} s: {counts:?}"
            )
            .into());
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}
