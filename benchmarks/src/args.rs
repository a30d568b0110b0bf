//! Command-line arguments and the workload sizes they select.

use clap::{Parser, ValueEnum};
use cqrs_benchmarks::secret::SecretUrl;

/// The PostgreSQL event store against postgres-es 0.5 and raw sqlx ceilings.
#[derive(Debug, Parser)]
#[command(name = "pg-bench")]
pub(crate) struct Args {
    /// The server to benchmark on (or `$DATABASE_URL`, whose value `--help` does not show: it may
    /// carry a password); each system gets its own fresh database there.
    #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
    pub(crate) database_url: SecretUrl,

    /// Concurrent clients, and the pool size of every system.
    #[arg(long, default_value_t = 16, value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub(crate) clients: u32,

    /// Smaller sizes, for a smoke run.
    #[arg(long)]
    pub(crate) quick: bool,

    /// Run one workload only.
    #[arg(long, value_enum)]
    pub(crate) only: Option<Workload>,

    /// The command workloads' systems to run: those whose row name contains one of these
    /// words (comma-separated; all when absent). `--systems "no cache,postgres-es"` runs the
    /// two rows without the cache and postgres-es: a full-size hot-streams run of all eight
    /// takes over 20 minutes.
    #[arg(long, value_delimiter = ',')]
    pub(crate) systems: Vec<String>,

    /// The scale workload's largest size, in events (10,000,000 by default, 100,000 with
    /// `--quick`): the table grows by tens up to it. 50,000,000 takes about 18 GB of disk
    /// (17.5 GB of table and indexes here).
    #[arg(long, value_parser = clap::value_parser!(u64).range(1_000..))]
    pub(crate) scale_to: Option<u64>,

    /// Events per batch in the batch workload (100 by default).
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..=10_000))]
    pub(crate) batch_size: Option<u64>,

    /// Streams of the hot-streams workload (100 by default). Fewer than `--clients` makes
    /// commands race on each stream: `--hot-streams 4` measures commands under contention,
    /// where conflicts and their retries are most of the work.
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..=100_000))]
    pub(crate) hot_streams: Option<u64>,

    /// Timed runs of each row, whose median the tables print (3 by default). One run cuts a
    /// full-size hot-streams run of the rows without the cache and postgres-es' from about
    /// 15 minutes to 5, at the price of the spread.
    #[arg(long, value_parser = clap::value_parser!(u16).range(1..=99))]
    pub(crate) runs: Option<u16>,

    /// Every system's pool checks a connection before use only after it sat idle for a second
    /// (`cqrs_postgres::pool_options`, what `PgEventStore::connect` makes), instead of sqlx's
    /// default round trip before every use. Off by default, so figures compare with earlier
    /// runs.
    #[arg(long)]
    pub(crate) idle_checks: bool,

    /// How ours and the raw tables store an event's payload and metadata: `jsonb` (the
    /// store's default, and these tables' until now) or `json` (`EventJson::Json`, which
    /// postgres-es uses anyway). Both sides of every ratio store the same type.
    #[arg(long, value_enum, default_value_t = JsonColumns::Jsonb)]
    pub(crate) event_json: JsonColumns,
}

/// The column type of payload and metadata (`--event-json`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum JsonColumns {
    /// `jsonb`.
    Jsonb,
    /// `json`.
    Json,
}

impl JsonColumns {
    /// The store's option for it.
    pub(crate) fn event_json(self) -> cqrs_postgres::EventJson {
        match self {
            JsonColumns::Jsonb => cqrs_postgres::EventJson::Jsonb,
            JsonColumns::Json => cqrs_postgres::EventJson::Json,
        }
    }
}

impl Args {
    /// The sizes for this run.
    pub(crate) fn sizes(&self) -> Sizes {
        let sizes = if self.quick {
            Sizes::QUICK
        } else {
            Sizes::FULL
        };
        Sizes {
            scale_top: self.scale_to.unwrap_or(sizes.scale_top),
            batch_size: self.batch_size.unwrap_or(sizes.batch_size),
            hot_streams: self.hot_streams.unwrap_or(sizes.hot_streams),
            runs: self.runs.map_or(sizes.runs, usize::from),
            ..sizes
        }
    }
}

/// The workloads, in the order a full run prints them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub(crate) enum Workload {
    /// Both command workloads.
    Commands,
    /// Commands over many streams, a few events each.
    ManyStreams,
    /// Commands over few streams whose histories grow long.
    HotStreams,
    /// Appends of 100-event batches.
    Batch,
    /// Loading a long stream, with and without snapshots.
    Load,
    /// Reading the global feed from the start.
    Feed,
    /// The quick start's order saga on the process-manager engine against the same commands
    /// issued directly.
    Saga,
    /// Single-event appends from 1 to 128 concurrent writers: rates and latency percentiles,
    /// with and without group commit, against a raw insert.
    Appends,
    /// Only on request: the events table grown to 10 million events (`--scale-to`), the
    /// same figures measured at each size on the way.
    Scale,
}

