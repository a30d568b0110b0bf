//! Workload 6: single-event appends at exact expected versions, from 1 to 128 concurrent
//! writers: the rate and the latency percentiles at each concurrency, ours without group commit,
//! with it (the default, and every append grouped) against a raw insert of the same row, in the
//! same run.
//!
//! Each writer owns 16 streams and picks the next one by a Zipf law (s = 1), so a few streams
//! take most of its appends, as in `pyeventsourcing/eventstore-benchmarks`; it knows each
//! stream's version, so no append conflicts and every one is timed on its own.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{ensure, Context as _, Result};
use cqrs_core::{AppendEvents, ExpectedVersion, Version};
use cqrs_postgres::GroupCommit;
use sqlx::PgPool;

use super::Context;
use crate::report::{Row, Table};
use crate::systems::raw::{self, RawInsertOnly};
use crate::systems::{amount_of, balance_of, ours, Command, CommandSystem};
use crate::verify::{self, Layout, Tally};
use cqrs_benchmarks::latency::percentile;
use cqrs_benchmarks::table::rotation;

const PLAIN: &str = "ours: append, no group commit";
const GROUPED: &str = "ours: group commit (default)";
const ALWAYS: &str = "ours: group commit, every append";
const RAW: &str = "raw sqlx: INSERT of the row";
const SYSTEMS: [&str; 4] = [PLAIN, GROUPED, ALWAYS, RAW];

/// Streams per writer.
const STREAMS: usize = 16;

/// Appends one event to a stream at its version.
trait Appender: Send + Sync + 'static {
    /// Appends the event of `version` to the stream of account `id`.
    fn append(&self, id: &str, version: u64) -> impl Future<Output = Result<()>> + Send;
}

impl Appender for cqrs_postgres::PgEventStore {
    async fn append(&self, id: &str, version: u64) -> Result<()> {
        let stream = ours::stream_of(id)?;
        let expected = ExpectedVersion::Exact(Version::new(version - 1));
        AppendEvents::append(self, &stream, expected, ours::new_events(version, version)).await?;
        Ok(())
    }
}

impl Appender for RawInsertOnly {
    async fn append(&self, id: &str, version: u64) -> Result<()> {
        let command = Command {
            id: id.to_owned(),
            version,
            amount: amount_of(version),
        };
        self.deposit(&command).await?;
        Ok(())
    }
}

/// Runs the workload: one table per concurrency.
pub(crate) async fn run(ctx: &Context) -> Result<Vec<Table>> {
    let sizes = ctx.sizes;
    let mut tables = Vec::new();
    for (point, &writers) in sizes.append_writers.iter().enumerate() {
        let title = format!(
            "6. single-event appends at exact versions, {writers} writers ({STREAMS} streams each, \
             Zipf), {} s per run, median of {} runs, order rotated",
            sizes.append_seconds, sizes.runs
        );
        let mut table = Table::new(title, "appends/s")
            .versus("vs plain", PLAIN)
            .versus("vs raw", RAW);
        let mut runs: Vec<Vec<Row>> = SYSTEMS.iter().map(|_| Vec::new()).collect();
        for round in 0..sizes.runs {
            for system in rotation(round + point, SYSTEMS.len()) {
                runs[system].push(one(ctx, system, writers).await?);
            }
        }
        for rows in runs {
            table.push(Row::median(rows).context("no append run")?);
        }
        table.footnote(
            "notes: latency percentiles of every append of the median run; the default group \
             commit writes an append alone while fewer than 2 others are in flight, \"every \
             append\" groups them all (alone_below(0))"
                .to_owned(),
        );
        tables.push(table);
    }
    Ok(tables)
}

/// One timed run of system `index` with `writers` writers, on a fresh database.
async fn one(ctx: &Context, index: usize, writers: u32) -> Result<Row> {
    let system = SYSTEMS[index];
    eprintln!("running appends / {system}, {writers} writers ...");
    let seconds = ctx.sizes.append_seconds;
    // The pool has a connection per writer and one for the group commit's lane.
    let pool_size = writers + 1;
    ctx.server
        .with_database(
            &format!("appends_{index}_{writers}"),
            pool_size,
            |pool| async move {
                let duration = Duration::from_secs(seconds);
                let (run, layout) = match index {
                    0 => {
                        let store = ours::store(pool.clone()).await?;
                        (
                            drive(ctx, Arc::new(store), writers, duration).await?,
                            verify::OURS,
                        )
                    }
                    1 | 2 => {
                        let options = if index == 1 {
                            GroupCommit::default()
                        } else {
                            GroupCommit::default().alone_below(0)
                        };
                        let store = (ours::store(pool.clone()).await?).with_group_commit(options);
                        (
                            drive(ctx, Arc::new(store), writers, duration).await?,
                            verify::OURS,
                        )
                    }
                    _ => {
                        raw::migrate(&pool).await?;
                        let system = Arc::new(RawInsertOnly::new(pool.clone()));
                        (drive(ctx, system, writers, duration).await?, verify::RAW)
                    }
                };
                check(&pool, layout, &run).await?;
                let note = run.percentiles();
                Ok(Row::new(system, run.appends(), run.elapsed, note))
            },
        )
        .await
}

