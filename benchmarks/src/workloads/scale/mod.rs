//! Workload 7, only on request (`--only scale`): what the store's figures do as the events
//! table grows. One database grows through a ladder of sizes (100k, 1M and 10M events;
//! `--scale-to` sets the top, 50M when asked), filled by the server itself with background
//! streams of ten events (`grow.rs`). At each size, once the table is vacuumed, analyzed and
//! checkpointed, the same five figures are measured (`measure.rs`):
//!
//! - append latency p50 / p99, single-event appends at a fixed rate (open loop);
//! - commands per second through `Repository` without the cache, on 16 clients;
//! - one load of the same 1,000-event stream, written before anything else;
//! - a feed catch-up from a recent checkpoint: the last events of the table;
//! - the table's and its indexes' bytes per event.
//!
//! Target: every figure at 10M within 1.2x of the same figure at 100k.

mod grow;
mod measure;

use anyhow::{Context as _, Result};
use sqlx::PgPool;

use super::Context;
use crate::report::{Row, Table};
use crate::systems::ours;
use grow::Grower;
use measure::Point;

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
    let points = ctx
        .server
        .with_database("scale", ctx.clients + 2, |pool| async move {
            let store = ours::store(pool.clone()).await?;
            measure::prepare(&store).await?;
            let mut grower = Grower::default();
            let mut points = Vec::new();
            for (step, &size) in ladder.iter().enumerate() {
                grower.grow_to(&pool, size).await?;
                settle(ctx, &pool).await?;
                points.push(measure::at(ctx, &store, &pool, step).await?);
            }
            Ok(points)
        })
        .await?;
    table(title, &points)
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
            format!("{} events", grouped(point.events)),
            point.commands,
            point.commands_elapsed,
            point.note(),
        ));
    }
    let (first, last) = (
        points.first().context("no size measured")?,
        points.last().context("no size measured")?,
    );
    table.footnote(format!(
        "{} vs {} events (time ratios: above 1 is slower; target <= 1.2x each): {}",
        grouped(last.events),
        grouped(first.events),
        last.versus(first)
    ));
    table.footnote(
        "every size is measured after VACUUM (ANALYZE) and CHECKPOINT; the background events \
         are written by the server in 250,000-row statements, ten per stream; every figure is \
         verified (the commands' streams, the long stream's balance, the feed's count and order)"
            .to_owned(),
    );
    Ok(table)
}

/// `n` with a comma every three digits.
fn grouped(n: u64) -> String {
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
