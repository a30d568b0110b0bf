//! [`Inventory`]: the stock of one item, and what orders have reserved of it.

use std::collections::BTreeMap;

use cqrs_core::{Aggregate, DomainEvent};
use serde::{Deserialize, Serialize};

/// The stock of one item (one stream per SKU: `inventory-widget`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Inventory {
    /// Units in the warehouse, reserved or not.
    pub on_hand: u64,
    /// Units held for orders, by order id.
    pub reserved: BTreeMap<String, u64>,
}

impl Inventory {
    /// Units held for orders.
    pub fn reserved_total(&self) -> u64 {
        self.reserved.values().sum()
    }

    /// Units free to reserve.
    pub fn available(&self) -> u64 {
        self.on_hand.saturating_sub(self.reserved_total())
    }
}

/// What can be asked of an item's stock. Commands are serde: a process manager records the
/// ones it sends in its journal.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum InventoryCommand {
    /// A delivery arrived.
    Restock {
        /// Units delivered.
        quantity: u64,
    },
    /// Hold units for an order.
    Reserve {
        /// The order.
        order_id: String,
        /// Units to hold.
        quantity: u64,
    },
    /// Give back what an order held. Idempotent by order: nothing happens if it holds nothing
    /// (never reserved, released or shipped already), so a compensation may run more than once.
    Release {
        /// The order.
        order_id: String,
    },
    /// Send what an order holds: its reserved units leave the warehouse.
    Ship {
        /// The order.
        order_id: String,
    },
}

/// What happens to an item's stock.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, DomainEvent)]
pub enum InventoryEvent {
    /// Units arrived.
    Restocked {
        /// How many.
        quantity: u64,
    },
    /// Units are held for an order.
    StockReserved {
        /// The order.
        order_id: String,
        /// How many.
        quantity: u64,
    },
    /// An order's units are free again.
    StockReleased {
        /// The order.
        order_id: String,
        /// How many.
        quantity: u64,
    },
    /// An order's units left the warehouse.
    StockShipped {
        /// The order.
        order_id: String,
        /// How many.
        quantity: u64,
    },
}

/// Why an item's stock refuses a command.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum InventoryError {
    /// A restock or reservation of zero units.
    #[error("the quantity must be at least 1")]
    ZeroQuantity,
    /// Fewer units free than asked for.
    #[error("{requested} wanted, {available} available")]
    InsufficientStock {
        /// Units asked for.
        requested: u64,
        /// Units free.
        available: u64,
    },
    /// The order already holds units of this item.
    #[error("order {order_id} already holds this item")]
    AlreadyReserved {
        /// The order.
        order_id: String,
    },
    /// `Ship` for an order that holds none of this item.
    #[error("order {order_id} holds none of this item")]
    NotReserved {
        /// The order.
        order_id: String,
    },
}

impl Aggregate for Inventory {
    const TYPE: &'static str = "inventory";
    type Command = InventoryCommand;
    type Event = InventoryEvent;
    type Error = InventoryError;
    type Services = ();

    fn apply(&mut self, event: &InventoryEvent) {
        match event {
            InventoryEvent::Restocked { quantity } => {
                self.on_hand = self.on_hand.saturating_add(*quantity);
            }
            InventoryEvent::StockReserved { order_id, quantity } => {
                self.reserved.insert(order_id.clone(), *quantity);
            }
            InventoryEvent::StockReleased { order_id, .. } => {
                self.reserved.remove(order_id);
            }
            InventoryEvent::StockShipped { order_id, quantity } => {
                self.reserved.remove(order_id);
                self.on_hand = self.on_hand.saturating_sub(*quantity);
            }
        }
    }

