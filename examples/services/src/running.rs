//! [`Services`]: the four services started together (each on its own store), and their stores.

use cqrs_core::process::ProcessOptions;
use cqrs_core::BoxError;
use cqrs_kafka::KafkaConfig;
use cqrs_postgres::PgEventStore;
use quickstart::carrier::Answers;
use quickstart::payment::CardLimits;

use crate::contracts::Topics;
use crate::inventory::InventoryService;
use crate::order::OrderService;
use crate::payment::PaymentService;
use crate::shipping::ShippingService;

/// One store per service: its own PostgreSQL schema (database per service).
#[derive(Clone, Debug)]
pub struct Stores {
    /// Orders, the saga's journal, the partners' events it was told of.
    pub order: PgEventStore,
    /// Payments.
    pub payment: PgEventStore,
    /// Stock.
    pub inventory: PgEventStore,
    /// Shipments and the carrier.
    pub shipping: PgEventStore,
}

impl Stores {
    /// Fresh schemas `{prefix}_order`, `{prefix}_payment`, `{prefix}_inventory` and
    /// `{prefix}_shipping` on the database at `url` (dropped and migrated again first).
    pub async fn fresh(url: &str, prefix: &str) -> Result<Self, BoxError> {
        let store = |name: &str| {
            let schema = format!("{prefix}_{name}");
            async move { quickstart::postgres::fresh_store(url, &schema).await }
        };
        Ok(Self {
            order: store("order").await?,
            payment: store("payment").await?,
            inventory: store("inventory").await?,
            shipping: store("shipping").await?,
        })
    }
}

/// How the services behave: the card issuer's limits, the carrier's answers, the saga's
/// options (its clock).
#[derive(Debug)]
pub struct ServicesOptions {
    /// The limits the payment service checks.
    pub cards: CardLimits,
    /// Which shipment requests the carrier answers.
    pub answers: Answers,
    /// The saga's options.
    pub process: ProcessOptions,
}

impl Default for ServicesOptions {
    fn default() -> Self {
        Self {
            cards: CardLimits::new(),
            answers: Answers::All,
            process: ProcessOptions::default(),
        }
    }
}

/// The four services, running.
#[derive(Debug)]
pub struct Services {
    /// Orders and the saga.
    pub order: OrderService,
    /// Payments.
    pub payment: PaymentService,
    /// Stock.
    pub inventory: InventoryService,
    /// Shipments and the carrier.
    pub shipping: ShippingService,
}

impl Services {
    /// Starts all four on `stores`, talking through `topics` on the brokers of `config`.
    pub fn start(
        stores: &Stores,
        config: &KafkaConfig,
        topics: &Topics,
        options: ServicesOptions,
    ) -> Result<Self, BoxError> {
        Ok(Self {
            payment: PaymentService::start(&stores.payment, config, topics, options.cards)?,
            inventory: InventoryService::start(&stores.inventory, config, topics)?,
            shipping: ShippingService::start(&stores.shipping, config, topics, options.answers)?,
            order: OrderService::start(&stores.order, config, topics, options.process)?,
        })
    }

    /// Every consumer's and runner's status, one per line: what an operator (or a test that
    /// waited in vain) reads first.
    pub fn status_report(&self) -> String {
        let projection = |name: &str, status: cqrs_core::projection::ProjectionStatus| {
            format!(
                "{name}: {} at {}, applied {}, parked {}, lag {} events{}\n",
                status.state,
                status.position,
                status.applied,
                status.parked,
                status.lag_events,
                status
                    .last_error
                    .map(|e| format!(", last error: {e}"))
                    .unwrap_or_default()
            )
        };
        // A consumer's line, then each partition that is not caught up.
        let consumer = |name: &str, status: cqrs_kafka::consume::ConsumerStatus| {
            let mut lines = format!("{name}: {status}\n");
            for p in status.partitions.iter().filter(|p| p.lag != Some(0)) {
                lines += &format!(
                    "  {}/{}: assigned {}, handled up to {:?}, committed {:?}, high water {:?}, lag {:?}\n",
                    p.topic, p.partition, p.assigned, p.handled_up_to, p.committed, p.high_water, p.lag
                );
            }
            lines
        };
        let mut report = String::new();
        report += &projection("order saga", self.order.saga.status());
        report += &consumer("order replies", self.order.replies.status());
        report += &consumer("order partner events", self.order.partners.status());
        report += &consumer("payment commands", self.payment.commands.status());
        report += &projection("payment publisher", self.payment.publisher.status());
        report += &consumer("inventory commands", self.inventory.commands.status());
        report += &consumer("shipping commands", self.shipping.commands.status());
        report += &projection("shipping carrier", self.shipping.carrier.status());
        report += &projection("shipping publisher", self.shipping.publisher.status());
        report
    }

    /// Stops all four.
    pub async fn shutdown(self) {
        self.order.shutdown().await;
        self.payment.shutdown().await;
        self.inventory.shutdown().await;
        self.shipping.shutdown().await;
    }
}
