//! A command a consumer runs for a message that carries a `traceparent` shows in the
//! publisher's trace: the consumer handles the message in a `message` span that continues
//! the header's trace, the command's spans sit inside it, and the command's events carry the
//! command's own place in that trace (not the publisher's span, from which the consumer's
//! spans could not be reached).

mod support;

use std::time::Duration;

use async_trait::async_trait;
use cqrs_core::telemetry::TRACEPARENT;
use cqrs_core::testing::{Tally, TallyCommand};
use cqrs_core::{InMemoryEventStore, ReadStream, Repository, StreamId, Version};
use cqrs_kafka::consume::{HandleError, Incoming, IntegrationConsumer, IntegrationHandler};
use cqrs_kafka::testing::unique_topic;
use cqrs_kafka::{CloudEvent, IntegrationEvent, Record};
use opentelemetry::trace::{TraceId, TracerProvider as _};
use opentelemetry_sdk::trace::{InMemorySpanExporter, Sampler, SdkTracerProvider};
use support::bus::{send_all, Counted};
use tracing_subscriber::layer::SubscriberExt;
use uuid::Uuid;

/// The publisher's trace and span, as its message carries them.
const TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const PUBLISHER_SPAN: &str = "00f067aa0ba902b7";

/// Adds each message's number to one tally, through the repository.
struct Adds {
    tallies: Repository<Tally, InMemoryEventStore>,
}

#[async_trait]
impl IntegrationHandler for Adds {
    fn event_types(&self) -> Vec<&'static str> {
        vec![Counted::TYPE]
    }

    async fn handle(&self, incoming: &Incoming) -> Result<(), HandleError> {
        let counted: Counted = incoming.data()?;
        self.tallies
            .execute_with(
                "traced",
                &TallyCommand::Add(vec![counted.n]),
                incoming.command_context("add"),
            )
            .await?;
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_command_run_for_a_message_continues_the_message_s_trace() {
    let exporter = InMemorySpanExporter::default();
    let provider = SdkTracerProvider::builder()
        .with_sampler(Sampler::AlwaysOn)
        .with_simple_exporter(exporter.clone())
        .build();
    let layer = tracing_opentelemetry::layer().with_tracer(provider.tracer("cqrs-kafka-tests"));
    // The one test of this binary: every task, on every worker thread, sees it.
    tracing::subscriber::set_global_default(tracing_subscriber::registry().with(layer))
        .expect("the test's subscriber");

    let broker = support::broker();
    let topic = broker.create_topic("t-traced", 1).await.expect("a topic");
    let mut event = CloudEvent::new(Uuid::now_v7(), "/services/test", Counted::TYPE);
    event.traceparent = Some(format!("00-{TRACE}-{PUBLISHER_SPAN}-01"));
    let body = serde_json::to_vec(&Counted {
        key: "k".into(),
        n: 7,
    })
    .expect("json");
    send_all(
        broker.config(),
        &[event.write(Record::new(&topic, "k", body))],
    )
    .await;

    let store = InMemoryEventStore::new();
    let handle = IntegrationConsumer::new(
        broker.config(),
        &unique_topic("g-traced"),
        &[&topic],
        Adds {
            tallies: Repository::new(store.clone()),
        },
    )
    .spawn()
    .expect("spawn");
    handle
        .wait_until(Duration::from_secs(60), |s| s.handled == 1)
        .await
        .expect("handled");
    handle.shutdown().await;
    broker.delete_topics().await.expect("delete topics");

    provider.force_flush().expect("flushed");
    let spans = exporter.get_finished_spans().expect("spans");
    let trace = TraceId::from_hex(TRACE).expect("a trace id");
    let command = spans
        .iter()
        .find(|s| s.name == "command")
        .unwrap_or_else(|| panic!("a command span among {:?}", names(&spans)));
    assert_eq!(
        command.span_context.trace_id(),
        trace,
        "the command is in the publisher's trace"
    );
    let events = store
        .read_stream(
            &StreamId::new("tally-traced").expect("id"),
            Version::new(1),
            10,
        )
        .await
        .expect("read");
    let header = events
        .first()
        .and_then(|e| e.metadata.header(TRACEPARENT))
        .expect("the event carries a traceparent");
    assert!(header.contains(TRACE), "{header}");
    assert!(
        !header.contains(PUBLISHER_SPAN),
        "the event names the command's place in the trace, not the publisher's: {header}"
    );
}

fn names(spans: &[opentelemetry_sdk::trace::SpanData]) -> Vec<&str> {
    spans.iter().map(|s| s.name.as_ref()).collect()
}
