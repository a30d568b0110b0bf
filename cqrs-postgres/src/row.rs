//! Decoding event rows.

use cqrs_core::{Metadata, NewEvent, RecordedEvent, StreamId};
use serde_json::Value;
use sqlx::postgres::PgRow;
use sqlx::types::Json;
use sqlx::Row;
use time::OffsetDateTime;

use crate::convert;
use crate::PgError;

/// The columns every event read selects, in this order, after `offset` leading columns.
/// Reading by index spares a name lookup per column per row on the feed's hot path.
pub(crate) const EVENT_COLUMNS: usize = 9;

/// An event row: `transaction_id::text, position, stream_id, version, event_type,
/// schema_version, payload, metadata, recorded_at`, starting at column `offset`.
pub(crate) fn recorded_event(row: &PgRow, offset: usize) -> Result<RecordedEvent, PgError> {
    let transaction_id: &str = row.try_get(offset)?;
    let position: i64 = row.try_get(offset + 1)?;
    let stream_id: &str = row.try_get(offset + 2)?;
    let version: i64 = row.try_get(offset + 3)?;
    let event_type: String = row.try_get(offset + 4)?;
    let schema_version: i32 = row.try_get(offset + 5)?;
    let Json(payload): Json<Value> = row.try_get(offset + 6)?;
    let Json(metadata): Json<Metadata> = row.try_get(offset + 7)?;
    let recorded_at: OffsetDateTime = row.try_get(offset + 8)?;
    let stream_id = StreamId::new(stream_id).map_err(|_| PgError::CorruptRow {
        what: "stored stream id is invalid",
    })?;
    let schema_version = u32::try_from(schema_version).map_err(|_| PgError::CorruptRow {
        what: "negative schema version",
    })?;
    Ok(RecordedEvent::new(
        stream_id,
        convert::version(version)?,
        convert::position(transaction_id, position)?,
        NewEvent::from_parts(event_type, schema_version, payload, metadata),
        recorded_at,
    ))
}
