//! The crate's error type.

use crate::{ExpectedVersion, InvalidStreamId, StreamId, Version};

/// A boxed error from a store backend or an upcaster.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Everything that can go wrong in the framework itself (the aggregate's own rejections are the
/// user's error type, carried by [`CommandError`](crate::CommandError)).
///
/// Each message is whole on its own: it ends with its cause's text (serde's reason, the
/// database's error), so printing it with `{}` or logging it says what went wrong; `source()`
/// still returns the cause for code that downcasts. [`Error::kind`] classifies it.
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
    #[error("invalid stream id: {0}")]
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
    /// A bus consumer parked a message where it had parked another one: the same topic,
    /// partition and offset, another key or payload. Offsets start from zero again when a
    /// topic is deleted and created again, or when a service moves to another cluster: an
    /// operator clears the old letters (retries or skips them) first.
    #[error(
        "consumer {consumer} already parked another message at {message}: was the topic \
         created again, or the service moved to another cluster? Clear the old letters first"
    )]
    MessageIdReused {
        /// The consumer.
        consumer: String,
        /// Where the message is.
        message: crate::bus::MessageId,
    },
    /// One append named the same event id for two of its events.
    #[error("event id {event_id} appears twice in one append")]
    EventIdRepeated {
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
    /// A payload nested deeper than every reader decodes (serde_json stops at 128 levels):
    /// stored, it could never be read back.
    #[error("payload of {event_type} is nested more than {limit} levels deep")]
    PayloadTooDeep {
        /// The event's type.
        event_type: String,
        /// The deepest nesting accepted.
        limit: usize,
    },
    /// A payload or header held a NUL character, which stores keeping JSON as text refuse.
    #[error("payload or headers of {event_type} contain a NUL character")]
    NulInPayload {
        /// The event's type.
        event_type: String,
    },
    /// Text the store cannot hold or look up was refused (a NUL character, which PostgreSQL's
    /// `text` refuses): a name from outside, such as a query string's.
    #[error("text the store cannot hold: {0}")]
    UnstorableText(String),
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
    #[error("could not encode event {event_type}: {source}")]
    Encode {
        /// The event's type.
        event_type: String,
        /// Serde's error.
        #[source]
        source: serde_json::Error,
    },
    /// A stored event did not deserialize: unknown type, or payload of the wrong shape.
    #[error(
        "could not decode event {event_type}{}: {source}",
        place(stream_id, version)
    )]
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
    /// A stored event is at a schema version newer than this code writes its type at
    /// ([`DomainEvent::current_version`](crate::DomainEvent::current_version)): a newer
    /// release wrote it, while this one still runs (a rolling deploy). Read as the older
    /// shape, it would be silently wrong. Transient ([`ErrorKind::Unavailable`]): a retry
    /// succeeds once the newer release handles it, so a command answers "try again" and a
    /// projection waits, and nothing is decided on a wrong reading. This code is behind:
    /// rolling back past a change of an event's schema needs an upcaster the other way.
    #[error(
        "event {event_type}{} is at schema version {schema_version}, newer than this code \
         writes it at (version {current}): a newer release wrote it; retry once it runs (or \
         an upcaster of this code writes it: its type's version is behind its upcasters)",
        place(stream_id, version)
    )]
    WrittenByNewerCode {
        /// The stored type name.
        event_type: String,
        /// Its stored schema version.
        schema_version: u32,
        /// The version this code writes it at.
        current: u32,
        /// The event's stream, when known.
        stream_id: Option<StreamId>,
        /// The event's version, when known.
        version: Option<Version>,
    },
    /// An upcaster failed on a stored event.
    #[error(
        "upcaster for {event_type} v{schema_version} failed at {stream_id}@{version}: {source}"
    )]
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
    /// An append was larger than the store accepts as a whole, counting every event's payload
    /// and metadata (headers included). Nothing was written.
    #[error(
        "append of {events} events is over {bytes} bytes with metadata and headers, more than \
         the {limit} allowed"
    )]
    AppendTooLarge {
        /// How many events the append held.
        events: usize,
        /// Its size in bytes, as far as it was counted (counting stops past the limit).
        bytes: usize,
        /// The store's limit in bytes.
        limit: usize,
    },
    /// A snapshot was refused before it was saved: its state could not be read back once
    /// stored (see [`check_snapshot`](crate::backend::check_snapshot)), and every later load
    /// of the stream would fail on it. Nothing was saved; loads go on from the events (or an
    /// older snapshot).
    #[error("snapshot of {stream_id} not saved: its state {reason}")]
    SnapshotUnreadable {
        /// The stream.
        stream_id: StreamId,
        /// What is wrong with the state: "holds a NUL character", or "is nested deeper than
        /// the 127 levels a reader decodes".
        reason: &'static str,
    },
    /// A lease was asked for a time to live outside
    /// [`MIN_LEASE_TTL`](crate::backend::MIN_LEASE_TTL) to
    /// [`MAX_LEASE_TTL`](crate::backend::MAX_LEASE_TTL) (see
    /// [`check_lease_ttl`](crate::backend::check_lease_ttl)). Nothing was taken.
    #[error(
        "a lease time to live of {ttl:?} is outside the {:?} to {:?} a store keeps",
        crate::backend::MIN_LEASE_TTL,
        crate::backend::MAX_LEASE_TTL
    )]
    LeaseTtlOutOfRange {
        /// What was asked.
        ttl: std::time::Duration,
    },
    /// An aggregate's state did not serialize into a snapshot.
    #[error("could not serialize a snapshot of {stream_id}: {source}")]
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
    /// The store's backend could not be reached, or did not answer in time (connection
    /// refused or lost, pool exhausted, timeout, server shutting down). Nothing may have been
    /// written; retrying may succeed.
    #[error("event store backend unavailable: {0}")]
    Unavailable(#[source] BoxError),
    /// The store's backend failed in a way a retry will not cure (a database error, a row
    /// that does not hold what the schema promises...).
    #[error("event store backend failed: {0}")]
    Backend(#[source] BoxError),
    /// A projection stopped on an error it could not retry (a poison event under
    /// [`PoisonPolicy::Stop`](crate::projection::PoisonPolicy::Stop), or a failure that is not
    /// transient).
    #[error("projection {projection} failed: {reason}")]
    ProjectionFailed {
        /// The projection's name.
        projection: String,
        /// Why, as its status reported it.
        reason: String,
    },
    /// A process manager met data it cannot handle: an event it cannot route (no correlation
    /// id to route by, say) or a journal entry it cannot read back.
    #[error("process manager {process}: {reason}")]
    Process {
        /// The process manager's type.
        process: String,
        /// What was wrong, with the event or journal entry it was found in.
        reason: String,
    },
}

/// What kind of failure an [`Error`] is: what a caller can do about it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// Another writer got there first: load again and decide again.
    Conflict,
    /// The input was refused (stream id, empty or oversized append, reused id, bad event
    /// type). The same input will be refused again.
    InvalidInput,
    /// Stored data could not be read or written as data (decode, encode, upcast, snapshot).
    /// Retrying cannot help; the code or the data must change.
    Data,
    /// The backend was unreachable or too slow. Worth retrying, with backoff.
    Unavailable,
    /// The backend failed, or does not offer the operation. Retrying will not help.
    Backend,
    /// A projection stopped and needs attention.
    ProjectionFailed,
}

