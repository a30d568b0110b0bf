//! The workloads: each runs every system in its own fresh database and returns its table.

mod appends;
mod batch;
mod commands;
mod feed;
mod load;
mod saga;
mod scale;

use anyhow::Result;

use crate::args::{Sizes, Workload};
use crate::report::Table;
use cqrs_benchmarks::db::Server;

/// What every workload needs.
pub(crate) struct Context {
    /// Where the databases go.
    pub(crate) server: Server,
    /// Concurrent clients and pool size.
    pub(crate) clients: u32,
    /// How much work.
    pub(crate) sizes: Sizes,
    /// The command workloads' systems to run (row names containing one of these); all when
    /// empty.
    pub(crate) systems: Vec<String>,
}

impl Context {
    /// A context.
    pub(crate) fn new(server: Server, clients: u32, sizes: Sizes, systems: Vec<String>) -> Self {
        Self {
            server,
            clients,
            sizes,
            systems,
        }
    }

    /// Whether system `name` is to run.
    pub(crate) fn runs(&self, name: &str) -> bool {
        self.systems.is_empty() || self.systems.iter().any(|s| name.contains(s.as_str()))
    }
}

/// Runs `workload` and returns its tables.
pub(crate) async fn run(ctx: &Context, workload: Workload) -> Result<Vec<Table>> {
    let table = match workload {
        Workload::ManyStreams => commands::run(ctx, commands::Shape::Many).await,
        Workload::HotStreams => commands::run(ctx, commands::Shape::Hot).await,
        Workload::Batch => batch::run(ctx).await,
        Workload::Load => load::run(ctx).await,
        Workload::Feed => return feed::run(ctx).await,
        Workload::Saga => saga::run(ctx).await,
        Workload::Scale => scale::run(ctx).await,
        Workload::Appends => return appends::run(ctx).await,
        Workload::Commands => anyhow::bail!("`commands` stands for many-streams and hot-streams"),
    };
    Ok(vec![table?])
}