/// What a timed run did: each writer's stream versions and append latencies.
struct Run {
    elapsed: Duration,
    versions: Vec<[u64; STREAMS]>,
    latencies: Vec<Duration>,
}

impl Run {
    fn appends(&self) -> u64 {
        self.versions.iter().flatten().sum()
    }

    /// `p50 / p95 / p99 / p99.9` in ms.
    fn percentiles(&self) -> String {
        let mut sorted = self.latencies.clone();
        sorted.sort_unstable();
        let at = |per_mille: usize| percentile(&sorted, per_mille).as_secs_f64() * 1e3;
        format!(
            "p50 {:.2} / p95 {:.2} / p99 {:.2} / p99.9 {:.2} ms",
            at(500),
            at(950),
            at(990),
            at(999)
        )
    }
}

/// Runs `writers` writers for `duration` (after a second of warm-up on streams of their own).
async fn drive<A: Appender>(
    ctx: &Context,
    system: Arc<A>,
    writers: u32,
    duration: Duration,
) -> Result<Run> {
    let warm = spawn_writers(&system, writers, "warm", Duration::from_secs(1));
    collect(warm).await?;
    ctx.server.checkpoint().await?;
    let started = Instant::now();
    let timed = spawn_writers(&system, writers, "w", duration);
    let (versions, latencies) = collect(timed).await?;
    let elapsed = started.elapsed();
    ensure!(!latencies.is_empty(), "no append was made");
    Ok(Run {
        elapsed,
        versions,
        latencies,
    })
}

type Writer = tokio::task::JoinHandle<Result<([u64; STREAMS], Vec<Duration>)>>;

fn spawn_writers<A: Appender>(
    system: &Arc<A>,
    writers: u32,
    prefix: &'static str,
    duration: Duration,
) -> Vec<Writer> {
    let zipf = Arc::new(Zipf::new(STREAMS));
    (0..writers)
        .map(|writer| {
            let (system, zipf) = (Arc::clone(system), Arc::clone(&zipf));
            tokio::spawn(async move {
                let mut rng = fastrand::Rng::with_seed(u64::from(writer));
                let mut versions = [0u64; STREAMS];
                let mut latencies = Vec::new();
                let end = Instant::now() + duration;
                while Instant::now() < end {
                    let stream = zipf.sample(&mut rng);
                    let version = versions[stream] + 1;
                    let id = format!("{prefix}-{writer}-{stream}");
                    let started = Instant::now();
                    system.append(&id, version).await?;
                    latencies.push(started.elapsed());
                    versions[stream] = version;
                }
                Ok((versions, latencies))
            })
        })
        .collect()
}

async fn collect(writers: Vec<Writer>) -> Result<(Vec<[u64; STREAMS]>, Vec<Duration>)> {
    let mut versions = Vec::with_capacity(writers.len());
    let mut latencies = Vec::new();
    for writer in writers {
        let (v, l) = writer.await.context("a writer panicked")??;
        versions.push(v);
        latencies.extend(l);
    }
    Ok((versions, latencies))
}

/// Every timed append is in the table, each stream's versions `1..=n`, amounts summed.
async fn check(pool: &PgPool, layout: Layout, run: &Run) -> Result<()> {
    let versions = run.versions.iter().flatten();
    let expected = Tally {
        events: run.appends(),
        streams: versions.clone().filter(|&&v| v > 0).count() as u64,
        amount: versions.map(|&v| balance_of(v)).sum(),
    };
    verify::expect(pool, layout, &layout.accounts("w-"), expected).await
}

/// A Zipf law (s = 1) over `0..n`, sampled by its cumulative weights.
struct Zipf {
    cumulative: Vec<f64>,
}

impl Zipf {
    fn new(n: usize) -> Self {
        let mut total = 0.0;
        let cumulative = (1..=n)
            .map(|rank| {
                total += 1.0 / rank as f64;
                total
            })
            .collect();
        Self { cumulative }
    }

    fn sample(&self, rng: &mut fastrand::Rng) -> usize {
        let total = self.cumulative.last().copied().unwrap_or(1.0);
        let x = rng.f64() * total;
        self.cumulative
            .partition_point(|&c| c < x)
            .min(self.cumulative.len() - 1)
    }
}
