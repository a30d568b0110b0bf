//! What the publisher sends through: the producer, behind a small trait so the batch logic
//! is tested without a broker, and how a failed send is classified.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use rdkafka::error::RDKafkaErrorCode;

use crate::{Delivery, KafkaConfig, KafkaError, KafkaProducer, ProducerOptions, Record, Result};

/// A delivery in flight.
pub(crate) type Ack = Pin<Box<dyn Future<Output = Result<Delivery>> + Send>>;

/// Sends records; [`Publishing`] in production.
pub(crate) trait Transport: Send + Sync {
    /// Queues `record`; the future resolves once the broker acknowledged it (or, with a
    /// [`deadline`](Self::deadline), once it is purged).
    fn enqueue(&self, record: &Record) -> Result<Ack>;

    /// How long a batch waits for its acknowledgements before it [purges](Self::purge) the
    /// rest; `None` when every delivery ends by itself.
    fn deadline(&self) -> Option<Duration> {
        None
    }

    /// Fails every message not acknowledged yet, at once.
    fn purge(&self) {}
}

/// The publisher's producer: no message times out on its own, because librdkafka drops a
/// message that times out in its queue and may still write the next one of its partition (a
/// gap: a subscriber would see version n+1 of a stream before version n). A batch waits for
/// its acknowledgements up to the delivery timeout instead, then purges what is left, queued
/// and in flight together, so what the broker wrote of each partition stays a prefix of what
/// was sent, and the retry sends the rest in order.
pub(crate) struct Publishing {
    producer: KafkaProducer,
    deadline: Option<Duration>,
}

impl Publishing {
    /// A producer for `config` tuned by `options`, its delivery timeout the batch's deadline
    /// (none for a zero timeout, which librdkafka reads as none).
    pub(crate) fn new(config: &KafkaConfig, options: &ProducerOptions) -> Result<Self> {
        let timeout = options.timeout();
        Ok(Self {
            producer: KafkaProducer::without_local_timeout(config, options)?,
            deadline: (!timeout.is_zero()).then_some(timeout),
        })
    }
}

impl Transport for Publishing {
    fn enqueue(&self, record: &Record) -> Result<Ack> {
        Ok(Box::pin(self.producer.enqueue(record)?))
    }

    fn deadline(&self) -> Option<Duration> {
        self.deadline
    }

    fn purge(&self) {
        self.producer.purge();
    }
}

/// Makes a transport: called at first use and again after a fatal error.
pub(crate) type MakeTransport = Arc<dyn Fn() -> Result<Arc<dyn Transport>> + Send + Sync>;

/// What a failed enqueue or delivery means for the publisher.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Failure {
    /// The producer cannot go on (librdkafka's fatal error: with idempotence, a sequence
    /// the broker refuses): drop it, make a new one, retry the batch.
    Fatal,
    /// Sending again later may succeed: retry the batch.
    Transient,
    /// This message can never be sent (too large, an invalid record...): park its event.
    Poison,
}

impl Failure {
    pub(crate) fn of(error: &KafkaError) -> Self {
        use RDKafkaErrorCode as C;
        match error {
            // The producer went away before the broker answered (e.g. it was rebuilt):
            // nothing says the message is bad.
            KafkaError::DeliveryCanceled { .. } => Failure::Transient,
            _ => match error.code() {
                Some(
                    C::Fatal
                    | C::OutOfOrderSequenceNumber
                    | C::InvalidProducerEpoch
                    | C::ProducerFenced
                    | C::UnknownProducerId,
                ) => Failure::Fatal,
                // Purged messages were dropped by the client, not refused by the broker (a
                // topic not created yet, or not granted, is transient everywhere).
                Some(C::PurgeQueue | C::PurgeInflight) => Failure::Transient,
                _ if error.is_transient() => Failure::Transient,
                _ => Failure::Poison,
            },
        }
    }

    /// Whether the local queue is full (wait for some acknowledgements, then enqueue again).
    pub(crate) fn is_queue_full(error: &KafkaError) -> bool {
        error.code() == Some(RDKafkaErrorCode::QueueFull)
    }
}

#[cfg(test)]
mod tests {
    use rdkafka::error::KafkaError as ClientError;

    use super::*;

    fn delivery(code: RDKafkaErrorCode) -> KafkaError {
        KafkaError::Delivery {
            topic: "t".to_owned(),
            source: ClientError::MessageProduction(code),
        }
    }

    #[test]
    fn fatal_transient_and_poison_failures_are_told_apart() {
        use RDKafkaErrorCode as C;
        for code in [C::Fatal, C::OutOfOrderSequenceNumber, C::ProducerFenced] {
            assert_eq!(Failure::of(&delivery(code)), Failure::Fatal, "{code:?}");
        }
        for code in [
            C::MessageTimedOut,
            C::AllBrokersDown,
            C::NotEnoughReplicas,
            C::QueueFull,
            C::PurgeInflight,
            C::UnknownTopic,
            C::TopicAuthorizationFailed,
        ] {
            assert_eq!(Failure::of(&delivery(code)), Failure::Transient, "{code:?}");
        }
        for code in [C::MessageSizeTooLarge, C::InvalidRecord] {
            assert_eq!(Failure::of(&delivery(code)), Failure::Poison, "{code:?}");
        }
        let canceled = KafkaError::DeliveryCanceled {
            topic: "t".to_owned(),
        };
        assert_eq!(Failure::of(&canceled), Failure::Transient);
        assert!(Failure::is_queue_full(&delivery(C::QueueFull)));
    }
}
