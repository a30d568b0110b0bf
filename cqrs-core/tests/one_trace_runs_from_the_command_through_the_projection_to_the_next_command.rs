//! One trace from a request to what it set off (feature `opentelemetry`): two requests each
//! place an order; a projection and a process manager, in runner tasks started outside the
//! requests, take both orders in one batch. Each batch follows the first request's trace and
//! links the second's; each process step and the commands it sends stay in their own
//! request's trace, and so does every event's `traceparent`, which names the command's span.
//! An explicit `traceparent` header wins (the command's span continues it; without tracing
//! it is carried as it is); without a sampled trace none is written; a malformed one is ignored; a batch of
//! untraced events is a trace of its own; a request span continues an incoming `traceparent`.
//!
//! (Over 400 lines: its eight cases share the order aggregate, the read model and the
//! exporting subscriber defined here, which no other test needs.)

mod process_support;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use cqrs_core::process::{ProcessManagerProjection, ProcessOptions};
use cqrs_core::projection::{Projection, ProjectionError, ProjectionRunner};
use cqrs_core::telemetry::{follow, follow_traceparent, TRACEPARENT};
use cqrs_core::testing::{Tally, TallyCommand, TestClock};
use cqrs_core::{
    Aggregate, AppendEvents, CommandContext, DomainEvent, EventFilter, EventId, ExpectedVersion,
    InMemoryEventStore, Metadata, NewEvent, RecordedEvent, Repository, SharedClock, StreamId,
};
use opentelemetry::trace::{SpanId, TraceContextExt, TraceId, TracerProvider as _};
use opentelemetry_sdk::trace::{InMemorySpanExporter, Sampler, SdkTracerProvider, SpanData};
use process_support::{stream, Checkout, Shop};
use serde::{Deserialize, Serialize};
use tracing::subscriber::DefaultGuard;
use tracing_opentelemetry::OpenTelemetrySpanExt;
use tracing_subscriber::layer::SubscriberExt;

/// An order: placing it records `Placed`, which the checkout process (process_support)
/// starts on.
#[derive(Debug, Default, Serialize, Deserialize)]
struct Order {
    placed: bool,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, DomainEvent)]
enum OrderEvent {
    Placed { amount: u64, sku: u64 },
}

#[derive(Debug, thiserror::Error)]
#[error("already placed")]
struct AlreadyPlaced;

impl Aggregate for Order {
    const TYPE: &'static str = "order";
    type Command = (u64, u64);
    type Event = OrderEvent;
    type Error = AlreadyPlaced;
    type Services = ();

    fn apply(&mut self, _: &OrderEvent) {
        self.placed = true;
    }

    async fn handle(
        &self,
        &(amount, sku): &(u64, u64),
        _: &(),
    ) -> Result<Vec<OrderEvent>, AlreadyPlaced> {
        if self.placed {
            return Err(AlreadyPlaced);
        }
        Ok(vec![OrderEvent::Placed { amount, sku }])
    }
}

/// A read model of orders: its write shows as a span of its own, as a search index's bulk
/// request does.
#[derive(Clone, Default)]
struct Orders(Arc<Mutex<Vec<RecordedEvent>>>);

#[async_trait]
impl Projection for Orders {
    fn name(&self) -> &str {
        "orders"
    }

    fn filter(&self) -> EventFilter {
        EventFilter::all().category("order")
    }

    async fn apply(&self, events: &[RecordedEvent]) -> Result<(), ProjectionError> {
        let _write = tracing::debug_span!("read model write").entered();
        self.0.lock().expect("orders").extend_from_slice(events);
        Ok(())
    }
}

/// A subscriber with the OpenTelemetry layer for this thread (the tests run on a
/// current-thread runtime, so every task sees it), exporting into memory.
fn traced(sampler: Sampler) -> (InMemorySpanExporter, SdkTracerProvider, DefaultGuard) {
    let exporter = InMemorySpanExporter::default();
    let provider = SdkTracerProvider::builder()
        .with_sampler(sampler)
        .with_simple_exporter(exporter.clone())
        .build();
    let layer = tracing_opentelemetry::layer().with_tracer(provider.tracer("cqrs-core-tests"));
    let guard = tracing::subscriber::set_default(tracing_subscriber::registry().with(layer));
    (exporter, provider, guard)
}

fn trace_id_of(span: &tracing::Span) -> TraceId {
    span.context().span().span_context().trace_id()
}

