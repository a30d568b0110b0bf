//! Helpers for tests against a real PostgreSQL (feature `testing`): a migrated store in a
//! fresh schema of its own per test, so tests run in parallel on one database and never see
//! each other's events.
//!
//! ```no_run
//! use cqrs_core::{AppendEvents, ExpectedVersion, NewEvent, StreamId};
//!
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! // DATABASE_URL=postgres://user:password@127.0.0.1:5432/db
//! let store = cqrs_postgres::testing::fresh_store().await?;
//! let stream = StreamId::new("order-1")?;
//! store
//!     .append(&stream, ExpectedVersion::NoStream, vec![NewEvent::new("Placed", 1, serde_json::json!({}))])
//!     .await?;
//! // Dropping `store` drops its schema.
//! # Ok(()) }
//! ```

use std::ops::Deref;
use std::time::Duration;

use sqlx::{ConnectOptions, Executor, PgPool};

use crate::{PgError, PgEventStore, PgSchema};

/// The variable [`fresh_store`] reads the database's URL from.
pub const DATABASE_URL: &str = "DATABASE_URL";

/// How long dropping a schema may wait for a lock (a test that left a transaction open on its
/// tables): past it the schema is left behind, not the test hung.
const DROP_LOCK_TIMEOUT: Duration = Duration::from_secs(2);

/// A schema name no other test uses: `t_` and a time-ordered UUID.
pub fn unique_schema() -> PgSchema {
    // 34 lowercase letters, digits and `_`: always a valid name.
    PgSchema::built(format!("t_{}", uuid::Uuid::now_v7().simple()))
}

/// A migrated store in a fresh schema, on a pool of 10 connections to the database
/// [`DATABASE_URL`] names. The schema is dropped when the returned [`PgTestStore`] is.
///
/// Fails with [`PgError::InvalidUrl`] when the variable is not set, and as
/// [`PgEventStore::connect`] does when the database cannot be reached.
pub async fn fresh_store() -> Result<PgTestStore, PgError> {
    let url = std::env::var(DATABASE_URL).map_err(|_| PgError::InvalidUrl {
        reason: format!(
            "{DATABASE_URL} is not set: these tests need a PostgreSQL, e.g. \
             {DATABASE_URL}=postgres://user:password@127.0.0.1:5432/db"
        ),
    })?;
    let store = PgEventStore::connect(&url).await?;
    fresh_store_on(store.pool().clone()).await
}

/// A migrated store in a fresh schema on `pool` (for a pool of a chosen size or settings).
/// The schema is dropped when the returned [`PgTestStore`] is.
pub async fn fresh_store_on(pool: PgPool) -> Result<PgTestStore, PgError> {
    fresh_store_from(PgEventStore::new(pool)).await
}

/// `store`, configured as the test needs it (say, [`with_event_json`](PgEventStore::with_event_json)),
/// moved to a fresh schema and migrated there. The schema is dropped when the returned
/// [`PgTestStore`] is.
pub async fn fresh_store_from(store: PgEventStore) -> Result<PgTestStore, PgError> {
    let store = store.with_schema(unique_schema());
    let test = PgTestStore { store: Some(store) };
    test.migrate().await?;
    Ok(test)
}

/// A store in a schema of its own, for one test: use it as a [`PgEventStore`] (it derefs to
/// one; clones share the schema). Dropping it drops the schema and everything in it, unless
/// [`keep`](Self::keep) took the store out.
#[derive(Debug)]
pub struct PgTestStore {
    /// `None` only once kept or dropped.
    store: Option<PgEventStore>,
}

impl PgTestStore {
    /// The store, its schema kept (to look at it after the test, say).
    pub fn keep(mut self) -> PgEventStore {
        self.store
            .take()
            .unwrap_or_else(|| unreachable!("taken only here or on drop"))
    }

    /// Drops the schema now, reporting a failure (dropping the value does it silently).
    pub async fn drop_schema(mut self) -> Result<(), PgError> {
        match self.store.take() {
            Some(store) => drop_schema(&store.pool().clone(), store.schema()).await,
            None => Ok(()),
        }
    }
}

impl Deref for PgTestStore {
    type Target = PgEventStore;

    fn deref(&self) -> &PgEventStore {
        self.store
            .as_ref()
            .unwrap_or_else(|| unreachable!("taken only by keep, drop_schema or drop"))
    }
}

impl Drop for PgTestStore {
    /// Drops the schema on a connection of its own, from a thread of its own (the test's
    /// runtime may be shutting down); a failure is only logged.
    fn drop(&mut self) {
        let Some(store) = self.store.take() else {
            return;
        };
        let options = store.pool().connect_options().as_ref().clone();
        let schema = store.schema().clone();
        let dropped = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|error| PgError::Database(sqlx::Error::Io(error)))?;
            runtime.block_on(async {
                let mut conn = options.connect().await?;
                drop_schema_on(&mut conn, &schema).await
            })
        })
        .join();
        match dropped {
            Ok(Ok(())) => {}
            Ok(Err(error)) => {
                tracing::warn!(%error, schema = %store.schema(), "schema left behind")
            }
            Err(_) => tracing::warn!(schema = %store.schema(), "dropping the schema panicked"),
        }
    }
}

async fn drop_schema(pool: &PgPool, schema: &PgSchema) -> Result<(), PgError> {
    let mut conn = pool.acquire().await?;
    drop_schema_on(&mut conn, schema).await
}

async fn drop_schema_on(conn: &mut sqlx::PgConnection, schema: &PgSchema) -> Result<(), PgError> {
    let statement = format!(
        "SET lock_timeout = '{}ms'; DROP SCHEMA IF EXISTS {} CASCADE; RESET lock_timeout;",
        DROP_LOCK_TIMEOUT.as_millis(),
        schema.quoted()
    );
    conn.execute(sqlx::raw_sql(&statement)).await?;
    Ok(())
}
