//! Workload 4: catching up on the global feed from the start, in batches.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{ensure, Context as _, Result};
use sqlx::PgPool;

use super::batch::BatchJob;
use super::Context;
use crate::driver;
use crate::report::{Row, Table};
use crate::systems::raw::{self, RawBatch, RawFeed};
use crate::systems::{ours, BatchSystem, FeedSystem};
use crate::verify::{self, Layout};
use cqrs_benchmarks::table::rotation;

const OURS: &str = "ours: ReadAll::read_all";
const RAW: &str = "raw sqlx: keyset SELECT";

/// Events per stream when filling the store.
const FILL_BATCH: u64 = 100;

/// Runs the workload's table.
pub(crate) async fn run(ctx: &Context) -> Result<Table> {
    let sizes = ctx.sizes;
    let title = format!(
        "4. feed catch-up: {} events from the start, {} per read, {} timed passes, 1 reader, \
         median of {} runs, order rotated",
        sizes.feed_events, sizes.feed_batch, sizes.feed_passes, sizes.runs
    );
    let mut table = Table::new(title, "events/s").versus("vs raw", RAW);
    let mut runs: [Vec<Row>; 2] = Default::default();
    for round in 0..sizes.runs {
        for system in rotation(round, runs.len()) {
            let row = if system == 0 {
                one(ctx, "ours", OURS, verify::OURS, |pool| async {
                    let store = ours::store(pool).await?;
                    Ok((
                        ours::OursBatch::new(store.clone()),
                        ours::OursFeed::new(store),
                    ))
                })
                .await?
            } else {
                one(ctx, "raw", RAW, verify::RAW, |pool| async {
                    raw::migrate(&pool).await?;
                    Ok((RawBatch::new(pool.clone()), RawFeed::new(pool)))
                })
                .await?
            };
            runs[system].push(row);
        }
    }
    for rows in runs {
        table.push(Row::median(rows).context("no feed run")?);
    }
    Ok(table)
}

async fn one<W, R, F, Fut>(
    ctx: &Context,
    db_label: &str,
    system: &'static str,
    layout: Layout,
    setup: F,
) -> Result<Row>
where
    W: BatchSystem,
    R: FeedSystem,
    F: FnOnce(PgPool) -> Fut,
    Fut: Future<Output = Result<(W, R)>>,
{
    let (clients, sizes) = (ctx.clients, ctx.sizes);
    eprintln!("running feed / {system} ...");
    ctx.server
        .with_database(&format!("feed_{db_label}"), clients, |pool| async move {
            let (writer, reader) = setup(pool.clone()).await?;
            let fill = Arc::new(BatchJob {
                system: Arc::new(writer),
                prefix: "feed-",
                batches: sizes.feed_events.div_ceil(FILL_BATCH),
                size: FILL_BATCH,
            });
            driver::drive(fill.clone(), clients).await?;
            let total = fill.expected().events;
            verify::expect(&pool, layout, "feed-", fill.expected()).await?;
            sqlx::raw_sql("VACUUM ANALYZE").execute(&pool).await?;
            ctx.server.checkpoint().await?;

            // One untimed pass warms the buffers; every pass must see every event.
            let mut elapsed = Duration::ZERO;
            for pass in 0..=sizes.feed_passes {
                let started = Instant::now();
                let read = reader.read_feed(sizes.feed_batch).await?;
                if pass > 0 {
                    elapsed += started.elapsed();
                }
                ensure!(read == total, "pass {pass} read {read} events of {total}");
            }
            let events = total * sizes.feed_passes;
            Ok(Row::new(
                system,
                events,
                elapsed,
                "verified: every pass read every event in order".into(),
            ))
        })
        .await
}