    async fn handle(
        &self,
        command: &InventoryCommand,
        _: &(),
    ) -> Result<Vec<InventoryEvent>, InventoryError> {
        match command {
            InventoryCommand::Restock { quantity: 0 }
            | InventoryCommand::Reserve { quantity: 0, .. } => Err(InventoryError::ZeroQuantity),
            InventoryCommand::Restock { quantity } => Ok(vec![InventoryEvent::Restocked {
                quantity: *quantity,
            }]),
            InventoryCommand::Reserve { order_id, .. } if self.reserved.contains_key(order_id) => {
                Err(InventoryError::AlreadyReserved {
                    order_id: order_id.clone(),
                })
            }
            InventoryCommand::Reserve { quantity, .. } if *quantity > self.available() => {
                Err(InventoryError::InsufficientStock {
                    requested: *quantity,
                    available: self.available(),
                })
            }
            InventoryCommand::Reserve { order_id, quantity } => {
                Ok(vec![InventoryEvent::StockReserved {
                    order_id: order_id.clone(),
                    quantity: *quantity,
                }])
            }
            // Releasing is a compensation: it may run for an order that never got its units.
            InventoryCommand::Release { order_id } => Ok(self
                .reserved
                .get(order_id)
                .map(|&quantity| InventoryEvent::StockReleased {
                    order_id: order_id.clone(),
                    quantity,
                })
                .into_iter()
                .collect()),
            InventoryCommand::Ship { order_id } => match self.reserved.get(order_id) {
                Some(&quantity) => Ok(vec![InventoryEvent::StockShipped {
                    order_id: order_id.clone(),
                    quantity,
                }]),
                None => Err(InventoryError::NotReserved {
                    order_id: order_id.clone(),
                }),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cqrs_core::AggregateFixture;

    fn fixture() -> AggregateFixture<Inventory> {
        AggregateFixture::new(())
    }

    fn reserve(order_id: &str, quantity: u64) -> InventoryCommand {
        InventoryCommand::Reserve {
            order_id: order_id.into(),
            quantity,
        }
    }

    fn reserved(order_id: &str, quantity: u64) -> InventoryEvent {
        InventoryEvent::StockReserved {
            order_id: order_id.into(),
            quantity,
        }
    }

    #[tokio::test]
    async fn restocking_adds_units() {
        let item = fixture()
            .given([InventoryEvent::Restocked { quantity: 3 }])
            .when(&InventoryCommand::Restock { quantity: 2 })
            .await
            .then_expect_events([InventoryEvent::Restocked { quantity: 2 }]);
        assert_eq!(item.on_hand, 5);
        fixture()
            .when(&InventoryCommand::Restock { quantity: 0 })
            .await
            .then_expect_error(InventoryError::ZeroQuantity);
    }

    #[tokio::test]
    async fn a_reservation_holds_free_units() {
        let item = fixture()
            .given([InventoryEvent::Restocked { quantity: 5 }, reserved("1", 2)])
            .when(&reserve("2", 3))
            .await
            .then_expect_events([reserved("2", 3)]);
        assert_eq!((item.on_hand, item.available()), (5, 0));
    }

    #[tokio::test]
    async fn reserving_more_than_is_free_is_refused() {
        fixture()
            .given([InventoryEvent::Restocked { quantity: 5 }, reserved("1", 2)])
            .when(&reserve("2", 4))
            .await
            .then_expect_error(InventoryError::InsufficientStock {
                requested: 4,
                available: 3,
            });
        fixture()
            .when(&reserve("2", 0))
            .await
            .then_expect_error(InventoryError::ZeroQuantity);
    }

    #[tokio::test]
    async fn an_order_reserves_an_item_once() {
        fixture()
            .given([InventoryEvent::Restocked { quantity: 5 }, reserved("1", 2)])
            .when(&reserve("1", 1))
            .await
            .then_expect_error(InventoryError::AlreadyReserved {
                order_id: "1".into(),
            });
    }

    #[tokio::test]
    async fn releasing_frees_what_the_order_held_and_nothing_else() {
        let release = InventoryCommand::Release {
            order_id: "1".into(),
        };
        let item = fixture()
            .given([InventoryEvent::Restocked { quantity: 5 }, reserved("1", 2)])
            .when(&release)
            .await
            .then_expect_events([InventoryEvent::StockReleased {
                order_id: "1".into(),
                quantity: 2,
            }]);
        assert_eq!(item.available(), 5);
        fixture()
            .given([InventoryEvent::Restocked { quantity: 5 }])
            .when(&release)
            .await
            .then_expect_events([]);
    }

    #[tokio::test]
    async fn shipping_takes_what_the_order_held_out_of_the_warehouse() {
        let ship = InventoryCommand::Ship {
            order_id: "1".into(),
        };
        let item = fixture()
            .given([InventoryEvent::Restocked { quantity: 5 }, reserved("1", 2)])
            .when(&ship)
            .await
            .then_expect_events([InventoryEvent::StockShipped {
                order_id: "1".into(),
                quantity: 2,
            }]);
        assert_eq!((item.on_hand, item.available()), (3, 3));
        fixture()
            .given([InventoryEvent::Restocked { quantity: 5 }])
            .when(&ship)
            .await
            .then_expect_error(InventoryError::NotReserved {
                order_id: "1".into(),
            });
    }

    #[tokio::test]
    async fn a_release_after_shipping_gives_nothing_back() {
        let shipped = InventoryEvent::StockShipped {
            order_id: "1".into(),
            quantity: 2,
        };
        fixture()
            .given([
                InventoryEvent::Restocked { quantity: 5 },
                reserved("1", 2),
                shipped,
            ])
            .when(&InventoryCommand::Release {
                order_id: "1".into(),
            })
            .await
            .then_expect_events([]);
    }
}
