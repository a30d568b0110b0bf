//! [`StreamEvent`]: one event of a stream as a replay folds it.

use serde_json::Value;

use crate::{RecordedEvent, Version};

/// One event of a stream as a replay folds it ([`ReadStream::replay`]): its version, type,
/// schema version and payload, borrowed from the store's read for one call. Nothing a load
/// does not use (metadata, feed position, time) is read or decoded.
///
/// [`ReadStream::replay`]: crate::ReadStream::replay
#[derive(Clone, Copy, Debug, PartialEq)]
#[non_exhaustive]
pub struct StreamEvent<'a> {
    /// Its version in its stream.
    pub version: Version,
    /// The stored type name.
    pub event_type: &'a str,
    /// The payload's stored schema version (upcasters have not run yet).
    pub schema_version: u32,
    /// The payload as stored.
    pub payload: Payload<'a>,
}

impl<'a> StreamEvent<'a> {
    /// An event, for store implementations.
    pub fn new(
        version: Version,
        event_type: &'a str,
        schema_version: u32,
        payload: Payload<'a>,
    ) -> Self {
        Self {
            version,
            event_type,
            schema_version,
            payload,
        }
    }
}

impl<'a> From<&'a RecordedEvent> for StreamEvent<'a> {
    fn from(event: &'a RecordedEvent) -> Self {
        Self::new(
            event.version,
            &event.event_type,
            event.schema_version,
            Payload::Value(&event.payload),
        )
    }
}

/// A payload in the form its store holds it: JSON text (read from a database) or a parsed
/// `Value` (kept in memory). Decoding takes either without converting one into the other.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Payload<'a> {
    /// JSON text.
    Json(&'a str),
    /// A parsed value.
    Value(&'a Value),
}
