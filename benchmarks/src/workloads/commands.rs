//! Workload 1: deposit commands (load, decide, append one event) on concurrent clients, over
//! many short streams or a few hot ones.

use std::future::Future;
use std::sync::Arc;

use anyhow::{bail, Context as _, Result};
use sqlx::PgPool;

use super::Context;
use crate::driver::{self, Job, Run};
use crate::report::{Row, Table};
use crate::systems::postgres_es::{self, EsCommands};
use crate::systems::raw::{self, RawInsertOnly, RawReadInsert};
use crate::systems::{ours, Command, CommandSystem};
use crate::verify::{self, Layout, Tally};
use cqrs_benchmarks::table::rotation;

const OURS_GROUPED: &str = "ours: Repository + cache + group commit";
const OURS_GROUPED_CLAIMED: &str =
    "ours: Repository + cache + group commit, first commands claim a new stream";
const OURS_GROUPED_UNCACHED: &str = "ours: Repository + group commit, no cache";
const OURS_CACHED: &str = "ours: Repository + cache";
const OURS: &str = "ours: Repository, no cache";
const OURS_SNAPSHOTS: &str = "ours: Repository + snapshot every 100 events, no cache";
/// How many events apart the snapshotting row takes its snapshots.
const SNAPSHOT_EVERY: u64 = 100;
const POSTGRES_ES: &str = "postgres-es 0.5";
const POSTGRES_ES_SNAPSHOTS: &str = "postgres-es 0.5 + snapshot every 100 events";
const RAW_READ_INSERT: &str = "raw sqlx: read + insert";
const RAW_INSERT: &str = "raw sqlx: insert only";
const RAW_INSERT_NOTIFY: &str = "raw sqlx: insert only + pg_notify";

/// Which streams the commands go to.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Shape {
    /// Many streams, a few commands each.
    Many,
    /// A few streams with long histories.
    Hot,
}

/// The commands of a run: command `k` goes to stream `k % streams`, so each stream's commands
/// are spread evenly over the run and every system sees the same sequence.
#[derive(Clone, Copy, Debug)]
struct Plan {
    prefix: &'static str,
    streams: u64,
    commands: u64,
}

impl Plan {
    fn command(&self, k: u64) -> Command {
        Command {
            id: format!("{}{}", self.prefix, k % self.streams),
            version: k / self.streams + 1,
            amount: 1 + k % 7,
        }
    }

    fn expected(&self) -> Tally {
        Tally {
            events: self.commands,
            streams: self.streams.min(self.commands),
            amount: (0..self.commands).map(|k| self.command(k).amount).sum(),
        }
    }

    /// Untimed commands on other streams first: connections opened, caches and plans warm.
    fn warm_up(clients: u32) -> Self {
        Plan {
            prefix: "w",
            streams: u64::from(clients) * 4,
            commands: u64::from(clients) * 25,
        }
    }
}

struct CommandJob<S> {
    system: Arc<S>,
    plan: Plan,
}

impl<S: CommandSystem> Job for CommandJob<S> {
    fn units(&self) -> u64 {
        self.plan.commands
    }

    async fn run(&self, k: u64) -> Result<u64> {
        self.system.deposit(&self.plan.command(k)).await
    }
}

