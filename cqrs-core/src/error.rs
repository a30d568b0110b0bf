//! The crate's error type.

use crate::{ExpectedVersion, InvalidStreamId, StreamId, Version};

/// A boxed error from a store backend or an upcaster.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Everything that can go wrong in the framework itself (the aggregate's own rejections are the
/// user's error type, carried by [`CommandError`](crate::CommandError)).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The stream was not at the expected version: another writer got there first.
    #[error("stream {stream_id} is at version {actual}, not at the expected {expected}")]
    Conflict {
        /// The stream.
        stream_id: StreamId,
        /// What the append expected.
        expected: ExpectedVersion,
        /// Where the stream was.
        actual: Version,
    },
    /// A stream id was refused.
    #[error("invalid stream id")]
    InvalidStreamId(#[from] InvalidStreamId),
    /// An append held no events.
    #[error("an append needs at least one event")]
    EmptyAppend,
    /// The events of one append named different command ids.
    #[error("the events of one append carry different command ids")]
    MixedCommandIds,
    /// A command id was already recorded for another stream: a command id names one command on
    /// one aggregate.
    #[error("command id {command_id} was already used on stream {stream_id}")]
    CommandIdReused {
        /// The id.
        command_id: crate::CommandId,
        /// The stream that recorded it.
        stream_id: StreamId,
    },
    /// An event id was already recorded, but not as part of the same append.
    #[error("event id {event_id} was already used by another append")]
    EventIdReused {
        /// The id.
        event_id: crate::EventId,
    },
    /// A payload was larger than the store accepts.
    #[error("payload of {event_type} is {size} bytes, more than the {limit} allowed")]
    PayloadTooLarge {
        /// The event's type.
        event_type: String,
        /// Its encoded size in bytes.
        size: usize,
        /// The store's limit in bytes.
        limit: usize,
    },
    /// A payload or header held a NUL character, which stores keeping JSON as text refuse.
    #[error("payload or headers of {event_type} contain a NUL character")]
    NulInPayload {
        /// The event's type.
        event_type: String,
    },
    /// An event type name, or a filter's type or category, was refused.
    #[error("invalid event type name {0:?}")]
    InvalidEventType(String),
    /// A domain event's `event_type()` did not match its serialized variant.
    #[error("event declares type {declared} but serializes as {serialized:?}")]
    EventTypeMismatch {
        /// What `event_type()` returned.
        declared: &'static str,
        /// The tag serde wrote, if any.
        serialized: Option<String>,
    },
    /// A domain event did not serialize.
    #[error("could not encode event {event_type}")]
    Encode {
        /// The event's type.
        event_type: String,
        /// Serde's error.
        #[source]
        source: serde_json::Error,
    },
    /// A stored event did not deserialize: unknown type, or payload of the wrong shape.
    #[error("could not decode event {event_type} at {}", at(stream_id, version))]
    Decode {
        /// The event's stream, when known.
        stream_id: Option<StreamId>,
        /// The event's version, when known.
        version: Option<Version>,
        /// The stored type name.
        event_type: String,
        /// Serde's error.
        #[source]
        source: serde_json::Error,
    },
    /// An upcaster failed on a stored event.
    #[error("upcaster for {event_type} v{schema_version} failed at {stream_id}@{version}")]
    Upcast {
        /// The event's stream.
        stream_id: StreamId,
        /// The event's version.
        version: Version,
        /// The stored type name.
        event_type: String,
        /// The schema version the failing upcaster reads.
        schema_version: u32,
        /// The upcaster's error.
        #[source]
        source: BoxError,
    },
    /// An aggregate's state did not serialize into a snapshot.
    #[error("could not serialize a snapshot of {stream_id}")]
    Snapshot {
        /// The stream.
        stream_id: StreamId,
        /// Serde's error.
        #[source]
        source: serde_json::Error,
    },
    /// The store does not offer an operation (e.g. fenced checkpoint saves from a checkpoint
    /// store that keeps no leases). Retrying cannot help.
    #[error("the store does not support {operation}")]
    Unsupported {
        /// What was asked.
        operation: &'static str,
    },
    /// The store's backend failed (connection, I/O, database error...).
    #[error("event store backend failed")]
    Backend(#[source] BoxError),
}

fn at(stream_id: &Option<StreamId>, version: &Option<Version>) -> String {
    match (stream_id, version) {
        (Some(s), Some(v)) => format!("{s}@{v}"),
        (Some(s), None) => s.to_string(),
        _ => "unknown place".to_owned(),
    }
}

impl Error {
    /// Wraps a backend's error.
    pub fn backend(error: impl Into<BoxError>) -> Self {
        Error::Backend(error.into())
    }

    /// Whether this is an optimistic-concurrency [`Error::Conflict`].
    pub fn is_conflict(&self) -> bool {
        matches!(self, Error::Conflict { .. })
    }

    /// Adds the event's place to a decode error.
    pub(crate) fn at(self, stream_id: &StreamId, version: Version) -> Self {
        match self {
            Error::Decode {
                event_type, source, ..
            } => Error::Decode {
                stream_id: Some(stream_id.clone()),
                version: Some(version),
                event_type,
                source,
            },
            other => other,
        }
    }
}

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
