//! Workload 2: freshness. With the runner live and woken by `PgEventStore::feed_signal()`
//! (`LISTEN`), the time from an append returning to the changed document being found by a
//! search on its unique reference; against a direct write of the same document plus
//! `_refresh`. Both are timed from the start of their write (ours: the append; direct: the
//! index request), so that neither leaves its write's own time out. The two systems take turns on one
//! schedule, a second each, so that both see the same background load but only one of them
//! loads the node at a time. Each rate of `Sizes::freshness_rates` gets its own table.

mod horizon;
mod sampler;
mod side;
mod watch;

use std::time::Duration;

use anyhow::{ensure, Result};
use cqrs_core::projection::{ProjectionHandle, ProjectionRunner, ProjectionState};
use cqrs_core::{Position, ReadAll};
use cqrs_elastic::{EsQueries, EsReadModel, ProjectorOptions, RefreshPolicy};

use self::horizon::HorizonWatch;
use self::sampler::Sample;
use self::side::{Side, Which};
use self::watch::{Watcher, POLL_PAUSE};
use super::probe::{Clock, TimedProjection, TimedStore};
use super::{raw, Context, Db};
use crate::cpu::CpuMeter;
use crate::fill;
use crate::model::{Accounts, Deposit};
use crate::node::Names;
use crate::report::{LatencyTable, Output};

const OURS: &str = "ours: append start -> searchable";
const OURS_AFTER: &str = "ours: append returned -> searchable";
const OURS_APPEND: &str = "ours: the append alone";
const DIRECT: &str = "direct: index start -> searchable (+ _refresh)";
const DIRECT_WRITE: &str = "direct: the index + _refresh alone";

/// Time for the runner's feed reader to open its `LISTEN` connection once at the head.
const SETTLE: Duration = Duration::from_millis(500);

/// Runs the workload: a table per rate.
pub(crate) async fn run(ctx: &Context) -> Result<Vec<Output>> {
    let seed = ctx.sizes.freshness_seed;
    eprintln!("running freshness ...");
    ctx.server
        .with_database("freshness", ctx.pool_size(), |pool| async move {
            let db = Db::open(pool).await?;
            fill::fill(&db.store, seed, ctx.clients).await?;
            db.settle().await?;
            ctx.node
                .with_indices("freshness", |names| measure(ctx, &db, names))
                .await
        })
        .await
}

/// Sets both systems up on the seed, runs every rate, and checks both read models.
async fn measure(ctx: &Context, db: &Db, names: Names) -> Result<Vec<Output>> {
    let node = &ctx.node;
    let (ours_name, direct_name) = (names.name("ours"), names.name("direct"));
    let seeded = ctx.sizes.freshness_seed.expected();
    raw::create(node, &direct_name).await?;
    raw::write(node, &direct_name, &raw::documents(&seeded, 1_000)?, false).await?;
    node.refresh(&direct_name).await?;

    let accounts = EsReadModel::new(node.client().clone(), Accounts::new(ours_name.clone()))?;
    accounts.ensure().await?;
    let projector = accounts
        .projector()
        .with_options(ProjectorOptions::default().refresh(RefreshPolicy::Immediate));
    let probe = Probe {
        applies: Clock::default(),
        visible: Clock::default(),
        store: TimedStore::new(db.store.clone()),
    };
    let projector = TimedProjection::new(projector, probe.applies.clone(), probe.visible.clone());
    let handle = ProjectionRunner::for_store(projector, &probe.store).spawn();
    let watcher = |name: &str| -> Result<Watcher> {
        Ok(Watcher::start(EsQueries::new(node.client().clone(), name)?))
    };
    let mut sides = [
        Side::ours(db.store.clone(), watcher(&ours_name)?, seeded.clone()),
        Side::direct(
            node.clone(),
            direct_name.clone(),
            watcher(&direct_name)?,
            seeded,
        ),
    ];
    let indices = [ours_name.as_str(), direct_name.as_str()];
    let measured = every_rate(ctx, db, &handle, &probe, &mut sides, indices).await;
    let status = handle.status();
    handle.shutdown().await;
    let measured = measured?;
    ensure!(
        status.state != ProjectionState::Failed,
        "the projection failed: {:?}",
        status.last_error
    );
    Ok(measured
        .iter()
        .map(|m| Output::Latencies(table(ctx, m)))
        .collect())
}

