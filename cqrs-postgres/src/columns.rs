//! [`Columns`]: one append's events, checked and encoded as the arrays its statements bind.

use cqrs_core::backend::{check_batch, BatchCheck, Texts, TextsBuilder, WithoutEventId};
use cqrs_core::{CommandId, Metadata, NewEvent, StreamId};
use uuid::Uuid;

use crate::PgError;

/// The columns of one batch, as arrays for `unnest`.
pub(crate) struct Columns {
    pub(crate) event_ids: Vec<Uuid>,
    pub(crate) event_types: Vec<String>,
    pub(crate) schema_versions: Vec<i32>,
    pub(crate) payloads: Texts,
    /// Without the event id, which has its column.
    pub(crate) metadata: Texts,
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
        let count = events.len();
        let mut metadata = TextsBuilder::with_capacity(count, 128);
        let mut bytes = payloads.bytes();
        let mut schema_versions = Vec::with_capacity(count);
        let mut event_ids = Vec::with_capacity(count);
        let mut previous: Option<&Metadata> = None;
        for event in &events {
            schema_versions.push(i32::try_from(event.schema_version).map_err(|_| {
                PgError::OutOfRange {
                    what: "schema version",
                    value: event.schema_version.to_string(),
                }
            })?);
            event_ids.push(event.metadata.event_id.as_uuid());
            // The events of one command share their metadata but for the id: written once.
            let repeated = match previous {
                Some(p) if WithoutEventId(p) == WithoutEventId(&event.metadata) => {
                    metadata.repeat_last()
                }
                _ => None,
            };
            let len = match repeated {
                Some(len) => len,
                // Uuids and a map of strings: this cannot fail, but is typed if it ever does.
                None => metadata
                    .push_json(&WithoutEventId(&event.metadata))
                    .map_err(|source| cqrs_core::Error::Encode {
                        event_type: event.event_type.clone(),
                        source,
                    })?,
            };
            previous = Some(&event.metadata);
            bytes = bytes.saturating_add(len);
            if bytes > max_append_bytes {
                // Stop early: the rest only adds to it.
                return Err(cqrs_core::Error::AppendTooLarge {
                    events: count,
                    bytes,
                    limit: max_append_bytes,
                }
                .into());
            }
        }
        let metadata = metadata
            .finish()
            .map_err(|source| cqrs_core::Error::Encode {
                event_type: events[0].event_type.clone(),
                source,
            })?;
        Ok(Columns {
            event_ids,
            event_types: events.into_iter().map(|e| e.event_type).collect(),
            schema_versions,
            payloads,
            metadata,
            command_id,
            bytes,
        })
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
            .bind(self.payloads.iter().collect::<Vec<_>>())
            .bind(self.metadata.iter().collect::<Vec<_>>())
    }
}

/// A statement with its arguments.
pub(crate) type PgQuery<'q> = sqlx::query::Query<'q, sqlx::Postgres, sqlx::postgres::PgArguments>;
