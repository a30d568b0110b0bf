//! Workload 1: projection throughput. A fresh `ProjectionRunner` + `EsProjector` catches up on
//! the whole feed from PostgreSQL into a new index, against raw `_bulk`s of the same final
//! documents in the same batches (built beforehand, untimed), under the same refresh policy.
//! The two take turns, `Sizes::throughput_runs` times each, and the median run is reported.

use std::time::{Duration, Instant};

use anyhow::{ensure, Context as _, Result};
use cqrs_benchmarks::table::{Row, Table};
use cqrs_core::projection::{ProjectionRunner, ProjectionState, RunnerOptions};
use cqrs_core::ReadAll;
use cqrs_elastic::{EsReadModel, ProjectorOptions, RefreshPolicy};

use super::probe::{Clock, TimedProjection, TimedStore};
use super::raw::{self, RawBatch};
use super::{feed, Context, Db};
use crate::cpu::CpuMeter;
use crate::fill;
use crate::model::{Accounts, Expected};
use crate::node::Names;
use crate::report::Output;

const OURS: &str = "ours: ProjectionRunner + EsProjector";
const RAW: &str = "raw _bulk of the final documents";
const RAW_PARALLEL: &str = "raw, each batch as 2 _bulk requests at once";

/// One refresh policy, applied to both systems at the same cadence.
struct Policy {
    /// The table's number.
    tag: &'static str,
    label: &'static str,
    projector: RefreshPolicy,
    /// How often the runner settles (refresh and checkpoint) while catching up; `None` keeps
    /// the default (at most every 250 ms).
    settle_every: Option<Duration>,
    /// Whether raw refreshes the index once per batch, after the batch's bulks.
    raw_refresh: bool,
}

const POLICIES: [Policy; 2] = [
    Policy {
        tag: "1a",
        label: "no refresh (the index refreshes every 1 s)",
        projector: RefreshPolicy::None,
        settle_every: None,
        raw_refresh: false,
    },
    Policy {
        tag: "1b",
        label: "readers see each batch, one refresh per batch for both (raw: a refresh after \
                each batch's bulks; ours: RefreshPolicy::Immediate and a checkpoint per batch)",
        projector: RefreshPolicy::Immediate,
        settle_every: Some(Duration::ZERO),
        raw_refresh: true,
    },
];

/// What the timed runs share.
struct Setup<'a> {
    ctx: &'a Context,
    db: &'a Db,
    events: u64,
    expected: &'a Expected,
    bodies: &'a [RawBatch],
    /// The same bodies, each split in two as the projector splits its writes.
    split: &'a [Vec<RawBatch>],
}

/// One timed run: its time, its notes, and (ours only) where the runner's time went.
struct Run {
    elapsed: Duration,
    note: String,
    profile: String,
}

/// Runs the workload: one table per refresh policy.
pub(crate) async fn run(ctx: &Context) -> Result<Vec<Output>> {
    let (fill, batch) = (ctx.sizes.throughput, ctx.sizes.throughput_batch);
    eprintln!("running throughput ...");
    ctx.server
        .with_database("throughput", ctx.pool_size(), |pool| async move {
            let db = Db::open(pool).await?;
            fill::fill(&db.store, fill, ctx.clients).await?;
            db.settle().await?;
            let expected = fill.expected();
            let mut batches = Vec::new();
            let events = feed::read(&db.store, batch, |events| batches.push(events)).await?;
            ensure!(events == fill.events, "the feed holds {events} events");
            let bodies = raw::bodies(&batches, &expected)?;
            let split = raw::split(&bodies, 2);
            drop(batches);
            let setup = Setup {
                ctx,
                db: &db,
                events,
                expected: &expected,
                bodies: &bodies,
                split: &split,
            };
            ctx.node
                .with_indices("throughput", |names| tables(&setup, names))
                .await
        })
        .await
}

async fn tables(setup: &Setup<'_>, names: Names) -> Result<Vec<Output>> {
    let node = &setup.ctx.node;
    // Warm the node (JIT, caches) and PostgreSQL (the fill's checkpoint) with one pass of
    // each kind of writer; not reported.
    let warm = names.name("warm");
    raw::create(node, &warm).await?;
    raw::write(node, &warm, setup.bodies, false).await?;
    ours(setup, &names.name("warm-ours"), RefreshPolicy::None, None).await?;
    let runs = setup.ctx.sizes.throughput_runs;
    let mut tables = Vec::new();
    for policy in POLICIES {
        let title = format!(
            "{}. projection throughput, {}: {} events, {} per batch, {:.0} documents \
             written per batch, 1 runner, median of {runs} runs each, taking turns",
            policy.tag,
            policy.label,
            setup.events,
            setup.ctx.sizes.throughput_batch,
            raw::mean_documents(setup.bodies),
        );
        let mut ours_runs = Vec::new();
        let mut raw_runs = Vec::new();
        let mut parallel_runs = Vec::new();
        // Each turn starts with another system, so none always runs first after a change.
        for run in 1..=runs {
            for turn in 0..3 {
                match (run + turn) % 3 {
                    1 => {
                        let name = names.name(&format!("ours-{}-{run}", policy.tag));
                        let run = ours(setup, &name, policy.projector, policy.settle_every);
                        ours_runs.push(run.await?);
                    }
                    2 => {
                        let name = names.name(&format!("raw-{}-{run}", policy.tag));
                        raw_runs.push(raw_run(setup, &name, policy.raw_refresh, false).await?);
                    }
                    _ => {
                        let name = names.name(&format!("raw2-{}-{run}", policy.tag));
                        parallel_runs.push(raw_run(setup, &name, policy.raw_refresh, true).await?);
                    }
                }
            }
        }
        let last_ours = names.name(&format!("ours-{}-{runs}", policy.tag));
        let mget = raw::mget(node, &last_ours, setup.bodies).await?;

        // Ours sends each batch as 2 bulks at once: the raw row that does the same is the one
        // to divide by.
        let mut table = Table::new(title, "events/s").versus("vs raw x2", RAW_PARALLEL);
        let profile = ours_runs.iter().map(|run| run.elapsed).collect::<Vec<_>>();
        let profile = median_profile(&ours_runs, &profile);
        table.push(median(OURS, setup.events, ours_runs)?);
        table.push(median(RAW, setup.events, raw_runs)?);
        table.push(median(RAW_PARALLEL, setup.events, parallel_runs)?);
        table.footnote(format!(
            "{OURS}: defaults (2 parallel bulks per batch){}; median run: {profile}",
            match policy.settle_every {
                None => ", a checkpoint at most every 250 ms while catching up",
                Some(_) => ", but a checkpoint (and so a refresh) after every batch",
            }
        ));
        table.footnote(format!(
            "the same batches' _mget alone, once a run is over: {:.2} s",
            mget.as_secs_f64()
        ));
        tables.push(Output::Rates(table));
    }
    Ok(tables)
}

