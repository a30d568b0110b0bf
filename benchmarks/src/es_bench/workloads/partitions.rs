//! Workload 4: partitioned projection throughput. The same feed caught up into a new index by
//! one unpartitioned `ProjectionRunner` + `EsProjector`, and by 1, 2 and 4 partitioned workers
//! (tasks of this process, sharing only the store) on 8 partitions by stream; then the
//! rebalance time after one of two workers dies (aborted, its leases left to expire).
//! Completion is the moment every event was applied by some worker (counted in `apply`).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{ensure, Result};
use async_trait::async_trait;
use cqrs_benchmarks::table::{Row, Table};
use cqrs_core::projection::{
    Lease, PartitionedRunner, Partitions, Projection, ProjectionError, ProjectionRunner,
    RunnerOptions,
};
use cqrs_core::{BoxError, EventFilter, RecordedEvent};
use cqrs_elastic::EsReadModel;

use super::{Context, Db};
use crate::cpu::CpuMeter;
use crate::fill;
use crate::model::{Accounts, Expected};
use crate::report::Output;

const PARTITIONS: u32 = 8;
const ONE: &str = "1 runner, unpartitioned";
/// A dead worker's leases run out after this; the survivors take over about then.
const TTL: Duration = Duration::from_secs(3);

/// Counts the events applied through it.
struct Counted<P> {
    inner: P,
    applied: Arc<AtomicU64>,
}

#[async_trait]
impl<P: Projection> Projection for Counted<P> {
    fn name(&self) -> &str {
        self.inner.name()
    }

    fn filter(&self) -> EventFilter {
        self.inner.filter()
    }

    fn key(&self, event: &RecordedEvent) -> Option<String> {
        self.inner.key(event)
    }

    async fn apply(&self, events: &[RecordedEvent]) -> Result<(), ProjectionError> {
        self.apply_fenced(events, None).await
    }

    async fn apply_fenced(
        &self,
        events: &[RecordedEvent],
        lease: Option<&Lease>,
    ) -> Result<(), ProjectionError> {
        self.inner.apply_fenced(events, lease).await?;
        self.applied
            .fetch_add(events.len() as u64, Ordering::Relaxed);
        Ok(())
    }

    async fn make_visible(&self) -> Result<(), BoxError> {
        self.inner.make_visible().await
    }

    async fn leadership_changed(&self, leading: bool) {
        self.inner.leadership_changed(leading).await;
    }
}

/// Runs the workload: the throughput table and the rebalance time.
pub(crate) async fn run(ctx: &Context) -> Result<Vec<Output>> {
    let fill = ctx.sizes.throughput;
    eprintln!("running partitions ...");
    ctx.server
        .with_database("partitions", ctx.pool_size() + 16, |pool| async move {
            let db = Db::open(pool).await?;
            fill::fill(&db.store, fill, ctx.clients).await?;
            db.settle().await?;
            let expected = fill.expected();
            let events = fill.events;
            ctx.node
                .with_indices("partitions", |names| async move {
                    let mut table = Table::new(
                        format!(
                            "4. partitioned projection throughput: {events} events, {} per \
                             batch, {PARTITIONS} partitions by stream, workers as tasks of one \
                             process sharing only the store",
                            ctx.sizes.throughput_batch
                        ),
                        "events/s",
                    )
                    .versus("vs 1 runner", ONE);
                    // Warm the node and the database once, unreported.
                    unpartitioned(ctx, &db, &names.name("warm"), events, &expected).await?;
                    table.push(
                        unpartitioned(ctx, &db, &names.name("one"), events, &expected).await?,
                    );
                    for workers in [1usize, 2, 4] {
                        let name = names.name(&format!("w{workers}"));
                        table.push(partitioned(ctx, &db, &name, workers, events, &expected).await?);
                    }
                    let rebalance = rebalance(ctx, &db, &names.name("rebalance"), events).await?;
                    table.footnote(format!(
                        "rebalance after one of 2 workers died (lease ttl {TTL:?}): the \
                         survivor led all {PARTITIONS} partitions {:.2} s after the death",
                        rebalance.as_secs_f64()
                    ));
                    Ok(vec![Output::Rates(table)])
                })
                .await
        })
        .await
}