impl std::fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.pad(match self {
            ErrorKind::Conflict => "conflict",
            ErrorKind::InvalidInput => "invalid input",
            ErrorKind::Data => "data",
            ErrorKind::Unavailable => "unavailable",
            ErrorKind::Backend => "backend",
            ErrorKind::ProjectionFailed => "projection failed",
        })
    }
}

/// Where a decode failed, as `" at stream@version"`, or nothing when not known.
fn place(stream_id: &Option<StreamId>, version: &Option<Version>) -> String {
    match (stream_id, version) {
        (Some(s), Some(v)) => format!(" at {s}@{v}"),
        (Some(s), None) => format!(" in {s}"),
        _ => String::new(),
    }
}

impl Error {
    /// A process manager's data error (see [`Error::Process`]).
    pub fn process(process: impl Into<String>, reason: impl Into<String>) -> Self {
        Error::Process {
            process: process.into(),
            reason: reason.into(),
        }
    }

    /// Wraps a backend's error.
    pub fn backend(error: impl Into<BoxError>) -> Self {
        Error::Backend(error.into())
    }

    /// Wraps a backend's error that a retry may cure (see [`Error::Unavailable`]).
    pub fn unavailable(error: impl Into<BoxError>) -> Self {
        Error::Unavailable(error.into())
    }

