//! Run it: `cargo run -p services`, with `DATABASE_URL` (PostgreSQL: schemas `services_order`,
//! `services_payment`, `services_inventory` and `services_shipping`, emptied first) and
//! `KAFKA_BOOTSTRAP_SERVERS` (a broker; `scripts/kafka.sh start` runs one and prints the line to
//! export). The four services start in this one process, each on its own schema, talking only
//! through the bus; a dozen orders are placed, and the run ends with what became of each.

use std::time::Duration;

use cqrs_core::process::ProcessManager;
use cqrs_core::{BoxError, Repository, SharedClock, SystemClock};
use cqrs_kafka::testing::TestBroker;
use cqrs_kafka::KafkaConfig;
use quickstart::inventory::{Inventory, InventoryCommand};
use quickstart::order::{Order, OrderCommand, OrderLine};
use quickstart::payment::{CardLimits, Payment};
use quickstart::saga::orchestrated::OrderFulfilment;
use services::contracts::Topics;
use services::{Services, ServicesOptions, Stores};

const SKUS: [(&str, u64); 3] = [("apple", 100), ("bolt", 100), ("rare", 3)];

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    let database = std::env::var("DATABASE_URL")
        .map_err(|_| "set DATABASE_URL (scripts/postgres.sh start prints the line to export)")?;
    let config = KafkaConfig::from_env()?;
    println!(
        "cqrs services: order, payment, inventory and shipping, one schema each, on the bus\n"
    );
    let stores = Stores::fresh(&database, "services").await?;
    let broker = TestBroker::new(config.clone())?;
    let topics = Topics::create(&broker, 3).await?;

    // The inventory service's own stock.
    let stock: Repository<Inventory, _> = Repository::new(stores.inventory.clone());
    for (sku, quantity) in SKUS {
        stock
            .execute(sku, &InventoryCommand::Restock { quantity })
            .await?;
    }
    let options = ServicesOptions {
        // Mallory's card takes at most 10.00.
        cards: CardLimits::new().limit("mallory", 1_000),
        ..ServicesOptions::default()
    };
    let services = Services::start(&stores, &config, &topics, options)?;

    // The order service takes a dozen orders.
    let orders: Repository<Order, _> = Repository::new(stores.order.clone());
    let customers = ["ada", "grace", "mallory", "linus"];
    let count = 12;
    for n in 0..count {
        let customer = customers[n % customers.len()];
        let mut lines = vec![
            OrderLine::new("apple", 2, 150),
            OrderLine::new("bolt", 1, 900),
        ];
        if n % 5 == 1 {
            lines.push(OrderLine::new("rare", 2, 2_500));
        }
        let place = OrderCommand::Place {
            customer: customer.to_owned(),
            lines,
        };
        orders.execute(&format!("o{n}"), &place).await?;
    }
    let clock = SharedClock::new(SystemClock);
    let counts = quickstart::saga::finished(
        &stores.order,
        OrderFulfilment::TYPE,
        u64::try_from(count)?,
        &clock,
        Duration::from_secs(60),
    )
    .await?;
    services.shutdown().await;

    let payments: Repository<Payment, _> = Repository::new(stores.payment.clone());
    for n in 0..count {
        let id = format!("o{n}");
        let (order, _) = orders.load(&id).await?;
        let (payment, _) = payments.load(&id).await?;
        let why = order
            .cancel_reason
            .as_ref()
            .map(|r| format!(" ({r})"))
            .unwrap_or_default();
        println!(
            "order {id:<4} {:<9} {:>8}  payment {:?}{why}",
            order.status.to_string(),
            quickstart::money(order.total()),
            payment.status
        );
    }
    for (sku, quantity) in SKUS {
        let (item, _) = stock.load(sku).await?;
        println!(
            "stock {sku:<6} {} on hand of {quantity}, {} reserved",
            item.on_hand,
            item.reserved_total()
        );
    }
    println!(
        "\nsaga instances: {} completed, {} failed",
        counts.completed, counts.failed
    );
    broker.delete_topics().await?;
    Ok(())
}