fn options(ctx: &Context, owner: &str) -> RunnerOptions {
    RunnerOptions::new()
        .batch_size(ctx.sizes.throughput_batch)
        .lease_ttl(TTL)
        .owner(owner)
}

/// Waits until `applied` reaches `events`.
async fn all_applied(applied: &AtomicU64, events: u64) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(600);
    while applied.load(Ordering::Relaxed) < events {
        ensure!(Instant::now() < deadline, "the projection did not catch up");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    Ok(())
}

async fn unpartitioned(
    ctx: &Context,
    db: &Db,
    name: &str,
    events: u64,
    expected: &Expected,
) -> Result<Row> {
    eprintln!("  {ONE} ...");
    let node = &ctx.node;
    let model = EsReadModel::new(node.client().clone(), Accounts::new(name))?;
    model.ensure().await?;
    let applied = Arc::new(AtomicU64::new(0));
    let projection = Counted {
        inner: model.projector(),
        applied: applied.clone(),
    };
    let meter = CpuMeter::start(node, &db.name).await?;
    let started = Instant::now();
    let handle = ProjectionRunner::for_store(projection, &db.store)
        .with_options(options(ctx, "one"))
        .spawn();
    all_applied(&applied, events).await?;
    let elapsed = started.elapsed();
    let cpu = meter.stop(node).await?;
    handle.shutdown().await;
    let verified = crate::verify::documents(node, name, expected).await?;
    Ok(Row::new(ONE, events, elapsed, format!("{verified}; {cpu}")))
}

async fn partitioned(
    ctx: &Context,
    db: &Db,
    name: &str,
    workers: usize,
    events: u64,
    expected: &Expected,
) -> Result<Row> {
    let system = format!("{workers} worker(s) on {PARTITIONS} partitions");
    eprintln!("  {system} ...");
    let node = &ctx.node;
    let model = EsReadModel::new(node.client().clone(), Accounts::new(name))?;
    model.ensure().await?;
    let applied = Arc::new(AtomicU64::new(0));
    let meter = CpuMeter::start(node, &db.name).await?;
    let started = Instant::now();
    let handles: Vec<_> = (0..workers)
        .map(|w| {
            let projection = Counted {
                inner: model.projector(),
                applied: applied.clone(),
            };
            PartitionedRunner::for_store(projection, Partitions::by_stream(PARTITIONS), &db.store)
                .with_options(options(ctx, &format!("w{w}")))
                .spawn()
        })
        .collect();
    all_applied(&applied, events).await?;
    let elapsed = started.elapsed();
    let cpu = meter.stop(node).await?;
    for handle in handles {
        handle.shutdown().await;
    }
    let verified = crate::verify::documents(node, name, expected).await?;
    Ok(Row::new(
        system,
        events,
        elapsed,
        format!("{verified}; {cpu}"),
    ))
}

/// Two workers split the partitions; one dies; how long until the other leads all of them.
async fn rebalance(ctx: &Context, db: &Db, name: &str, events: u64) -> Result<Duration> {
    eprintln!("  rebalance after a death ...");
    let node = &ctx.node;
    let model = EsReadModel::new(node.client().clone(), Accounts::new(name))?;
    model.ensure().await?;
    let applied = Arc::new(AtomicU64::new(0));
    let mut handles: Vec<_> = (0..2)
        .map(|w| {
            let projection = Counted {
                inner: model.projector(),
                applied: applied.clone(),
            };
            PartitionedRunner::for_store(projection, Partitions::by_stream(PARTITIONS), &db.store)
                .with_options(options(ctx, &format!("r{w}")))
                .spawn()
        })
        .collect();
    all_applied(&applied, events).await?;
    let split = |h: &cqrs_core::projection::PartitionedHandle| h.status().leading().len();
    let half = PARTITIONS as usize / 2;
    let deadline = Instant::now() + TTL * 10;
    while handles.iter().any(|h| split(h) != half) {
        ensure!(
            Instant::now() < deadline,
            "the two workers never split the partitions"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let survivor = handles.remove(0);
    let dead = handles.remove(0);
    let died = Instant::now();
    dead.abort();
    survivor
        .wait_until(TTL * 10, |s| s.leading().len() == PARTITIONS as usize)
        .await
        .ok_or_else(|| anyhow::anyhow!("the survivor never led every partition"))?;
    let took = died.elapsed();
    survivor.shutdown().await;
    Ok(took)
}
