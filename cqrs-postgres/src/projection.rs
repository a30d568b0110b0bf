//! What projection workers share through PostgreSQL: leases (dead letters are in
//! `dead_letter.rs`, wake-ups in `signal.rs`).

use std::time::Duration;

use async_trait::async_trait;
use cqrs_core::projection::LeaseStore;
use cqrs_core::Error;

use crate::{PgError, PgEventStore};

#[async_trait]
impl LeaseStore for PgEventStore {
    async fn try_acquire(&self, name: &str, owner: &str, ttl: Duration) -> Result<bool, Error> {
        let row = sqlx::query(&self.queries.try_acquire_lease)
            .bind(name)
            .bind(owner)
            .bind(ttl.as_secs_f64())
            .fetch_optional(&self.pool)
            .await
            .map_err(PgError::from)?;
        Ok(row.is_some())
    }

    async fn release(&self, name: &str, owner: &str) -> Result<(), Error> {
        sqlx::query(&self.queries.release_lease)
            .bind(name)
            .bind(owner)
            .execute(&self.pool)
            .await
            .map_err(PgError::from)?;
        Ok(())
    }
}

