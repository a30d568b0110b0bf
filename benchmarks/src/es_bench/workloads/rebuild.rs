//! Workload 3: rebuild. `EsIndex::rebuild` of a read model from the whole feed: a fresh index
//! with refresh off, filled batch by batch, then the alias swapped. Next to it, the floor: the
//! same feed merely read, in the same batches, without writing anything.

use std::time::{Duration, Instant};

use anyhow::{ensure, Result};
use cqrs_benchmarks::table::{Row, Table};
use cqrs_core::EventFilter;
use cqrs_elastic::{ElasticProjection, EsReadModel, RebuildOptions};

use super::probe::TimedStore;
use super::{feed, Context, Db};
use crate::cpu::CpuMeter;
use crate::fill;
use crate::model::Accounts;
use crate::report::Output;

const REBUILD: &str = "ours: EsIndex::rebuild";
const FEED_COLD: &str = "feed read only, first pass on the pool";
const FEED: &str = "feed read only: ReadAll::read_all";
const FEED_ALL: &str = "feed read only, no category filter";

/// Runs the workload.
pub(crate) async fn run(ctx: &Context) -> Result<Output> {
    let (fill, batch) = (ctx.sizes.rebuild, ctx.sizes.rebuild_batch);
    eprintln!("running rebuild ...");
    ctx.server
        .with_database("rebuild", ctx.pool_size(), |pool| async move {
            let db = Db::open(pool).await?;
            fill::fill(&db.store, fill, ctx.clients).await?;
            db.settle().await?;
            let title = format!(
                "3. rebuild from the feed: {}, {batch} per batch, refresh off until the swap",
                fill.describe()
            );
            let mut table = Table::new(title, "events/s").versus("vs feed read", FEED);
            let filter = Accounts::new("feed").filter();
            // The first pass also warms the cache, so that every later read finds the same one.
            for (system, filter) in [
                (FEED_COLD, &filter),
                (FEED, &filter),
                (FEED_ALL, &EventFilter::all()),
            ] {
                table.push(feed_row(ctx, &db, batch, system, filter).await?);
            }
            let (row, profile) = ctx
                .node
                .with_indices("rebuild", |names| async move {
                    rebuild_row(ctx, &db, &names.name("accounts"), batch).await
                })
                .await?;
            table.push(row);
            table.footnote(profile);
            Ok(Output::Rates(table))
        })
        .await
}

/// Reads the whole feed through `filter` (which every event passes), timed.
async fn feed_row(
    ctx: &Context,
    db: &Db,
    batch: usize,
    system: &'static str,
    filter: &EventFilter,
) -> Result<Row> {
    eprintln!("  {system} ...");
    let meter = CpuMeter::start(&ctx.node, &db.name).await?;
    let started = Instant::now();
    let events = feed::read_filtered(&db.store, batch, filter, drop).await?;
    let elapsed = started.elapsed();
    let cpu = meter.stop(&ctx.node).await?;
    let total = ctx.sizes.rebuild.events;
    ensure!(events == total, "read {events} events of {total}");
    let note = format!("verified: every event read, positions growing; {cpu}");
    Ok(Row::new(system, events, elapsed, note))
}

/// The rebuild's row, and where its time went.
async fn rebuild_row(ctx: &Context, db: &Db, name: &str, batch: usize) -> Result<(Row, String)> {
    eprintln!("  {REBUILD} ...");
    let node = &ctx.node;
    let accounts = EsReadModel::new(node.client().clone(), Accounts::new(name))?;
    let before = accounts.ensure().await?;
    let options = RebuildOptions::default()
        .batch_size(batch)
        .drain(Duration::ZERO);
    let meter = CpuMeter::start(node, &db.name).await?;
    let started = Instant::now();
    let timed = TimedStore::new(db.store.clone());
    let report = accounts
        .rebuild(timed.clone(), timed.clone(), options)
        .await?;
    let elapsed = started.elapsed();
    let cpu = meter.stop(node).await?;

    let total = ctx.sizes.rebuild.events;
    ensure!(
        report.events == total,
        "rebuilt from {} events of {total}",
        report.events
    );
    ensure!(
        report.rejected.is_empty(),
        "rejected: {:?}",
        report.rejected
    );
    let now = accounts.index().current().await?;
    ensure!(
        now.as_ref() == Some(&report.to) && report.to.version == before.version + 1,
        "the alias is on {now:?} after a rebuild from {before:?} to {:?}",
        report.to
    );
    let verified = crate::verify::documents(node, name, &ctx.sizes.rebuild.expected()).await?;
    let note = format!(
        "{} -> {}, alias swapped; {verified}; {cpu}",
        report.from.index, report.to.index
    );
    let (reads, saves) = (
        timed.reads.summary("feed reads"),
        timed.saves.summary("checkpoint saves"),
    );
    let profile = format!(
        "{REBUILD}: {reads} (each beside the write of the batch before); {saves} (after the \
         first batch, every 250 ms and at the end of each catch-up); the projector's writes \
         and the swap make the rest"
    );
    Ok((Row::new(REBUILD, report.events, elapsed, note), profile))
}
