//! [`ShopCommand`] and [`ShopRejection`]: what the shop's process managers send, and why an
//! aggregate refuses it; [`Shop`] delivers them as their [`CommandDispatcher`].

use async_trait::async_trait;
use cqrs_core::process::{CommandDispatcher, DispatchError, Dispatched};
use cqrs_core::{CommandContext, EventStore, SnapshotStore};
use serde::{Deserialize, Serialize};

use crate::inventory::{InventoryCommand, InventoryError};
use crate::order::{OrderCommand, OrderError};
use crate::payment::{PaymentCommand, PaymentError};
use crate::shipping::{ShipmentCommand, ShipmentError};
use crate::shop::Shop;

/// A command for one of the shop's aggregates: which one, and the command. Recorded in the
/// process managers' journals, so it is serde.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ShopCommand {
    /// To order `order_id`.
    Order {
        /// The order.
        order_id: String,
        /// The command.
        command: OrderCommand,
    },
    /// To the stock of `sku`.
    Stock {
        /// The item.
        sku: String,
        /// The command.
        command: InventoryCommand,
    },
    /// To the payment of order `order_id`.
    Payment {
        /// The order paid for.
        order_id: String,
        /// The command.
        command: PaymentCommand,
    },
    /// To the shipment of order `order_id`.
    Shipping {
        /// The order shipped.
        order_id: String,
        /// The command.
        command: ShipmentCommand,
    },
}

impl ShopCommand {
    /// `command` to order `order_id`.
    pub fn order(order_id: &str, command: OrderCommand) -> Self {
        Self::Order {
            order_id: order_id.to_owned(),
            command,
        }
    }

    /// `command` to the stock of `sku`.
    pub fn stock(sku: &str, command: InventoryCommand) -> Self {
        Self::Stock {
            sku: sku.to_owned(),
            command,
        }
    }

    /// `command` to the payment of order `order_id`.
    pub fn payment(order_id: &str, command: PaymentCommand) -> Self {
        Self::Payment {
            order_id: order_id.to_owned(),
            command,
        }
    }

    /// `command` to the shipment of order `order_id`.
    pub fn shipping(order_id: &str, command: ShipmentCommand) -> Self {
        Self::Shipping {
            order_id: order_id.to_owned(),
            command,
        }
    }
}

/// Why one of the shop's aggregates refused a command: its typed error, which `decide` reads to
/// compensate.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum ShopRejection {
    /// The order refused.
    #[error("the order refused")]
    Order(#[from] OrderError),
    /// The stock refused.
    #[error("the stock refused")]
    Stock(#[from] InventoryError),
    /// The payment refused.
    #[error("the payment refused")]
    Payment(#[from] PaymentError),
    /// The shipment refused.
    #[error("the shipment refused")]
    Shipping(#[from] ShipmentError),
}

#[async_trait]
impl<S> CommandDispatcher<ShopCommand> for Shop<S>
where
    S: EventStore + SnapshotStore + Clone + 'static,
{
    type Rejection = ShopRejection;

    async fn dispatch(
        &self,
        command: &ShopCommand,
        context: CommandContext,
    ) -> Result<Dispatched, DispatchError<ShopRejection>> {
        match command {
            ShopCommand::Order { order_id, command } => {
                self.orders.dispatch(order_id, command, context).await
            }
            ShopCommand::Stock { sku, command } => self.stock.dispatch(sku, command, context).await,
            ShopCommand::Payment { order_id, command } => {
                self.payments.dispatch(order_id, command, context).await
            }
            ShopCommand::Shipping { order_id, command } => {
                self.shipments.dispatch(order_id, command, context).await
            }
        }
    }
}
