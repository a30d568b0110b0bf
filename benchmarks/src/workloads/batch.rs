//! Workload 2: appends of 100-event batches (`--batch-size`), each to a new stream, on
//! concurrent clients, against raw inserts and raw binary `COPY`s of the same rows.

use std::future::Future;
use std::sync::Arc;

use anyhow::{Context as _, Result};
use sqlx::PgPool;

use super::Context;
use crate::driver::{self, Job};
use crate::report::{Row, Table};
use crate::systems::raw::{self, RawBatch};
use crate::systems::{balance_of, ours, BatchSystem};
use crate::verify::{self, Layout, Tally};
use cqrs_benchmarks::table::rotation;

const OURS: &str = "ours: AppendEvents::append";
const OURS_GROUPED: &str = "ours: the same, group commit";
const RAW: &str = "raw sqlx: INSERT ... UNNEST";
const RAW_LIKE_OURS: &str = "raw sqlx: the same, cqrs.events' indexes";
const RAW_COPY: &str = "raw sqlx: binary COPY";
const RAW_COPY_LIKE: &str = "raw sqlx: binary COPY, cqrs.events' indexes";

/// Batch `k` of `batches`, each of `size` events, to stream `{prefix}{k}`.
pub(crate) struct BatchJob<S> {
    /// Who appends.
    pub(crate) system: Arc<S>,
    /// Stream name prefix.
    pub(crate) prefix: &'static str,
    /// How many batches.
    pub(crate) batches: u64,
    /// Events per batch.
    pub(crate) size: u64,
}

impl<S> BatchJob<S> {
    /// What the streams hold once the job is done.
    pub(crate) fn expected(&self) -> Tally {
        Tally {
            events: self.batches * self.size,
            streams: self.batches,
            amount: self.batches * balance_of(self.size),
        }
    }
}

impl<S: BatchSystem> Job for BatchJob<S> {
    fn units(&self) -> u64 {
        self.batches
    }

    async fn run(&self, k: u64) -> Result<u64> {
        let stream = format!("{}{k}", self.prefix);
        self.system.append_batch(&stream, self.size).await?;
        Ok(0)
    }
}

/// Runs the workload's table.
pub(crate) async fn run(ctx: &Context) -> Result<Table> {
    let sizes = ctx.sizes;
    let title = format!(
        "2. batch appends: {} batches of {} events, each to a new stream, {} clients, \
         median of {} runs, order rotated",
        sizes.batches, sizes.batch_size, ctx.clients, sizes.runs
    );
    let mut table = Table::new(title, "events/s")
        .versus("vs raw", RAW)
        .versus("vs raw, same indexes", RAW_LIKE_OURS);
    let mut runs: [Vec<Row>; 6] = Default::default();
    for round in 0..sizes.runs {
        for system in rotation(round, runs.len()) {
            let row = match system {
                0 => {
                    one(ctx, "ours", OURS, verify::OURS, |pool| async {
                        Ok(ours::OursBatch::new(ours::store(pool).await?))
                    })
                    .await?
                }
                1 => {
                    one(
                        ctx,
                        "ours_group",
                        OURS_GROUPED,
                        verify::OURS,
                        |pool| async {
                            let store = ours::grouped_store(pool).await?;
                            Ok(ours::OursBatch::new(store))
                        },
                    )
                    .await?
                }
                2 => {
                    one(ctx, "raw", RAW, verify::RAW, |pool| async {
                        raw::migrate(&pool).await?;
                        Ok(RawBatch::new(pool))
                    })
                    .await?
                }
                3 => {
                    one(ctx, "raw_like", RAW_LIKE_OURS, verify::RAW, |pool| async {
                        raw::migrate_like_ours(&pool).await?;
                        Ok(RawBatch::new(pool))
                    })
                    .await?
                }
                4 => {
                    one(ctx, "raw_copy", RAW_COPY, verify::RAW, |pool| async {
                        raw::migrate(&pool).await?;
                        Ok(raw::RawCopyBatch::new(pool))
                    })
                    .await?
                }
                _ => {
                    one(
                        ctx,
                        "raw_copy_like",
                        RAW_COPY_LIKE,
                        verify::RAW,
                        |pool| async {
                            raw::migrate_like_ours(&pool).await?;
                            Ok(raw::RawCopyBatch::new(pool))
                        },
                    )
                    .await?
                }
            };
            runs[system].push(row);
        }
    }
    for rows in runs {
        table.push(Row::median(rows).context("no batch run")?);
    }
    Ok(table)
}

async fn one<S, F, Fut>(
    ctx: &Context,
    db_label: &str,
    system: &'static str,
    layout: Layout,
    setup: F,
) -> Result<Row>
where
    S: BatchSystem,
    F: FnOnce(PgPool) -> Fut,
    Fut: Future<Output = Result<S>>,
{
    let (clients, sizes) = (ctx.clients, ctx.sizes);
    eprintln!("running batch / {system} ...");
    ctx.server
        .with_database(&format!("batch_{db_label}"), clients, |pool| async move {
            let appender = Arc::new(setup(pool.clone()).await?);
            let warm = BatchJob {
                system: appender.clone(),
                prefix: "warm-",
                batches: u64::from(clients) * 2,
                size: sizes.batch_size,
            };
            driver::drive(Arc::new(warm), clients).await?;
            ctx.server.checkpoint().await?;
            let timed = Arc::new(BatchJob {
                system: appender,
                prefix: "batch-",
                batches: sizes.batches,
                size: sizes.batch_size,
            });
            let run = driver::drive(timed.clone(), clients).await?;
            verify::expect(&pool, layout, "batch-", timed.expected()).await?;
            let events = run.units * sizes.batch_size;
            let note = run.client_cpu_then(events, "event", "verified");
            Ok(Row::new(system, events, run.elapsed, note))
        })
        .await
}
