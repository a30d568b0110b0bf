//! [`KafkaPublisher`]: the publisher as a [`Projection`] on the core's runner.

use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};

use async_trait::async_trait;
use cqrs_core::projection::{
    Projection, ProjectionError, ProjectionRunner, ProjectionStore, RunnerOptions,
};
use cqrs_core::{EventFilter, RecordedEvent};

use crate::{KafkaConfig, Record, Result};

use super::ack_memo::AckMemo;
use super::batch;
use super::transport::{Failure, MakeTransport, Publishing, Transport};
use super::{message, IntegrationMapper, MapError, PublisherOptions};

/// Publishes a service's integration events to Kafka, following its event log: the log is
/// the outbox. It is a [`Projection`], run by the core's
/// [`ProjectionRunner`](cqrs_core::projection::ProjectionRunner) like any other, so it gets
/// its checkpoint, its lease (one publisher per name, so one producer and per-key order),
/// read-ahead, backoff and breaker, dead letters and status.
///
/// - Its name is `publisher:{name}`; it reads only the mapper's event types.
/// - Each batch: every event mapped, every message enqueued at once (pipelined), and `apply`
///   returns only once the broker acknowledged every one (`acks=all`, idempotent
///   producer). The runner saves the checkpoint after `apply` returned, so **the checkpoint
///   moves only after the acknowledgements**: a process killed between append and publish
///   sends again from the checkpoint. Nothing is lost; delivery is at least once, and
///   `ce_id` (the event id) is what consumers deduplicate on.
/// - A message key is the stream id, and the key of an event in the runner too: an event that
///   cannot be mapped is parked as a dead letter with every later event of its stream, before
///   any of them is sent, so a subscriber never sees version n+1 of a stream without version
///   n. One the broker refuses (too large for the topic, an invalid record) is parked the
///   same way, but a batch is pipelined: later events of its stream may already be on the
///   topic. They are parked behind it too, and a re-drive sends them all again in order, so a
///   subscriber may see n+1 before n, then n and n+1 again (deduplicate on `ce_id`, and keep
///   per stream the highest version applied).
/// - The order holds within a partition, and the key chooses the partition by the topic's
///   partition count. **Adding partitions to a topic** moves a stream's later messages to
///   another partition, which a consumer may read before the backlog of the first: drain the
///   consumers first (stop this publisher, let every consumer catch up, add the partitions,
///   start it again).
/// - A transient failure (broker down past the delivery timeout, a full queue, a topic not
///   created yet or this service not allowed to write to it) fails the batch as
///   [`ProjectionError::Transient`]; the runner tries it again, and the acknowledged part is
///   not sent again. A fatal producer error drops the producer; the
///   retry makes a new one.
///
/// ```no_run
/// use cqrs_core::{DomainEvent, InMemoryEventStore, RecordedEvent};
/// use cqrs_kafka::{
///     DomainMapper, IntegrationEvent, KafkaConfig, KafkaPublisher, Outgoing, PublisherOptions,
/// };
/// use serde::{Deserialize, Serialize};
///
/// #[derive(Serialize, Deserialize, DomainEvent)]
/// enum OrderEvent {
///     Placed { total_cents: u64 },
/// }
///
/// #[derive(Serialize, Deserialize)]
/// struct OrderPlaced {
///     total_cents: u64,
/// }
/// impl IntegrationEvent for OrderPlaced {
///     const TYPE: &'static str = "shop.order.placed.v1";
/// }
///
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// let store = InMemoryEventStore::new(); // PgEventStore in a service
/// let mapper = DomainMapper::new(["Placed"], |event: &OrderEvent, _: &RecordedEvent| {
///     let OrderEvent::Placed { total_cents } = event;
///     Outgoing::of("orders", &OrderPlaced { total_cents: *total_cents }).map(Some)
/// });
/// let publisher = KafkaPublisher::new(
///     "orders",
///     mapper,
///     &KafkaConfig::from_env()?,
///     PublisherOptions::new("/services/orders"),
/// )?;
/// // ProjectionRunner::for_store(publisher, &store), with the publisher's batch size:
/// let handle = publisher.runner(&store).spawn();
/// # handle.shutdown().await;
/// # Ok(())
/// # }
/// ```
pub struct KafkaPublisher<M> {
    name: String,
    mapper: M,
    source: String,
    batch_size: usize,
    make_transport: MakeTransport,
    transport: Mutex<Option<Arc<dyn Transport>>>,
    memo: Mutex<AckMemo>,
}

impl<M: IntegrationMapper> KafkaPublisher<M> {
    /// A publisher named `publisher:{name}` (its checkpoint, lease and dead letters), sending
    /// what `mapper` makes of the events to the brokers of `config`.
    ///
    /// # Errors
    ///
    /// The producer cannot be made from `config` ([`KafkaError::Client`](crate::KafkaError::Client)).
    /// It connects lazily: a broker that is down shows as batches failing, not here.
    pub fn new(
        name: &str,
        mapper: M,
        config: &KafkaConfig,
        options: PublisherOptions,
    ) -> Result<Self> {
        let config = config.clone();
        let producer_options = options.producer.clone();
        let make: MakeTransport = Arc::new(move || {
            let producer = Publishing::new(&config, &producer_options)?;
            Ok(Arc::new(producer) as Arc<dyn Transport>)
        });
        Self::build(name, mapper, options.source, options.batch_size, make)
    }