    /// What kind of failure this is.
    ///
    /// ```
    /// use cqrs_core::{Error, ErrorKind};
    ///
    /// let down = Error::unavailable("connection refused");
    /// assert_eq!(down.kind(), ErrorKind::Unavailable);
    /// assert!(down.is_transient());
    /// assert!(!Error::EmptyAppend.is_transient());
    /// ```
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::Conflict { .. } => ErrorKind::Conflict,
            Error::InvalidStreamId(_)
            | Error::EmptyAppend
            | Error::MixedCommandIds
            | Error::CommandIdReused { .. }
            | Error::EventIdReused { .. }
            | Error::MessageIdReused { .. }
            | Error::EventIdRepeated { .. }
            | Error::PayloadTooLarge { .. }
            | Error::PayloadTooDeep { .. }
            | Error::NulInPayload { .. }
            | Error::UnstorableText(_)
            | Error::SnapshotUnreadable { .. }
            | Error::AppendTooLarge { .. }
            | Error::LeaseTtlOutOfRange { .. }
            | Error::InvalidEventType(_) => ErrorKind::InvalidInput,
            Error::EventTypeMismatch { .. }
            | Error::Encode { .. }
            | Error::Decode { .. }
            | Error::Upcast { .. }
            | Error::Snapshot { .. }
            | Error::Process { .. } => ErrorKind::Data,
            Error::Unavailable(_) | Error::WrittenByNewerCode { .. } => ErrorKind::Unavailable,
            Error::Unsupported { .. } | Error::Backend(_) => ErrorKind::Backend,
            Error::ProjectionFailed { .. } => ErrorKind::ProjectionFailed,
        }
    }

    /// Whether a retry may succeed: the backend was [unavailable](ErrorKind::Unavailable).
    pub fn is_transient(&self) -> bool {
        self.kind() == ErrorKind::Unavailable
    }

    /// Whether `error`, as a projection or a handler boxed it (`event.decode()?` into a
    /// [`BoxError`]), is one of this crate's that a retry may cure ([`is_transient`](Self::is_transient)).
    ///
    /// ```
    /// use cqrs_core::{BoxError, Error};
    ///
    /// let boxed: BoxError = Box::new(Error::unavailable("down"));
    /// assert!(Error::is_transient_boxed(&*boxed));
    /// let other: BoxError = "no such field".into();
    /// assert!(!Error::is_transient_boxed(&*other));
    /// ```
    pub fn is_transient_boxed(error: &(dyn std::error::Error + 'static)) -> bool {
        error
            .downcast_ref::<Error>()
            .is_some_and(Error::is_transient)
    }

    /// Whether this is an optimistic-concurrency [`Error::Conflict`].
    pub fn is_conflict(&self) -> bool {
        matches!(self, Error::Conflict { .. })
    }

    /// An event of type `event_type` that did not decode; its place is added by
    /// [`at`](Self::at) where it is known.
    pub(crate) fn decode(event_type: &str, source: serde_json::Error) -> Self {
        Error::Decode {
            stream_id: None,
            version: None,
            event_type: event_type.to_owned(),
            source,
        }
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
            Error::WrittenByNewerCode {
                event_type,
                schema_version,
                current,
                ..
            } => Error::WrittenByNewerCode {
                event_type,
                schema_version,
                current,
                stream_id: Some(stream_id.clone()),
                version: Some(version),
            },
            other => other,
        }
    }
}

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// An error and its causes on one line: each cause once (one whose text the message already
/// holds is not repeated), joined by `": "`. For the one-line errors of command lines and
/// logs.
///
/// ```
/// use cqrs_core::error_chain;
///
/// #[derive(Debug, thiserror::Error)]
/// #[error("cannot start")]
/// struct Start(#[source] std::io::Error);
///
/// let error = Start(std::io::Error::other("connection refused"));
/// assert_eq!(error_chain(&error), "cannot start: connection refused");
/// ```
pub fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut cause = error.source();
    while let Some(e) = cause {
        let more = e.to_string();
        if !text.contains(&more) {
            text.push_str(": ");
            text.push_str(&more);
        }
        cause = e.source();
    }
    text
}
