//! Snapshots: an aggregate's state at a version, one per stream.

use async_trait::async_trait;
use cqrs_core::{Error, Snapshot, SnapshotStore, StreamId};
use serde_json::Value;
use sqlx::types::Json;
use sqlx::Row;

use crate::convert::{self, to_i64};
use crate::{PgError, PgEventStore};

#[async_trait]
impl SnapshotStore for PgEventStore {
    async fn save_snapshot(&self, snapshot: Snapshot) -> Result<(), Error> {
        Ok(save(self, snapshot).await?)
    }

    async fn load_snapshot(&self, stream_id: &StreamId) -> Result<Option<Snapshot>, Error> {
        Ok(load(self, stream_id).await?)
    }
}

async fn save(store: &PgEventStore, snapshot: Snapshot) -> Result<(), PgError> {
    let schema_version =
        i32::try_from(snapshot.schema_version).map_err(|_| PgError::OutOfRange {
            what: "snapshot schema version",
            value: snapshot.schema_version.to_string(),
        })?;
    sqlx::query(&store.queries.save_snapshot)
        .bind(snapshot.stream_id.as_str())
        .bind(to_i64("snapshot version", snapshot.version.get())?)
        .bind(schema_version)
        .bind(snapshot.state.to_string())
        .execute(&store.pool)
        .await?;
    Ok(())
}

async fn load(store: &PgEventStore, stream_id: &StreamId) -> Result<Option<Snapshot>, PgError> {
    let row = sqlx::query(&store.queries.load_snapshot)
        .bind(stream_id.as_str())
        .fetch_optional(&store.pool)
        .await?;
    let Some(row) = row else { return Ok(None) };
    let version: i64 = row.try_get("version")?;
    let schema_version: i32 = row.try_get("schema_version")?;
    let Json(state): Json<Value> = row.try_get("state")?;
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
