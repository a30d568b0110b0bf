//! [`PublisherOptions`]: what a [`KafkaPublisher`](super::KafkaPublisher) is told.

use crate::ProducerOptions;

/// How a [`KafkaPublisher`](super::KafkaPublisher) publishes: its CloudEvents `source` and
/// its producer's tuning. How many events a batch holds, retries and the breaker are the
/// runner's ([`RunnerOptions`](cqrs_core::projection::RunnerOptions)).
#[derive(Clone, Debug)]
#[must_use]
pub struct PublisherOptions {
    pub(super) source: String,
    pub(super) producer: ProducerOptions,
}

impl PublisherOptions {
    /// Options for a service that calls itself `source` in `ce_source`, a URI reference
    /// such as `/services/orders`; the producer's defaults (a 120 s delivery timeout, so a
    /// broker outage shorter than that only makes a batch slower).
    pub fn new(source: impl Into<String>) -> Self {
        Self {
            source: source.into(),
            producer: ProducerOptions::default(),
        }
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
