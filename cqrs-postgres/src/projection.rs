//! What projection workers share through PostgreSQL: leases, dead letters and wake-ups.

use std::time::Duration;

use async_trait::async_trait;
use cqrs_core::projection::{
    DeadLetter, DeadLetterStore, FeedSignal, FeedWaiter, Lease, LeaseStore,
};
use cqrs_core::{Error, StreamId};
use sqlx::postgres::PgListener;
use sqlx::{PgPool, Row};
use time::OffsetDateTime;

use crate::convert::{self, to_i64, to_u64};
use crate::{PgError, PgEventStore};

#[async_trait]
impl LeaseStore for PgEventStore {
    async fn try_acquire(
        &self,
        name: &str,
        owner: &str,
        ttl: Duration,
    ) -> Result<Option<Lease>, Error> {
        let row = sqlx::query(&self.queries.try_acquire_lease)
            .bind(name)
            .bind(owner)
            .bind(ttl.as_secs_f64())
            .fetch_optional(&self.pool)
            .await
            .map_err(PgError::from)?;
        let Some(row) = row else { return Ok(None) };
        let epoch: i64 = row.try_get("epoch").map_err(PgError::from)?;
        let valid_for: f64 = row.try_get("valid_for_secs").map_err(PgError::from)?;
        let valid_for =
            Duration::try_from_secs_f64(valid_for.max(0.0)).map_err(|_| PgError::CorruptRow {
                what: "lease validity out of range",
            })?;
        Ok(Some(Lease::new(
            name,
            owner,
            to_u64("lease epoch", epoch)?,
            valid_for,
        )))
    }

    async fn release(&self, lease: &Lease) -> Result<(), Error> {
        sqlx::query(&self.queries.release_lease)
            .bind(&lease.name)
            .bind(&lease.owner)
            .bind(to_i64("lease epoch", lease.epoch)?)
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

/// Wakes projection runners when appends commit, through `LISTEN` on the store's channel
/// (each subscription holds one connection, opened on first wait and reopened after a failure).
#[derive(Clone, Debug)]
pub struct PgFeedSignal {
    pool: PgPool,
    channel: String,
}

impl PgEventStore {
    /// The wake-up signal for this store's feed, for
    /// [`ProjectionRunner::with_signal`](cqrs_core::projection::ProjectionRunner::with_signal).
    pub fn feed_signal(&self) -> PgFeedSignal {
        PgFeedSignal {
            pool: self.pool.clone(),
            channel: self.channel(),
        }
    }
}

impl FeedSignal for PgFeedSignal {
    fn subscribe(&self) -> Box<dyn FeedWaiter> {
        Box::new(PgFeedWaiter {
            signal: self.clone(),
            listener: None,
        })
    }
}

struct PgFeedWaiter {
    signal: PgFeedSignal,
    listener: Option<PgListener>,
}

#[async_trait]
impl FeedWaiter for PgFeedWaiter {
    async fn wait(&mut self) {
        if self.listener.is_none() {
            match PgListener::connect_with(&self.signal.pool).await {
                Ok(mut listener) => match listener.listen(&self.signal.channel).await {
                    Ok(()) => self.listener = Some(listener),
                    Err(error) => tracing::warn!(%error, "LISTEN failed; polling"),
                },
                Err(error) => tracing::warn!(%error, "no LISTEN connection; polling"),
            }
        }
        let Some(listener) = self.listener.as_mut() else {
            // The runner's poll interval bounds this wait.
            return std::future::pending().await;
        };
        if let Err(error) = listener.recv().await {
            tracing::warn!(%error, "LISTEN connection lost; reconnecting");
            self.listener = None;
        }
    }
}