/// The trace id a `traceparent` header names.
fn header_trace(metadata: &Metadata) -> Option<String> {
    metadata
        .header(TRACEPARENT)
        .map(|value| value.split('-').nth(1).unwrap_or_default().to_owned())
}

/// The spans the framework opens for the requests' commands, the batches that bring their
/// events and the process steps they start: each of them belongs to one request's trace.
const CAUSED: &[&str] = &[
    "command",
    "load",
    "handle",
    "append",
    "batch",
    "apply",
    "read model write",
    "step",
    "dispatch",
];

/// Settling a batch: inside the batch's span, so in the first request's trace too. (The
/// runner also saves progress past events it filters out, the process's commands here, in
/// spans of its own.)
const SETTLED: &[&str] = &["make_visible", "checkpoint"];

#[tokio::test]
async fn every_span_of_the_flow_and_every_event_carry_the_requests_trace() {
    let (exporter, provider, _guard) = traced(Sampler::AlwaysOn);
    let store = InMemoryEventStore::new();
    let orders_repository = Repository::<Order, _>::new(store.clone());
    // Two requests, each placing an order; both orders reach the runners in one batch.
    let mut requests = Vec::new();
    for (order, sku) in [("7", 2), ("8", 3)] {
        let request = tracing::info_span!("request", order);
        let trace_id = trace_id_of(&request);
        assert_ne!(trace_id, TraceId::INVALID);
        let placed = orders_repository
            .execute(order, &(30, sku))
            .instrument_in(&request)
            .await
            .expect("placed");
        requests.push((order, sku, trace_id, placed.position.expect("an event")));
    }
    let (first, second) = (requests[0].2, requests[1].2);
    assert_ne!(first, second);
    let head = requests[1].3;

    // The runners start outside the requests: only the events can bring their traces.
    let orders = Orders::default();
    let projection = ProjectionRunner::for_store(orders.clone(), &store).spawn();
    let options = ProcessOptions::default().clock(SharedClock::new(TestClock::new()));
    let shop = Shop::new(&store);
    let sent = shop.traceparents.clone();
    let checkout = ProcessManagerProjection::<Checkout, _, _>::new(store.clone(), shop, options)
        .runner()
        .spawn();
    projection
        .wait_for(head, Duration::from_secs(10))
        .await
        .expect("the projection applies the orders");
    // The checkout's checkpoint passes an order only once its chain has run.
    checkout
        .wait_for(head, Duration::from_secs(10))
        .await
        .expect("the checkout runs");
    projection.shutdown().await;
    checkout.shutdown().await;
    provider.force_flush().expect("flushed");
    assert_eq!(orders.0.lock().expect("orders").len(), 2);

    for &(order, sku, trace_id, _) in &requests {
        let hex = trace_id.to_string();
        let placed = stream(&store, &format!("order-{order}")).await;
        assert_eq!(
            header_trace(&placed[0].metadata).as_deref(),
            Some(hex.as_str())
        );
        for tally in [format!("pay-{order}"), format!("stock-{sku}")] {
            let events = stream(&store, &format!("tally-{tally}")).await;
            assert_eq!(events.len(), 1, "{tally}");
            assert_eq!(
                header_trace(&events[0].metadata).as_deref(),
                Some(hex.as_str()),
                "the process's command to {tally} records the trace of order {order}'s request"
            );
        }
    }

    // The context each command is dispatched with carries its step's trace, for a dispatcher
    // that sends the command to another service (which has no span of ours to read).
    let sent = sent.lock().expect("traceparents").clone();
    assert_eq!(sent.len(), 4, "{sent:?}");
    for traceparent in &sent {
        let trace = traceparent.as_deref().and_then(|t| t.split('-').nth(1));
        assert!(
            trace == Some(first.to_string().as_str()) || trace == Some(second.to_string().as_str()),
            "{traceparent:?} is outside the requests' traces"
        );
    }

    let spans: Vec<SpanData> = exporter.get_finished_spans().expect("spans");
    for name in SETTLED {
        assert!(
            spans
                .iter()
                .any(|s| s.name == *name && s.span_context.trace_id() == first),
            "no {name} span in the first request's trace"
        );
    }
    for name in CAUSED {
        let named: Vec<&SpanData> = spans.iter().filter(|s| s.name == *name).collect();
        assert!(
            !named.is_empty(),
            "no {name} span among {:?}",
            names(&spans)
        );
        for span in named {
            let trace = span.span_context.trace_id();
            assert!(
                trace == first || trace == second,
                "{name} span {:?} is outside the requests' traces",
                span.attributes
            );
        }
    }
    // Each batch (one per runner) follows the first order's trace and links the second's.
    let batches: Vec<&SpanData> = spans.iter().filter(|s| s.name == "batch").collect();
    assert_eq!(batches.len(), 2, "{batches:?}");
    for batch in batches {
        assert_eq!(batch.span_context.trace_id(), first);
        let linked: Vec<TraceId> = batch
            .links
            .iter()
            .map(|link| link.span_context.trace_id())
            .collect();
        assert_eq!(linked, vec![second]);
    }
    // Each step continues its own order's trace, though both ran inside the first's batch.
    for &(order, _, trace_id, _) in &requests {
        let step = spans
            .iter()
            .find(|s| s.name == "step" && attribute(s, "instance") == Some(order.to_owned()))
            .unwrap_or_else(|| panic!("no step of instance {order}"));
        assert_eq!(
            step.span_context.trace_id(),
            trace_id,
            "order {order}'s step"
        );
    }
    // The requests' commands and the process's two per order.
    assert_eq!(spans.iter().filter(|s| s.name == "command").count(), 6);
    // Every event names the span that wrote it as its parent: its command's, not the
    // process's `dispatch` span around it.
    let commands: Vec<String> = spans
        .iter()
        .filter(|s| s.name == "command")
        .map(|s| s.span_context.span_id().to_string())
        .collect();
    for &(order, sku, _, _) in &requests {
        for id in [
            format!("order-{order}"),
            format!("tally-pay-{order}"),
            format!("tally-stock-{sku}"),
        ] {
            for event in stream(&store, &id).await {
                let parent = header_parent(&event.metadata);
                assert!(
                    parent.as_ref().is_some_and(|p| commands.contains(p)),
                    "{id}'s event names {parent:?}, not a command span"
                );
            }
        }
    }
}

