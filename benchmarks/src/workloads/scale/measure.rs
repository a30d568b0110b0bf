//! The five figures measured at each size, each verified: on the grown table, and in turns on
//! a table kept near the first size, which every time ratio but the bytes' divides by. The two
//! used to be measured minutes apart, and this machine's passing stalls and quiet minutes moved
//! a figure by up to 1.4x (the append p99 by up to 9x) between runs of the same build; in turns,
//! whatever the machine does to one side it does to the other.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context as _, Result};
use cqrs_core::{EventFilter, Position};
use cqrs_postgres::PgEventStore;
use sqlx::PgPool;

use super::grow;
use super::latency::{self, AppendLatency};
use crate::driver::{self, Job};
use crate::systems::ours::{self, OursCommands};
use crate::systems::{amount_of, balance_of, Command, CommandSystem};
use crate::workloads::Context;
use cqrs_benchmarks::table::per_second;

/// Events in the stream loaded at every size.
pub(super) const LONG_STREAM: u64 = 1_000;

/// Commands per stream of the commands figure.
const PER_STREAM: u64 = 10;

/// Feed reads take this many events at a time.
const FEED_BATCH: usize = 1_000;

/// Catch-ups per size and side, the sides taking turns; the median is reported.
const CATCH_UPS: usize = 3;

/// A database the figures are measured on.
pub(super) struct Side {
    pub(super) store: PgEventStore,
    pub(super) pool: PgPool,
}

/// The figures of one side besides the append latency.
#[derive(Debug, Clone, Copy)]
pub(super) struct Figures {
    /// Events in the table when measured.
    pub(super) events: u64,
    /// Commands run, and how long they took.
    pub(super) commands: u64,
    pub(super) commands_elapsed: Duration,
    /// The median load of the long stream.
    load: Duration,
    /// Events read by a catch-up, and the median time it took.
    feed_events: u64,
    feed_elapsed: Duration,
}

impl Figures {
    fn per_command(&self) -> f64 {
        self.commands_elapsed.as_secs_f64() / as_f64(self.commands)
    }

    fn per_event(&self) -> f64 {
        self.feed_elapsed.as_secs_f64() / as_f64(self.feed_events)
    }
}

/// What one size measured.
#[derive(Debug)]
pub(super) struct Point {
    /// The grown table's figures.
    pub(super) grown: Figures,
    /// The same figures on the table kept near the first size, measured in turns.
    base: Figures,
    /// Single-event appends on both, in turns.
    append: AppendLatency,
    table_bytes: u64,
    index_bytes: u64,
}

impl Point {
    /// The figures besides the commands' rate.
    pub(super) fn note(&self) -> String {
        let (grown, base) = (self.append.grown, self.append.base);
        format!(
            "append p50 {} / p99 {} (rounds' p99 {} to {}); load {}; feed {:.0} events/s; {} B \
             table + {} B indexes per event; in turns, {} events: append {} / {}, {:.0} \
             commands/s, load {}, feed {:.0} events/s; verified",
            ms(grown.p50),
            ms(grown.p99),
            ms(grown.p99_low),
            ms(grown.p99_high),
            ms(self.grown.load),
            per_second(self.grown.feed_events, self.grown.feed_elapsed),
            self.table_bytes / self.grown.events.max(1),
            self.index_bytes / self.grown.events.max(1),
            super::grouped(self.base.events),
            ms(base.p50),
            ms(base.p99),
            per_second(self.base.commands, self.base.commands_elapsed),
            ms(self.base.load),
            per_second(self.base.feed_events, self.base.feed_elapsed),
        )
    }

    /// Each figure of the grown table over the same figure of the table measured in turns
    /// with it, as time ratios (above 1: slower); the bytes per event over those of `first`.
    pub(super) fn versus(&self, first: &Point) -> String {
        let ratio = |a: f64, b: f64| a / b.max(f64::MIN_POSITIVE);
        let seconds = Duration::as_secs_f64;
        let bytes = |p: &Point| as_f64(p.table_bytes + p.index_bytes) / as_f64(p.grown.events);
        format!(
            "append p50 {:.2}x, p99 {:.2}x; time per command {:.2}x; load {:.2}x; feed time per \
             event {:.2}x; bytes per event {:.2}x (of the first size's)",
            ratio(
                seconds(&self.append.grown.p50),
                seconds(&self.append.base.p50)
            ),
            ratio(
                seconds(&self.append.grown.p99),
                seconds(&self.append.base.p99)
            ),
            ratio(self.grown.per_command(), self.base.per_command()),
            ratio(seconds(&self.grown.load), seconds(&self.base.load)),
            ratio(self.grown.per_event(), self.base.per_event()),
            ratio(bytes(self), bytes(first)),
        )
    }
}

/// Writes the long stream, before anything else.
pub(super) async fn prepare(store: &PgEventStore) -> Result<()> {
    let stream = ours::stream_of("long")?;
    ours::append_range(store, &stream, 1, LONG_STREAM).await
}

