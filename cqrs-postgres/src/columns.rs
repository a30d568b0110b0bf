//! [`Columns`]: one append's events, checked and encoded as the arrays its statements bind.

use cqrs_core::backend::{check_batch, metadata_json_without_event_id, BatchCheck};
use cqrs_core::{CommandId, NewEvent, StreamId};
use uuid::Uuid;

use crate::PgError;

/// The columns of one batch, as arrays for `unnest`.
pub(crate) struct Columns {
    pub(crate) event_ids: Vec<Uuid>,
    pub(crate) event_types: Vec<String>,
    pub(crate) schema_versions: Vec<i32>,
    pub(crate) payloads: Vec<String>,
    pub(crate) metadata: Vec<String>,
    pub(crate) command_id: Option<CommandId>,
    /// The JSON text of every payload and metadata (headers included), in bytes.
    pub(crate) bytes: usize,
}

impl Columns {
    /// Checks and encodes a batch: each payload within `max_payload_bytes`, and the whole
    /// append, payloads and metadata with headers, within `max_append_bytes`.
    pub(crate) fn new(
        events: Vec<NewEvent>,
        max_payload_bytes: usize,
        max_append_bytes: usize,
    ) -> Result<Self, PgError> {
        let BatchCheck {
            command_id,
            payloads,
            ..
        } = check_batch(&events, max_payload_bytes)?;
        let mut bytes: usize = payloads.iter().map(String::len).sum();
        let mut columns = Columns {
            event_ids: Vec::with_capacity(events.len()),
            event_types: Vec::with_capacity(events.len()),
            schema_versions: Vec::with_capacity(events.len()),
            payloads,
            metadata: Vec::with_capacity(events.len()),
            command_id,
            bytes: 0,
        };
        let count = events.len();
        for event in events {
            let schema_version =
                i32::try_from(event.schema_version).map_err(|_| PgError::OutOfRange {
                    what: "schema version",
                    value: event.schema_version.to_string(),
                })?;
            // Without the event id, which has its column. Uuids and a map of strings: this
            // cannot fail, but is typed if it ever does.
            let metadata = metadata_json_without_event_id(&event.metadata).map_err(|source| {
                cqrs_core::Error::Encode {
                    event_type: event.event_type.clone(),
                    source,
                }
            })?;
            bytes = bytes.saturating_add(metadata.len());
            if bytes > max_append_bytes {
                // Stop early: the rest only adds to it.
                return Err(PgError::AppendTooLarge {
                    events: count,
                    bytes,
                    limit: max_append_bytes,
                });
            }
            columns.event_ids.push(event.metadata.event_id.as_uuid());
            columns.event_types.push(event.event_type);
            columns.schema_versions.push(schema_version);
            columns.metadata.push(metadata);
        }
        columns.bytes = bytes;
        Ok(columns)
    }

    /// How many events.
    pub(crate) fn len(&self) -> usize {
        self.event_ids.len()
    }

    /// Binds `$1` to `$6` of both lone append statements: the stream and the event columns.
    pub(crate) fn bind<'q>(&'q self, query: PgQuery<'q>, stream_id: &'q StreamId) -> PgQuery<'q> {
        query
            .bind(stream_id.as_str())
            .bind(&self.event_ids)
            .bind(&self.event_types)
            .bind(&self.schema_versions)
            .bind(&self.payloads)
            .bind(&self.metadata)
    }
}

/// A statement with its arguments.
pub(crate) type PgQuery<'q> = sqlx::query::Query<'q, sqlx::Postgres, sqlx::postgres::PgArguments>;
