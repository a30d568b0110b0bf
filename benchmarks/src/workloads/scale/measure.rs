//! The five figures measured at each size, each verified.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context as _, Result};
use cqrs_core::{AppendEvents, EventFilter, ExpectedVersion, Position};
use cqrs_postgres::PgEventStore;
use sqlx::PgPool;
use tokio::task::JoinSet;

use super::grow;
use crate::driver::{self, Job};
use crate::systems::ours::{self, OursCommands};
use crate::systems::{amount_of, balance_of, Command, CommandSystem};
use crate::workloads::Context;
use cqrs_benchmarks::latency::percentile;
use cqrs_benchmarks::table::per_second;

/// Events in the stream loaded at every size.
pub(super) const LONG_STREAM: u64 = 1_000;

/// Commands per stream of the commands figure.
const PER_STREAM: u64 = 10;

/// Feed reads take this many events at a time.
const FEED_BATCH: usize = 1_000;

/// What one size measured.
#[derive(Debug)]
pub(super) struct Point {
    /// Events in the table when measured.
    pub(super) events: u64,
    append_p50: Duration,
    append_p99: Duration,
    /// Commands run, and how long they took.
    pub(super) commands: u64,
    pub(super) commands_elapsed: Duration,
    /// The median load of the long stream.
    load: Duration,
    /// Events read by the catch-up, and how long it took.
    feed_events: u64,
    feed_elapsed: Duration,
    table_bytes: u64,
    index_bytes: u64,
}

impl Point {
    /// The figures besides the commands' rate.
    pub(super) fn note(&self) -> String {
        format!(
            "append p50 {} / p99 {}; load {}; feed {:.0} events/s; {} B table + {} B indexes \
             per event; verified",
            ms(self.append_p50),
            ms(self.append_p99),
            ms(self.load),
            per_second(self.feed_events, self.feed_elapsed),
            self.table_bytes / self.events.max(1),
            self.index_bytes / self.events.max(1),
        )
    }

    /// Each figure of `self` over the same figure of `base`, as time ratios (above 1: slower).
    pub(super) fn versus(&self, base: &Point) -> String {
        let ratio = |a: f64, b: f64| a / b.max(f64::MIN_POSITIVE);
        let per_command = |p: &Point| p.commands_elapsed.as_secs_f64() / as_f64(p.commands);
        let per_event = |p: &Point| p.feed_elapsed.as_secs_f64() / as_f64(p.feed_events);
        let bytes = |p: &Point| as_f64(p.table_bytes + p.index_bytes) / as_f64(p.events);
        format!(
            "append p50 {:.2}x, p99 {:.2}x; time per command {:.2}x; load {:.2}x; feed time per \
             event {:.2}x; bytes per event {:.2}x",
            ratio(self.append_p50.as_secs_f64(), base.append_p50.as_secs_f64()),
            ratio(self.append_p99.as_secs_f64(), base.append_p99.as_secs_f64()),
            ratio(per_command(self), per_command(base)),
            ratio(self.load.as_secs_f64(), base.load.as_secs_f64()),
            ratio(per_event(self), per_event(base)),
            ratio(bytes(self), bytes(base)),
        )
    }
}

/// Writes the long stream, before anything else.
pub(super) async fn prepare(store: &PgEventStore) -> Result<()> {
    let stream = ours::stream_of("long")?;
    ours::append_range(store, &stream, 1, LONG_STREAM).await
}

/// Measures the five figures; `step` names this size's streams.
pub(super) async fn at(
    ctx: &Context,
    store: &PgEventStore,
    pool: &PgPool,
    step: usize,
) -> Result<Point> {
    let sizes = ctx.sizes;
    let events = grow::count(pool).await?;
    eprintln!("measuring at {events} events ...");
    let latencies = append_latencies(store, step, sizes.scale_append_rate, sizes.scale_appends())
        .await
        .context("append latency")?;
    let (commands, commands_elapsed) = commands(store, step, sizes.scale_commands, ctx.clients)
        .await
        .context("commands")?;
    let load = load(store, sizes.scale_loads)
        .await
        .context("stream load")?;
    let (feed_events, feed_elapsed) = catch_up(store, pool, sizes.scale_feed_tail)
        .await
        .context("feed catch-up")?;
    let (table_bytes, index_bytes) = footprint(pool).await?;
    Ok(Point {
        events,
        append_p50: percentile(&latencies, 500),
        append_p99: percentile(&latencies, 990),
        commands,
        commands_elapsed,
        load,
        feed_events,
        feed_elapsed,
        table_bytes,
        index_bytes,
    })
}