/// The row of `system`'s median run of `events` events, with the spread of its runs, its note
/// prefixed with every run's time in the order they ran.
fn median(system: &'static str, events: u64, runs: Vec<Run>) -> Result<Row> {
    let times: Vec<String> = runs
        .iter()
        .map(|r| format!("{:.2}", r.elapsed.as_secs_f64()))
        .collect();
    let rows = runs
        .into_iter()
        .map(|run| Row::new(system, events, run.elapsed, run.note))
        .collect();
    let mut row = Row::median(rows).with_context(|| format!("no run of {system}"))?;
    row.prefix_note(&format!("runs {} s", times.join(" / ")));
    Ok(row)
}

/// Where the runner's time went in the median one of `runs` (whose times are `elapsed`).
fn median_profile(runs: &[Run], elapsed: &[Duration]) -> String {
    let mut order: Vec<usize> = (0..elapsed.len()).collect();
    order.sort_by_key(|&i| elapsed[i]);
    // The slower of two middle runs, as `Row::median` picks.
    order
        .get(order.len().saturating_sub(1) / 2)
        .map(|&i| runs[i].profile.clone())
        .unwrap_or_default()
}

async fn ours(
    setup: &Setup<'_>,
    name: &str,
    policy: RefreshPolicy,
    settle_every: Option<Duration>,
) -> Result<Run> {
    let (node, store) = (&setup.ctx.node, &setup.db.store);
    eprintln!("  {OURS}, {policy:?} ...");
    let accounts = EsReadModel::new(node.client().clone(), Accounts::new(name))?;
    accounts.ensure().await?;
    let checkpoint = accounts.name().to_owned();
    let projector = accounts
        .projector()
        .with_options(ProjectorOptions::default().refresh(policy));
    let (applies, visible) = (Clock::default(), Clock::default());
    let timed = TimedStore::new(store.clone());
    let options = RunnerOptions::new()
        .batch_size(setup.ctx.sizes.throughput_batch)
        .checkpoint_name(checkpoint);
    let options = match settle_every {
        Some(interval) => options.checkpoint_interval(interval),
        None => options,
    };
    let runner = ProjectionRunner::for_store(
        TimedProjection::new(projector, applies.clone(), visible.clone()),
        &timed,
    )
    .with_options(options);

    let head = store.head().await?;
    let meter = CpuMeter::start(node, &setup.db.name).await?;
    let started = Instant::now();
    let handle = runner.spawn();
    let reached = handle
        .wait_until(|s| s.position >= head || s.state == ProjectionState::Failed)
        .await;
    let elapsed = started.elapsed();
    let cpu = meter.stop(node).await?;
    let status = handle.status();
    handle.shutdown().await;
    ensure!(
        reached.is_some_and(|s| s.state != ProjectionState::Failed),
        "the projection stopped: {:?}",
        status.last_error
    );
    ensure!(
        status.applied == setup.events,
        "the runner applied {} events of {}",
        status.applied,
        setup.events
    );
    let refreshes = node.refreshes(name).await?;
    let verified = crate::verify::documents(node, name, setup.expected).await?;
    Ok(Run {
        elapsed,
        note: format!("{refreshes} index refreshes; {verified}; {cpu}"),
        profile: format!(
            "{}; {}; {}; {}",
            applies.summary("apply (_mget + _bulk)"),
            visible.summary("make_visible (_refresh, overlapping)"),
            timed.reads.summary("feed reads (ahead, overlapping)"),
            timed.saves.summary("checkpoint saves")
        ),
    })
}

async fn raw_run(setup: &Setup<'_>, name: &str, refresh: bool, parallel: bool) -> Result<Run> {
    let node = &setup.ctx.node;
    let system = if parallel { RAW_PARALLEL } else { RAW };
    eprintln!("  {system}, refresh {refresh} ...");
    raw::create(node, name).await?;
    let meter = CpuMeter::start(node, &setup.db.name).await?;
    let elapsed = if parallel {
        raw::write_parallel(node, name, setup.split, refresh).await?
    } else {
        raw::write(node, name, setup.bodies, refresh).await?
    };
    let cpu = meter.stop(node).await?;
    let refreshes = node.refreshes(name).await?;
    let verified = crate::verify::documents(node, name, setup.expected).await?;
    Ok(Run {
        elapsed,
        note: format!("{refreshes} index refreshes; {verified}; {cpu}"),
        profile: String::new(),
    })
}
