//! `kafka-bench`: the event-bus publisher against a raw producer, and the latency from an
//! append to a consumer receiving its message.
//!
//! Run it against a PostgreSQL server you may create databases on and a Kafka broker:
//!
//! ```text
//! eval "export $(scripts/postgres.sh start | tail -n1)"   # or any DATABASE_URL
//! eval "export $(scripts/kafka.sh start | tail -n1)"      # or any KAFKA_BOOTSTRAP_SERVERS
//! cargo run --release -p cqrs-benchmarks --bin kafka-bench -- --quick    # smoke run
//! cargo run --release -p cqrs-benchmarks --bin kafka-bench               # full sizes
//! cargo run --release -p cqrs-benchmarks --bin kafka-bench -- --only latency
//! ```
//!
//! 1. throughput: a `KafkaPublisher` on the `ProjectionRunner` catching up on a filled
//!    store (feed read from PostgreSQL, events mapped, every batch acknowledged before its
//!    checkpoint), against a raw `KafkaProducer` sending the very same records, built before
//!    timing: in batches awaited one after another, and all in flight at once;
//! 2. latency: events appended at a steady rate while the publisher runs, from the call to
//!    `append` to a raw consumer receiving the message.
//!
//! Each workload has its own fresh database (dropped afterwards) and topics (deleted
//! afterwards). Every throughput run is checked: its topic must hold exactly one message per
//! event. Figures and ratios are printed; nothing is asserted about timings.

mod args;
mod contract;
mod latency;
mod throughput;

use anyhow::Result;
use clap::Parser;
use cqrs_benchmarks::db::Server;
use cqrs_benchmarks::machine::Machine;
use cqrs_kafka::testing::TestBroker;
use cqrs_kafka::KafkaConfig;

use crate::args::{Args, Sizes, Workload};

/// What the workloads share.
pub(crate) struct Context {
    server: Server,
    broker: TestBroker,
    partitions: i32,
    batch_size: usize,
    sizes: Sizes,
}

impl Context {
    /// How many messages `topic` holds.
    async fn topic_size(&self, topic: &str) -> Result<u64> {
        let counts = self.broker.message_counts(topic).await?;
        Ok(u64::try_from(counts.iter().map(|(_, n)| n).sum::<i64>())?)
    }
}

#[tokio::main]
async fn main() -> Result<()> {
    let args = Args::parse();
    let server = Server::new(&args.database_url, "kafka_bench")?;
    let broker = TestBroker::new(KafkaConfig::new(&args.bootstrap_servers)?)?;
    let sizes = args.sizes();
    let info = server.info().await?;
    println!("kafka-bench on {}", Machine::detect());
    println!("postgres: {}", info.version);
    println!(
        "kafka: {} ({} partitions per topic); sizes: {sizes:?}{}",
        args.bootstrap_servers,
        args.partitions,
        if args.quick { " (--quick)" } else { "" }
    );
    let ctx = Context {
        server,
        broker,
        partitions: args.partitions,
        batch_size: args.batch_size,
        sizes,
    };
    for workload in Workload::selected(args.only) {
        match workload {
            Workload::Throughput => throughput::run(&ctx).await?.print(),
            Workload::Latency => latency::run(&ctx).await?,
        }
    }
    Ok(())
}
