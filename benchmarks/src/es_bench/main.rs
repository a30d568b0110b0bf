//! `es-bench`: read models in Elasticsearch / OpenSearch fed from the PostgreSQL event store,
//! against raw `_bulk` and direct writes.
//!
//! Run it against a PostgreSQL server you may create databases on and a search node:
//!
//! ```text
//! eval "export $(scripts/postgres.sh start | tail -n1)"         # or any DATABASE_URL
//! eval "export $(scripts/opensearch.sh start 9200 | tail -n1)"  # or any ELASTICSEARCH_URL
//! cargo run --release -p cqrs-benchmarks --bin es-bench -- --quick    # smoke run
//! cargo run --release -p cqrs-benchmarks --bin es-bench               # full sizes
//! cargo run --release -p cqrs-benchmarks --bin es-bench -- --only freshness
//! ```
//!
//! 1. throughput: a `ProjectionRunner` + `EsProjector` catching up on the feed, against raw
//!    `_bulk`s of the same final documents in the same batches;
//! 2. freshness: from an append returning to the document being searchable, with the runner
//!    woken by `LISTEN`, against a direct write plus `_refresh`;
//! 3. rebuild: `EsIndex::rebuild` from a large feed, against merely reading that feed.
//!
//! Every workload fills its own fresh database (`CREATE DATABASE`, dropped afterwards) through
//! `AppendEvents::append`, and uses its own indices `es-bench-{pid}-*` (deleted afterwards).
//! Every timed run is checked afterwards on the node (document count, sums over all documents,
//! a sample of documents equal to the fold computed in memory) so that nothing can look fast
//! by skipping work. Figures and ratios are printed; nothing is asserted about timings.

mod args;
mod cpu;
mod fill;
mod model;
mod node;
mod report;
mod verify;
mod workloads;

use clap::Parser;
use cqrs_benchmarks::db::Server;

use crate::args::{Args, Workload};
use crate::node::Node;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let server = Server::new(&args.database_url, "es_bench")?;
    let node = Node::connect(&args.elasticsearch_url).await?;
    let sizes = args.sizes();
    report::print_machine(&server.info().await?, &node.info().await?, &args, &sizes);

    let ctx = workloads::Context {
        server,
        node,
        clients: args.clients,
        sizes,
    };
    for workload in Workload::selected(args.only) {
        for output in workloads::run(&ctx, workload).await? {
            output.print();
        }
    }
    Ok(())
}
