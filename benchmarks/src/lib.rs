//! What the benchmark binaries share: fresh databases on one PostgreSQL server, the machine
//! they run on, the CPU a client spends, and the tables they print.
//!
//! - `pg-bench` (`src/main.rs`): the PostgreSQL event store against postgres-es and raw sqlx.
//! - `es-bench` (`src/es_bench/main.rs`): read models in Elasticsearch / OpenSearch fed from
//!   the PostgreSQL store, against raw `_bulk` and direct writes.

pub mod cpu;
pub mod db;
pub mod latency;
pub mod machine;
pub mod secret;
pub mod table;
