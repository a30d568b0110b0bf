//! The `opentelemetry` feature's side of the trace hooks: a `tracing` span's OpenTelemetry
//! context (through `tracing-opentelemetry`'s layer) to and from a [`TraceParent`].

use opentelemetry::trace::{SpanContext, SpanId, TraceContextExt, TraceFlags, TraceId, TraceState};
use opentelemetry::Context;
use tracing_opentelemetry::OpenTelemetrySpanExt;

use super::header::TraceParent;

/// The sampled, valid OpenTelemetry span context of `span`, as a `traceparent`.
pub(super) fn traceparent_of(span: &tracing::Span) -> Option<TraceParent> {
    if span.is_disabled() {
        return None;
    }
    let context = span.context();
    let span_ref = context.span();
    let span_context = span_ref.span_context();
    if !span_context.is_valid() || !span_context.is_sampled() {
        return None;
    }
    Some(TraceParent {
        trace_id: span_context.trace_id().to_bytes(),
        span_id: span_context.span_id().to_bytes(),
        flags: span_context.trace_flags().to_u8(),
    })
}

/// The remote span context a `traceparent` names.
fn remote(parent: TraceParent) -> SpanContext {
    SpanContext::new(
        TraceId::from_bytes(parent.trace_id),
        SpanId::from_bytes(parent.span_id),
        TraceFlags::new(parent.flags),
        true,
        TraceState::default(),
    )
}

/// Makes `parent` the OpenTelemetry parent of `span` (which must not have started: not
/// entered, no child created yet). A span without the layer, or already started, is left as
/// it is, with a debug line.
pub(super) fn set_parent(span: &tracing::Span, parent: TraceParent) {
    let context = Context::new().with_remote_span_context(remote(parent));
    if let Err(error) = span.set_parent(context) {
        tracing::trace!(%error, "trace context not followed");
    }
}

/// Makes `span` the root of a trace of its own, whatever span it was created in.
pub(super) fn set_root(span: &tracing::Span) {
    if let Err(error) = span.set_parent(Context::new()) {
        tracing::trace!(%error, "span not made a root");
    }
}

/// Adds a link from `span` to the span `linked` names.
pub(super) fn add_link(span: &tracing::Span, linked: TraceParent) {
    span.add_link(remote(linked));
}
