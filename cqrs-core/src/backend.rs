//! For store implementers: the checks every backend runs before it writes, metadata stored
//! apart from its event id, building dead letters, upcasting with key hold-back for sinks that
//! drive their own reads, and the circuit breaker a runner or sink puts in front of a failing
//! dependency. Application code does not need this module.

pub use crate::projection::breaker::CircuitBreaker;
pub use crate::projection::runner::upcast::{upcast_in_order, Upcast};
pub use crate::stored_metadata::{
    metadata_from_json, metadata_json_without_event_id, MetadataWithoutId, WithoutEventId,
};
pub use crate::texts::{Texts, TextsBuilder};
pub use crate::validate::{
    check_batch, check_event_type, check_lease_ttl, check_snapshot, BatchCheck,
    DEFAULT_MAX_APPEND_BYTES, DEFAULT_MAX_PAYLOAD_BYTES, MAX_EVENT_TYPE_LEN, MAX_LEASE_TTL,
    MAX_PAYLOAD_DEPTH, MIN_LEASE_TTL,
};

use time::OffsetDateTime;

use crate::projection::DeadLetter;
use crate::{Position, StreamId, Version};

/// A dead letter as a store reads it back or a runner parks it: the event's place, the
/// document key it held back, why it was parked and when. Application code receives letters
/// from a [`DeadLetterStore`](crate::projection::DeadLetterStore); it never builds them.
#[allow(clippy::too_many_arguments)]
pub fn dead_letter(
    projection: &str,
    position: Position,
    stream_id: StreamId,
    version: Version,
    event_type: &str,
    key: Option<String>,
    error: &str,
    parked_at: OffsetDateTime,
) -> DeadLetter {
    DeadLetter {
        projection: projection.to_owned(),
        position,
        stream_id,
        version,
        event_type: event_type.to_owned(),
        key,
        error: error.to_owned(),
        parked_at,
        request: None,
    }
}
