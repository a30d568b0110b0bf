//! The PostgreSQL store with group commit off (`without_group_commit`: every append and
//! load on its own, as before grouping was the default), against the same conformance suite.

mod support;

cqrs_core::store_conformance_tests!(|| async { support::store().await.without_group_commit() });
