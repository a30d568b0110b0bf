//! A consumer service for the kill test: the integration consumer adding `TallyAdded`
//! messages to tallies in a PostgreSQL schema, run until it is killed.
//!
//! ```text
//! DATABASE_URL=... KAFKA_BOOTSTRAP_SERVERS=... BUS_CHILD_SCHEMA=it_... BUS_CHILD_TOPIC=...
//! BUS_CHILD_GROUP=... cargo run -p integration-tests --bin bus_consumer_child
//! ```
//!
//! With `BUS_CHILD_HANDLER=ticks` it adds published `Tick`s instead (`TickHandler`, for the
//! publisher-and-consumer kill test).
//!
//! It is a static group member (`group.instance.id`): a restarted child takes its killed
//! predecessor's place at once instead of waiting for the group to time the dead one out.

use std::sync::Arc;
use std::time::Duration;

use cqrs_kafka::consume::IntegrationHandler;
use cqrs_kafka::consume::{ConsumerOptions, IntegrationConsumer};
use cqrs_kafka::KafkaConfig;
use cqrs_postgres::{PgEventStore, PgSchema};
use integration_tests::bus::{TallyHandler, TickHandler};

fn var(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| panic!("{name} is not set"))
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let pool = sqlx::postgres::PgPoolOptions::new()
        .max_connections(4)
        .connect(&var("DATABASE_URL"))
        .await
        .expect("connect to DATABASE_URL");
    let schema = PgSchema::new(&var("BUS_CHILD_SCHEMA")).expect("a schema name");
    let store = PgEventStore::new(pool).with_schema(schema);
    let group = var("BUS_CHILD_GROUP");
    let config = KafkaConfig::from_env()
        .expect("KAFKA_BOOTSTRAP_SERVERS")
        .with_setting("group.instance.id", format!("{group}-child"))
        .with_setting("session.timeout.ms", "6000")
        .with_setting("heartbeat.interval.ms", "1000");
    let topic = var("BUS_CHILD_TOPIC");
    let ticks = std::env::var("BUS_CHILD_HANDLER").is_ok_and(|h| h == "ticks");
    let handler: Box<dyn Fn(PgEventStore) -> IntegrationConsumer> = if ticks {
        Box::new(|store| consumer(&config, &group, &topic, TickHandler::new(store)))
    } else {
        Box::new(|store| consumer(&config, &group, &topic, TallyHandler::new(store)))
    };
    let handle = handler(store.clone())
        .with_dead_letters(Arc::new(store))
        .with_options(ConsumerOptions::default().commit_interval(Duration::from_millis(100)))
        .spawn()
        .expect("spawn the consumer");
    println!("consuming {topic} as {group}");
    // Until killed; a consumer that stops by itself is a failure the parent sees.
    let status = handle
        .wait_until(Duration::from_secs(3600), |_| false)
        .await
        .expect_err("runs until killed");
    panic!("the consumer stopped: {status}");
}

fn consumer(
    config: &KafkaConfig,
    group: &str,
    topic: &str,
    handler: impl IntegrationHandler,
) -> IntegrationConsumer {
    IntegrationConsumer::new(config, group, &[topic], handler)
}