/// One rate's timed samples.
struct Measured {
    tag: &'static str,
    rate: u32,
    ours: Vec<Sample>,
    direct: Vec<Sample>,
    /// Samples started per second, as achieved.
    achieved: f64,
    cpu: String,
    horizon: String,
    /// Where the runner's time went.
    profile: String,
    /// Refreshes of each system's index while timed.
    refreshes: [u64; 2],
    /// What the check of each read model after this rate found: ours, direct.
    verified: [String; 2],
}

/// Waits for the runner to catch up on the seed, then samples every rate, and checks both read
/// models after each: every sample of the rate was found, so each must hold all of its deposits.
async fn every_rate(
    ctx: &Context,
    db: &Db,
    handle: &ProjectionHandle,
    probe: &Probe,
    sides: &mut [Side; 2],
    indices: [&str; 2],
) -> Result<Vec<Measured>> {
    caught_up(handle, db.store.head().await?).await?;
    tokio::time::sleep(SETTLE).await;
    let mut measured = Vec::new();
    let mut next = 0;
    for (tag, rate) in ["2a", "2b"].into_iter().zip(ctx.sizes.freshness_rates) {
        eprintln!("  {rate}/s, both systems in turn ...");
        let one = at(ctx, db, probe, sides, indices, rate, &mut next).await?;
        let verified = verify(ctx, sides, indices).await?;
        measured.push(Measured {
            tag,
            verified,
            ..one
        });
    }
    Ok(measured)
}

/// Samples both systems at `rate`: one untimed second each, then `freshness_seconds` timed
/// seconds each, in turns. `next` numbers the deposits across rates.
async fn at(
    ctx: &Context,
    db: &Db,
    probe: &Probe,
    sides: &mut [Side; 2],
    indices: [&str; 2],
    rate: u32,
    next: &mut u64,
) -> Result<Measured> {
    let documents = ctx.sizes.freshness_seed.documents;
    let block = u64::from(rate);
    let warm = 2 * block;
    let timed = warm..warm + 2 * block * u64::from(ctx.sizes.freshness_seconds);
    let first = *next;
    *next += timed.end / 2;
    // One-second blocks, ours then direct; the j-th sample of each makes the same deposit.
    let mut start = |k: u64| {
        let side = usize::from((k / block) % 2 == 1);
        let j = first + k / (2 * block) * block + k % block;
        let (account, deposit) = deposit_of(j, documents);
        sides[side].start(account, deposit)
    };
    sampler::at_rate(rate, 0..warm, &mut start).await?;
    probe.reset();
    let refreshed = refreshes(ctx, indices).await?;
    let meter = CpuMeter::start(&ctx.node, &db.name).await?;
    let horizon = HorizonWatch::start(db.store.clone());
    let samples = sampler::at_rate(rate, timed, &mut start).await?;
    let horizon = horizon.stop().await?;
    let cpu = meter.stop(&ctx.node).await?;
    let [ours, direct] = refreshes(ctx, indices).await?;
    let refreshes = [ours - refreshed[0], direct - refreshed[1]];
    let of = |which: Which| {
        let chosen = samples.samples.iter().filter(|(w, _)| *w == which);
        chosen.map(|(_, sample)| *sample).collect()
    };
    Ok(Measured {
        tag: "",
        rate,
        ours: of(Which::Ours),
        direct: of(Which::Direct),
        achieved: samples.rate,
        cpu: cpu.to_string(),
        horizon: horizon.to_string(),
        profile: probe.summary(),
        refreshes,
        verified: Default::default(),
    })
}

