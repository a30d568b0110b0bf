//! What crosses the bus between the shop's services: commands (one envelope per target
//! aggregate: the aggregate's id and its command), the integration events the order service
//! subscribes to, and the topics.

use cqrs_kafka::testing::TestBroker;
use cqrs_kafka::{IntegrationEvent, KafkaError};
use quickstart::inventory::InventoryCommand;
use quickstart::payment::PaymentCommand;
use quickstart::shipping::ShipmentCommand;
use serde::{Deserialize, Serialize};

/// A command to the payment of order `order_id` (topic [`Topics::payment_commands`]).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PaymentRequest {
    /// The order paid for (the payment's id, and the message key).
    pub order_id: String,
    /// The command.
    pub command: PaymentCommand,
}

impl IntegrationEvent for PaymentRequest {
    const TYPE: &'static str = "shop.payment.command.v1";
}

/// A command to the stock of `sku` (topic [`Topics::inventory_commands`]).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StockRequest {
    /// The item (the stock's id, and the message key).
    pub sku: String,
    /// The command.
    pub command: InventoryCommand,
}

impl IntegrationEvent for StockRequest {
    const TYPE: &'static str = "shop.inventory.command.v1";
}

/// A command to the shipment of order `order_id` (topic [`Topics::shipping_commands`]).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShipmentRequest {
    /// The order shipped (the shipment's id, and the message key).
    pub order_id: String,
    /// The command.
    pub command: ShipmentCommand,
}

impl IntegrationEvent for ShipmentRequest {
    const TYPE: &'static str = "shop.shipping.command.v1";
}

/// The issuer authorized an order's payment (published by the payment service).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PaymentAuthorized {
    /// The order.
    pub order_id: String,
    /// How much, in cents.
    pub amount: u64,
}

impl IntegrationEvent for PaymentAuthorized {
    const TYPE: &'static str = "shop.payment.authorized.v1";
}

/// The issuer refused an order's payment (published by the payment service).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PaymentRefused {
    /// The order.
    pub order_id: String,
    /// How much, in cents.
    pub amount: u64,
    /// Why.
    pub reason: String,
}

impl IntegrationEvent for PaymentRefused {
    const TYPE: &'static str = "shop.payment.refused.v1";
}

/// A carrier will pick an order up (published by the shipping service).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShipmentScheduled {
    /// The order.
    pub order_id: String,
    /// The carrier.
    pub carrier: String,
}

impl IntegrationEvent for ShipmentScheduled {
    const TYPE: &'static str = "shop.shipping.scheduled.v1";
}

/// The topics of one run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Topics {
    /// Commands to payments.
    pub payment_commands: String,
    /// Commands to stock.
    pub inventory_commands: String,
    /// Commands to shipments.
    pub shipping_commands: String,
    /// Outcomes of the order service's commands.
    pub order_replies: String,
    /// The payment service's public events.
    pub payment_events: String,
    /// The shipping service's public events.
    pub shipping_events: String,
}

impl Topics {
    /// Creates a fresh set of topics (unique names: runs never read each other's messages),
    /// with `partitions` partitions each.
    pub async fn create(broker: &TestBroker, partitions: i32) -> Result<Self, KafkaError> {
        Ok(Self {
            payment_commands: broker
                .create_topic("shop.payment.commands", partitions)
                .await?,
            inventory_commands: broker
                .create_topic("shop.inventory.commands", partitions)
                .await?,
            shipping_commands: broker
                .create_topic("shop.shipping.commands", partitions)
                .await?,
            order_replies: broker
                .create_topic("shop.order.replies", partitions)
                .await?,
            payment_events: broker
                .create_topic("shop.payment.events", partitions)
                .await?,
            shipping_events: broker
                .create_topic("shop.shipping.events", partitions)
                .await?,
        })
    }
}
