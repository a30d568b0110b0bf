//! [`Shop`]: the command side of the application, one [`Repository`] per aggregate.

use cqrs_core::{EventStore, Repository, SnapshotPolicy, SnapshotStore};

use crate::inventory::Inventory;
use crate::order::Order;
use crate::payment::{CardLimits, Payment};
use crate::shipping::Shipment;

/// The repositories the application and the saga run commands through. They share one store.
pub struct Shop<S> {
    /// Orders, in streams `order-{id}`.
    pub orders: Repository<Order, S>,
    /// Stock, in streams `inventory-{sku}`.
    pub stock: Repository<Inventory, S>,
    /// Payments, in streams `payment-{order id}`.
    pub payments: Repository<Payment, S>,
    /// Shipments, in streams `shipment-{order id}`.
    pub shipments: Repository<Shipment, S>,
}

impl<S: EventStore + SnapshotStore + Clone> Shop<S> {
    /// The shop on `store`, asking `cards` about payments.
    pub fn new(store: S, cards: CardLimits) -> Self {
        Self {
            orders: Repository::new(store.clone()),
            // A busy item's stream grows long: a snapshot every 100 events keeps loads short.
            stock: Repository::new(store.clone()).with_snapshots(SnapshotPolicy::every(100)),
            payments: Repository::with_services(store.clone(), cards),
            shipments: Repository::new(store),
        }
    }

    /// The store.
    pub fn store(&self) -> &S {
        self.orders.store()
    }
}
