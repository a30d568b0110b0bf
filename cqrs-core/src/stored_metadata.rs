//! [`Metadata`] as a store that keeps each event's id in a column of its own writes it: the JSON
//! of every other field, so a row carries the id once (in PostgreSQL, the id was about 55 of an
//! event row's 250 bytes when the JSON repeated it).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::{CommandId, EventId, Metadata};

/// The fields of [`Metadata`] but the event id, borrowed for writing.
#[derive(PartialEq, Serialize)]
struct Fields<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    correlation_id: Option<&'a Uuid>,
    #[serde(skip_serializing_if = "Option::is_none")]
    causation_id: Option<&'a Uuid>,
    #[serde(skip_serializing_if = "Option::is_none")]
    command_id: Option<&'a CommandId>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    headers: &'a BTreeMap<String, String>,
}

/// Stored metadata read back: every field of [`Metadata`] but the event id, which
/// [`with_event_id`](Self::with_event_id) takes from the store's column. Deserializes what
/// [`metadata_json_without_event_id`] wrote, or a whole `Metadata`'s JSON, whose `event_id` is
/// ignored: the column's id is the event's. A store decoding rows reads its metadata column as
/// this type with its driver's JSON decoder.
#[derive(Debug, Deserialize)]
pub struct MetadataWithoutId {
    #[serde(default)]
    correlation_id: Option<Uuid>,
    #[serde(default)]
    causation_id: Option<Uuid>,
    #[serde(default)]
    command_id: Option<CommandId>,
    #[serde(default)]
    headers: BTreeMap<String, String>,
}

/// The JSON of `metadata` without its event id, for a store that writes the id in a column of
/// its own; [`metadata_from_json`] reads it back.
///
/// ```
/// use cqrs_core::backend::{metadata_from_json, metadata_json_without_event_id};
/// use cqrs_core::{EventId, Metadata};
///
/// let id = EventId::new();
/// let metadata = Metadata::new(id).with_header("tenant", "acme");
/// let json = metadata_json_without_event_id(&metadata)?;
/// assert_eq!(json, r#"{"headers":{"tenant":"acme"}}"#);
/// assert_eq!(metadata_from_json(json.as_bytes(), id)?, metadata);
/// # Ok::<(), serde_json::Error>(())
/// ```
pub fn metadata_json_without_event_id(metadata: &Metadata) -> serde_json::Result<String> {
    serde_json::to_string(&WithoutEventId(metadata))
}

/// A [`Metadata`] but its event id, borrowed for writing: serializes as
/// [`metadata_json_without_event_id`] writes, and equals another when every field but the id
/// does, so a store can write the metadata a batch's events share once.
///
/// ```
/// use cqrs_core::backend::WithoutEventId;
/// use cqrs_core::{EventId, Metadata};
///
/// let first = Metadata::new(EventId::new()).with_header("tenant", "acme");
/// let second = Metadata::new(EventId::new()).with_header("tenant", "acme");
/// assert_eq!(WithoutEventId(&first), WithoutEventId(&second));
/// assert_eq!(serde_json::to_string(&WithoutEventId(&first))?, r#"{"headers":{"tenant":"acme"}}"#);
/// # Ok::<(), serde_json::Error>(())
/// ```
#[derive(Clone, Copy, Debug)]
pub struct WithoutEventId<'a>(pub &'a Metadata);

impl WithoutEventId<'_> {
    fn fields(&self) -> Fields<'_> {
        // Every field by name: a field added to `Metadata` does not compile here until it is
        // written (and compared) too.
        let Metadata {
            event_id: _,
            correlation_id,
            causation_id,
            command_id,
            headers,
        } = self.0;
        Fields {
            correlation_id: correlation_id.as_ref(),
            causation_id: causation_id.as_ref(),
            command_id: command_id.as_ref(),
            headers,
        }
    }
}

impl Serialize for WithoutEventId<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.fields().serialize(serializer)
    }
}

impl PartialEq for WithoutEventId<'_> {
    fn eq(&self, other: &Self) -> bool {
        self.fields() == other.fields()
    }
}

impl Eq for WithoutEventId<'_> {}

/// The metadata of event `event_id` from its stored JSON: what
/// [`metadata_json_without_event_id`] wrote, or a whole [`Metadata`]'s JSON, whose `event_id`
/// gives way to `event_id`.
pub fn metadata_from_json(json: &[u8], event_id: EventId) -> serde_json::Result<Metadata> {
    serde_json::from_slice::<MetadataWithoutId>(json).map(|fields| fields.with_event_id(event_id))
}

impl MetadataWithoutId {
    /// The metadata of event `event_id`.
    pub fn with_event_id(self, event_id: EventId) -> Metadata {
        let Self {
            correlation_id,
            causation_id,
            command_id,
            headers,
        } = self;
        Metadata {
            event_id,
            correlation_id,
            causation_id,
            command_id,
            headers,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn every_field() -> Metadata {
        Metadata::new(EventId::new())
            .with_correlation_id(Uuid::now_v7())
            .with_causation_id(Uuid::now_v7())
            .with_command_id(CommandId::new())
            .with_header("user", "alice")
    }

    #[test]
    fn every_field_but_the_event_id_is_written_and_read_back() {
        let metadata = every_field();
        let json = metadata_json_without_event_id(&metadata).expect("encodes");
        assert!(!json.contains("event_id"), "{json}");
        assert_eq!(
            metadata_from_json(json.as_bytes(), metadata.event_id).expect("decodes"),
            metadata
        );
    }

    #[test]
    fn json_written_with_its_event_id_reads_as_before_and_the_column_decides_the_id() {
        let metadata = every_field();
        let whole = serde_json::to_string(&metadata).expect("encodes");
        assert_eq!(
            metadata_from_json(whole.as_bytes(), metadata.event_id).expect("decodes"),
            metadata
        );
        let column = EventId::new();
        let read = metadata_from_json(whole.as_bytes(), column).expect("decodes");
        assert_eq!(read.event_id, column);
    }

    #[test]
    fn metadata_with_only_an_event_id_is_stored_as_an_empty_object() {
        let metadata = Metadata::new(EventId::new());
        let json = metadata_json_without_event_id(&metadata).expect("encodes");
        assert_eq!(json, "{}");
        assert_eq!(
            metadata_from_json(json.as_bytes(), metadata.event_id).expect("decodes"),
            metadata
        );
    }

    #[test]
    fn json_that_is_not_metadata_is_an_error() {
        for bad in [
            &b"{\"correlation_id\": \"not a uuid\"}"[..],
            b"{\"headers\": 3}",
            b"not json",
        ] {
            assert!(metadata_from_json(bad, EventId::new()).is_err());
        }
    }
}
