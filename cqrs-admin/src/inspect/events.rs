//! [`EventView`] and [`StreamView`]: recorded events with their metadata, for people.

use std::collections::BTreeMap;

use cqrs_core::{Position, RecordedEvent};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use time::OffsetDateTime;
use uuid::Uuid;

/// One recorded event: where it is, what it is, its payload and metadata.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct EventView {
    /// Its feed position (`major/minor`).
    #[serde(with = "super::serde_pos")]
    pub position: Position,
    /// Its stream.
    pub stream_id: String,
    /// Its version in the stream (1 for the first event).
    pub version: u64,
    /// Its type name.
    pub event_type: String,
    /// Its payload's schema version.
    pub schema_version: u32,
    /// When the store recorded it.
    #[serde(with = "time::serde::rfc3339")]
    pub recorded_at: OffsetDateTime,
    /// Its unique id.
    pub event_id: Uuid,
    /// The correlation id: shared by everything one request caused.
    pub correlation_id: Option<Uuid>,
    /// The id of the message that caused it.
    pub causation_id: Option<Uuid>,
    /// The id of the command that recorded it.
    pub command_id: Option<Uuid>,
    /// Its headers.
    pub headers: BTreeMap<String, String>,
    /// Its payload, as stored.
    pub payload: Value,
}

impl From<&RecordedEvent> for EventView {
    fn from(event: &RecordedEvent) -> Self {
        let metadata = &event.metadata;
        Self {
            position: event.position,
            stream_id: event.stream_id.as_str().to_owned(),
            version: event.version.get(),
            event_type: event.event_type.clone(),
            schema_version: event.schema_version,
            recorded_at: event.recorded_at,
            event_id: metadata.event_id.as_uuid(),
            correlation_id: metadata.correlation_id,
            causation_id: metadata.causation_id,
            command_id: metadata.command_id.map(|id| id.as_uuid()),
            headers: metadata.headers.clone(),
            payload: event.payload.clone(),
        }
    }
}

/// One stream's events, in version order (a page of them: see `next_version`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct StreamView {
    /// The stream.
    pub stream_id: String,
    /// Its events from the version asked for.
    pub events: Vec<EventView>,
    /// The version to read from for the next page; `None` when this page reached the end.
    pub next_version: Option<u64>,
}