/// The parent span id a `traceparent` header names.
fn header_parent(metadata: &Metadata) -> Option<String> {
    metadata
        .header(TRACEPARENT)
        .and_then(|value| value.split('-').nth(2))
        .map(str::to_owned)
}

/// A span attribute's value as a string.
fn attribute(span: &SpanData, key: &str) -> Option<String> {
    span.attributes
        .iter()
        .find(|kv| kv.key.as_str() == key)
        .map(|kv| kv.value.as_str().into_owned())
}

fn names(spans: &[SpanData]) -> Vec<&str> {
    spans.iter().map(|s| s.name.as_ref()).collect()
}

#[tokio::test]
async fn an_explicit_traceparent_header_wins_over_the_current_span() {
    let (exporter, provider, _guard) = traced(Sampler::AlwaysOn);
    let store = InMemoryEventStore::new();
    let explicit = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
    let request = tracing::info_span!("request");
    Repository::<Tally, _>::new(store.clone())
        .execute_with(
            "1",
            &TallyCommand::Add(vec![1, 2]),
            CommandContext::new().header(TRACEPARENT, explicit),
        )
        .instrument_in(&request)
        .await
        .expect("added");
    provider.force_flush().expect("flushed");
    // The command's span continues the explicit trace, not the request's, and the events
    // name that span as their parent.
    let spans = exporter.get_finished_spans().expect("spans");
    let command = spans
        .iter()
        .find(|s| s.name == "command")
        .expect("the command's span");
    assert_eq!(
        command.span_context.trace_id().to_string(),
        "0af7651916cd43dd8448eb211c80319c"
    );
    assert_eq!(command.parent_span_id.to_string(), "b7ad6b7169203331");
    let written = format!(
        "00-0af7651916cd43dd8448eb211c80319c-{}-01",
        command.span_context.span_id()
    );
    for event in stream(&store, "tally-1").await {
        assert_eq!(event.metadata.header(TRACEPARENT), Some(written.as_str()));
    }
}

#[tokio::test]
async fn without_tracing_an_explicit_traceparent_header_is_carried_as_it_is() {
    let store = InMemoryEventStore::new();
    let explicit = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
    Repository::<Tally, _>::new(store.clone())
        .execute_with(
            "1",
            &TallyCommand::Add(vec![1]),
            CommandContext::new().header(TRACEPARENT, explicit),
        )
        .await
        .expect("added");
    for event in stream(&store, "tally-1").await {
        assert_eq!(event.metadata.header(TRACEPARENT), Some(explicit));
    }
}

