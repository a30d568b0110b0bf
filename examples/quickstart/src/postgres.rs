//! [`fresh_store`]: the quick start's PostgreSQL store, in a schema emptied on every run.

use cqrs_core::BoxError;
use cqrs_postgres::{PgEventStore, PgSchema};

/// A store on the database at `url`, in the schema `schema`, dropped and migrated again first:
/// the story expects empty streams.
pub async fn fresh_store(url: &str, schema: &str) -> Result<PgEventStore, BoxError> {
    let schema = PgSchema::new(schema)?;
    let store = PgEventStore::connect(url).await?;
    // The name is validated (plain lowercase identifier), and quoted.
    sqlx::query(&format!("DROP SCHEMA IF EXISTS \"{schema}\" CASCADE"))
        .execute(store.pool())
        .await?;
    // Concurrent commands on different streams share one transaction (group commit, a new
    // store's default).
    let store = store.with_schema(schema);
    store.migrate().await?;
    Ok(store)
}