/// Checks that each read model holds what its side wrote so far, and that both sides were
/// given the same deposits; a note for each.
async fn verify(ctx: &Context, sides: &[Side; 2], indices: [&str; 2]) -> Result<[String; 2]> {
    let [ours, direct] = sides;
    ensure!(
        ours.expected() == direct.expected(),
        "the two systems were given different deposits"
    );
    Ok([
        crate::verify::documents(&ctx.node, indices[0], ours.expected()).await?,
        crate::verify::documents(&ctx.node, indices[1], direct.expected()).await?,
    ])
}

/// How many times each index was refreshed so far.
async fn refreshes(ctx: &Context, indices: [&str; 2]) -> Result<[u64; 2]> {
    Ok([
        ctx.node.refreshes(indices[0]).await?,
        ctx.node.refreshes(indices[1]).await?,
    ])
}

fn table(ctx: &Context, m: &Measured) -> LatencyTable {
    let title = format!(
        "{}. freshness at {}/s: {} samples per system, systems taking turns a second each, {} \
         documents, searched every {} ms until found, both timed from the start of the write; runner \
         woken by LISTEN, RefreshPolicy::Immediate",
        m.tag,
        m.rate,
        m.ours.len(),
        ctx.sizes.freshness_seed.documents,
        POLL_PAUSE.as_millis()
    );
    let mut table = LatencyTable::new(title, DIRECT);
    let column = |samples: &[Sample], f: fn(&Sample) -> Duration| samples.iter().map(f).collect();
    let [ours_note, direct_note] = &m.verified;
    table.push(OURS, column(&m.ours, |s| s.total), ours_note.clone());
    table.push(OURS_APPEND, column(&m.ours, |s| s.write), String::new());
    table.push(
        OURS_AFTER,
        column(&m.ours, Sample::after_write),
        "after the append only: not comparable with the direct row".to_owned(),
    );
    table.push(DIRECT, column(&m.direct, |s| s.total), direct_note.clone());
    table.push(DIRECT_WRITE, column(&m.direct, |s| s.write), String::new());
    table.footnote(format!("started {:.1} samples/s; {}", m.achieved, m.cpu));
    table.footnote(format!(
        "index refreshes while timed: ours {}, direct {}",
        m.refreshes[0], m.refreshes[1]
    ));
    table.footnote(m.horizon.clone());
    table.footnote(m.profile.clone());
    table
}

/// The runner's timings.
struct Probe {
    applies: Clock,
    visible: Clock,
    store: TimedStore,
}

impl Probe {
    fn reset(&self) {
        self.applies.reset();
        self.visible.reset();
        self.store.reads.reset();
        self.store.saves.reset();
    }

    fn summary(&self) -> String {
        format!(
            "runner: {}; {}; {}; {}",
            self.applies.summary("apply (_mget + _bulk)"),
            self.visible.summary("make_visible (_refresh, overlapping)"),
            self.store.reads.summary("feed reads"),
            self.store.saves.summary("checkpoint saves")
        )
    }
}

/// The deposit of sample `j`: references unique, accounts spread over the documents.
fn deposit_of(j: u64, documents: u64) -> (u64, Deposit) {
    let account = (j * 7_919) % documents.max(1);
    let deposit = Deposit {
        amount: 1 + j % 89,
        reference: format!("fresh-{j}"),
    };
    (account, deposit)
}

/// Waits (at most a minute) until the runner has applied everything up to `head`.
async fn caught_up(handle: &ProjectionHandle, head: Position) -> Result<()> {
    let reached = handle.wait_for(head, Duration::from_secs(60)).await.is_ok();
    ensure!(
        reached,
        "the runner did not catch up: {:?}",
        handle.status()
    );
    Ok(())
}