/// Runs the workload's table.
pub(crate) async fn run(ctx: &Context, shape: Shape) -> Result<Table> {
    let sizes = ctx.sizes;
    let (label, plan) = match shape {
        Shape::Many => (
            "many",
            Plan {
                prefix: "s",
                streams: sizes.many_streams,
                commands: sizes.many_streams * sizes.many_per_stream,
            },
        ),
        Shape::Hot => (
            "hot",
            Plan {
                prefix: "s",
                streams: sizes.hot_streams,
                commands: sizes.hot_commands,
            },
        ),
    };
    let title = format!(
        "1{}. commands (load + decide + append 1 event), {} streams: {} commands over {} streams, {} clients, \
         median of {} runs, order rotated",
        if matches!(shape, Shape::Many) { "a" } else { "b" },
        label,
        plan.commands,
        plan.streams,
        ctx.clients,
        sizes.runs,
    );
    let mut table = Table::new(title, "commands/s")
        .versus("vs pg-es", POSTGRES_ES)
        .versus("vs raw r+i", RAW_READ_INSERT)
        .versus("vs raw ins", RAW_INSERT);

    let runner = Runner { ctx, label, plan };
    let mut runs: Vec<Vec<Row>> = (0..SYSTEMS.len()).map(|_| Vec::new()).collect();
    for round in 0..sizes.runs {
        for system in rotation(round, SYSTEMS.len()) {
            if ctx.runs(SYSTEMS[system]) {
                runs[system].push(runner.system(system).await?);
            }
        }
    }
    for (system, rows) in SYSTEMS.iter().zip(runs) {
        if ctx.runs(system) {
            table.push(Row::median(rows).with_context(|| format!("no run of {system}"))?);
        }
    }
    table.footnote(format!(
        "the cache keeps states in memory, which postgres-es lacks: \"{OURS_GROUPED_UNCACHED}\" \
         against \"{POSTGRES_ES}\" compares the stores, group commit included"
    ));
    table.footnote(
        "\"+ group commit\" rows use a new PgEventStore's default grouping; the other rows of ours \
         are built without_group_commit"
            .to_string(),
    );
    table.footnote(format!(
        "\"{POSTGRES_ES_SNAPSHOTS}\" writes the right events (deposits do not read the balance) \
         but its snapshots count the snapshotting command's events twice (workload 3)"
    ));
    Ok(table)
}

/// Every system of the table, in the order of its rows.
const SYSTEMS: [&str; 11] = [
    OURS_GROUPED,
    OURS_GROUPED_CLAIMED,
    OURS_GROUPED_UNCACHED,
    OURS_CACHED,
    OURS,
    OURS_SNAPSHOTS,
    POSTGRES_ES,
    POSTGRES_ES_SNAPSHOTS,
    RAW_READ_INSERT,
    RAW_INSERT,
    RAW_INSERT_NOTIFY,
];

struct Runner<'a> {
    ctx: &'a Context,
    label: &'static str,
    plan: Plan,
}

