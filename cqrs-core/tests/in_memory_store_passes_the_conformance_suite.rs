//! The in-memory store against the conformance suite every store must pass.

use cqrs_core::InMemoryEventStore;

cqrs_core::store_conformance_tests!(|| async { InMemoryEventStore::new() });
