//! Workload 3: loading one aggregate, one load at a time: a short stream, and a long stream
//! with and without snapshots, for ours and for postgres-es.

use std::future::Future;
use std::time::{Duration, Instant};

use anyhow::{ensure, Context as _, Result};
use sqlx::PgPool;

use super::Context;
use crate::report::{Row, Table};
use crate::systems::ours::{self, OursCommands};
use crate::systems::postgres_es::{self, EsCommands, EsLoader};
use crate::systems::{amount_of, balance_of, Command, CommandSystem};
use cqrs_benchmarks::table::rotation;

const OURS_SHORT: &str = "ours: short stream";
const OURS_SNAPSHOT: &str = "ours: long, snapshot every 100";
const OURS_REPLAY: &str = "ours: long, full replay";
const ES_SHORT: &str = "postgres-es: short stream";
const ES_SNAPSHOT: &str = "postgres-es: long, snapshot every 100";
const ES_REPLAY: &str = "postgres-es: long, full replay";

/// Events in the short stream.
const SHORT: u64 = 10;
/// Events appended after the long stream's last snapshot: half a snapshot interval, the mean.
const TAIL: u64 = 50;
/// The snapshot interval.
const EVERY: u64 = 100;
/// Events per append while preparing the long stream.
const CHUNK: u64 = 1_000;
/// Each case loads at least this long (and at least `--quick`'s or the full run's count).
const MIN_TIMED: Duration = Duration::from_secs(1);
/// Untimed loads before each timed series.
const WARM_LOADS: u64 = 20;

/// Runs the workload's table.
pub(crate) async fn run(ctx: &Context) -> Result<Table> {
    let sizes = ctx.sizes;
    let long = sizes.long_stream + TAIL;
    let title = format!(
        "3. load one aggregate, at least {} loads and 1 s each, 1 client: short = {SHORT} events; \
         long = {long} events, last snapshot at {}; median of {} runs, order rotated",
        sizes.loads, sizes.long_stream, sizes.runs
    );
    let mut table = Table::new(title, "loads/s")
        .with_latency()
        .versus("vs short", OURS_SHORT)
        .versus("vs pg-es snap", ES_SNAPSHOT)
        .versus("vs pg-es full", ES_REPLAY);
    // runs[system][case]: every case's rows over the rounds.
    let mut runs: [Vec<Vec<Row>>; 2] = Default::default();
    for round in 0..sizes.runs {
        for system in rotation(round, runs.len()) {
            let rows = if system == 0 {
                ours_rows(ctx).await?
            } else {
                postgres_es_rows(ctx).await?
            };
            runs[system].resize_with(rows.len(), Vec::new);
            for (case, row) in rows.into_iter().enumerate() {
                runs[system][case].push(row);
            }
        }
    }
    for rows in runs.into_iter().flatten() {
        table.push(Row::median(rows).context("no load run")?);
    }
    table.footnote(
        "a wrong balance fails the run for ours; postgres-es' known snapshot defect (see the \
         README) is shown as WRONG STATE in its notes instead, with its rate"
            .to_owned(),
    );
    Ok(table)
}

/// The commands that write versions `from..=to` of account `id`.
fn commands(id: &str, from: u64, to: u64) -> impl Iterator<Item = Command> + '_ {
    (from..=to).map(move |version| Command {
        id: id.to_owned(),
        version,
        amount: amount_of(version),
    })
}

async fn ours_rows(ctx: &Context) -> Result<Vec<Row>> {
    let (loads, target) = (ctx.sizes.loads, ctx.sizes.long_stream);
    eprintln!("running load / ours ...");
    ctx.server
        .with_database("load_ours", ctx.clients, |pool| async move {
            let store = ours::store(pool).await?;
            let snapshots = OursCommands::with_snapshots(store.clone(), EVERY);
            let replay = OursCommands::new(store.clone(), false);
            for command in commands("short", 1, SHORT) {
                snapshots.deposit(&command).await?;
            }
            // The long stream: appends up to just before the snapshot mark, then commands
            // through the repository (which takes the snapshot), then a tail of appends.
            let long = ours::stream_of("long")?;
            let before = target - SHORT;
            for from in (1..=before).step_by(usize::try_from(CHUNK)?) {
                ours::append_range(&store, &long, from, (from + CHUNK - 1).min(before)).await?;
            }
            for command in commands("long", before + 1, target) {
                snapshots.deposit(&command).await?;
            }
            ours::append_range(&store, &long, target + 1, target + TAIL).await?;
            let snapshot = ours::snapshot_version(&store, &long).await?;
            ensure!(
                snapshot == Some(target),
                "ours' long stream has snapshot {snapshot:?}"
            );
            settle(store.pool()).await?;
            ctx.server.checkpoint().await?;

            let short = (balance_of(SHORT), SHORT);
            let full = (balance_of(target + TAIL), target + TAIL);
            Ok(vec![
                timed(OURS_SHORT, loads, short, || snapshots.load("short")).await?,
                timed(OURS_SNAPSHOT, loads, full, || snapshots.load("long")).await?,
                timed(OURS_REPLAY, loads, full, || replay.load("long")).await?,
            ])
        })
        .await
}

