//! The PostgreSQL store whose events table stores payload and metadata as `json`
//! (`EventJson::Json`) against the same conformance suite as the in-memory store.

mod support;

cqrs_core::store_conformance_tests!(|| async { support::json_store().await });