impl Workload {
    const ALL: [Workload; 7] = [
        Workload::ManyStreams,
        Workload::HotStreams,
        Workload::Batch,
        Workload::Load,
        Workload::Feed,
        Workload::Saga,
        Workload::Appends,
    ];

    /// The workloads `--only` selects (all of them without it).
    pub(crate) fn selected(only: Option<Workload>) -> Vec<Workload> {
        match only {
            None => Self::ALL.to_vec(),
            Some(Workload::Commands) => vec![Workload::ManyStreams, Workload::HotStreams],
            Some(one) => vec![one],
        }
    }
}

/// How much work each workload does.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Sizes {
    /// Timed runs of every system, in rotated order; each row shows the median run.
    pub(crate) runs: usize,
    /// Many streams: how many streams.
    pub(crate) many_streams: u64,
    /// Many streams: commands per stream.
    pub(crate) many_per_stream: u64,
    /// Hot streams: how many streams.
    pub(crate) hot_streams: u64,
    /// Hot streams: commands in all.
    pub(crate) hot_commands: u64,
    /// Batch appends: how many batches.
    pub(crate) batches: u64,
    /// Batch appends: events per batch.
    pub(crate) batch_size: u64,
    /// Load: events in the long stream, before the tail after its last snapshot.
    pub(crate) long_stream: u64,
    /// Load: timed loads per case.
    pub(crate) loads: u64,
    /// Feed: events in the store.
    pub(crate) feed_events: u64,
    /// Feed: events per read.
    pub(crate) feed_batch: u64,
    /// Feed: timed passes over the whole feed.
    pub(crate) feed_passes: u64,
    /// Saga: orders of 3 lines (11 commands each).
    pub(crate) saga_orders: u64,
    /// Appends: the concurrencies measured.
    pub(crate) append_writers: &'static [u32],
    /// Appends: seconds per timed run.
    pub(crate) append_seconds: u64,
    /// Scale: the first size, in events.
    pub(crate) scale_start: u64,
    /// Scale: the last size, in events.
    pub(crate) scale_top: u64,
    /// Scale: single-event appends per second for the latency figure.
    pub(crate) scale_append_rate: u64,
    /// Scale: seconds of appends for the latency figure.
    pub(crate) scale_append_seconds: u64,
    /// Scale: commands per size.
    pub(crate) scale_commands: u64,
    /// Scale: timed loads of the long stream per size.
    pub(crate) scale_loads: u64,
    /// Scale: events the feed catch-up reads.
    pub(crate) scale_feed_tail: u64,
}

impl Sizes {
    const FULL: Sizes = Sizes {
        runs: 3,
        many_streams: 10_000,
        many_per_stream: 3,
        hot_streams: 100,
        hot_commands: 100_000,
        batches: 5_000,
        batch_size: 100,
        long_stream: 10_000,
        loads: 200,
        feed_events: 100_000,
        feed_batch: 1_000,
        feed_passes: 3,
        saga_orders: 2_000,
        append_writers: &[1, 2, 4, 8, 32, 128],
        append_seconds: 5,
        scale_start: 100_000,
        scale_top: 10_000_000,
        scale_append_rate: 200,
        scale_append_seconds: 10,
        scale_commands: 20_000,
        scale_loads: 50,
        scale_feed_tail: 100_000,
    };

    const QUICK: Sizes = Sizes {
        runs: 3,
        many_streams: 2_000,
        many_per_stream: 3,
        hot_streams: 100,
        hot_commands: 10_000,
        batches: 200,
        batch_size: 100,
        long_stream: 10_000,
        loads: 100,
        feed_events: 20_000,
        feed_batch: 1_000,
        feed_passes: 3,
        saga_orders: 400,
        append_writers: &[1, 2, 8, 32],
        append_seconds: 1,
        scale_start: 10_000,
        scale_top: 100_000,
        scale_append_rate: 200,
        scale_append_seconds: 2,
        scale_commands: 2_000,
        scale_loads: 20,
        scale_feed_tail: 5_000,
    };

    /// Scale: appends for the latency figure.
    pub(crate) fn scale_appends(&self) -> u64 {
        self.scale_append_rate * self.scale_append_seconds
    }
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
        let args =
            Args::try_parse_from(["pg-bench", "--database-url", "postgres://app:s3cret@db/app"])
                .expect("valid arguments");
        let text = format!("{args:?}");
        assert!(text.contains("app:****@db"), "{text}");
        assert!(!text.contains("s3cret"), "{text}");
    }
}
