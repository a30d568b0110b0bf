//! Run it: `cargo run -p quickstart`
//!
//! The quick start: an order / stock / payment flow, driven by a saga, on the in-memory event
//! store. With `DATABASE_URL` set, the same story runs on PostgreSQL, in a schema
//! `quickstart` that it empties first.
//!
//! [`quickstart::run`] takes any store with the event and snapshot roles: the domain code does
//! not change with the store.

use cqrs_core::{BoxError, InMemoryEventStore};
use cqrs_postgres::{PgEventStore, PgSchema};

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    match std::env::var("DATABASE_URL") {
        Ok(url) if !url.is_empty() => {
            let store = PgEventStore::connect(&url).await?;
            // The story expects empty streams: start from a fresh schema each run.
            sqlx::query("DROP SCHEMA IF EXISTS quickstart CASCADE")
                .execute(store.pool())
                .await?;
            let store = store.in_schema(PgSchema::new("quickstart")?);
            store.migrate().await?;
            println!("(on PostgreSQL, schema quickstart)\n");
            quickstart::run(store).await
        }
        _ => quickstart::run(InMemoryEventStore::new()).await,
    }
}
