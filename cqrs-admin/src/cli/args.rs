//! The command line's arguments, as clap derive types.

use std::fmt;

use clap::{Args, Parser, Subcommand};
use cqrs_core::{redact_url, Position};
use uuid::Uuid;

/// `cqrs`: see and steer a service's event store (projections, dead letters, streams, the
/// feed, process managers).
#[derive(Parser)]
#[command(name = "cqrs", version, about, long_about = None)]
pub struct Cli {
    /// Where the store is, and how to print.
    #[command(flatten)]
    pub options: Options,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Connection and output options, accepted before or after the subcommand.
#[derive(Args, Clone, Default)]
pub struct Options {
    /// PostgreSQL URL of the store (postgres://user:password@host:port/db).
    #[arg(long, env = "DATABASE_URL", hide_env_values = true, global = true)]
    pub database_url: Option<String>,
    /// The schema holding the store's tables.
    #[arg(long, env = "CQRS_SCHEMA", default_value = "cqrs", global = true)]
    pub schema: String,
    /// Print one JSON document instead of a table (`events tail --follow`: one per line).
    #[arg(long, global = true)]
    pub json: bool,
}

impl fmt::Debug for Options {
    /// Shows the URL with its password masked.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Options")
            .field(
                "database_url",
                &self.database_url.as_deref().map(redact_url),
            )
            .field("schema", &self.schema)
            .field("json", &self.json)
            .finish()
    }
}

/// The commands that need only the store.
#[derive(Subcommand, Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Command {
    /// Create or upgrade the store's tables in the schema.
    Migrate,
    /// Every projection, process manager and consumer: checkpoint, lag, lease, dead letters.
    Status,
    /// Events a projection parked: list, show, retry, skip.
    #[command(subcommand)]
    DeadLetters(DeadLetterCommand),
    /// One stream's events.
    #[command(subcommand)]
    Streams(StreamCommand),
    /// The global feed.
    #[command(subcommand)]
    Events(EventCommand),
    /// The feed's horizon: what holds readers back.
    #[command(subcommand)]
    Feed(FeedCommand),
    /// Process-manager instances.
    #[command(subcommand)]
    Processes(ProcessCommand),
    /// Every event carrying a correlation id: a request and everything it caused.
    Correlation {
        /// The correlation id.
        id: Uuid,
        /// At most this many events.
        #[arg(long, default_value_t = 1000)]
        limit: usize,
    },
}

/// `dead-letters ...`
#[derive(Subcommand, Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum DeadLetterCommand {
    /// The parked events, by projection then feed order.
    List {
        /// Only this projection's.
        #[arg(long)]
        projection: Option<String>,
        /// Only letters under this key.
        #[arg(long)]
        key: Option<String>,
        /// Only this stream's events.
        #[arg(long)]
        stream: Option<String>,
        /// Only events of this type.
        #[arg(long = "type")]
        event_type: Option<String>,
        /// At most this many.
        #[arg(long, default_value_t = 100)]
        limit: usize,
    },
    /// One parked event with its payload, metadata and error.
    Show {
        /// The projection.
        projection: String,
        /// The event's position (`major/minor`, as listed).
        #[arg(value_parser = parse_position)]
        position: Position,
    },
    /// Ask the leading runner to apply parked events again (one by position, or a key's).
    Retry(LetterArgs),
    /// Ask the leading runner to drop parked events (one by position, or a key's).
    Skip(LetterArgs),
}

/// Which letters `retry` and `skip` act on.
#[derive(Args, Clone, Debug, PartialEq, Eq)]
pub struct LetterArgs {
    /// The projection.
    pub projection: String,
    /// The event's position (`major/minor`, as listed).
    #[arg(value_parser = parse_position, required_unless_present = "key", conflicts_with = "key")]
    pub position: Option<Position>,
    /// Every letter under this key instead.
    #[arg(long)]
    pub key: Option<String>,
}

/// `streams ...`
#[derive(Subcommand, Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum StreamCommand {
    /// A stream's events with their metadata and payloads.
    Show {
        /// The stream id.
        id: String,
        /// From this version.
        #[arg(long, default_value_t = 1)]
        from: u64,
        /// At most this many events.
        #[arg(long, default_value_t = 1000)]
        limit: usize,
    },
}

/// `events ...`
#[derive(Subcommand, Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum EventCommand {
    /// The feed from a position, filtered; `--follow` keeps printing new events until
    /// interrupted.
    Tail {
        /// Keep waiting for new events.
        #[arg(long)]
        follow: bool,
        /// Only streams of this category (repeatable).
        #[arg(long)]
        category: Vec<String>,
        /// Only events of this type (repeatable).
        #[arg(long = "type")]
        event_type: Vec<String>,
        /// Start at this position (`major/minor`), or `head` for only new events.
        #[arg(long)]
        from: Option<String>,
        /// At most this many events (default 100; with `--follow`, stop after this many).
        #[arg(long)]
        limit: Option<usize>,
    },
}

/// `feed ...`
#[derive(Subcommand, Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum FeedCommand {
    /// The oldest open transaction, who holds it, and the events waiting behind it.
    Horizon,
}

/// `processes ...`
#[derive(Subcommand, Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ProcessCommand {
    /// Instances of one process manager, or of every one.
    List {
        /// The process manager's type (or `process:{TYPE}`); all when left out.
        process: Option<String>,
        /// Only stuck ones: running, no progress for `--stuck-after`, no timeout due later.
        #[arg(long)]
        stuck: bool,
        /// How long without progress makes an instance stuck, in seconds.
        #[arg(long, default_value_t = 300)]
        stuck_after: u64,
        /// At most this many per process manager.
        #[arg(long, default_value_t = 100)]
        limit: usize,
    },
    /// One instance with its timeline.
    Show {
        /// The process manager's type.
        process: String,
        /// The instance id.
        instance: String,
    },
}

/// A position argument, `major/minor`.
pub(crate) fn parse_position(text: &str) -> Result<Position, String> {
    text.parse()
        .map_err(|_| format!("{text:?} is not a position: write it major/minor, as listed"))
}
