//! [`IntegrationMapper`]: which domain events go out, and as what; [`MapError`].

use cqrs_core::RecordedEvent;

use super::Outgoing;

/// Which domain events a [`KafkaPublisher`](super::KafkaPublisher) publishes, and as which
/// integration events. Domain events stay private: only what `map` returns goes out.
///
/// Most services write a [`DomainMapper`](super::DomainMapper), which decodes the payload
/// into their event enum first; implement this trait for anything else (several aggregates'
/// events, a mapping that reads the raw JSON).
pub trait IntegrationMapper: Send + Sync + 'static {
    /// The domain event types it maps. They become the publisher's feed filter, so the
    /// publisher reads nothing else. An empty list reads every event.
    fn event_types(&self) -> Vec<&'static str>;

    /// The message for `event`: `Ok(None)` when this event has no public counterpart (it is
    /// passed over), `Err` when it can never be mapped (it does not decode): the event is
    /// parked as a dead letter, and its stream's later events wait behind it.
    fn map(&self, event: &RecordedEvent) -> Result<Option<Outgoing>, MapError>;
}

/// Why an event cannot be mapped. Every variant is poison (mapping the same event again gives
/// the same error), but a decode error that is transient: an event a newer release wrote
/// ([`cqrs_core::Error::WrittenByNewerCode`]) waits for that release, which maps it.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MapError {
    /// The stored payload does not decode into the domain event (or an upcaster failed).
    #[error("the event does not decode: {0}")]
    Decode(#[source] cqrs_core::Error),
    /// The integration event does not serialize.
    #[error("integration event {event_type} does not serialize: {source}")]
    Encode {
        /// The contract's type.
        event_type: &'static str,
        /// serde's error.
        #[source]
        source: serde_json::Error,
    },
    /// The mapper refused the event for a reason of its own.
    #[error("the event cannot be mapped: {0}")]
    Refused(String),
}

impl MapError {
    /// The mapper refuses the event because of `reason`.
    pub fn refused(reason: impl std::fmt::Display) -> Self {
        MapError::Refused(reason.to_string())
    }

    /// Whether mapping the event again later may succeed: a decode error that is transient
    /// (an event a newer release wrote).
    pub fn is_transient(&self) -> bool {
        matches!(self, MapError::Decode(error) if error.is_transient())
    }
}
