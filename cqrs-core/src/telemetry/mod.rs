//! Observability hooks: the trace context that events carry from the request that caused them
//! to every projection and process manager that handles them, and the metrics the framework
//! records.
//!
//! The framework only *records*: spans go to whatever `tracing` subscriber the service
//! installs (with `tracing-opentelemetry` for OpenTelemetry export), and metrics go to whatever
//! recorder of the [`metrics`](https://docs.rs/metrics) facade it installs (for instance
//! `metrics-exporter-prometheus`). Nothing is exported unless the service configures it.
//!
//! - [`TRACEPARENT`]: the metadata header holding an event's W3C trace context. With the
//!   `opentelemetry` feature, [`Repository`](crate::Repository) writes its `command` span's
//!   context there (a header the command's context carries is continued by that span), and the
//!   projection runner and process managers continue that trace while they handle the event
//!   ([`follow`]).
//! - [`metrics`]: the name of every metric the framework records, and the gauges a service
//!   refreshes from status data before a scrape.
//!
//! # Spans
//!
//! Outer spans are at info level, inner ones at debug; outcome fields are recorded when the
//! span's work ends. The correlation id is a field of `command`, `batch` and `step`, so every
//! log line inside carries it (a `fmt` layer prints span fields).
//!
//! | span | fields | inside |
//! |---|---|---|
//! | `command` (info) | aggregate, stream, command_id, correlation_id, attempts, outcome (`accepted`, `unchanged`, `duplicate`, `rejected`, `conflict`, `error`: the labels of the `cqrs_commands_total` metric) | `load` (stream, from_snapshot, events), `handle`, `append` (events, version), then the store's: `pg_append` (stream, events, group: the size of the group commit it rode in) |
//! | `batch` (info) | projection, from, to, events, correlation_id | `apply` (events, attempt), `make_visible`, `checkpoint` (position); `es_projector.apply` / `.mget` / `.bulk` / `.refresh` for a search read model |
//! | `step` (info) | process, instance, input (`event`, `timeout`, `accepted`, `rejected`), position, correlation_id | `dispatch` (command, command_id, journal, outcome: `accepted`, `duplicate`, `forwarded`, `rejected`, `failed`), and the command's own `command` span |
//!
//! # How a trace crosses events (feature `opentelemetry`)
//!
//! - **Writing.** `Repository::execute_with` takes the `command` span's OpenTelemetry context
//!   (a child of the caller's span: the HTTP request's, say) once per command and writes it
//!   as [`TRACEPARENT`] into each new event's headers. A [`TRACEPARENT`] header already in
//!   the command's context wins over the caller's span: the `command` span continues the
//!   trace it names (and the events name the `command` span); without tracing, the header is
//!   carried as it is. No sampled trace, no header: nothing is allocated per event.
//! - **A process step** [`follow`]s the event it handles: its span's parent is the span that
//!   wrote the event, so the step and the commands it dispatches (whose events then carry the
//!   same trace) show in the request's trace. A fired timeout carries no trace context (the
//!   stores' timeout rows keep none): its step stays in the trace of the batch that brought it.
//! - **A projection batch** holds events of many requests. Its span continues the trace of the
//!   first event that carries one and *links* to the traces of the others (each trace once, at
//!   most [`MAX_LINKS`]): the read-model write (inside the batch span) shows in the first
//!   request's trace, and is one link away from the others'. [`follow_first`] does this. A
//!   batch of events without trace context starts a trace of its own (not one under the
//!   runner's `projection` span, which ends only when the runner stops).
//! - A malformed header is ignored with a debug line, never an error: the span stays in the
//!   trace it was created in.
//!
//! The service installs the subscriber: a `tracing_subscriber::Registry` with
//! `tracing_opentelemetry::layer().with_tracer(...)` (and its exporter, OTLP say), and starts
//! each request's span from the incoming `traceparent` with [`follow_traceparent`] (or
//! `OpenTelemetrySpanExt::set_parent` and the SDK's propagator). The `traceparent` is parsed and written by this crate
//! (W3C Trace Context, version 00), so the feature needs only the `opentelemetry` API crate,
//! not the SDK.

pub mod metrics;
mod trace;

#[doc(inline)]
pub use trace::{
    current_traceparent, follow, follow_first, follow_traceparent, span_traceparent, MAX_LINKS,
    TRACEPARENT,
};
