//! What projection workers share through PostgreSQL: leases and dead letters (wake-ups are in
//! `signal.rs`).

use std::time::Duration;

use async_trait::async_trait;
use cqrs_core::projection::{DeadLetter, DeadLetterStore, LeaseStore};
use cqrs_core::{Error, StreamId};
use sqlx::Row;
use time::OffsetDateTime;

use crate::convert::{self, to_i64};
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

#[async_trait]
impl DeadLetterStore for PgEventStore {
    async fn park(&self, letter: DeadLetter) -> Result<(), Error> {
        let (major, minor) = convert::position_parts(letter.position)?;
        sqlx::query(&self.queries.park)
            .bind(&letter.projection)
            .bind(major)
            .bind(minor)
            .bind(letter.stream_id.as_str())
            .bind(to_i64("version", letter.version.get())?)
            .bind(&letter.event_type)
            .bind(&letter.key)
            .bind(&letter.error)
            .bind(letter.parked_at)
            .execute(&self.pool)
            .await
            .map_err(PgError::from)?;
        Ok(())
    }

    async fn dead_letters(&self, projection: &str) -> Result<Vec<DeadLetter>, Error> {
        let rows = sqlx::query(&self.queries.dead_letters)
            .bind(projection)
            .fetch_all(&self.pool)
            .await
            .map_err(PgError::from)?;
        rows.iter()
            .map(|row| -> Result<DeadLetter, PgError> {
                let transaction_id: &str = row.try_get(0)?;
                let stream_id: &str = row.try_get(2)?;
                let key: Option<String> = row.try_get(5)?;
                let error: &str = row.try_get(6)?;
                let parked_at: OffsetDateTime = row.try_get(7)?;
                Ok(DeadLetter::new(
                    projection,
                    convert::position(transaction_id, row.try_get(1)?)?,
                    StreamId::new(stream_id).map_err(|_| PgError::CorruptRow {
                        what: "stored stream id is invalid",
                    })?,
                    convert::version(row.try_get(3)?)?,
                    row.try_get(4)?,
                    key,
                    error,
                    parked_at,
                ))
            })
            .map(|letter| letter.map_err(Error::from))
            .collect()
    }
}
