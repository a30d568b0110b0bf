//! The spans of one batch: `batch` (info) around its apply and settling, with `apply`,
//! `make_visible` and `checkpoint` (debug) inside.
//!
//! A batch holds events of many requests, so its span continues the trace of the first event
//! that carries one and links the others ([`follow_first`]): the projection's write (a search
//! index's `_bulk`, say) shows in that request's trace, and in the others' through the links.

use tracing::field::{display, Empty};

use crate::telemetry::follow_first;
use crate::RecordedEvent;

/// The span of a batch of `events` (not empty) that projection `name` applies: its positions,
/// its size, and the correlation id of the event whose trace it follows (else of its first).
pub(super) fn batch(name: &str, events: &[RecordedEvent]) -> tracing::Span {
    let (Some(first), Some(last)) = (events.first(), events.last()) else {
        return tracing::Span::none();
    };
    let span = tracing::info_span!(
        "batch",
        projection = name,
        from = %first.position,
        to = %last.position,
        events = events.len(),
        correlation_id = Empty,
    );
    let followed = follow_first(&span, events.iter().map(|e| &e.metadata));
    if let Some(correlation) = followed.unwrap_or(&first.metadata).correlation_id {
        span.record("correlation_id", display(correlation));
    }
    span
}
