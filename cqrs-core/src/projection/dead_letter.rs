//! Dead letters: events a projection cannot apply, parked with the error.

use async_trait::async_trait;
use time::OffsetDateTime;

use crate::{Position, Result, StreamId, Version};

/// An event a projection parked instead of applying.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct DeadLetter {
    /// The projection.
    pub projection: String,
    /// The event's feed position.
    pub position: Position,
    /// The event's stream.
    pub stream_id: StreamId,
    /// The event's version.
    pub version: Version,
    /// The event's type.
    pub event_type: String,
    /// The projection's key for the event (its document), if any: later events with the same
    /// key are parked too.
    pub key: Option<String>,
    /// Why it was parked.
    pub error: String,
    /// When.
    pub parked_at: OffsetDateTime,
}

impl DeadLetter {
    /// A dead letter, for stores and runners.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        projection: &str,
        position: Position,
        stream_id: StreamId,
        version: Version,
        event_type: &str,
        key: Option<String>,
        error: &str,
        parked_at: OffsetDateTime,
    ) -> Self {
        Self {
            projection: projection.to_owned(),
            position,
            stream_id,
            version,
            event_type: event_type.to_owned(),
            key,
            error: error.to_owned(),
            parked_at,
        }
    }
}

/// Keeps dead letters per projection.
#[async_trait]
pub trait DeadLetterStore: Send + Sync {
    /// Parks `letter` (parking the same projection and position twice keeps one).
    async fn park(&self, letter: DeadLetter) -> Result<()>;

    /// The dead letters of `projection`, in feed order.
    async fn dead_letters(&self, projection: &str) -> Result<Vec<DeadLetter>>;
}
