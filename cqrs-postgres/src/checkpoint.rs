//! Checkpoints: where each projection is in the feed, saved plainly or fenced by its lease;
//! and where its runner's breaker is.

use async_trait::async_trait;
use cqrs_core::projection::{BreakerRecord, Lease};
use cqrs_core::{CheckpointStore, Error, FencedSave, Position};
use sqlx::Row;

use crate::convert::{self, to_i64};
use crate::text::storable;
use crate::{PgError, PgEventStore};

#[async_trait]
impl CheckpointStore for PgEventStore {
    async fn load_checkpoint(&self, name: &str) -> Result<Option<Position>, Error> {
        Ok(load(self, name).await?)
    }

    async fn save_checkpoint(&self, name: &str, position: Position) -> Result<(), Error> {
        Ok(save(self, name, position).await?)
    }

    async fn save_checkpoint_fenced(
        &self,
        name: &str,
        position: Position,
        lease: &Lease,
    ) -> Result<FencedSave, Error> {
        if lease.name != name {
            // A lease fences the checkpoint of its own name only.
            return Ok(FencedSave::LeaseLost);
        }
        Ok(save_fenced(self, name, position, lease).await?)
    }

    async fn reset_checkpoint(&self, name: &str) -> Result<(), Error> {
        Ok(reset(self, name).await?)
    }

    async fn record_breaker(&self, name: &str, breaker: &BreakerRecord) -> Result<(), Error> {
        self.call(async |conn| {
            Ok(sqlx::query(&self.queries.record_breaker)
                .bind(name)
                .bind(breaker.state.as_str())
                // An error can echo what it failed on: a NUL shown as `\0`, as in letters.
                .bind(breaker.last_error.as_deref().map(storable))
                .execute(conn)
                .await?)
        })
        .await?;
        Ok(())
    }
}

async fn load(store: &PgEventStore, name: &str) -> Result<Option<Position>, PgError> {
    let row = store
        .call(async |conn| {
            Ok(sqlx::query(&store.queries.load_checkpoint)
                .bind(name)
                .fetch_optional(conn)
                .await?)
        })
        .await?;
    let Some(row) = row else { return Ok(None) };
    let transaction_id: &str = row.try_get("transaction_id")?;
    let position: i64 = row.try_get("position")?;
    Ok(Some(convert::position(transaction_id, position)?))
}

async fn save(store: &PgEventStore, name: &str, position: Position) -> Result<(), PgError> {
    let (major, minor) = convert::position_parts(position)?;
    store
        .call(async |conn| {
            Ok(sqlx::query(&store.queries.save_checkpoint)
                .bind(name)
                .bind(major)
                .bind(minor)
                .execute(conn)
                .await?)
        })
        .await?;
    Ok(())
}

async fn save_fenced(
    store: &PgEventStore,
    name: &str,
    position: Position,
    lease: &Lease,
) -> Result<FencedSave, PgError> {
    let (major, minor) = convert::position_parts(position)?;
    let held: bool = store
        .call(async |conn| {
            Ok(sqlx::query_scalar(&store.queries.save_checkpoint_fenced)
                .bind(name)
                .bind(major)
                .bind(minor)
                .bind(&lease.owner)
                .bind(to_i64("lease epoch", lease.epoch)?)
                .fetch_one(conn)
                .await?)
        })
        .await?;
    Ok(if held {
        FencedSave::Saved
    } else {
        FencedSave::LeaseLost
    })
}

async fn reset(store: &PgEventStore, name: &str) -> Result<(), PgError> {
    store
        .call(async |conn| {
            Ok(sqlx::query(&store.queries.reset_checkpoint)
                .bind(name)
                .execute(conn)
                .await?)
        })
        .await?;
    Ok(())
}
