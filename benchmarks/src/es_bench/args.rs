//! Command-line arguments and the workload sizes they select.

use clap::{Parser, ValueEnum};
use cqrs_benchmarks::secret::SecretUrl;

/// Read models in Elasticsearch / OpenSearch fed from the PostgreSQL event store, against raw
/// `_bulk` and direct writes.
#[derive(Debug, Parser)]
#[command(name = "es-bench")]
pub(crate) struct Args {
    /// The PostgreSQL server holding the events (or `$DATABASE_URL`, whose value `--help` does not
    /// show: it may carry a password); each workload gets its own fresh database.
    #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
    pub(crate) database_url: SecretUrl,

    /// The search node holding the read models (or `$ELASTICSEARCH_URL`, value not shown either);
    /// each workload uses its own indices.
    #[arg(long, env = "ELASTICSEARCH_URL", hide_env_values = true)]
    pub(crate) elasticsearch_url: SecretUrl,

    /// Concurrent clients appending the events before each workload (not timed).
    #[arg(long, default_value_t = 16, value_parser = clap::value_parser!(u32).range(1..=200))]
    pub(crate) clients: u32,

    /// Smaller sizes, for a smoke run.
    #[arg(long)]
    pub(crate) quick: bool,

    /// Run one workload only.
    #[arg(long, value_enum)]
    pub(crate) only: Option<Workload>,
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

/// The workloads, in the order a full run prints them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub(crate) enum Workload {
    /// Catching up from the start of the feed, against raw `_bulk`.
    Throughput,
    /// From append to searchable, against a direct write and `_refresh`.
    Freshness,
    /// `EsIndex::rebuild` of a large read model.
    Rebuild,
    /// Partitioned workers (1, 2, 4 on 8 partitions) against one unpartitioned runner, and the
    /// rebalance time after a worker dies.
    Partitions,
}

impl Workload {
    /// The workloads `--only` selects (all of them without it).
    pub(crate) fn selected(only: Option<Workload>) -> Vec<Workload> {
        match only {
            None => vec![
                Workload::Throughput,
                Workload::Freshness,
                Workload::Rebuild,
                Workload::Partitions,
            ],
            Some(one) => vec![one],
        }
    }
}

/// How the store is filled before a workload: `events` events over `documents` streams (one
/// document each), appended in rounds; each append writes `per_append` events to one stream,
/// and each round appends once to every stream, so the feed interleaves the documents.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Fill {
    /// Events in all.
    pub(crate) events: u64,
    /// Streams, and documents of the read model.
    pub(crate) documents: u64,
    /// Events per `AppendEvents::append`.
    pub(crate) per_append: u64,
}

/// How much work each workload does.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Sizes {
    /// Throughput: the events caught up on.
    pub(crate) throughput: Fill,
    /// Throughput: events per feed read, `apply` and raw `_bulk`.
    pub(crate) throughput_batch: usize,
    /// Throughput: timed runs of each system per refresh policy (the median is reported).
    pub(crate) throughput_runs: u32,
    /// Freshness: the events in the store and documents in the index before the samples.
    pub(crate) freshness_seed: Fill,
    /// Freshness: the rates, appends (or direct writes) per second, each in its own table.
    pub(crate) freshness_rates: [u32; 2],
    /// Freshness: timed seconds of each system at each rate.
    pub(crate) freshness_seconds: u32,
    /// Rebuild: the events rebuilt from.
    pub(crate) rebuild: Fill,
    /// Rebuild: events per feed read and bulk.
    pub(crate) rebuild_batch: usize,
}

impl Sizes {
    const FULL: Sizes = Sizes {
        throughput: Fill {
            events: 200_000,
            documents: 10_000,
            per_append: 1,
        },
        throughput_batch: 500,
        throughput_runs: 3,
        freshness_seed: Fill {
            events: 10_000,
            documents: 1_000,
            per_append: 10,
        },
        freshness_rates: [10, 50],
        freshness_seconds: 30,
        rebuild: Fill {
            events: 1_000_000,
            documents: 10_000,
            per_append: 10,
        },
        rebuild_batch: 1_000,
    };

    const QUICK: Sizes = Sizes {
        throughput: Fill {
            events: 20_000,
            documents: 2_000,
            per_append: 1,
        },
        throughput_batch: 500,
        throughput_runs: 3,
        freshness_seed: Fill {
            events: 10_000,
            documents: 1_000,
            per_append: 10,
        },
        freshness_rates: [10, 50],
        freshness_seconds: 3,
        rebuild: Fill {
            events: 50_000,
            documents: 1_000,
            per_append: 10,
        },
        rebuild_batch: 1_000,
    };
}

#[cfg(test)]
mod url_tests {
    use clap::{CommandFactory, Parser};

    use super::Args;

    /// `--help` shows the values of `env` arguments unless told not to, and a URL's value may
    /// carry a password.
    #[test]
    fn help_never_shows_the_urls_from_the_environment() {
        let command = Args::command();
        let urls: Vec<_> = command
            .get_arguments()
            .filter(|arg| arg.get_id().as_str().ends_with("_url"))
            .collect();
        assert!(!urls.is_empty());
        for arg in urls {
            assert!(
                arg.is_hide_env_values_set(),
                "--help would show {}",
                arg.get_id()
            );
        }
    }

    /// `Debug` of the arguments (a log line, a panic) masks the URLs' passwords.
    #[test]
    fn debug_output_never_shows_a_url_password() {
        let args = Args::try_parse_from([
            "es-bench",
            "--database-url",
            "postgres://app:s3cret@db/app",
            "--elasticsearch-url",
            "http://elastic:s3cret@node:9200",
        ])
        .expect("valid arguments");
        let text = format!("{args:?}");
        assert!(text.contains("app:****@db"), "{text}");
        assert!(!text.contains("s3cret"), "{text}");
    }
}
