//! Command-line arguments and the sizes they select.

use clap::{Parser, ValueEnum};
use cqrs_benchmarks::secret::SecretUrl;

/// The event-bus publisher against a raw producer sending the same messages, and the
/// latency from an append to a consumer receiving its message.
#[derive(Debug, Parser)]
#[command(name = "kafka-bench")]
pub(crate) struct Args {
    /// The PostgreSQL server (or `$DATABASE_URL`, whose value `--help` does not show); each
    /// workload gets its own fresh database there.
    #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
    pub(crate) database_url: SecretUrl,

    /// The brokers, `host:port,...` (or `$KAFKA_BOOTSTRAP_SERVERS`); each run gets topics of
    /// its own, deleted at the end.
    #[arg(long, env = "KAFKA_BOOTSTRAP_SERVERS")]
    pub(crate) bootstrap_servers: String,

    /// Partitions of each topic.
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(i32).range(1..=256))]
    pub(crate) partitions: i32,

    /// Events per publisher batch (`PublisherOptions::batch_size`), and per awaited raw batch.
    #[arg(long, default_value_t = 5_000)]
    pub(crate) batch_size: usize,

    /// Smaller sizes, for a smoke run.
    #[arg(long)]
    pub(crate) quick: bool,

    /// Run one workload only.
    #[arg(long, value_enum)]
    pub(crate) only: Option<Workload>,
}

/// The workloads.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub(crate) enum Workload {
    /// Publishing a filled store's feed against a raw producer sending the same messages.
    Throughput,
    /// From an append to a consumer receiving the message, at a steady rate.
    Latency,
}

impl Workload {
    /// The workloads `--only` selects (both without it).
    pub(crate) fn selected(only: Option<Workload>) -> Vec<Workload> {
        match only {
            None => vec![Workload::Throughput, Workload::Latency],
            Some(one) => vec![one],
        }
    }
}

/// How much work each workload does.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Sizes {
    /// Events in the throughput workload's store.
    pub(crate) events: u64,
    /// Streams they are spread over.
    pub(crate) streams: u64,
    /// Timed runs of each system (the median is shown).
    pub(crate) runs: usize,
    /// Events appended per second in the latency workload.
    pub(crate) rate: u64,
    /// Seconds the latency workload appends for.
    pub(crate) seconds: u64,
}

impl Sizes {
    const QUICK: Sizes = Sizes {
        events: 40_000,
        streams: 400,
        runs: 3,
        rate: 100,
        seconds: 10,
    };
    const FULL: Sizes = Sizes {
        events: 200_000,
        streams: 2_000,
        runs: 3,
        rate: 200,
        seconds: 30,
    };
}

impl Args {
    /// The sizes for this run.
    pub(crate) fn sizes(&self) -> Sizes {
        if self.quick {
            Sizes::QUICK
        } else {
            Sizes::FULL
        }
    }
}