async fn postgres_es_rows(ctx: &Context) -> Result<Vec<Row>> {
    let (loads, target) = (ctx.sizes.loads, ctx.sizes.long_stream);
    let every = usize::try_from(EVERY)?;
    eprintln!("running load / postgres-es ...");
    ctx.server
        .with_database("load_pges", ctx.clients, |pool| async move {
            postgres_es::migrate(&pool).await?;
            let writer = EsCommands::with_snapshots(pool.clone(), every);
            for command in commands("short", 1, SHORT) {
                writer.deposit(&command).await?;
            }
            // Same preparation as ours; the rows go straight into postgres-es's table.
            let before = target - SHORT;
            for from in (1..=before).step_by(usize::try_from(CHUNK)?) {
                postgres_es::insert_events(&pool, "long", from, (from + CHUNK - 1).min(before))
                    .await?;
            }
            for command in commands("long", before + 1, target) {
                writer.deposit(&command).await?;
            }
            postgres_es::insert_events(&pool, "long", target + 1, target + TAIL).await?;
            let snapshot = postgres_es::snapshot_version(&pool, "long").await?;
            ensure!(
                snapshot == Some(target),
                "postgres-es' long stream has snapshot {snapshot:?}"
            );
            settle(&pool).await?;
            ctx.server.checkpoint().await?;

            let snapshots = EsLoader::with_snapshots(pool.clone(), every);
            let replay = EsLoader::new(pool);
            let short = (balance_of(SHORT), SHORT);
            let full = (balance_of(target + TAIL), target + TAIL);
            Ok(vec![
                timed_noting(ES_SHORT, loads, short, || snapshots.load("short")).await?,
                timed_noting(ES_SNAPSHOT, loads, full, || snapshots.load("long")).await?,
                timed_noting(ES_REPLAY, loads, full, || replay.load("long")).await?,
            ])
        })
        .await
}

/// Vacuums and analyzes the freshly written tables, so that autovacuum does not start in the
/// middle of the timed loads and hint bits are set; done for every system alike.
async fn settle(pool: &PgPool) -> Result<()> {
    sqlx::raw_sql("VACUUM ANALYZE").execute(pool).await?;
    Ok(())
}

/// Times at least `loads` sequential loads (see [`MIN_TIMED`]), after a few untimed ones. Each
/// must find `expected` (balance, version), or the run stops: a wrong state is a broken system,
/// not a figure.
async fn timed<F, Fut>(
    system: &'static str,
    loads: u64,
    expected: (u64, u64),
    load: F,
) -> Result<Row>
where
    F: Fn() -> Fut,
    Fut: Future<Output = Result<(u64, u64)>>,
{
    series(system, loads, expected, load, WrongState::Fails).await
}

/// [`timed`], but a wrong balance (with the right version) only marks the row `WRONG STATE`:
/// for postgres-es, whose snapshots count the snapshotting command's events twice, a defect of
/// its own that the table shows rather than hides.
async fn timed_noting<F, Fut>(
    system: &'static str,
    loads: u64,
    expected: (u64, u64),
    load: F,
) -> Result<Row>
where
    F: Fn() -> Fut,
    Fut: Future<Output = Result<(u64, u64)>>,
{
    series(system, loads, expected, load, WrongState::Noted).await
}

/// What a wrong balance does to a series.
#[derive(Clone, Copy, PartialEq, Eq)]
enum WrongState {
    /// It fails the run.
    Fails,
    /// It is noted in the row.
    Noted,
}

async fn series<F, Fut>(
    system: &'static str,
    loads: u64,
    expected: (u64, u64),
    load: F,
    on_wrong: WrongState,
) -> Result<Row>
where
    F: Fn() -> Fut,
    Fut: Future<Output = Result<(u64, u64)>>,
{
    let mut wrong = None;
    let mut check = |found: (u64, u64)| -> Result<()> {
        ensure!(
            found.1 == expected.1,
            "{system} loaded version {}, expected {}",
            found.1,
            expected.1
        );
        if found.0 != expected.0 {
            ensure!(
                on_wrong == WrongState::Noted,
                "{system} loaded a wrong state: balance {}, expected {} (version {} right)",
                found.0,
                expected.0,
                expected.1
            );
            wrong = Some(found.0);
        }
        Ok(())
    };
    for _ in 0..WARM_LOADS {
        check(load().await?)?;
    }
    // Fast loads take well under a millisecond: keep going for a while, so that a scheduling
    // hiccup on a busy machine does not decide the figure.
    let (mut elapsed, mut done) = (Duration::ZERO, 0);
    while done < loads || elapsed < MIN_TIMED {
        let started = Instant::now();
        let found = load().await?;
        elapsed += started.elapsed();
        done += 1;
        check(found)?;
    }
    let note = match wrong {
        None => "verified balance and version".to_owned(),
        Some(balance) => format!(
            "WRONG STATE: balance {balance}, expected {} (version right)",
            expected.0
        ),
    };
    Ok(Row::new(system, done, elapsed, note))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A load that finds the right version but the wrong balance did the work and got it wrong:
    /// for ours that fails the run, as a wrong count fails every other workload.
    #[tokio::test]
    async fn a_wrong_state_for_ours_fails_the_run() {
        let loaded = timed(OURS_SNAPSHOT, 3, (10, 4), || async { Ok((11, 4)) }).await;
        let error = loaded.err().expect("a wrong balance must fail the run");
        assert!(
            error.to_string().contains("balance 11, expected 10"),
            "{error}"
        );
    }
}