/// `appends` single-event appends to new streams, started at `rate` per second whatever the
/// earlier ones do (open loop), each timed from its start to its answer.
async fn append_latencies(
    store: &PgEventStore,
    step: usize,
    rate: u64,
    appends: u64,
) -> Result<Vec<Duration>> {
    let interval = Duration::from_secs_f64(1.0 / as_f64(rate.max(1)));
    let start = tokio::time::Instant::now() + Duration::from_millis(10);
    let mut tasks = JoinSet::new();
    for k in 0..appends {
        let store = store.clone();
        let at = start + interval * u32::try_from(k)?;
        tasks.spawn(async move {
            tokio::time::sleep_until(at).await;
            let stream = ours::stream_of(&format!("latency{step}-{k}"))?;
            let started = Instant::now();
            let outcome = store
                .append(&stream, ExpectedVersion::NoStream, ours::new_events(1, 1))
                .await?;
            let took = started.elapsed();
            ensure!(outcome.last_version.get() == 1, "{stream} is not at 1");
            Ok::<_, anyhow::Error>(took)
        });
    }
    let mut latencies = Vec::new();
    while let Some(joined) = tasks.join_next().await {
        latencies.push(joined.context("an append task panicked")??);
    }
    latencies.sort();
    Ok(latencies)
}

/// `total` deposits through `Repository` without the cache, `PER_STREAM` to each new stream,
/// on `clients` clients; then every stream is loaded and checked.
async fn commands(
    store: &PgEventStore,
    step: usize,
    total: u64,
    clients: u32,
) -> Result<(u64, Duration)> {
    let streams = (total / PER_STREAM).max(1);
    let job = Arc::new(Deposits {
        system: OursCommands::new(store.clone(), false),
        step,
        streams,
        total,
    });
    let run = driver::drive(job.clone(), clients).await?;
    for s in 0..streams {
        let (balance, version) = job.system.load(&job.stream(s)).await?;
        let commands = (s..total).step_by(usize::try_from(streams)?).count() as u64;
        if version != commands || balance != balance_of(commands) {
            bail!(
                "{}: version {version}, balance {balance}; expected {commands} and {}",
                job.stream(s),
                balance_of(commands)
            );
        }
    }
    Ok((run.units, run.elapsed))
}

/// Deposit `k` goes to stream `k % streams`, so each stream takes its commands in order.
struct Deposits {
    system: OursCommands,
    step: usize,
    streams: u64,
    total: u64,
}

impl Deposits {
    fn stream(&self, s: u64) -> String {
        format!("commands{}-{s}", self.step)
    }
}

impl Job for Deposits {
    fn units(&self) -> u64 {
        self.total
    }

    async fn run(&self, k: u64) -> Result<u64> {
        let version = k / self.streams + 1;
        let command = Command {
            id: self.stream(k % self.streams),
            version,
            amount: amount_of(version),
        };
        self.system.deposit(&command).await
    }
}

/// The median of `loads` loads of the long stream, each checked.
async fn load(store: &PgEventStore, loads: u64) -> Result<Duration> {
    let system = OursCommands::new(store.clone(), false);
    let mut times = Vec::new();
    for _ in 0..loads.max(1) {
        let started = Instant::now();
        let (balance, version) = system.load("long").await?;
        times.push(started.elapsed());
        ensure!(
            version == LONG_STREAM && balance == balance_of(LONG_STREAM),
            "the long stream loaded at {version} with {balance}"
        );
    }
    times.sort();
    Ok(percentile(&times, 500))
}

/// Reads the feed from the position `tail` events before its end (a projection's recent
/// checkpoint) to the end, checking the count and that positions only grow.
async fn catch_up(store: &PgEventStore, pool: &PgPool, tail: u64) -> Result<(u64, Duration)> {
    let (transaction_id, position): (String, i64) = sqlx::query_as(
        "SELECT transaction_id::text, position FROM cqrs.events \
         ORDER BY transaction_id DESC, position DESC OFFSET $1 LIMIT 1",
    )
    .bind(i64::try_from(tail)?)
    .fetch_one(pool)
    .await
    .context("the checkpoint's position")?;
    let checkpoint = Position::from_parts(transaction_id.parse()?, u64::try_from(position)?);
    let started = Instant::now();
    let read = ours::read_feed_from(store, checkpoint, FEED_BATCH, &EventFilter::all()).await?;
    let elapsed = started.elapsed();
    ensure!(read == tail, "the catch-up read {read} events, not {tail}");
    Ok((read, elapsed))
}

/// The events table's bytes and its indexes' bytes.
async fn footprint(pool: &PgPool) -> Result<(u64, u64)> {
    let (table, indexes): (i64, i64) =
        sqlx::query_as("SELECT pg_table_size('cqrs.events'), pg_indexes_size('cqrs.events')")
            .fetch_one(pool)
            .await?;
    Ok((u64::try_from(table)?, u64::try_from(indexes)?))
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1000.0)
}

#[allow(clippy::cast_precision_loss)] // figures for people
fn as_f64(n: u64) -> f64 {
    n as f64
}
