//! `pg-bench`: the PostgreSQL event store against postgres-es 0.5 and raw sqlx ceilings.
//!
//! Run it against a PostgreSQL server you may create databases on:
//!
//! ```text
//! eval "export $(scripts/postgres.sh start | tail -n1)"     # or any DATABASE_URL
//! cargo run --release -p cqrs-benchmarks --bin pg-bench                # full sizes
//! cargo run --release -p cqrs-benchmarks --bin pg-bench -- --quick     # smoke run
//! cargo run --release -p cqrs-benchmarks --bin pg-bench -- --only hot-streams --clients 8
//! ```
//!
//! Every system runs in its own fresh database (`CREATE DATABASE` on the URL's server, dropped
//! afterwards), with a pool of `--clients` connections. Warm-up work is not timed, and every
//! timed run is checked afterwards (event counts, gap-free versions, balances) so that a broken
//! system cannot look fast.

mod args;
mod domain;
mod driver;
mod report;
mod systems;
mod verify;
mod workloads;

use clap::Parser;
use cqrs_benchmarks::db;

use crate::args::{Args, Workload};

/// How many lone commits the header times (about a tenth of a second).
const COMMIT_PROBES: usize = 300;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let server =
        db::Server::new(&args.database_url, "pg_bench")?.with_idle_checks(args.idle_checks);
    systems::set_event_json(args.event_json.event_json());
    let sizes = args.sizes();
    let commit = server.commit_latency(COMMIT_PROBES).await?;
    report::print_machine(&server.info().await?, &commit, &args, &sizes);

    let ctx = workloads::Context::new(server, args.clients, sizes, args.systems.clone());
    for workload in Workload::selected(args.only) {
        for table in workloads::run(&ctx, workload).await? {
            table.print();
        }
    }
    Ok(())
}
