//! Shared helpers for the tests against a real PostgreSQL: each test gets its own schema.

#![allow(dead_code, unreachable_pub)]

use std::time::Duration;

use cqrs_core::{Position, ReadAll};
use cqrs_postgres::{testing, EventJson, PgEventStore, PgSchema};
use sqlx::postgres::{PgPool, PgPoolOptions};

pub mod dump;
pub mod grouped_spans;

/// The server the test command started (or the user's own), from `DATABASE_URL`.
pub fn database_url() -> String {
    std::env::var("DATABASE_URL").unwrap_or_else(|_| {
        panic!(
            "DATABASE_URL is not set. These tests need a real PostgreSQL: run scripts/test.sh, \
             which starts one, or export DATABASE_URL=postgres://user@host/db"
        )
    })
}

/// A pool of `connections` on the test server.
pub async fn pool(connections: u32) -> PgPool {
    PgPoolOptions::new()
        .max_connections(connections)
        .connect(&database_url())
        .await
        .expect("connect to DATABASE_URL")
}

/// A unique schema name for one test.
pub fn unique_schema() -> PgSchema {
    testing::unique_schema()
}

/// A migrated store in a schema of its own, on a pool of `connections`. The schema is kept
/// after the test (for a look at what it left).
pub async fn store_with(connections: u32) -> PgEventStore {
    testing::fresh_store_on(pool(connections).await)
        .await
        .expect("migrate")
        .keep()
}

/// A migrated store in a schema of its own.
pub async fn store() -> PgEventStore {
    store_with(20).await
}

/// A migrated store in a schema of its own whose events table stores `json`
/// ([`EventJson::Json`]).
pub async fn json_store() -> PgEventStore {
    let store = PgEventStore::new(pool(20).await).with_event_json(EventJson::Json);
    testing::fresh_store_from(store)
        .await
        .expect("migrate")
        .keep()
}

/// Waits until the feed reaches `position`, or panics after 30 seconds. An append is on the
/// feed once no transaction that began before it is still open, and the tests share one
/// server: another test's transaction may hold the feed back for a moment.
pub async fn wait_for_feed(store: &PgEventStore, position: Position) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while store.head().await.expect("head") < position {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the feed never reached {position}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}
