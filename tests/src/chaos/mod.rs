//! What the chaos tests share (`tests/tests/chaos_*.rs`): a store reached through a Toxiproxy
//! proxy, writers that keep a [`Ledger`] of every append they tried and how it ended, the
//! [`Tally`] read model a projection keeps in memory, the checks every scenario ends with
//! (no partial append, nothing lost, nothing applied twice, read model = fold), a PostgreSQL of
//! the test's own to restart ([`PgServer`]), a relay whose connections go silent for good while
//! new ones pass ([`FreezingRelay`]), the [`StreamCounts`] search read model that shows a
//! doubled event, and how long a scenario runs ([`fault_time`]).

mod check;
mod counts;
mod ledger;
mod log;
mod pg_server;
mod relay;
mod tally;
mod watch;

use std::time::Duration;

use cqrs_postgres::{PgEventStore, PgSchema};
use sqlx::postgres::PgPoolOptions;

pub use check::{assert_appends_are_whole, assert_tally_is_the_fold, AppendCheck};
pub use counts::{assert_counts_are_the_fold, StreamCount, StreamCounts};
pub use ledger::{Ledger, Writers};
pub use log::ScenarioLog;
pub use pg_server::PgServer;
pub use relay::FreezingRelay;
pub use tally::{Entry, Tally};
pub use watch::RunnerWatch;

/// How long a scenario keeps its faults on: `default` in CI, `CHAOS_SOAK_SECS` seconds when
/// that is set (the soak mode, for minutes, by hand).
pub fn fault_time(default: Duration) -> Duration {
    std::env::var("CHAOS_SOAK_SECS")
        .ok()
        .and_then(|secs| secs.trim().parse::<u64>().ok())
        .map_or(default, Duration::from_secs)
}

/// Whether the soak mode is on (`CHAOS_SOAK_SECS` set).
pub fn soaking() -> bool {
    std::env::var_os("CHAOS_SOAK_SECS").is_some()
}

/// The `host:port` `url` points at (what a proxy forwards to).
pub fn upstream_of(url: &str) -> String {
    let parsed = url::Url::parse(url)
        .unwrap_or_else(|_| panic!("{} is not a URL", cqrs_core::redact_url(url)));
    let host = parsed.host_str().expect("a URL with a host");
    let port = parsed.port_or_known_default().expect("a URL with a port");
    format!("{host}:{port}")
}

/// `url` with its host and port replaced by `127.0.0.1:port` (the proxy's), everything else
/// (user, password, database, parameters) kept.
pub fn through_port(url: &str, port: u16) -> String {
    let mut parsed = url::Url::parse(url)
        .unwrap_or_else(|_| panic!("{} is not a URL", cqrs_core::redact_url(url)));
    parsed
        .set_host(Some("127.0.0.1"))
        .expect("a URL with a host");
    parsed.set_port(Some(port)).expect("a URL with a port");
    parsed.to_string()
}

/// A migrated [`PgEventStore`] at `url` in a schema no other test uses, on a pool of
/// `connections` that gives up acquiring after 5 s (a caller sees a typed error rather than
/// waiting for the pool's default 30 s while the network misbehaves).
pub async fn chaos_store(url: &str, connections: u32) -> PgEventStore {
    let pool = PgPoolOptions::new()
        .max_connections(connections)
        .acquire_timeout(Duration::from_secs(5))
        .connect(url)
        .await
        .unwrap_or_else(|e| panic!("cannot connect to {}: {e}", cqrs_core::redact_url(url)));
    let schema = format!("chaos_{}", uuid::Uuid::now_v7().simple());
    let store =
        PgEventStore::new(pool).with_schema(PgSchema::new(&schema).expect("a valid schema name"));
    store.migrate().await.expect("migrate the test schema");
    store
}

/// Another store on `store`'s schema at `url`, on a pool of 4 of its own that waits at most
/// `acquire` for a connection (a runner that should see an outage as errors to retry).
pub async fn store_beside(url: &str, store: &PgEventStore, acquire: Duration) -> PgEventStore {
    let pool = PgPoolOptions::new()
        .max_connections(4)
        .acquire_timeout(acquire)
        .connect(url)
        .await
        .unwrap_or_else(|e| panic!("cannot connect to {}: {e}", cqrs_core::redact_url(url)));
    PgEventStore::new(pool).with_schema(store.schema().clone())
}
