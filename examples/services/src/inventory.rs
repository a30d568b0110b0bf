//! The inventory service: runs stock commands from the bus on its own schema.

use std::sync::Arc;

use cqrs_core::{BoxError, Repository, SnapshotPolicy};
use cqrs_kafka::consume::{ConsumerHandle, IntegrationConsumer};
use cqrs_kafka::remote::CommandConsumer;
use cqrs_kafka::{KafkaConfig, KafkaProducer};
use cqrs_postgres::PgEventStore;
use quickstart::inventory::Inventory;
use quickstart::saga::commands::ShopRejection;

use crate::commands::Commands;
use crate::contracts::{StockRequest, Topics};

/// The CloudEvents source of the inventory service.
pub const SOURCE: &str = "/services/inventory";

/// The running inventory service.
#[derive(Debug)]
pub struct InventoryService {
    /// Runs the commands sent to stock.
    pub commands: ConsumerHandle,
}

impl InventoryService {
    /// Starts it on `store`.
    pub fn start(
        store: &PgEventStore,
        config: &KafkaConfig,
        topics: &Topics,
    ) -> Result<Self, BoxError> {
        let handler = Commands::<Inventory, StockRequest> {
            repository: Repository::new(store.clone()).with_snapshots(SnapshotPolicy::every(100)),
            split: |r| (r.sku, r.command),
            reject: ShopRejection::Stock,
        };
        let commands = IntegrationConsumer::new(
            config,
            &format!("inventory.{}", topics.inventory_commands),
            &[&topics.inventory_commands],
            CommandConsumer::new(handler, KafkaProducer::new(config)?, SOURCE),
        )
        .with_dead_letters(Arc::new(store.clone()))
        .spawn()?;
        Ok(Self { commands })
    }

    /// Stops it.
    pub async fn shutdown(self) {
        self.commands.shutdown().await;
    }
}