impl Runner<'_> {
    /// One run of system `index` of [`SYSTEMS`].
    async fn system(&self, index: usize) -> Result<Row> {
        match SYSTEMS.get(index).copied() {
            Some(OURS_GROUPED) => {
                self.one("ours_group", OURS_GROUPED, verify::OURS, |pool| async {
                    let store = ours::grouped_store(pool).await?;
                    Ok(ours::OursCommands::new(store, true))
                })
                .await
            }
            Some(OURS_GROUPED_CLAIMED) => {
                self.one(
                    "ours_group_new",
                    OURS_GROUPED_CLAIMED,
                    verify::OURS,
                    |pool| async {
                        let store = ours::grouped_store(pool).await?;
                        Ok(ours::OursCommands::new(store, true).claiming_new_streams())
                    },
                )
                .await
            }
            Some(OURS_GROUPED_UNCACHED) => {
                self.one(
                    "ours_group_nc",
                    OURS_GROUPED_UNCACHED,
                    verify::OURS,
                    |pool| async {
                        let store = ours::grouped_store(pool).await?;
                        Ok(ours::OursCommands::new(store, false))
                    },
                )
                .await
            }
            Some(OURS_CACHED) => {
                self.one("ours_cache", OURS_CACHED, verify::OURS, |pool| async {
                    Ok(ours::OursCommands::new(ours::store(pool).await?, true))
                })
                .await
            }
            Some(OURS) => {
                self.one("ours", OURS, verify::OURS, |pool| async {
                    Ok(ours::OursCommands::new(ours::store(pool).await?, false))
                })
                .await
            }
            Some(OURS_SNAPSHOTS) => {
                self.one("ours_snap", OURS_SNAPSHOTS, verify::OURS, |pool| async {
                    let store = ours::store(pool).await?;
                    Ok(ours::OursCommands::with_snapshots(store, SNAPSHOT_EVERY))
                })
                .await
            }
            Some(POSTGRES_ES) => {
                self.one("pges", POSTGRES_ES, verify::POSTGRES_ES, |pool| async {
                    postgres_es::migrate(&pool).await?;
                    Ok(EsCommands::new(pool))
                })
                .await
            }
            Some(POSTGRES_ES_SNAPSHOTS) => {
                self.one(
                    "pges_snap",
                    POSTGRES_ES_SNAPSHOTS,
                    verify::POSTGRES_ES,
                    |pool| async {
                        postgres_es::migrate(&pool).await?;
                        Ok(EsCommands::with_snapshots(
                            pool,
                            usize::try_from(SNAPSHOT_EVERY)?,
                        ))
                    },
                )
                .await
            }
            Some(RAW_READ_INSERT) => {
                self.one("raw_ri", RAW_READ_INSERT, verify::RAW, |pool| async {
                    raw::migrate(&pool).await?;
                    Ok(RawReadInsert::new(pool))
                })
                .await
            }
            Some(RAW_INSERT) => {
                self.one("raw_i", RAW_INSERT, verify::RAW, |pool| async {
                    raw::migrate(&pool).await?;
                    Ok(RawInsertOnly::new(pool))
                })
                .await
            }
            Some(RAW_INSERT_NOTIFY) => {
                self.one("raw_in", RAW_INSERT_NOTIFY, verify::RAW, |pool| async {
                    raw::migrate(&pool).await?;
                    Ok(RawInsertOnly::notifying(pool))
                })
                .await
            }
            _ => bail!("no command system {index}"),
        }
    }

    /// One system in its own database: set up, warm up, time the plan, verify.
    async fn one<S, F, Fut>(
        &self,
        db_label: &str,
        system: &'static str,
        layout: Layout,
        setup: F,
    ) -> Result<Row>
    where
        S: CommandSystem,
        F: FnOnce(PgPool) -> Fut,
        Fut: Future<Output = Result<S>>,
    {
        let (clients, plan) = (self.ctx.clients, self.plan);
        let prefix = layout.accounts(plan.prefix);
        let db = format!("{}_{db_label}", self.label);
        eprintln!("running {} / {system} ...", self.label);
        self.ctx
            .server
            .with_database(&db, clients, |pool| async move {
                let system_under_test = Arc::new(setup(pool.clone()).await?);
                let warm = CommandJob {
                    system: system_under_test.clone(),
                    plan: Plan::warm_up(clients),
                };
                driver::drive(Arc::new(warm), clients).await?;
                self.ctx.server.checkpoint().await?;
                let timed = CommandJob {
                    system: system_under_test,
                    plan,
                };
                let run: Run = driver::drive(Arc::new(timed), clients).await?;
                verify::expect(&pool, layout, &prefix, plan.expected()).await?;
                let verified = run.client_cpu_then(run.units, "command", "verified");
                Ok(Row::new(
                    system,
                    run.units,
                    run.elapsed,
                    format!("{} conflicts retried; {verified}", run.conflicts),
                ))
            })
            .await
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    #[test]
    fn each_stream_gets_versions_one_to_n_in_command_order() {
        let plan = Plan {
            prefix: "s",
            streams: 7,
            commands: 45,
        };
        let mut last: HashMap<String, u64> = HashMap::new();
        for k in 0..plan.commands {
            let command = plan.command(k);
            let previous = last.insert(command.id.clone(), command.version);
            assert_eq!(command.version, previous.unwrap_or(0) + 1);
        }
        assert_eq!(
            u64::try_from(last.len()).ok(),
            Some(plan.expected().streams)
        );
        assert_eq!(last.values().sum::<u64>(), plan.expected().events);
    }
}
