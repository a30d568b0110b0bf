//! The spans of driving an instance: `step` (info) per input, with `dispatch` (debug) per
//! command it sends, and the command's own span inside that.
//!
//! A step that handles an event continues the event's trace ([`follow`]), so the commands it
//! sends record that trace in their events' `traceparent` and the flow stays one trace. A
//! fired timeout carries no trace context (the store's timeout rows do not keep one): its step
//! stays in the trace of the batch that brought it.

use tracing::field::{display, Empty};

use crate::process::journal::ReceivedKind;
use crate::process::manager::ProcessManager;
use crate::telemetry::follow;
use crate::{Position, StreamId};

/// The span of instance `instance` of `P` taking an input of `kind` that arrived at
/// `position`, correlated by `correlation` (the instance's, else the event's).
pub(super) fn step<P: ProcessManager>(
    instance: &str,
    kind: &ReceivedKind,
    position: Position,
    correlation: Option<uuid::Uuid>,
) -> tracing::Span {
    let span = tracing::info_span!(
        "step",
        process = P::TYPE,
        instance,
        input = input_name(kind),
        %position,
        correlation_id = Empty,
    );
    let correlation = match kind {
        ReceivedKind::Event { metadata, .. } => {
            follow(&span, metadata);
            correlation.or(metadata.correlation_id)
        }
        _ => correlation,
    };
    if let Some(correlation) = correlation {
        span.record("correlation_id", display(correlation));
    }
    span
}

/// The span of sending one command: its kind (the variant name of an externally tagged
/// enum, as serde writes it), its id, and once it returns its outcome (`accepted`,
/// `duplicate`, `forwarded`, `rejected` or `failed`). Where it goes is the dispatcher's
/// choice: the command's own span, inside, names the aggregate and stream.
pub(super) fn dispatch(
    command: &serde_json::Value,
    command_id: impl std::fmt::Display,
    journal: &StreamId,
) -> tracing::Span {
    let span = tracing::debug_span!(
        "dispatch",
        command = Empty,
        %command_id,
        journal = %journal,
        outcome = Empty,
    );
    if !span.is_disabled() {
        span.record("command", command_kind(command));
    }
    span
}

fn input_name(kind: &ReceivedKind) -> &'static str {
    match kind {
        ReceivedKind::Event { .. } => "event",
        ReceivedKind::Timeout { .. } => "timeout",
        ReceivedKind::Accepted { .. } => "accepted",
        ReceivedKind::Rejected { .. } => "rejected",
    }
}

/// `"Variant"` for `"Variant"` or `{"Variant": ...}`; `"?"` for any other shape.
fn command_kind(command: &serde_json::Value) -> &str {
    match command {
        serde_json::Value::String(name) => name,
        serde_json::Value::Object(fields) if fields.len() == 1 => {
            fields.keys().next().map_or("?", String::as_str)
        }
        _ => "?",
    }
}
