//! Events: the user's [`DomainEvent`] trait and the store's envelopes, [`NewEvent`] and
//! [`RecordedEvent`].

use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;
use time::OffsetDateTime;

use crate::{Error, Metadata, Position, StreamId, Version};

mod tagged;

pub use tagged::decode_tagged_json;

/// A domain event: a fact that happened, in the past tense.
///
/// An event has a stable type name and a schema version. Payloads are stored as JSON. The
/// default encoding fits the usual shape, a serde enum with one variant per event type: the
/// variant's name is the event type and the variant's content is the payload. `event_type()`
/// must return the variant's serde name (a mismatch is refused with
/// [`Error::EventTypeMismatch`] before anything is written).
///
/// Derive it (the `derive` feature, on by default): the derive reads the names serde writes,
/// `#[serde(rename = "..")]` and `#[serde(rename_all = "..")]` included, so the two cannot
/// disagree; `#[event(version = N)]` on the enum or on a variant sets the schema version
/// (default 1). Shapes the default encoding cannot store (a struct, a tagged or untagged enum)
/// are refused at compile time; they implement the trait by hand and override
/// [`encode`](DomainEvent::encode) and [`decode`](DomainEvent::decode).
///
/// ```
/// use cqrs_core::DomainEvent;
/// use serde::{Deserialize, Serialize};
///
/// #[derive(Debug, Clone, PartialEq, Serialize, Deserialize, DomainEvent)]
/// enum AccountEvent {
///     Opened { owner: String },
///     #[event(version = 2)]
///     Deposited { cents: u64 },
///     #[serde(rename = "AccountClosed")]
///     Closed,
/// }
///
/// let deposit = AccountEvent::Deposited { cents: 250 };
/// assert_eq!((deposit.event_type(), deposit.schema_version()), ("Deposited", 2));
/// assert_eq!(AccountEvent::Closed.event_type(), "AccountClosed");
///
/// let payload = deposit.encode()?;
/// assert_eq!(payload, serde_json::json!({ "cents": 250 }));
/// let back = AccountEvent::decode("Deposited", payload)?;
/// assert_eq!(back, AccountEvent::Deposited { cents: 250 });
/// assert_eq!(
///     AccountEvent::decode("AccountClosed", serde_json::Value::Null)?,
///     AccountEvent::Closed
/// );
/// # Ok::<(), cqrs_core::Error>(())
/// ```
///
/// By hand, the same enum without the renaming and versions reads:
///
/// ```
/// # use serde::{Deserialize, Serialize};
/// # #[derive(Serialize, Deserialize)]
/// # enum AccountEvent { Opened { owner: String }, Deposited { cents: u64 }, Closed }
/// impl cqrs_core::DomainEvent for AccountEvent {
///     fn event_type(&self) -> &'static str {
///         match self {
///             AccountEvent::Opened { .. } => "Opened",
///             AccountEvent::Deposited { .. } => "Deposited",
///             AccountEvent::Closed => "Closed",
///         }
///     }
/// }
/// ```
pub trait DomainEvent: Serialize + DeserializeOwned + Send + Sync + 'static {
    /// The stable name of this event's type, stored with it. Never rename a stored type: add an
    /// upcaster instead.
    fn event_type(&self) -> &'static str;

    /// The schema version of this event's payload as the code writes it today. Older stored
    /// versions are brought up to date by [`Upcasters`](crate::Upcasters) on read.
    fn schema_version(&self) -> u32 {
        1
    }

    /// The schema version this code writes events of the type named `event_type` at, if it
    /// says: `#[derive(DomainEvent)]` does, for each of its types. A stored event at a newer
    /// version was written by newer code (a release rolling out alongside this one), and is
    /// refused on decode with [`Error::WrittenByNewerCode`] instead of being read as the older
    /// shape. The default, `None`, checks nothing.
    fn current_version(event_type: &str) -> Option<u32> {
        let _ = event_type;
        None
    }

    /// The payload to store. The default strips the enum tag, as described on the trait.
    fn encode(&self) -> Result<Value, Error> {
        let event_type = self.event_type();
        let value = serde_json::to_value(self).map_err(|source| Error::Encode {
            event_type: event_type.to_owned(),
            source,
        })?;
        match value {
            Value::Object(mut map) if map.len() == 1 => match map.remove(event_type) {
                Some(payload) => Ok(payload),
                None => Err(mismatch(event_type, map.keys().next().cloned())),
            },
            Value::String(tag) if tag == event_type => Ok(Value::Null),
            Value::String(tag) => Err(mismatch(event_type, Some(tag))),
            _ => Err(mismatch(event_type, None)),
        }
    }

    /// The event from a stored type name and an up-to-date payload. The default puts the enum
    /// tag back, as described on the trait. The error is serde's; the caller adds the event's
    /// stream, version and type.
    fn decode(event_type: &str, payload: Value) -> Result<Self, Error> {
        // `{tag: null}`, not the bare tag, for a `null` payload: it reads as a unit variant
        // and as a newtype variant holding `None` (or `()`), which both encode to `null`.
        let mut map = serde_json::Map::with_capacity(1);
        map.insert(event_type.to_owned(), payload);
        serde_json::from_value(Value::Object(map))
            .map_err(|source| Error::decode(event_type, source))
    }

    /// The event from a stored type name and an up-to-date payload given as JSON text (what a
    /// store reads), with the same result as [`decode`](Self::decode) on the parsed payload.
    /// The default parses the text and calls `decode`, so an impl that overrides `decode`
    /// stays right; `#[derive(DomainEvent)]` decodes in one pass with [`decode_tagged_json`],
    /// without building the payload's `Value` first.
    fn decode_json(event_type: &str, payload: &str) -> Result<Self, Error> {
        let payload =
            serde_json::from_str(payload).map_err(|source| Error::decode(event_type, source))?;
        Self::decode(event_type, payload)
    }
}

