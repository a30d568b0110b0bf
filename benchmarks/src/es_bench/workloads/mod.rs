//! The workloads: each fills its own fresh database, uses its own indices (deleted afterwards)
//! and returns what it prints.

mod feed;
mod freshness;
mod partitions;
mod probe;
mod raw;
mod rebuild;
mod throughput;

use anyhow::Result;
use cqrs_benchmarks::db::Server;
use cqrs_postgres::PgEventStore;
use sqlx::PgPool;

use crate::args::{Sizes, Workload};
use crate::node::Node;
use crate::report::Output;

/// What every workload needs.
pub(crate) struct Context {
    /// Where the events go: a fresh database per workload.
    pub(crate) server: Server,
    /// Where the read models go.
    pub(crate) node: Node,
    /// Concurrent clients filling the store.
    pub(crate) clients: u32,
    /// How much work.
    pub(crate) sizes: Sizes,
}

impl Context {
    /// The pool of each database: the filling clients, plus the runner's feed reader,
    /// checkpoints and `LISTEN` connection.
    fn pool_size(&self) -> u32 {
        self.clients + 4
    }
}

/// Runs `workload`; what it prints.
pub(crate) async fn run(ctx: &Context, workload: Workload) -> Result<Vec<Output>> {
    match workload {
        Workload::Throughput => throughput::run(ctx).await,
        Workload::Freshness => freshness::run(ctx).await,
        Workload::Rebuild => rebuild::run(ctx).await.map(|table| vec![table]),
        Workload::Partitions => partitions::run(ctx).await,
    }
}

/// A workload's fresh database.
struct Db {
    /// The event store in it, migrated (schema `cqrs`).
    store: PgEventStore,
    /// Its name (the CPU meter finds its backends by it).
    name: String,
}

impl Db {
    /// The database of `pool`.
    async fn open(pool: PgPool) -> Result<Self> {
        let name = sqlx::query_scalar("SELECT current_database()")
            .fetch_one(&pool)
            .await?;
        let store = PgEventStore::new(pool);
        store.migrate().await?;
        Ok(Self { store, name })
    }

    /// Brings the filled tables to the state a long-lived store is in (autovacuum's work done:
    /// hint bits set, visibility map and statistics up to date), so that no timed run pays
    /// for it and none is favoured by coming after another that did.
    async fn settle(&self) -> Result<()> {
        sqlx::raw_sql("VACUUM ANALYZE")
            .execute(self.store.pool())
            .await?;
        // Flush the fill's dirty pages now, not during a timed run, where the checkpoint's
        // writes and fsyncs would share the disk with the node's translog. It needs a
        // superuser or pg_checkpoint; without one, say so and go on.
        if let Err(error) = sqlx::raw_sql("CHECKPOINT").execute(self.store.pool()).await {
            eprintln!("  (no CHECKPOINT after the fill: {error})");
        }
        Ok(())
    }
}
