//! What projection workers share through PostgreSQL: leases and wake-ups (dead letters are in
//! `dead_letter.rs`).

use std::time::Duration;

use async_trait::async_trait;
use cqrs_core::projection::{FeedSignal, FeedWaiter, LeaseStore};
use cqrs_core::Error;
use sqlx::postgres::PgListener;
use sqlx::PgPool;

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
