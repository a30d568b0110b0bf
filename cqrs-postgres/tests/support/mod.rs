//! Shared helpers for the tests against a real PostgreSQL: each test gets its own schema.

#![allow(dead_code, unreachable_pub)]

use cqrs_postgres::{PgEventStore, PgSchema};
use sqlx::postgres::{PgPool, PgPoolOptions};

pub mod dump;

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
    let name = format!("t_{}", uuid::Uuid::now_v7().simple());
    PgSchema::new(&name).expect("valid schema name")
}

/// A migrated store in a schema of its own, on a pool of `connections`.
pub async fn store_with(connections: u32) -> PgEventStore {
    let store = PgEventStore::new(pool(connections).await).in_schema(unique_schema());
    store.migrate().await.expect("migrate");
    store
}

/// A migrated store in a schema of its own.
pub async fn store() -> PgEventStore {
    store_with(20).await
}
