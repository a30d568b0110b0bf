//! The PostgreSQL store as a new one is (group commit on, a writer alone appending on its own),
//! against the same conformance suite as the in-memory store.

mod support;

cqrs_core::store_conformance_tests!(|| async { support::store().await });
