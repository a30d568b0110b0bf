//! The printed figures: the machine, then one table per workload.

pub(crate) use cqrs_benchmarks::table::{Row, Table};

use crate::args::{Args, Sizes};
use cqrs_benchmarks::db::{CommitLatency, ServerInfo};
use cqrs_benchmarks::machine::Machine;

/// Prints what the figures were measured on.
pub(crate) fn print_machine(info: &ServerInfo, commit: &CommitLatency, args: &Args, sizes: &Sizes) {
    println!(
        "pg-bench: {} run",
        if args.quick { "quick" } else { "full" }
    );
    println!("machine: {}", Machine::detect());
    println!("server:  {}", info.version);
    let settings: Vec<String> = info
        .settings
        .iter()
        .map(|(name, value)| format!("{name}={value}"))
        .collect();
    println!("         {}", settings.join(", "));
    println!("         a lone commit (one-row insert in autocommit, 1 client): {commit}");
    let checks = if args.idle_checks {
        "checked before use after a second idle (cqrs_postgres::pool_options)"
    } else {
        "checked before every use (sqlx's default)"
    };
    println!(
        "clients: {} (pool size of every system: {}; connections {checks})",
        args.clients, args.clients
    );
    println!(
        "events:  payload and metadata stored as {} by ours and the raw tables",
        args.event_json.event_json()
    );
    println!("sizes:   {sizes:?}");
}
