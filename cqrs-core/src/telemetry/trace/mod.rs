//! W3C trace context in event metadata: written by the command pipeline, followed by whoever
//! handles the event.
//!
//! `header.rs` parses and writes the `traceparent` value; `otel.rs` (feature `opentelemetry`)
//! reads and sets a `tracing` span's OpenTelemetry context through `tracing-opentelemetry`.
//! Without the feature every function here is a no-op that allocates nothing.

mod header;
#[cfg(feature = "opentelemetry")]
mod otel;

use crate::Metadata;

#[cfg_attr(not(feature = "opentelemetry"), allow(unused_imports))]
use header::TraceParent;

/// The metadata header that holds the W3C `traceparent` of the request that caused an event
/// (`00-<trace id>-<span id>-<flags>`).
pub const TRACEPARENT: &str = "traceparent";

/// How many other traces a batch span links to at most ([`follow_first`]); OpenTelemetry's
/// SDK keeps 128 links per span by default.
pub const MAX_LINKS: usize = 64;

/// The W3C `traceparent` of the current span, when the `opentelemetry` feature is on and the
/// span belongs to a sampled OpenTelemetry trace; `None` otherwise.
///
/// ```
/// // No subscriber with the OpenTelemetry layer (or no `opentelemetry` feature): no trace.
/// let span = tracing::info_span!("request");
/// let _entered = span.enter();
/// assert_eq!(cqrs_core::telemetry::current_traceparent(), None);
/// ```
pub fn current_traceparent() -> Option<String> {
    span_traceparent(&tracing::Span::current())
}

/// The W3C `traceparent` of `span` (see [`current_traceparent`]), without entering it.
pub fn span_traceparent(span: &tracing::Span) -> Option<String> {
    #[cfg(feature = "opentelemetry")]
    {
        otel::traceparent_of(span).map(|parent| parent.to_string())
    }
    #[cfg(not(feature = "opentelemetry"))]
    {
        let _ = span;
        None
    }
}

/// Makes `span` continue the trace recorded in `metadata` (its [`TRACEPARENT`] header), so
/// that handling an event shows in the trace of the request that caused it. Does nothing when
/// the event carries no trace context, or without the `opentelemetry` feature.
///
/// Call it right after creating the span, before it is entered or has children: an
/// OpenTelemetry span's parent is fixed when it starts. A malformed header is ignored (a
/// debug line says why); the span then stays in the trace it was created in.
pub fn follow(span: &tracing::Span, metadata: &Metadata) {
    if let Some(traceparent) = metadata.header(TRACEPARENT) {
        follow_traceparent(span, traceparent);
    }
}

/// Makes `span` continue the trace a W3C `traceparent` value names: what [`follow`] does
/// with an event's header, for a value from elsewhere (an incoming HTTP request's
/// `traceparent` header, say), without OpenTelemetry's SDK propagator. Same rules: call it
/// before the span is entered; a malformed value is ignored with a debug line; a no-op
/// without the `opentelemetry` feature, or for a disabled span (the value is not parsed).
///
/// ```
/// let request = tracing::info_span!("request");
/// cqrs_core::telemetry::follow_traceparent(
///     &request,
///     "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
/// );
/// let _entered = request.enter();
/// ```
pub fn follow_traceparent(span: &tracing::Span, traceparent: &str) {
    #[cfg(feature = "opentelemetry")]
    if !span.is_disabled() {
        if let Some(parent) = parse(traceparent) {
            otel::set_parent(span, parent);
        }
    }
    #[cfg(not(feature = "opentelemetry"))]
    let _ = (span, traceparent);
}

/// [`follow`] for a span that handles many events at once (a projection's batch): `span`
/// continues the trace of the first event that carries one, and links to the traces of the
/// others (each trace once, at most [`MAX_LINKS`]). When none carries one, `span` starts a
/// trace of its own rather than join the one it was created in (a runner's span, which lasts
/// as long as the runner). Does nothing without the `opentelemetry` feature (`events` is not
/// even iterated). Returns the metadata it followed, if any.
pub fn follow_first<'a>(
    span: &tracing::Span,
    events: impl IntoIterator<Item = &'a Metadata>,
) -> Option<&'a Metadata> {
    #[cfg(feature = "opentelemetry")]
    {
        if span.is_disabled() {
            return None;
        }
        let mut followed: Option<(&Metadata, TraceParent)> = None;
        let mut linked: Vec<[u8; 16]> = Vec::new();
        for metadata in events {
            let Some(parent) = metadata.header(TRACEPARENT).and_then(parse) else {
                continue;
            };
            match &followed {
                None => {
                    otel::set_parent(span, parent);
                    followed = Some((metadata, parent));
                }
                Some((_, first)) => {
                    if parent.trace_id == first.trace_id || linked.contains(&parent.trace_id) {
                        continue;
                    }
                    otel::add_link(span, parent);
                    linked.push(parent.trace_id);
                    if linked.len() >= MAX_LINKS {
                        break;
                    }
                }
            }
        }
        if followed.is_none() {
            otel::set_root(span);
        }
        followed.map(|(metadata, _)| metadata)
    }
    #[cfg(not(feature = "opentelemetry"))]
    {
        let _ = (span, events);
        None
    }
}

/// A header value as a trace context; a malformed one is logged and ignored.
#[cfg(feature = "opentelemetry")]
fn parse(value: &str) -> Option<TraceParent> {
    match TraceParent::parse(value) {
        Ok(parent) => Some(parent),
        Err(error) => {
            // The value comes from outside: only its start is logged.
            let end = (0..=value.len().min(64))
                .rev()
                .find(|&i| value.is_char_boundary(i))
                .unwrap_or(0);
            let start = &value[..end];
            tracing::debug!(%error, value = start, "ignoring a malformed traceparent header");
            None
        }
    }
}
