//! The event bus between services: Kafka for [`cqrs_core`]-based services.
//!
//! This crate is being built in steps (issue 19). What it holds so far is the plumbing the
//! publisher and the consumer will stand on:
//!
//! - [`KafkaConfig`]: where the brokers are ([`KafkaConfig::from_env`] reads
//!   `KAFKA_BOOTSTRAP_SERVERS`) and how to authenticate; its `Debug` never shows a password.
//! - [`KafkaProducer`]: an idempotent producer (`enable.idempotence`, `acks=all`): a retried
//!   send is written once, and per-partition order is kept across retries.
//! - [`KafkaConsumer`]: a consumer-group member that commits offsets only when told to
//!   ([`KafkaConsumer::commit`]), after the caller's effect.
//! - [`Record`] out, [`Received`] in: key, JSON or other bytes, and headers.
//! - [`consume`]: the integration consumer, turning messages into this service's commands with
//!   an exactly-once effect ([`consume::IntegrationConsumer`]).
//! - The publisher: a [`KafkaPublisher`] follows the event log on the core's projection
//!   runner and publishes what an [`IntegrationMapper`] (usually a [`DomainMapper`]) makes of
//!   each event as an [`IntegrationEvent`] with CloudEvents headers ([`CloudEvent`]); the
//!   checkpoint moves only after the broker acknowledged.
//! - [`remote`]: request / reply, so a process manager's commands reach other services'
//!   aggregates through the bus and their outcomes come back as its inputs.
//! - `testing` (feature `testing`): unique topic names, creating and deleting topics.
//!
//! The client is `rdkafka` over the librdkafka bundled in `rdkafka-sys` (see ARCHITECTURE.md,
//! "The event bus (Kafka)").
//!
//! [`cqrs_core`]: https://docs.rs/cqrs-core

pub mod cloudevents;
mod config;
pub mod consume;
mod consumer;
mod contract;
mod error;
mod producer;
mod publish;
mod record;
pub mod remote;
#[cfg(feature = "testing")]
pub mod testing;

#[doc(inline)]
pub use cloudevents::{CloudEvent, CloudEventError};
#[doc(inline)]
pub use config::{KafkaConfig, Sasl, SaslMechanism, BOOTSTRAP_VARIABLE};
#[doc(inline)]
pub use consumer::KafkaConsumer;
#[doc(inline)]
pub use contract::IntegrationEvent;
#[doc(inline)]
pub use error::{KafkaError, Result};
#[doc(inline)]
pub use producer::{Delivery, KafkaProducer, PendingDelivery, ProducerOptions};
#[doc(inline)]
pub use publish::{
    DomainMapper, IntegrationMapper, KafkaPublisher, MapError, Outgoing, PublisherOptions,
};
#[doc(inline)]
pub use record::{Received, Record, UNREADABLE_HEADERS};
