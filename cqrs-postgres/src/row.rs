//! Decoding event rows.

use cqrs_core::{Metadata, NewEvent, RecordedEvent, StreamId};
use serde_json::Value;
use sqlx::postgres::PgRow;
use sqlx::types::Json;
use sqlx::Row;
use time::OffsetDateTime;

use crate::convert;
use crate::PgError;

/// An event row as `read_stream.sql` and `read_all.sql` select it.
pub(crate) fn recorded_event(row: &PgRow) -> Result<RecordedEvent, PgError> {
    let transaction_id: &str = row.try_get("transaction_id")?;
    let position: i64 = row.try_get("position")?;
    let stream_id: &str = row.try_get("stream_id")?;
    let version: i64 = row.try_get("version")?;
    let event_type: String = row.try_get("event_type")?;
    let schema_version: i32 = row.try_get("schema_version")?;
    let Json(payload): Json<Value> = row.try_get("payload")?;
    let Json(metadata): Json<Metadata> = row
        .try_get::<Json<Value>, _>("metadata")
        .map_err(PgError::from)
        .and_then(|Json(v)| {
            serde_json::from_value(v)
                .map(Json)
                .map_err(PgError::Metadata)
        })?;
    let recorded_at: OffsetDateTime = row.try_get("recorded_at")?;
    let stream_id = StreamId::new(stream_id).map_err(|_| PgError::CorruptRow {
        what: "stored stream id is invalid",
    })?;
    let schema_version = u32::try_from(schema_version).map_err(|_| PgError::CorruptRow {
        what: "negative schema version",
    })?;
    let mut event = NewEvent::new(event_type, schema_version, payload);
    event.metadata = metadata;
    Ok(RecordedEvent::new(
        stream_id,
        convert::version(version)?,
        convert::position(transaction_id, position)?,
        event,
        recorded_at,
    ))
}
