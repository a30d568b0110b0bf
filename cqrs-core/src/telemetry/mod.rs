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
//!   `opentelemetry` feature, [`Repository`](crate::Repository) writes the current span's
//!   context there when the command's context carries none, and the projection runner and
//!   process managers continue that trace while they handle the event ([`follow`]).
//! - [`metrics`]: the name of every metric the framework records, and the gauges a service
//!   refreshes from status data before a scrape.

pub mod metrics;
mod trace;

#[doc(inline)]
pub use trace::{
    current_traceparent, follow, follow_first, span_traceparent, MAX_LINKS, TRACEPARENT,
};
