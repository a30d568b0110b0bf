//! Snapshots: an aggregate's state at a version, one per stream.

use crate::jsonb::Jsonb;
use async_trait::async_trait;
use cqrs_core::{Error, Snapshot, SnapshotReplay, SnapshotStore, StreamId};
use futures_util::TryStreamExt as _;
use serde_json::Value;
use sqlx::postgres::PgRow;
use sqlx::Row;

use crate::convert::{self, limit, to_i64};
use crate::read::stream_event;
use crate::{PgError, PgEventStore};

#[async_trait]
impl SnapshotStore for PgEventStore {
    async fn save_snapshot(&self, snapshot: Snapshot) -> Result<(), Error> {
        Ok(save(self, snapshot).await?)
    }

    async fn load_snapshot(&self, stream_id: &StreamId) -> Result<Option<Snapshot>, Error> {
        Ok(load(self, stream_id).await?)
    }

    /// One statement, `sql/replay_snapshot.sql`: a load behind a snapshot takes one round trip
    /// instead of two.
    async fn replay_from_snapshot(
        &self,
        stream_id: &StreamId,
        max: usize,
        each: &mut (dyn for<'e> FnMut(SnapshotReplay<'e>) -> Result<(), Error> + Send),
    ) -> Result<Option<usize>, Error> {
        // From a connection, as `PgEventStore::replay_rows` reads.
        let mut conn = self.bounded().await.map_err(PgError::from)?;
        // A long stream takes as long as its rows keep coming.
        conn.run_progressing(async |conn, progress| {
            let mut rows = sqlx::query(&self.queries.replay_snapshot)
                .bind(stream_id.as_str())
                .bind(limit(max))
                .fetch(conn);
            // Only the first row may be the snapshot (its event_type is NULL): the statement
            // orders it first. A NULL further on fails the event's decoding.
            let (mut first, mut read) = (true, 0);
            while let Some(row) = rows.try_next().await.map_err(PgError::from)? {
                progress.tick();
                if std::mem::take(&mut first) && is_snapshot(&row)? {
                    each(SnapshotReplay::Snapshot(snapshot_row(stream_id, &row)?))?;
                } else {
                    each(SnapshotReplay::Event(stream_event(&row)?))?;
                    read += 1;
                }
            }
            Ok(Some(read))
        })
        .await
    }
}

async fn save(store: &PgEventStore, snapshot: Snapshot) -> Result<(), PgError> {
    // A state PostgreSQL would store but no load could read back (a NUL, or nesting past what
    // the decoder reads) would fail every later load of the stream.
    cqrs_core::backend::check_snapshot(&snapshot)?;
    let schema_version =
        i32::try_from(snapshot.schema_version).map_err(|_| PgError::OutOfRange {
            what: "snapshot schema version",
            value: snapshot.schema_version.to_string(),
        })?;
    store
        .call(async |conn| {
            Ok(sqlx::query(&store.queries.save_snapshot)
                .bind(snapshot.stream_id.as_str())
                .bind(to_i64("snapshot version", snapshot.version.get())?)
                .bind(schema_version)
                .bind(snapshot.state.to_string())
                .execute(conn)
                .await?)
        })
        .await?;
    Ok(())
}

async fn load(store: &PgEventStore, stream_id: &StreamId) -> Result<Option<Snapshot>, PgError> {
    let row = store
        .call(async |conn| {
            Ok(sqlx::query(&store.queries.load_snapshot)
                .bind(stream_id.as_str())
                .fetch_optional(conn)
                .await?)
        })
        .await?;
    let Some(row) = row else { return Ok(None) };
    let Jsonb(state): Jsonb<Value> = row.try_get("state")?;
    snapshot(
        stream_id,
        row.try_get("version")?,
        row.try_get("schema_version")?,
        state,
    )
    .map(Some)
}

/// Whether a row of `sql/replay_snapshot.sql` is the snapshot's: the one with no event type.
fn is_snapshot(row: &PgRow) -> Result<bool, PgError> {
    Ok(row.try_get::<Option<&str>, _>(1)?.is_none())
}

/// The snapshot row of `sql/replay_snapshot.sql`: `version, NULL, schema_version, state::text`.
fn snapshot_row(stream_id: &StreamId, row: &PgRow) -> Result<Snapshot, PgError> {
    let state: &str = row.try_get(3)?;
    let state = serde_json::from_str(state).map_err(|e| sqlx::Error::Decode(Box::new(e)))?;
    snapshot(stream_id, row.try_get(0)?, row.try_get(2)?, state)
}

fn snapshot(
    stream_id: &StreamId,
    version: i64,
    schema_version: i32,
    state: Value,
) -> Result<Snapshot, PgError> {
    let schema_version = u32::try_from(schema_version).map_err(|_| PgError::CorruptRow {
        what: "negative snapshot schema version",
    })?;
    Ok(Snapshot::new(
        stream_id.clone(),
        convert::version(version)?,
        schema_version,
        state,
    ))
}
