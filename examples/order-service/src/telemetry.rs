//! Logs and traces: [`init`] installs the process's `tracing` subscriber (logs, and OTLP
//! export when `OTEL_EXPORTER_OTLP_ENDPOINT` is set); [`request_span`] opens each request's
//! span, continuing the caller's W3C trace.
//!
//! The commands a request sends run inside its span, so the framework (with cqrs-core's
//! `opentelemetry` feature) writes the request's trace context into the events' metadata, and
//! the projections and the saga that handle them continue the same trace.

use axum::http::HeaderMap;
use cqrs_core::telemetry::{follow_traceparent, TRACEPARENT};
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::SdkTracerProvider;
use opentelemetry_sdk::Resource;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::Layer as _;
use uuid::Uuid;

use crate::Config;

/// The variable whose presence turns OTLP export on (the exporter reads it too, with the other
/// `OTEL_EXPORTER_OTLP_*` variables).
pub const OTLP_ENDPOINT: &str = "OTEL_EXPORTER_OTLP_ENDPOINT";

/// The service name traces carry unless `OTEL_SERVICE_NAME` says otherwise.
pub const SERVICE_NAME: &str = "order-service";

/// The spans exported when `ORDER_SERVICE_TRACE_FILTER` is unset: the service's at `info`, and
/// the framework's at `debug` too, so a trace shows the load, the append (with its group
/// commit), the read model's `_bulk` write and each dispatch inside the command, batch and step
/// spans.
pub const DEFAULT_TRACE_FILTER: &str =
    "info,cqrs_core=debug,cqrs_postgres=debug,cqrs_elastic=debug";

/// The variable that filters the exported spans (an `EnvFilter` directive, like `RUST_LOG`).
pub const TRACE_FILTER: &str = "ORDER_SERVICE_TRACE_FILTER";

/// The filter used when `RUST_LOG` is unset.
pub const DEFAULT_FILTER: &str = "info";

/// Why [`init`] failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TelemetryError {
    /// `RUST_LOG` is not a valid filter.
    #[error("RUST_LOG is not a valid filter")]
    Filter(#[source] tracing_subscriber::filter::ParseError),
    /// `ORDER_SERVICE_TRACE_FILTER` is not a valid filter.
    #[error("ORDER_SERVICE_TRACE_FILTER is not a valid filter")]
    TraceFilter(#[source] tracing_subscriber::filter::ParseError),
    /// The OTLP exporter could not be built.
    #[error("could not build the otlp exporter")]
    Exporter(#[source] opentelemetry_otlp::ExporterBuildError),
    /// A subscriber was installed already.
    #[error("a tracing subscriber is installed already")]
    AlreadyInstalled(#[source] tracing_subscriber::util::TryInitError),
}

/// Keeps telemetry running; dropping it flushes the spans not exported yet and ends the
/// export.
#[derive(Debug)]
#[must_use = "dropping the guard flushes and ends the export"]
pub struct TelemetryGuard {
    provider: Option<SdkTracerProvider>,
}

impl TelemetryGuard {
    /// Whether spans are exported over OTLP.
    pub fn exports(&self) -> bool {
        self.provider.is_some()
    }
}

impl Drop for TelemetryGuard {
    fn drop(&mut self) {
        if let Some(provider) = self.provider.take() {
            if let Err(error) = provider.shutdown() {
                eprintln!("order-service: flushing traces failed: {error}");
            }
        }
    }
}

/// Installs the process's subscriber: log lines to stderr, filtered by `RUST_LOG` (default
/// `info`; it filters the log lines only); each line of a request carries its span's fields,
/// the correlation id among them.
/// When `OTEL_EXPORTER_OTLP_ENDPOINT` is set (`http://127.0.0.1:4318`), spans are exported
/// there too (those [`TRACE_FILTER`] lets through, by default [`DEFAULT_TRACE_FILTER`]), over
/// OTLP http/protobuf in batches, every span sampled, as service
/// `order-service` (or `OTEL_SERVICE_NAME`), and the W3C trace-context propagator is
/// installed. The guard flushes the export when dropped: keep it until the end of `main`.
///
/// `config` is not read yet: the exporter takes its settings from the `OTEL_*` variables.
///
/// # Errors
///
/// [`TelemetryError`] for a bad `RUST_LOG`, an exporter that cannot be built, or when a
/// subscriber is installed already.
pub fn init(config: &Config) -> Result<TelemetryGuard, TelemetryError> {
    let _ = config;
    let filter = match std::env::var("RUST_LOG") {
        Ok(filter) if !filter.trim().is_empty() => {
            EnvFilter::try_new(filter).map_err(TelemetryError::Filter)?
        }
        _ => EnvFilter::new(DEFAULT_FILTER),
    };
    let traced = match std::env::var(TRACE_FILTER) {
        Ok(filter) if !filter.trim().is_empty() => {
            EnvFilter::try_new(filter).map_err(TelemetryError::TraceFilter)?
        }
        _ => EnvFilter::new(DEFAULT_TRACE_FILTER),
    };
    let exporting = std::env::var(OTLP_ENDPOINT).is_ok_and(|v| !v.trim().is_empty());
    let provider = exporting.then(otlp_provider).transpose()?;
    let otel = (provider.as_ref())
        .map(|p| tracing_opentelemetry::layer().with_tracer(p.tracer(SERVICE_NAME)));
    // Each layer has its own filter: `RUST_LOG=warn` quiets the logs, not the traces.
    tracing_subscriber::registry()
        .with(
            tracing_subscriber::fmt::layer()
                .with_writer(std::io::stderr)
                .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
                .with_filter(filter),
        )
        .with(otel.map(|layer| layer.with_filter(traced)))
        .try_init()
        .map_err(TelemetryError::AlreadyInstalled)?;
    Ok(TelemetryGuard { provider })
}

/// A tracer provider exporting to the OTLP endpoint of the environment.
fn otlp_provider() -> Result<SdkTracerProvider, TelemetryError> {
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .build()
        .map_err(TelemetryError::Exporter)?;
    let named = std::env::var("OTEL_SERVICE_NAME").is_ok_and(|v| !v.trim().is_empty());
    let resource = if named {
        Resource::builder().build()
    } else {
        Resource::builder().with_service_name(SERVICE_NAME).build()
    };
    opentelemetry::global::set_text_map_propagator(TraceContextPropagator::new());
    Ok(SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_resource(resource)
        .build())
}

/// The span a request runs in: `request`, with its method, route template and correlation id
/// (and, once answered, `http.response.status_code`; a server error, 5xx, marks it as an error
/// in the trace, a client's 4xx does not), continuing the trace of the request's
/// `traceparent` header, if any (through [`cqrs_core::telemetry::follow_traceparent`], which
/// ignores a malformed one).
pub fn request_span(
    headers: &HeaderMap,
    method: &str,
    route: &str,
    correlation: Uuid,
) -> tracing::Span {
    let span = tracing::info_span!(
        "request",
        method = %method,
        route = %route,
        correlation_id = %correlation,
        http.response.status_code = tracing::field::Empty,
        otel.status_code = tracing::field::Empty,
    );
    if let Some(parent) = headers.get(TRACEPARENT).and_then(|v| v.to_str().ok()) {
        follow_traceparent(&span, parent);
    }
    span
}