#[tokio::test]
async fn without_a_sampled_trace_no_header_is_written() {
    let store = InMemoryEventStore::new();
    let tallies = Repository::<Tally, _>::new(store.clone());
    // No subscriber at all.
    tallies
        .execute("untraced", &TallyCommand::Add(vec![1]))
        .await
        .expect("added");
    // A subscriber whose sampler drops every trace.
    let (_exporter, _provider, _guard) = traced(Sampler::AlwaysOff);
    tallies
        .execute("unsampled", &TallyCommand::Add(vec![1]))
        .instrument_in(&tracing::info_span!("request"))
        .await
        .expect("added");
    for id in ["untraced", "unsampled"] {
        let events = stream(&store, &format!("tally-{id}")).await;
        assert_eq!(events.len(), 1);
        assert_eq!(events[0].metadata.header(TRACEPARENT), None, "{id}");
        assert!(events[0].metadata.headers.is_empty(), "{id}");
    }
}

#[tokio::test]
async fn a_span_following_a_malformed_or_missing_header_stays_in_its_own_trace() {
    let (_exporter, _provider, _guard) = traced(Sampler::AlwaysOn);
    let valid = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
    let parent = tracing::info_span!("parent");
    let own = trace_id_of(&parent);
    // Long and multi-byte: the debug line cuts it on a character boundary.
    let long = "é".repeat(100);
    for header in [
        None,
        Some("garbage"),
        Some(&valid.replace("0af7", "0AF7")[..]),
        Some(long.as_str()),
    ] {
        let mut metadata = Metadata::new(EventId::new());
        if let Some(header) = header {
            metadata = metadata.with_header(TRACEPARENT, header);
        }
        let child = tracing::info_span!(parent: &parent, "handler");
        follow(&child, &metadata);
        assert_eq!(trace_id_of(&child), own, "{header:?}");
    }
    let child = tracing::info_span!(parent: &parent, "handler");
    follow(
        &child,
        &Metadata::new(EventId::new()).with_header(TRACEPARENT, valid),
    );
    assert_eq!(
        format!("{}", trace_id_of(&child)),
        "0af7651916cd43dd8448eb211c80319c"
    );
}

#[tokio::test]
async fn a_request_span_continues_an_incoming_traceparent_and_its_events_carry_it() {
    let (_exporter, _provider, _guard) = traced(Sampler::AlwaysOn);
    let store = InMemoryEventStore::new();
    let incoming = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
    let request = tracing::info_span!("request");
    follow_traceparent(&request, incoming);
    Repository::<Tally, _>::new(store.clone())
        .execute("1", &TallyCommand::Add(vec![1]))
        .instrument_in(&request)
        .await
        .expect("added");
    let events = stream(&store, "tally-1").await;
    let written = events[0]
        .metadata
        .header(TRACEPARENT)
        .expect("a traceparent");
    // Same trace, a span of ours (the command's) as the parent, sampled.
    assert!(
        written.starts_with("00-0af7651916cd43dd8448eb211c80319c-"),
        "{written}"
    );
    assert!(written.ends_with("-01"), "{written}");
    assert_ne!(written, incoming);
}

#[tokio::test]
async fn a_batch_of_untraced_events_starts_a_trace_of_its_own() {
    let (exporter, provider, _guard) = traced(Sampler::AlwaysOn);
    let store = InMemoryEventStore::new();
    let event = NewEvent::new("Placed", 1, serde_json::json!({ "amount": 1, "sku": 1 }));
    let stream_id = StreamId::new("order-untraced").expect("id");
    let position = store
        .append(&stream_id, ExpectedVersion::NoStream, vec![event])
        .await
        .expect("appended")
        .position;
    let projection = ProjectionRunner::for_store(Orders::default(), &store).spawn();
    projection
        .wait_for(position, Duration::from_secs(10))
        .await
        .expect("applied");
    projection.shutdown().await;
    provider.force_flush().expect("flushed");
    let spans = exporter.get_finished_spans().expect("spans");
    let batch = spans
        .iter()
        .find(|s| s.name == "batch")
        .expect("a batch span");
    let runner = spans
        .iter()
        .find(|s| s.name == "projection")
        .expect("the runner's span");
    assert_eq!(batch.parent_span_id, SpanId::INVALID, "the batch is a root");
    assert_ne!(
        batch.span_context.trace_id(),
        runner.span_context.trace_id()
    );
    let write = spans
        .iter()
        .find(|s| s.name == "read model write")
        .expect("the write");
    assert_eq!(write.span_context.trace_id(), batch.span_context.trace_id());
}

