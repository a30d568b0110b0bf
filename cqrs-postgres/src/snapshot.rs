//! Snapshots and checkpoints.

use async_trait::async_trait;
use cqrs_core::projection::Lease;
use cqrs_core::{CheckpointStore, Error, FencedSave, Position, Snapshot, SnapshotStore, StreamId};
use serde_json::Value;
use sqlx::types::Json;
use sqlx::Row;

use crate::convert::{self, to_i64};
use crate::{PgError, PgEventStore};

#[async_trait]
impl SnapshotStore for PgEventStore {
    async fn save_snapshot(&self, snapshot: Snapshot) -> Result<(), Error> {
        let schema_version =
            i32::try_from(snapshot.schema_version).map_err(|_| PgError::OutOfRange {
                what: "snapshot schema version",
                value: snapshot.schema_version.to_string(),
            })?;
        sqlx::query(&self.queries.save_snapshot)
            .bind(snapshot.stream_id.as_str())
            .bind(to_i64("snapshot version", snapshot.version.get())?)
            .bind(schema_version)
            .bind(snapshot.state.to_string())
            .execute(&self.pool)
            .await
            .map_err(PgError::from)?;
        Ok(())
    }

    async fn load_snapshot(&self, stream_id: &StreamId) -> Result<Option<Snapshot>, Error> {
        let row = sqlx::query(&self.queries.load_snapshot)
            .bind(stream_id.as_str())
            .fetch_optional(&self.pool)
            .await
            .map_err(PgError::from)?;
        let Some(row) = row else { return Ok(None) };
        let version: i64 = row.try_get("version").map_err(PgError::from)?;
        let schema_version: i32 = row.try_get("schema_version").map_err(PgError::from)?;
        let Json(state): Json<Value> = row.try_get("state").map_err(PgError::from)?;
        let schema_version = u32::try_from(schema_version).map_err(|_| PgError::CorruptRow {
            what: "negative snapshot schema version",
        })?;
        Ok(Some(Snapshot::new(
            stream_id.clone(),
            convert::version(version)?,
            schema_version,
            state,
        )))
    }
}

#[async_trait]
impl CheckpointStore for PgEventStore {
    async fn load_checkpoint(&self, name: &str) -> Result<Option<Position>, Error> {
        let row = sqlx::query(&self.queries.load_checkpoint)
            .bind(name)
            .fetch_optional(&self.pool)
            .await
            .map_err(PgError::from)?;
        let Some(row) = row else { return Ok(None) };
        let transaction_id: &str = row.try_get("transaction_id").map_err(PgError::from)?;
        let position: i64 = row.try_get("position").map_err(PgError::from)?;
        Ok(Some(convert::position(transaction_id, position)?))
    }

    async fn save_checkpoint(&self, name: &str, position: Position) -> Result<(), Error> {
        let (major, minor) = convert::position_parts(position)?;
        sqlx::query(&self.queries.save_checkpoint)
            .bind(name)
            .bind(major)
            .bind(minor)
            .execute(&self.pool)
            .await
            .map_err(PgError::from)?;
        Ok(())
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
        let (major, minor) = convert::position_parts(position)?;
        let held: bool = sqlx::query_scalar(&self.queries.save_checkpoint_fenced)
            .bind(name)
            .bind(major)
            .bind(minor)
            .bind(&lease.owner)
            .bind(to_i64("lease epoch", lease.epoch)?)
            .fetch_one(&self.pool)
            .await
            .map_err(PgError::from)?;
        Ok(if held {
            FencedSave::Saved
        } else {
            FencedSave::LeaseLost
        })
    }

    async fn reset_checkpoint(&self, name: &str) -> Result<(), Error> {
        sqlx::query(&self.queries.reset_checkpoint)
            .bind(name)
            .execute(&self.pool)
            .await
            .map_err(PgError::from)?;
        Ok(())
    }
}
