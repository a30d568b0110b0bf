//! The idempotent producer: [`KafkaProducer`].

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{DeliveryFuture, FutureProducer, FutureRecord, Producer, PurgeConfig};

use crate::{KafkaConfig, KafkaError, Record, Result};

/// Tuning for a [`KafkaProducer`]. The defaults suit a publisher that waits for each
/// batch's acknowledgements.
#[derive(Clone, Debug)]
#[must_use]
pub struct ProducerOptions {
    delivery_timeout: Duration,
    linger: Duration,
}

impl Default for ProducerOptions {
    fn default() -> Self {
        Self {
            delivery_timeout: Duration::from_secs(120),
            linger: Duration::from_millis(5),
        }
    }
}

impl ProducerOptions {
    /// How long a message may wait for its acknowledgement, retries included, before its
    /// delivery fails (librdkafka's `message.timeout.ms`; default 120 s; zero for no limit).
    /// A publisher's batch waits this long for all its acknowledgements, then fails what is
    /// left together.
    pub fn delivery_timeout(mut self, timeout: Duration) -> Self {
        self.delivery_timeout = timeout;
        self
    }

    /// The delivery timeout.
    pub(crate) fn timeout(&self) -> Duration {
        self.delivery_timeout
    }

    /// How long to wait for more messages before sending a batch (`linger.ms`; default 5 ms).
    pub fn linger(mut self, linger: Duration) -> Self {
        self.linger = linger;
        self
    }
}

/// An idempotent producer: `enable.idempotence=true`, so `acks=all` and at most five
/// requests in flight per connection. The broker drops a retried batch it already wrote and
/// keeps each partition's order across retries: a message is written at most once per
/// producer session and in the order it was enqueued. One exception, librdkafka's: a message
/// that times out while still queued (the broker unreachable for the delivery timeout) is
/// dropped, and one enqueued after it for the same partition may still be written, a gap.
/// [`KafkaPublisher`](crate::publish::KafkaPublisher) therefore sets no timeout per message
/// and ends a batch's wait by failing all it has not had acknowledged, together.
///
/// Keys go to partitions as the Java client sends them (`partitioner=murmur2_random`, where
/// librdkafka's default is CRC32), so a service in another language writing the same keys
/// fills the same partitions; a record without a key goes to a random partition.
///
/// It is cheap to share (`&self` methods); one per process is the norm.
#[derive(Clone)]
pub struct KafkaProducer {
    inner: FutureProducer,
}

impl fmt::Debug for KafkaProducer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KafkaProducer")
            .field("in_flight", &self.inner.in_flight_count())
            .finish_non_exhaustive()
    }
}

impl KafkaProducer {
    /// A producer with the default [`ProducerOptions`].
    pub fn new(config: &KafkaConfig) -> Result<Self> {
        Self::with_options(config, ProducerOptions::default())
    }

    /// A producer tuned by `options`. Connects lazily: a broker that is down shows as
    /// deliveries failing after the delivery timeout, not here.
    pub fn with_options(config: &KafkaConfig, options: ProducerOptions) -> Result<Self> {
        Self::create(config, &options, millis(options.delivery_timeout))
    }

    /// A producer whose messages never time out on their own (`message.timeout.ms=0`): its
    /// user ends what it waits for with [`purge`](Self::purge), all at once.
    pub(crate) fn without_local_timeout(
        config: &KafkaConfig,
        options: &ProducerOptions,
    ) -> Result<Self> {
        Self::create(config, options, 0)
    }

    fn create(config: &KafkaConfig, options: &ProducerOptions, timeout_ms: u64) -> Result<Self> {
        let mut client = config.client_config();
        client
            .set("enable.idempotence", "true")
            .set("acks", "all")
            .set("max.in.flight.requests.per.connection", "5")
            .set("partitioner", "murmur2_random")
            .set("message.timeout.ms", timeout_ms.to_string())
            .set("linger.ms", millis(options.linger).to_string());
        let inner = client
            .create()
            .map_err(KafkaError::client("create the producer"))?;
        Ok(Self { inner })
    }

    /// Puts `record` on the producer's queue and returns at once; the returned
    /// [`PendingDelivery`] resolves when the broker acknowledged it (or gave up). Records
    /// enqueued one after the other for one partition are written in that order.
    ///
    /// Fails now, without sending, when the local queue is full ([`KafkaError::is_transient`])
    /// or the record is refused (too large, an unknown partition).
    pub fn enqueue(&self, record: &Record) -> Result<PendingDelivery> {
        let mut headers = OwnedHeaders::new_with_capacity(record.headers().len());
        for (name, value) in record.headers() {
            headers = headers.insert(Header {
                key: name,
                value: Some(value),
            });
        }
        let future = FutureRecord::to(record.topic())
            .key(record.key())
            .payload(record.payload())
            .headers(headers);
        match self.inner.send_result(future) {
            Ok(delivery) => Ok(PendingDelivery {
                topic: record.topic().to_owned(),
                delivery,
            }),
            Err((source, _)) => Err(KafkaError::Client {
                operation: "enqueue a message",
                source,
            }),
        }
    }

    /// Sends `record` and waits for the broker's acknowledgement.
    pub async fn send(&self, record: &Record) -> Result<Delivery> {
        self.enqueue(record)?.await
    }

    /// Fails every message not acknowledged yet, queued or in flight, at once: their
    /// deliveries resolve with `PurgeQueue` / `PurgeInflight` (transient; one in flight may
    /// have been written). Returns at once (librdkafka's non-blocking purge: it does not wait
    /// for the broker threads, which are slow exactly when a purge is needed); the deliveries
    /// resolve when the broker threads have purged.
    pub(crate) fn purge(&self) {
        self.inner
            .purge(PurgeConfig::default().queue().inflight().non_blocking());
    }

    /// Waits until every enqueued message is acknowledged or failed, up to `timeout`.
    pub fn flush(&self, timeout: Duration) -> Result<()> {
        self.inner
            .flush(timeout)
            .map_err(KafkaError::client("flush the producer"))
    }
}

fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

/// Where the broker wrote a message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Delivery {
    /// The partition.
    pub partition: i32,
    /// The offset in the partition.
    pub offset: i64,
}

/// A message on the producer's queue; resolves to its [`Delivery`] once the broker
/// acknowledged it. Dropping it does not cancel the send.
#[must_use = "the delivery is known only by awaiting it"]
pub struct PendingDelivery {
    topic: String,
    delivery: DeliveryFuture,
}

impl fmt::Debug for PendingDelivery {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PendingDelivery")
            .field("topic", &self.topic)
            .finish_non_exhaustive()
    }
}

impl Future for PendingDelivery {
    type Output = Result<Delivery>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = &mut *self;
        match Pin::new(&mut this.delivery).poll(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(Ok(Ok(delivered))) => Poll::Ready(Ok(Delivery {
                partition: delivered.partition,
                offset: delivered.offset,
            })),
            Poll::Ready(Ok(Err((source, _)))) => Poll::Ready(Err(KafkaError::Delivery {
                topic: std::mem::take(&mut this.topic),
                source,
            })),
            Poll::Ready(Err(_canceled)) => Poll::Ready(Err(KafkaError::DeliveryCanceled {
                topic: std::mem::take(&mut this.topic),
            })),
        }
    }
}
