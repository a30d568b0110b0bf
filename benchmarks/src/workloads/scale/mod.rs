//! Workload 7, only on request (`--only scale`): what the store's figures do as the events
//! table grows. One database grows through a ladder of sizes (100k, 1M and 10M events;
//! `--scale-to` sets the top, 50M when asked), filled by the server itself with background
//! streams of ten events (`grow.rs`). A second database is filled to the first size and only
//! takes the measurements' own events. At each size, once the grown table is vacuumed, analyzed
//! and checkpointed, the same five figures are measured on both, in turns (`measure.rs`):
//!
//! - append latency p50 / p99, single-event appends at a fixed rate (open loop), in rounds
//!   (`latency.rs`);
//! - commands per second through `Repository` without the cache, on 16 clients;
//! - loads of the same 1,000-event stream, written before anything else;
//! - a feed catch-up from a recent checkpoint: the last events of the table;
//! - the grown table's and its indexes' bytes per event.
//!
//! Target: every figure at 10M within 1.2x of the same figure on the small table (the bytes:
//! of the same figure at 100k).

mod grow;
mod latency;
mod measure;

use anyhow::{Context as _, Result};
use sqlx::PgPool;

use super::Context;
use crate::report::{Row, Table};
use crate::systems::ours;
use grow::Grower;
use measure::{Point, Side};

/// Sizes up from `start` by tens while below `top`, then `top`.
fn ladder(start: u64, top: u64) -> Vec<u64> {
    let mut sizes = Vec::new();
    let mut size = start.max(1);
    while size < top {
        sizes.push(size);
        size = size.saturating_mul(10);
    }
    sizes.push(top);
    sizes
}

/// Runs the workload's table.
pub(crate) async fn run(ctx: &Context) -> Result<Table> {
    let sizes = ctx.sizes;
    let ladder = ladder(sizes.scale_start, sizes.scale_top);
    let title = format!(
        "7. scale: the events table grown to {} events; at each size append latency at {} \
         appends/s, {} commands on {} clients, a {}-event stream load, a feed catch-up of the \
         last {} events, bytes per event",
        ladder
            .iter()
            .map(|s| grouped(*s))
            .collect::<Vec<_>>()
            .join(", "),
        sizes.scale_append_rate,
        sizes.scale_commands,
        ctx.clients,
        measure::LONG_STREAM,
        sizes.scale_feed_tail,
    );
    let first = ladder.first().copied().context("no size to measure")?;
    let pool_size = ctx.clients + 2;
    let points = ctx
        .server
        .with_database("scale_base", pool_size, |base_pool| async move {
            let base = side(base_pool, pool_size).await?;
            Grower::default().grow_to(&base.pool, first).await?;
            settle(ctx, &base.pool).await?;
            ctx.server
                .with_database("scale", pool_size, |pool| async move {
                    let grown = side(pool, pool_size).await?;
                    let mut grower = Grower::default();
                    let mut points = Vec::new();
                    for (step, &size) in ladder.iter().enumerate() {
                        grower.grow_to(&grown.pool, size).await?;
                        settle(ctx, &grown.pool).await?;
                        points.push(measure::at(ctx, &grown, &base, step).await?);
                    }
                    Ok(points)
                })
                .await
        })
        .await?;
    table(title, &points)
}

/// A store on `pool` with the long stream written, every connection of the pool open.
async fn side(pool: PgPool, size: u32) -> Result<Side> {
    open_every_connection(&pool, size).await?;
    let store = ours::store(pool.clone()).await?;
    measure::prepare(&store).await?;
    Ok(Side { store, pool })
}

/// Opens the pool's `size` connections at once, so both sides run on as many. A pool hands out
/// its idle connections in turn, oldest first, so an append's backend is the one that waited
/// longest: with 18 connections open on the grown side (the commands open them) and 4 on the
/// small one, the grown side's append p50 was 7 to 12% higher at 1M and 10M events in two runs;
/// with 18 on both, 0.96x to 1.07x.
async fn open_every_connection(pool: &PgPool, size: u32) -> Result<()> {
    let mut open = Vec::new();
    for _ in 0..size {
        open.push(
            pool.acquire()
                .await
                .context("opening the pool's connections")?,
        );
    }
    Ok(())
}

/// Vacuums and analyzes the events table and flushes the server's dirty pages, so that each
/// size is measured on a settled table, as autovacuum would leave it.
async fn settle(ctx: &Context, pool: &PgPool) -> Result<()> {
    sqlx::raw_sql("VACUUM (ANALYZE) cqrs.events")
        .execute(pool)
        .await
        .context("vacuuming the events table")?;
    ctx.server.checkpoint().await
}

/// One row per size (its rate: the commands), and how the largest size compares with the
/// smallest.
fn table(title: String, points: &[Point]) -> Result<Table> {
    let mut table = Table::new(title, "commands/s");
    for point in points {
        table.push(Row::new(
            format!("{} events", grouped(point.grown.events)),
            point.grown.commands,
            point.grown.commands_elapsed,
            point.note(),
        ));
    }
    let (first, last) = (
        points.first().context("no size measured")?,
        points.last().context("no size measured")?,
    );
    table.footnote(format!(
        "{} events vs the table filled to {} events, measured in turns with it (time ratios: \
         above 1 is slower; target <= 1.2x each): {}",
        grouped(last.grown.events),
        grouped(first.grown.events),
        last.versus(first)
    ));
    table.footnote(
        "every size is measured after VACUUM (ANALYZE) and CHECKPOINT of the grown table, both \
         tables taking turns: the append latency in 5 rounds each (the median round reported), \
         the commands one run each, the loads and catch-ups one at a time (medians); the \
         background events are written by the server in 250,000-row statements, ten per stream; every figure is \
         verified (the commands' streams, the long stream's balance, the feed's count and order)"
            .to_owned(),
    );
    Ok(table)
}

/// `n` with a comma every three digits.
pub(super) fn grouped(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::{grouped, ladder};

    #[test]
    fn the_ladder_goes_up_by_tens_and_ends_at_the_top() {
        assert_eq!(
            ladder(100_000, 10_000_000),
            [100_000, 1_000_000, 10_000_000]
        );
        assert_eq!(
            ladder(100_000, 50_000_000),
            [100_000, 1_000_000, 10_000_000, 50_000_000]
        );
        assert_eq!(ladder(100_000, 50_000), [50_000]);
    }

    #[test]
    fn counts_are_grouped_by_thousands() {
        assert_eq!(grouped(0), "0");
        assert_eq!(grouped(999), "999");
        assert_eq!(grouped(1_000), "1,000");
        assert_eq!(grouped(10_000_000), "10,000,000");
    }
}
