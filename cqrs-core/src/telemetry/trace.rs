//! W3C trace context in event metadata.

use crate::Metadata;

/// The metadata header that holds the W3C `traceparent` of the request that caused an event
/// (`00-<trace id>-<span id>-<flags>`).
pub const TRACEPARENT: &str = "traceparent";

/// The W3C `traceparent` of the current span, when the `opentelemetry` feature is on and the
/// span belongs to a sampled OpenTelemetry trace; `None` otherwise.
pub fn current_traceparent() -> Option<String> {
    None
}

/// Makes `span` continue the trace recorded in `metadata` (its [`TRACEPARENT`] header), so
/// that handling an event shows in the trace of the request that caused it. Does nothing when
/// the event carries no trace context, or without the `opentelemetry` feature.
pub fn follow(span: &tracing::Span, metadata: &Metadata) {
    let _ = (span, metadata);
}
