//! [`PublisherOptions`]: what a [`KafkaPublisher`](super::KafkaPublisher) is told.

use crate::ProducerOptions;

/// How a [`KafkaPublisher`](super::KafkaPublisher) publishes: its CloudEvents `source`, its
/// producer's tuning, and how many events a batch holds when the runner comes from
/// [`KafkaPublisher::runner`](super::KafkaPublisher::runner). Retries and the breaker are
/// the runner's ([`RunnerOptions`](cqrs_core::projection::RunnerOptions)).
#[derive(Clone, Debug)]
#[must_use]
pub struct PublisherOptions {
    pub(super) source: String,
    pub(super) producer: ProducerOptions,
    pub(super) batch_size: usize,
}

impl PublisherOptions {
    /// Options for a service that calls itself `source` in `ce_source`, a URI reference
    /// such as `/services/orders`; the producer's defaults (a 120 s delivery timeout, so a
    /// broker outage shorter than that only makes a batch slower).
    pub fn new(source: impl Into<String>) -> Self {
        Self {
            source: source.into(),
            producer: ProducerOptions::default(),
            batch_size: 5_000,
        }
    }

    /// Events per batch (default 5,000). Each batch waits for its acknowledgements before
    /// the next is sent, so while catching up the batch size sets the pace: in `kafka-bench`
    /// batches of 500 published at a quarter of a raw producer's rate, batches of 5,000 at
    /// its rate. At the head of the feed batches are small whatever this says.
    pub fn batch_size(mut self, events: usize) -> Self {
        self.batch_size = events.max(1);
        self
    }

    /// The producer's tuning.
    pub fn producer(mut self, producer: ProducerOptions) -> Self {
        self.producer = producer;
        self
    }

    /// The CloudEvents source.
    pub fn source(&self) -> &str {
        &self.source
    }
}
