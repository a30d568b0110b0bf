//! Helpers for the workspace's cross-crate integration tests (the tests are in `tests/`): the
//! services (PostgreSQL from `DATABASE_URL`, a search node from `ELASTICSEARCH_URL`, or a node
//! of the test's own), isolation (a schema and read-model names per test), a small shop domain
//! run through the real `Repository`, the order-summaries read model, the real
//! `ProjectionRunner` wired to PostgreSQL, polling with deadlines, and (in [`saga`]) the quick
//! start's order saga with seeded failures and the checks its runs must pass; in [`bus`] a
//! consumer's contract, handler and fold, and in [`publishing`] the publisher's ticks, reading
//! a topic back and the checks a published topic must pass.

pub mod bus;
pub mod chaos;
pub mod domain;
mod env;
mod fenced;
mod inspect;
mod kafka_node;
mod outage_node;
mod poll;
mod probe;
pub mod publishing;
mod runner;
pub mod saga;
mod script;
mod server_report;
mod shop;
mod summaries;
pub mod toxiproxy;

pub use env::{
    client_for, database_url, delete_indices, drop_schema, elasticsearch_url, es_client,
    lease_holder, pg_store, summaries_read_model, unique_name,
};
pub use fenced::{last_versions, FencedState, FencedVersions};
pub use inspect::{
    all_events, assert_documents, assert_read_model_is_the_fold, raw_documents, refresh,
    RawDocument,
};
pub use kafka_node::KafkaNode;
pub use outage_node::OutageNode;
pub use poll::{
    eventually, settled_head, wait_caught_up, wait_caught_up_to, wait_for_status, PATIENCE,
};
pub use probe::{ApplyCounts, Probe};
pub use runner::{pg_runner, quick_options};
pub use server_report::server_report;
pub use shop::{Load, Shop, CUSTOMERS, SKUS};
pub use summaries::{expected_summaries, summarize, OrderSummaries, OrderSummary};