fn mismatch(declared: &'static str, serialized: Option<String>) -> Error {
    Error::EventTypeMismatch {
        declared,
        serialized,
    }
}

/// An event on its way into a store: type, schema version, JSON payload and metadata.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct NewEvent {
    /// The event's type name.
    pub event_type: String,
    /// The payload's schema version.
    pub schema_version: u32,
    /// The payload.
    pub payload: Value,
    /// Event id, correlation, causation, command id and headers.
    pub metadata: Metadata,
}

impl NewEvent {
    /// An event from its parts, with fresh metadata (a new event id).
    pub fn new(event_type: impl Into<String>, schema_version: u32, payload: Value) -> Self {
        Self {
            event_type: event_type.into(),
            schema_version,
            payload,
            metadata: Metadata::default(),
        }
    }

    /// An event from all its parts (stores use it to rebuild what they read).
    pub fn from_parts(
        event_type: impl Into<String>,
        schema_version: u32,
        payload: Value,
        metadata: Metadata,
    ) -> Self {
        Self {
            event_type: event_type.into(),
            schema_version,
            payload,
            metadata,
        }
    }

    /// Encodes a domain event.
    pub fn from_domain<E: DomainEvent>(event: &E, metadata: Metadata) -> Result<Self, Error> {
        Ok(Self {
            event_type: event.event_type().to_owned(),
            schema_version: event.schema_version(),
            payload: event.encode()?,
            metadata,
        })
    }

    /// Replaces the metadata.
    #[must_use]
    pub fn with_metadata(mut self, metadata: Metadata) -> Self {
        self.metadata = metadata;
        self
    }
}

/// An event as a store recorded it.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct RecordedEvent {
    /// The stream it belongs to.
    pub stream_id: StreamId,
    /// Its version within the stream (the stream's first event has version 1).
    pub version: Version,
    /// Its place in the store's global feed.
    pub position: Position,
    /// The event's type name.
    pub event_type: String,
    /// The payload's schema version.
    pub schema_version: u32,
    /// The payload.
    pub payload: Value,
    /// Event id, correlation, causation, command id and headers.
    pub metadata: Metadata,
    /// When the store recorded it.
    pub recorded_at: OffsetDateTime,
}

impl RecordedEvent {
    /// The record of `event`, appended to `stream_id` at `version` and `position`.
    pub fn new(
        stream_id: StreamId,
        version: Version,
        position: Position,
        event: NewEvent,
        recorded_at: OffsetDateTime,
    ) -> Self {
        Self {
            stream_id,
            version,
            position,
            event_type: event.event_type,
            schema_version: event.schema_version,
            payload: event.payload,
            metadata: event.metadata,
            recorded_at,
        }
    }

    /// Decodes the payload (already upcast to the current schema) into a domain event. Errors
    /// name the stream, version and type.
    pub fn decode<E: DomainEvent>(&self) -> Result<E, Error> {
        not_newer::<E>(&self.event_type, self.schema_version)
            .and_then(|()| E::decode(&self.event_type, self.payload.clone()))
            .map_err(|e| e.at(&self.stream_id, self.version))
    }

    /// Like [`decode`](Self::decode), consuming the record to spare a copy of the payload.
    pub fn into_domain<E: DomainEvent>(self) -> Result<E, Error> {
        let RecordedEvent {
            stream_id,
            version,
            event_type,
            schema_version,
            payload,
            ..
        } = self;
        not_newer::<E>(&event_type, schema_version)
            .and_then(|()| E::decode(&event_type, payload))
            .map_err(|e| e.at(&stream_id, version))
    }
}

/// Refuses an event of `event_type` stored at `schema_version` when this code writes that
/// type at an older version ([`DomainEvent::current_version`]): newer code wrote it. Version
/// 1, the first, is never newer, so most events ask nothing.
pub(crate) fn not_newer<E: DomainEvent>(
    event_type: &str,
    schema_version: u32,
) -> Result<(), Error> {
    if schema_version <= 1 {
        return Ok(());
    }
    match E::current_version(event_type) {
        Some(current) if schema_version > current => Err(Error::WrittenByNewerCode {
            event_type: event_type.to_owned(),
            schema_version,
            current,
            stream_id: None,
            version: None,
        }),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize, crate::DomainEvent)]
    enum Ev {
        A { n: u32 },
        B(String),
        C,
    }

    #[derive(Debug, Clone, Serialize, Deserialize)]
    enum Liar {
        Real,
    }

    impl DomainEvent for Liar {
        fn event_type(&self) -> &'static str {
            "Fake"
        }
    }

    #[test]
    fn enum_events_round_trip_without_their_tag() {
        for ev in [Ev::A { n: 3 }, Ev::B("x".into()), Ev::C] {
            let payload = ev.encode().unwrap();
            assert!(!payload.to_string().contains(ev.event_type()));
            assert_eq!(Ev::decode(ev.event_type(), payload).unwrap(), ev);
        }
    }

    #[test]
    fn a_wrong_event_type_is_refused_on_encode() {
        assert!(matches!(
            Liar::Real.encode(),
            Err(Error::EventTypeMismatch { declared: "Fake", serialized: Some(s) }) if s == "Real"
        ));
    }

    #[test]
    fn unknown_types_and_bad_payloads_are_decode_errors() {
        assert!(matches!(
            Ev::decode("Nope", serde_json::json!({})),
            Err(Error::Decode { .. })
        ));
        assert!(matches!(
            Ev::decode("A", serde_json::json!({ "n": "three" })),
            Err(Error::Decode { .. })
        ));
    }
}
