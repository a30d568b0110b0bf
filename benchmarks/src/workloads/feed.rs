//! Workload 4: catching up on the global feed from the start, in batches: the whole feed
//! (4), and one category's share of it (4b), read from the same store.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{ensure, Context as _, Result};
use sqlx::PgPool;

use super::Context;
use crate::driver::{self, Job};
use crate::report::{Row, Table};
use crate::systems::raw::{self, RawBatch, RawFeed};
use crate::systems::{balance_of, ours, BatchSystem, FeedSystem};
use crate::verify::{self, Layout, Tally};
use cqrs_benchmarks::table::rotation;

const OURS: &str = "ours: ReadAll::read_all";
const RAW: &str = "raw sqlx: keyset SELECT";
const RAW_KEPT: &str = "raw sqlx: keyset SELECT, each page kept";
const OURS_FILTERED: &str = "ours: ReadAll::read_all, EventFilter::category";
const RAW_FILTERED: &str = "raw sqlx: keyset SELECT WHERE category";
const RAW_KEPT_FILTERED: &str = "raw sqlx: keyset SELECT WHERE category, each page kept";

/// Events per stream when filling the store.
const FILL_BATCH: u64 = 100;

/// The category a filtered reader follows: one stream in [`SHARE`] is of it, the others of
/// [`OTHER`], interleaved as the fill's clients write them.
const FOLLOWED: &str = "feed";
const OTHER: &str = "other";
const SHARE: u64 = 4;

/// Runs the workload's tables: the whole feed, and the followed category's events.
pub(crate) async fn run(ctx: &Context) -> Result<Vec<Table>> {
    let sizes = ctx.sizes;
    let title = format!(
        "4. feed catch-up: {} events from the start, {} per read, {} timed passes, 1 reader, \
         median of {} runs, order rotated",
        sizes.feed_events, sizes.feed_batch, sizes.feed_passes, sizes.runs
    );
    let filtered_title = format!(
        "4b. filtered feed catch-up: the events of one category, one stream in {SHARE} of the \
         same {} events, from the start, {} per read, {} timed passes, 1 reader",
        sizes.feed_events, sizes.feed_batch, sizes.feed_passes
    );
    let mut table = Table::new(title, "events/s")
        .versus("vs raw", RAW)
        .versus("vs raw, page kept", RAW_KEPT);
    let mut filtered = Table::new(filtered_title, "events/s")
        .versus("vs raw", RAW_FILTERED)
        .versus("vs raw, page kept", RAW_KEPT_FILTERED);
    let mut runs: [Vec<(Row, Row)>; 3] = Default::default();
    for round in 0..sizes.runs {
        for system in rotation(round, runs.len()) {
            let rows = if system == 0 {
                one(
                    ctx,
                    "ours",
                    [OURS, OURS_FILTERED],
                    verify::OURS,
                    |pool| async {
                        let store = ours::store(pool).await?;
                        Ok((
                            ours::OursBatch::new(store.clone()),
                            ours::OursFeed::new(store),
                        ))
                    },
                )
                .await?
            } else {
                let keep_pages = system == 2;
                let (label, names) = if keep_pages {
                    ("raw_kept", [RAW_KEPT, RAW_KEPT_FILTERED])
                } else {
                    ("raw", [RAW, RAW_FILTERED])
                };
                one(ctx, label, names, verify::RAW, |pool| async move {
                    raw::migrate(&pool).await?;
                    Ok((RawBatch::new(pool.clone()), RawFeed::new(pool, keep_pages)))
                })
                .await?
            };
            runs[system].push(rows);
        }
    }
    for rows in runs {
        let (whole, share): (Vec<Row>, Vec<Row>) = rows.into_iter().unzip();
        table.push(Row::median(whole).context("no feed run")?);
        filtered.push(Row::median(share).context("no filtered feed run")?);
    }
    Ok(vec![table, filtered])
}

/// Batch `k` of `batches`, to stream `feed-{k}` for one `k` in [`SHARE`] and `other-{k}` for
/// the rest.
struct Fill<S> {
    system: Arc<S>,
    batches: u64,
}

impl<S> Fill<S> {
    fn category(k: u64) -> &'static str {
        if k % SHARE == 0 {
            FOLLOWED
        } else {
            OTHER
        }
    }

    /// What the streams of `category` hold once the fill is done.
    fn expected(&self, category: &str) -> Tally {
        // Batches 0, SHARE, 2 * SHARE, ... are the followed category's.
        let followed = self.batches.div_ceil(SHARE);
        let streams = if category == FOLLOWED {
            followed
        } else {
            self.batches - followed
        };
        Tally {
            events: streams * FILL_BATCH,
            streams,
            amount: streams * balance_of(FILL_BATCH),
        }
    }
}

impl<S: BatchSystem> Job for Fill<S> {
    fn units(&self) -> u64 {
        self.batches
    }

    async fn run(&self, k: u64) -> Result<u64> {
        let stream = format!("{}-{k}", Self::category(k));
        self.system.append_batch(&stream, FILL_BATCH).await?;
        Ok(0)
    }
}

/// One run of a system in its own database: the whole feed's row and the filtered row.
async fn one<W, R, F, Fut>(
    ctx: &Context,
    db_label: &str,
    [system, filtered]: [&'static str; 2],
    layout: Layout,
    setup: F,
) -> Result<(Row, Row)>
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
            let fill = Arc::new(Fill {
                system: Arc::new(writer),
                batches: sizes.feed_events.div_ceil(FILL_BATCH),
            });
            driver::drive(fill.clone(), clients).await?;
            let followed = fill.expected(FOLLOWED);
            verify::expect(&pool, layout, "feed-", followed).await?;
            verify::expect(&pool, layout, "other-", fill.expected(OTHER)).await?;
            let total = followed.events + fill.expected(OTHER).events;
            sqlx::raw_sql("VACUUM ANALYZE").execute(&pool).await?;
            ctx.server.checkpoint().await?;

            let whole = passes(&reader, sizes.feed_batch, sizes.feed_passes, None, total).await?;
            let share = passes(
                &reader,
                sizes.feed_batch,
                sizes.feed_passes,
                Some(FOLLOWED),
                followed.events,
            )
            .await?;
            let rows = |name, events: u64, elapsed| {
                Row::new(
                    name,
                    events * sizes.feed_passes,
                    elapsed,
                    "verified: every pass read every event (of the category) in order".into(),
                )
            };
            Ok((
                rows(system, total, whole),
                rows(filtered, followed.events, share),
            ))
        })
        .await
}

/// Times `passes` reads of the feed (of `category`'s events if given) after one untimed pass
/// that warms the buffers; every pass must read `expected` events.
async fn passes<R: FeedSystem>(
    reader: &R,
    batch: u64,
    passes: u64,
    category: Option<&'static str>,
    expected: u64,
) -> Result<Duration> {
    let mut elapsed = Duration::ZERO;
    for pass in 0..=passes {
        let started = Instant::now();
        let read = reader.read_feed(batch, category).await?;
        if pass > 0 {
            elapsed += started.elapsed();
        }
        ensure!(
            read == expected,
            "pass {pass} read {read} events of {expected} ({category:?})"
        );
    }
    Ok(elapsed)
}