#[tokio::test]
async fn progress_saved_past_filtered_out_events_stays_out_of_the_runner_s_trace() {
    let (exporter, provider, _guard) = traced(Sampler::AlwaysOn);
    let store = InMemoryEventStore::new();
    let projection = ProjectionRunner::for_store(Orders::default(), &store).spawn();
    // Events the projection filters out, one append at a time: each moves its checkpoint on.
    for n in 0..3 {
        let stream_id = StreamId::new(format!("cart-{n}")).expect("id");
        let event = NewEvent::new("Filled", 1, serde_json::json!({ "n": n }));
        let position = store
            .append(&stream_id, ExpectedVersion::NoStream, vec![event])
            .await
            .expect("appended")
            .position;
        projection
            .wait_for(position, Duration::from_secs(10))
            .await
            .expect("progress saved past it");
    }
    projection.shutdown().await;
    provider.force_flush().expect("flushed");
    let spans = exporter.get_finished_spans().expect("spans");
    let runner = spans
        .iter()
        .find(|s| s.name == "projection")
        .expect("the runner's span");
    let settled: Vec<&SpanData> = spans
        .iter()
        .filter(|s| SETTLED.contains(&s.name.as_ref()))
        .collect();
    assert!(
        !settled.is_empty(),
        "progress was saved: {:?}",
        names(&spans)
    );
    for span in settled {
        // The runner's span lasts as long as the runner: its trace would gather every save.
        assert_ne!(
            span.span_context.trace_id(),
            runner.span_context.trace_id(),
            "{} in the runner's trace",
            span.name
        );
    }
}

/// Runs a future inside a span, as a service's request handler would.
trait InstrumentIn: std::future::Future + Sized {
    fn instrument_in(self, span: &tracing::Span) -> tracing::instrument::Instrumented<Self> {
        tracing::Instrument::instrument(self, span.clone())
    }
}

impl<F: std::future::Future> InstrumentIn for F {}

#[tokio::test]
async fn a_command_that_failed_is_an_error_in_its_trace_and_a_refused_one_is_not() {
    use opentelemetry::trace::Status;

    let (exporter, provider, _guard) = traced(Sampler::AlwaysOn);
    let store = InMemoryEventStore::new();
    let orders = Repository::<Order, _>::new(store.clone());
    let command_id = cqrs_core::CommandId::new();
    orders
        .execute_with("1", &(10, 1), CommandContext::new().command_id(command_id))
        .await
        .expect("placed");
    // Refused by the aggregate: an answer, not a failure.
    orders
        .execute("1", &(10, 1))
        .await
        .expect_err("already placed");
    // The same command id on another order: the store refuses it.
    orders
        .execute_with("2", &(10, 1), CommandContext::new().command_id(command_id))
        .await
        .expect_err("a command id reused");
    provider.force_flush().expect("flushed");

    let spans = exporter.get_finished_spans().expect("spans");
    let statuses: Vec<(Option<String>, &Status)> = spans
        .iter()
        .filter(|s| s.name == "command")
        .map(|s| (attribute(s, "outcome"), &s.status))
        .collect();
    assert_eq!(statuses.len(), 3, "{statuses:?}");
    assert_eq!(statuses[0], (Some("accepted".to_owned()), &Status::Unset));
    assert_eq!(statuses[1], (Some("rejected".to_owned()), &Status::Unset));
    assert_eq!(statuses[2].0.as_deref(), Some("error"));
    assert!(
        matches!(statuses[2].1, Status::Error { description } if description.contains("command id")),
        "a search for errors finds it, with why: {statuses:?}"
    );
}

#[tokio::test]
async fn the_timer_pump_is_a_trace_of_its_own_not_a_child_of_the_runner() {
    // The runner's span lasts as long as the runner: a child of it lands in a trace whose root
    // is exported only at shutdown, and shows as an orphan until then.
    let (exporter, provider, _guard) = traced(Sampler::AlwaysOn);
    let store = InMemoryEventStore::new();
    let options = ProcessOptions::default().clock(SharedClock::new(TestClock::new()));
    let checkout =
        ProcessManagerProjection::<Checkout, _, _>::new(store.clone(), Shop::new(&store), options)
            .runner()
            .spawn();
    checkout
        .wait_until(|s| s.state == cqrs_core::projection::ProjectionState::Running)
        .await
        .expect("leading");
    checkout.shutdown().await;
    provider.force_flush().expect("flushed");
    let spans = exporter.get_finished_spans().expect("spans");
    let pump = spans
        .iter()
        .find(|s| s.name == "timer pump")
        .expect("the pump's span, ended with its term");
    assert_eq!(pump.parent_span_id, SpanId::INVALID, "{:?}", names(&spans));
}