/// Measures the five figures on `grown` and, in turns, on `base`; `step` names this size's
/// streams (and which side goes first).
pub(super) async fn at(ctx: &Context, grown: &Side, base: &Side, step: usize) -> Result<Point> {
    let sizes = ctx.sizes;
    let (grown_events, base_events) = (
        grow::count(&grown.pool).await?,
        grow::count(&base.pool).await?,
    );
    eprintln!("measuring at {grown_events} events, in turns with {base_events} ...");
    let append = latency::alternated(
        &grown.store,
        &base.store,
        step,
        sizes.scale_append_rate,
        sizes.scale_appends(),
    )
    .await
    .context("append latency")?;
    // The side that goes first alternates with the size.
    let (sides, names) = ([grown, base], ["the grown table", "the first size's table"]);
    let order = if step % 2 == 0 { [0, 1] } else { [1, 0] };
    let mut runs = [(0, Duration::ZERO); 2];
    for i in order {
        runs[i] = commands(&sides[i].store, step, sizes.scale_commands, ctx.clients)
            .await
            .with_context(|| format!("commands on {}", names[i]))?;
    }
    let [(grown_commands, grown_elapsed), (base_commands, base_elapsed)] = runs;
    let [grown_load, base_load] = loads([&grown.store, &base.store], sizes.scale_loads)
        .await
        .context("stream load")?;
    let [grown_feed, base_feed] = catch_ups(sides, sizes.scale_feed_tail)
        .await
        .context("feed catch-up")?;
    let (table_bytes, index_bytes) = footprint(&grown.pool).await?;
    Ok(Point {
        grown: Figures {
            events: grown_events,
            commands: grown_commands,
            commands_elapsed: grown_elapsed,
            load: grown_load,
            feed_events: sizes.scale_feed_tail,
            feed_elapsed: grown_feed,
        },
        base: Figures {
            events: base_events,
            commands: base_commands,
            commands_elapsed: base_elapsed,
            load: base_load,
            feed_events: sizes.scale_feed_tail,
            feed_elapsed: base_feed,
        },
        append,
        table_bytes,
        index_bytes,
    })
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

/// The median of `loads` loads of the long stream on each store, one load on each in turn,
/// each checked.
async fn loads(stores: [&PgEventStore; 2], loads: u64) -> Result<[Duration; 2]> {
    let systems = stores.map(|store| OursCommands::new(store.clone(), false));
    let mut times: [Vec<Duration>; 2] = Default::default();
    for _ in 0..loads.max(1) {
        for (system, times) in systems.iter().zip(&mut times) {
            let started = Instant::now();
            let (balance, version) = system.load("long").await?;
            times.push(started.elapsed());
            ensure!(
                version == LONG_STREAM && balance == balance_of(LONG_STREAM),
                "the long stream loaded at {version} with {balance}"
            );
        }
    }
    Ok(times.map(latency::median))
}

/// Reads each side's feed from the position `tail` events before its end (a projection's
/// recent checkpoint) to the end, [`CATCH_UPS`] times each, the sides in turns, checking the
/// count and that positions only grow; the median time on each.
async fn catch_ups(sides: [&Side; 2], tail: u64) -> Result<[Duration; 2]> {
    let mut checkpoints = Vec::new();
    for side in sides {
        checkpoints.push(checkpoint(&side.pool, tail).await?);
    }
    let mut times: [Vec<Duration>; 2] = Default::default();
    for _ in 0..CATCH_UPS {
        for ((side, checkpoint), times) in sides.iter().zip(&checkpoints).zip(&mut times) {
            let started = Instant::now();
            let read =
                ours::read_feed_from(&side.store, *checkpoint, FEED_BATCH, &EventFilter::all())
                    .await?;
            times.push(started.elapsed());
            ensure!(read == tail, "the catch-up read {read} events, not {tail}");
        }
    }
    Ok(times.map(latency::median))
}

/// The position `tail` events before the end of the feed.
///
/// The `ORDER BY` names the table's columns (`e.`): a bare `transaction_id` is the output
/// column, the id as text, whose order puts `999999` after `1000000`. Once the cluster's
/// counter passed a power of ten within the tail, the checkpoint landed that many events too
/// early and the catch-up read more than it asked for.
async fn checkpoint(pool: &PgPool, tail: u64) -> Result<Position> {
    checkpoint_in(pool, "cqrs.events", tail).await
}

/// [`checkpoint`] in the events table `table`.
async fn checkpoint_in(pool: &PgPool, table: &str, tail: u64) -> Result<Position> {
    let (transaction_id, position): (String, i64) = sqlx::query_as(&format!(
        "SELECT e.transaction_id::text, e.position FROM {table} e \
         ORDER BY e.transaction_id DESC, e.position DESC OFFSET $1 LIMIT 1"
    ))
    .bind(i64::try_from(tail)?)
    .fetch_one(pool)
    .await
    .context("the checkpoint's position")?;
    Ok(Position::from_parts(
        transaction_id.parse()?,
        u64::try_from(position)?,
    ))
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

#[cfg(test)]
mod tests {
    use super::*;

    /// The checkpoint follows the feed's order, by number, across a power of ten, where the
    /// ids' text goes the other way.
    #[tokio::test]
    async fn a_checkpoint_counts_back_by_transaction_id_across_a_power_of_ten() {
        let url = std::env::var("DATABASE_URL").expect("DATABASE_URL: a real PostgreSQL");
        // One connection: the temporary table is its own.
        let pool = sqlx::postgres::PgPoolOptions::new()
            .max_connections(1)
            .connect(&url)
            .await
            .expect("connect");
        sqlx::raw_sql(
            "CREATE TEMPORARY TABLE events (transaction_id xid8, position bigint); \
             INSERT INTO events VALUES ('999998', 1), ('999999', 2), ('1000000', 3), \
             ('1000001', 4)",
        )
        .execute(&pool)
        .await
        .expect("the events");

        let one_back = checkpoint_in(&pool, "pg_temp.events", 1)
            .await
            .expect("a checkpoint");

        assert_eq!(one_back, Position::from_parts(1_000_000, 3));
    }
}
