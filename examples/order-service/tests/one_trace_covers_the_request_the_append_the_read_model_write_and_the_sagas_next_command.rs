//! One trace id covers a request, the append it caused, the read model's write of that event
//! and the saga's next command, on real PostgreSQL and search node, shown with OpenTelemetry's
//! in-memory exporter. (The same flow through a real Jaeger is in
//! `a_real_jaeger_returns_the_whole_trace_of_a_request.rs`.)
//!
//! This binary holds this one test: it installs the process's global subscriber, which every
//! task of the service's runtime must see.

mod support;

use std::collections::BTreeSet;

use cqrs_core::telemetry::TRACEPARENT;
use cqrs_core::{ReadStream, StreamId, Version};
use opentelemetry::trace::{TraceId, TracerProvider as _};
use opentelemetry::Value;
use opentelemetry_sdk::trace::{InMemorySpanExporter, SdkTracerProvider, SpanData};
use reqwest::StatusCode;
use serde_json::json;
use support::{client, config, eventually, send, TestService};
use tracing_subscriber::layer::SubscriberExt;

const TRACE_ID: &str = "0af7651916cd43dd8448eb211c80319c";

/// The spans of the trace, as (name, aggregate field if any).
fn in_trace(exporter: &InMemorySpanExporter, trace: TraceId) -> BTreeSet<(String, String)> {
    let spans: Vec<SpanData> = exporter.get_finished_spans().unwrap_or_default();
    spans
        .iter()
        .filter(|span| span.span_context.trace_id() == trace)
        .map(|span| {
            let aggregate = span
                .attributes
                .iter()
                .find(|kv| kv.key.as_str() == "aggregate")
                .map(|kv| match &kv.value {
                    Value::String(s) => s.as_str().to_owned(),
                    other => other.to_string(),
                })
                .unwrap_or_default();
            (span.name.to_string(), aggregate)
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_trace_covers_the_request_the_append_the_read_model_write_and_the_sagas_next_command() {
    let exporter = InMemorySpanExporter::default();
    let provider = SdkTracerProvider::builder()
        .with_simple_exporter(exporter.clone())
        .build();
    let subscriber = tracing_subscriber::registry()
        .with(tracing_opentelemetry::layer().with_tracer(provider.tracer("order-service-test")));
    tracing::subscriber::set_global_default(subscriber).expect("the only subscriber");

    let (config, names) = config();
    let service = TestService::start(config).await;
    let (status, _, _) = send(
        client()
            .post(service.url("/orders/7"))
            .header(TRACEPARENT, format!("00-{TRACE_ID}-b7ad6b7169203331-01"))
            .json(&json!({
                "customer": "alice",
                "lines": [{ "sku": "widget", "quantity": 1, "unit_price": 250 }]
            })),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);

    let trace = TraceId::from_hex(TRACE_ID).expect("a trace id");
    let wanted: BTreeSet<(String, String)> = [
        ("request", ""),
        ("command", "order"),
        ("pg_append", ""),
        ("batch", ""),
        ("es_projector.bulk", ""),
        ("step", ""),
        ("dispatch", ""),
        ("command", "payment"),
    ]
    .into_iter()
    .map(|(name, aggregate)| (name.to_owned(), aggregate.to_owned()))
    .collect();
    eventually("the whole flow in the request's trace", || {
        let complete = wanted.is_subset(&in_trace(&exporter, trace));
        async move { complete.then_some(()) }
    })
    .await;

    // The event carries the trace: that is how the read side and the saga found it.
    let stream = StreamId::new("order-7").expect("a stream id");
    let events = service
        .store
        .read_stream(&stream, Version::ZERO.next(), 10)
        .await
        .expect("the order's events");
    let placed = events.first().expect("OrderPlaced");
    let traceparent = placed
        .metadata
        .headers
        .get(TRACEPARENT)
        .expect("a traceparent header");
    assert!(
        traceparent.starts_with(&format!("00-{TRACE_ID}-")),
        "{traceparent}"
    );

    service.stop().await;
    let _ = provider.shutdown();
    names.clean_up().await;
}
