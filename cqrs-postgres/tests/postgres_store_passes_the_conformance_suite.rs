//! The PostgreSQL store against the same conformance suite as the in-memory store.

mod support;

cqrs_core::store_conformance_tests!(|| async { support::store().await });