    /// A publisher sending through what `make` makes: a transport without a broker.
    #[cfg(test)]
    pub(crate) fn with_transport(
        name: &str,
        mapper: M,
        source: String,
        make: MakeTransport,
    ) -> Result<Self> {
        Self::build(name, mapper, source, 5_000, make)
    }

    fn build(
        name: &str,
        mapper: M,
        source: String,
        batch_size: usize,
        make: MakeTransport,
    ) -> Result<Self> {
        let first = make()?;
        Ok(Self {
            name: format!("publisher:{name}"),
            mapper,
            source,
            batch_size,
            make_transport: make,
            transport: Mutex::new(Some(first)),
            memo: Mutex::new(AckMemo::default()),
        })
    }

    /// A runner for this publisher with every role played by `store`
    /// ([`ProjectionRunner::for_store`]: feed, checkpoint, lease, dead letters, wake-ups),
    /// batches of [`PublisherOptions::batch_size`].
    pub fn runner<S: ProjectionStore>(self, store: &S) -> ProjectionRunner {
        self.runner_with(store, RunnerOptions::new())
    }

    /// Like [`runner`](Self::runner), with these options (lease owner and time to live,
    /// retries...); their batch size is replaced by [`PublisherOptions::batch_size`].
    pub fn runner_with<S: ProjectionStore>(
        self,
        store: &S,
        options: RunnerOptions,
    ) -> ProjectionRunner {
        let options = options.batch_size(self.batch_size);
        ProjectionRunner::for_store(self, store).with_options(options)
    }

    /// The mapper.
    pub fn mapper(&self) -> &M {
        &self.mapper
    }

    /// The message this publisher sends for `event` (key, body, headers), or `None` when
    /// the mapper passes it over: what a subscriber will receive, for tests, tools and
    /// benchmarks.
    ///
    /// # Errors
    ///
    /// The mapper's [`MapError`]: the publisher would park the event.
    pub fn message(&self, event: &RecordedEvent) -> Result<Option<Record>, MapError> {
        Ok(self
            .mapper
            .map(event)?
            .map(|out| message::record(&self.source, event, out)))
    }

    /// The transport in use, made anew after a fatal error dropped the last one.
    fn transport(&self) -> Result<Arc<dyn Transport>> {
        let mut slot = self
            .transport
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(transport) = slot.as_ref() {
            return Ok(transport.clone());
        }
        let transport = (self.make_transport)()?;
        *slot = Some(transport.clone());
        Ok(transport)
    }

    fn drop_transport(&self) {
        *self
            .transport
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = None;
    }

    fn memo(&self) -> std::sync::MutexGuard<'_, AckMemo> {
        self.memo.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[async_trait]
impl<M: IntegrationMapper> Projection for KafkaPublisher<M> {
    fn name(&self) -> &str {
        &self.name
    }

    /// The mapper's event types.
    fn filter(&self) -> EventFilter {
        EventFilter::all().event_types(self.mapper.event_types())
    }

    /// The stream id: a parked event holds back its stream's later events.
    fn key(&self, event: &RecordedEvent) -> Option<String> {
        Some(event.stream_id.as_str().to_owned())
    }

    async fn apply(&self, events: &[RecordedEvent]) -> Result<(), ProjectionError> {
        let transport = self
            .transport()
            .map_err(|e| ProjectionError::Transient(Box::new(e)))?;
        // Batches are applied one at a time: the memo is taken out for the attempt.
        let mut memo = std::mem::take(&mut *self.memo());
        let attempt = batch::publish(
            transport.as_ref(),
            &self.mapper,
            &self.source,
            events,
            &mut memo,
        )
        .await;
        match attempt.failure {
            Some((kind, error)) => {
                if kind == Failure::Fatal {
                    tracing::warn!(publisher = %self.name, %error, "fatal producer error: making a new producer");
                    self.drop_transport();
                }
                tracing::debug!(
                    publisher = %self.name,
                    acknowledged = memo.len(),
                    "batch failed; its acknowledged messages will not be sent again"
                );
                *self.memo() = memo;
                Err(ProjectionError::Transient(error))
            }
            None if attempt.rejected.is_empty() => Ok(()),
            None => Err(ProjectionError::Poison(attempt.rejected)),
        }
    }

    /// Forgets the acknowledgements remembered for a retry: another worker may have led
    /// meanwhile.
    async fn leadership_changed(&self, _leading: bool) {
        self.memo().clear();
    }
}

impl<M> fmt::Debug for KafkaPublisher<M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KafkaPublisher")
            .field("name", &self.name)
            .field("source", &self.source)
            .finish_non_exhaustive()
    }
}
